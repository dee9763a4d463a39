/* lg_run.h: scenarios of the load generator and what they share. */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <stdint.h>
#include "lg.h"

#define LG_MAX_RATES 16
#define LG_LAG_BUCKETS 32

struct lg_opts {
    char host[64], scenario[32], prefix[32];
    int port, redis, server_pid;
    int db_pid;              /* a database server's first process (--db-pid), or 0 */
    int members, pairs, senders, window, conns, size;
    double rates[LG_MAX_RATES]; int nrates;
    double duration, max_p99_ms;
};

struct lg_user { int64_t id; char name[48]; char *token; char *refresh; };

struct lg_run;
struct lg_client {
    struct lg_conn conn;
    struct lg_run *run;
    int user;                /* index into run->users */
    int64_t room;            /* the room this client sends to */
    int ready;
    uint64_t seq;            /* messages sent by this client */
};

typedef void (*send_fn)(struct lg_run *r);

struct lg_run {
    struct lg_opts *o;
    uv_loop_t loop;
    struct lg_user *users; int nusers;
    struct lg_client *clients; int nclients, ready, connecting, next_to_open;
    struct hist deliver, ack;
    uint64_t delivered, acked, sent, errors;
    int measuring;
    void (*on_ready)(struct lg_run *r);   /* all clients said hello */
    void (*on_ack)(struct lg_client *c);
    uv_timer_t tick;
    double rate; uint64_t step_start_ns, step_sent;
    int rr;                  /* round-robin sender index */
    send_fn send;            /* what the rate timer calls */
    int open_limit;          /* handshakes in flight at once */
};

/* set-up (lg_setup.c) */
int  lg_users_create(struct lg_run *r, int n);
int64_t lg_room_create(struct lg_run *r, int owner, int first, int count);
int64_t lg_dm_create(struct lg_run *r, int a, int b);
int  lg_clients_open(struct lg_run *r, int n, int concurrency);
int  lg_send_chat(struct lg_client *c, int size);
void lg_on_chat_frame(struct lg_conn *conn, const uint8_t *p, size_t n, uint64_t now);
uint64_t lg_body_ts(const uint8_t *p, size_t n);

/* measurements of the server process */
struct lg_lag { double le[LG_LAG_BUCKETS]; double cnt[LG_LAG_BUCKETS]; int n; };
int    lg_lag_scrape(const struct lg_opts *o, struct lg_lag *out);
double lg_lag_p99_ms(const struct lg_lag *before, const struct lg_lag *after);
double lg_proc_cpu_s(int pid);           /* utime + stime */
double lg_tree_cpu_s(int pid);           /* pid and its children, exited ones too */
long   lg_proc_rss_kb(int pid);
double lg_self_cpu_s(void);

int lg_run_fanout(struct lg_opts *o);
int lg_run_pairs(struct lg_opts *o);
int lg_run_durable(struct lg_opts *o);
int lg_run_idle(struct lg_opts *o);
int lg_run_auth(struct lg_opts *o);

#endif
