/* The scenarios. Each prints name=value lines; bench/run.sh collects them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "lg_run.h"

#define WARMUP_MS 500
#define DRAIN_MS 2000
#define READY_TIMEOUT_MS 180000

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop for ms, or until something calls uv_stop. The loop's clock is only
 * brought up to date when the loop runs: after blocking set-up or the refresh threads
 * it is seconds behind, and a timer started from it would fire at once. */
static void run_for(struct lg_run *r, uint64_t ms)
{
    uv_timer_t t;
    uv_update_time(&r->loop);
    uv_timer_init(&r->loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
}

static void all_ready(struct lg_run *r) { uv_stop(&r->loop); }

static int wait_ready(struct lg_run *r, int expected)
{
    uint64_t deadline = lg_now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000ull;
    while (r->ready < expected && lg_now_ns() < deadline)
        run_for(r, 200);
    if (r->ready < expected) {
        fprintf(stderr, "loadgen: only %d of %d clients ready\n", r->ready, expected);
        return -ETIMEDOUT;
    }
    return 0;
}

/* ---- open-loop sending at r->rate ---- */

static void tick(uv_timer_t *t)
{
    struct lg_run *r = t->data;
    uint64_t due = (uint64_t)(r->rate * (double)(lg_now_ns() - r->step_start_ns) / 1e9);
    while (r->step_sent < due) {
        r->send(r);
        r->step_sent++;
    }
}

struct step_result {
    double rate, per_s, cpu_server, cpu_db, cpu_self, lag_p99, secs;
    struct hist deliver, ack;
    uint64_t n, reads, frames;      /* the generator's reads and messages received */
};

static void run_step(struct lg_run *r, double rate, send_fn send, uint64_t expect_per_msg,
                     struct step_result *out)
{
    struct lg_lag lag0, lag1;
    double cpu0, db0, self0, secs = r->o->duration;
    uint64_t sent0, reads0, frames0;
    struct lg_io *io = lg_io_of(&r->loop);

    r->send = send;
    r->rate = rate;
    r->step_sent = 0;
    r->step_start_ns = lg_now_ns();
    r->tick.data = r;
    uv_timer_start(&r->tick, tick, 1, 1);
    r->measuring = 0;
    run_for(r, WARMUP_MS);
    memset(&r->deliver, 0, sizeof(r->deliver));
    memset(&r->ack, 0, sizeof(r->ack));
    r->delivered = r->acked = 0;
    lg_lag_scrape(r->o, &lag0);
    cpu0 = r->o->server_pid ? lg_proc_cpu_s(r->o->server_pid) : 0;
    db0 = r->o->db_pid ? lg_tree_cpu_s(r->o->db_pid) : 0;
    self0 = lg_self_cpu_s();
    sent0 = r->sent;
    reads0 = io->reads;
    frames0 = io->frames;
    r->measuring = 1;
    run_for(r, (uint64_t)(secs * 1000));
    uv_timer_stop(&r->tick);
    out->cpu_server = r->o->server_pid ? lg_proc_cpu_s(r->o->server_pid) - cpu0 : 0;
    out->cpu_db = r->o->db_pid ? lg_tree_cpu_s(r->o->db_pid) - db0 : 0;
    out->cpu_self = lg_self_cpu_s() - self0;
    out->reads = io->reads - reads0;
    out->frames = io->frames - frames0;
    out->secs = secs;
    /* Let what was sent in the window arrive; what does not arrive is missing. */
    for (int i = 0; i < DRAIN_MS / 50 && r->delivered < (r->sent - sent0) * expect_per_msg; i++)
        run_for(r, 50);
    r->measuring = 0;
    lg_lag_scrape(r->o, &lag1);
    out->rate = rate;
    out->n = r->sent - sent0;
    out->per_s = (double)(expect_per_msg ? r->delivered : r->acked) / secs;
    out->deliver = r->deliver;
    out->ack = r->ack;
    out->lag_p99 = r->o->redis ? -1 : lg_lag_p99_ms(&lag0, &lag1);
}

/* What the generator itself cost in the measured window: a step where it was busy
 * most of the time measures the generator as much as the server. */
static void print_generator(const char *name, const struct step_result *s)
{
    printf("%s_r%.0f_loadgen_busy_pct=%.0f\n", name, s->rate, 100.0 * s->cpu_self / s->secs);
    printf("%s_r%.0f_loadgen_reads=%llu\n", name, s->rate, (unsigned long long)s->reads);
    printf("%s_r%.0f_loadgen_msgs_per_read=%.2f\n", name, s->rate,
           s->reads ? (double)s->frames / (double)s->reads : 0.0);
    printf("%s_r%.0f_loadgen_us_per_msg=%.2f\n", name, s->rate,
           s->frames ? 1e6 * s->cpu_self / (double)s->frames : 0.0);
}

static void print_step(const char *name, const struct step_result *s)
{
    char key[96];
    printf("%s_r%.0f_sent=%llu\n", name, s->rate, (unsigned long long)s->n);
    printf("%s_r%.0f_per_s=%.0f\n", name, s->rate, s->per_s);
    snprintf(key, sizeof(key), "%s_r%.0f_delivery", name, s->rate);
    if (s->deliver.count)
        hist_print(&s->deliver, key);
    snprintf(key, sizeof(key), "%s_r%.0f_ack", name, s->rate);
    if (s->ack.count)
        hist_print(&s->ack, key);
    printf("%s_r%.0f_server_cpu_s=%.2f\n", name, s->rate, s->cpu_server);
    if (s->cpu_db > 0)
        printf("%s_r%.0f_db_cpu_s=%.2f\n", name, s->rate, s->cpu_db);
    printf("%s_r%.0f_loadgen_cpu_s=%.2f\n", name, s->rate, s->cpu_self);
    print_generator(name, s);
    if (s->lag_p99 >= 0)
        printf("%s_r%.0f_loop_lag_p99_ms=%.3f\n", name, s->rate, s->lag_p99);
}

/* Ramps through the rates; stops after the first step whose p99 passes the bar.
 * Prints the best rate that stayed under it. */
static void ramp(struct lg_run *r, const char *name, send_fn send, uint64_t per_msg)
{
    double best = 0, best_rate = 0, max = 0;
    printf("%s_loadgen_io=%s\n", name, lg_io_name(&r->loop));
    for (int i = 0; i < r->o->nrates; i++) {
        struct step_result s;
        double p99;
        run_step(r, r->o->rates[i], send, per_msg, &s);
        print_step(name, &s);
        /* The highest rate delivered whatever the latency: a comparison even when
         * no step stays under the p99 bound. */
        if (s.per_s > max)
            max = s.per_s;
        p99 = hist_quantile(per_msg ? &s.deliver : &s.ack, 0.99) / 1e6;
        if (p99 > r->o->max_p99_ms || s.per_s < 0.9 * s.rate * (per_msg ? (double)per_msg : 1.0))
            break;
        if (s.per_s > best) {
            best = s.per_s;
            best_rate = s.rate;
        }
    }
    printf("%s_best_per_s=%.0f\n%s_best_rate=%.0f\n", name, best, name, best_rate);
    printf("%s_max_per_s=%.0f\n", name, max);
}

static int run_init(struct lg_run *r, struct lg_opts *o, int nclients)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->tick);
    r->nclients = nclients;
    r->clients = calloc((size_t)(nclients + 1), sizeof(*r->clients));
    return r->clients ? 0 : -ENOMEM;
}

/* ---- fan-out: one room, every member connected, one sender ---- */
static void send_fanout(struct lg_run *r) { lg_send_chat(&r->clients[0], r->o->size); }

static int fanout_chatd(struct lg_opts *o)
{
    struct lg_run r;
    int64_t room;

    if (run_init(&r, o, o->members) < 0 || lg_users_create(&r, o->members) < 0)
        return 1;
    room = lg_room_create(&r, 0, 0, o->members);
    if (room < 0)
        return 1;
    for (int i = 0; i < r.nclients; i++)
        r.clients[i].room = room;
    r.on_ready = all_ready;
    lg_clients_open(&r, r.nclients, 256);
    if (wait_ready(&r, r.nclients) < 0)
        return 1;
    printf("fanout_members=%d\n", o->members);
    ramp(&r, "fanout", send_fanout, (uint64_t)(o->members - 1));
    return 0;
}

/* Redis: SUBSCRIBE on members-1 connections (as many recipients as chatd has), one
 * publisher connection, the same payload. */
static void redis_frame(struct lg_conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    struct lg_client *cl = c->user;
    struct lg_run *r = cl->run;
    if (n > 2 && p[0] == 't' && p[1] == '=') {
        uint64_t ts = 0;
        for (size_t i = 2; i < n && p[i] >= '0' && p[i] <= '9'; i++)
            ts = ts * 10 + (uint64_t)(p[i] - '0');
        if (r->measuring && ts) {
            hist_add(&r->deliver, now - ts);
            r->delivered++;
        }
    } else if (!cl->ready && c->index > 0) {
        cl->ready = 1;
        if (++r->ready == r->nclients)
            uv_stop(&r->loop);
    }
}

static void redis_publisher_open(struct lg_conn *c, int status)
{
    struct lg_client *cl = c->user;
    if (status == 0 && !cl->ready) {
        cl->ready = 1;
        if (++cl->run->ready == cl->run->nclients)
            uv_stop(&cl->run->loop);
    }
}

static void send_redis(struct lg_run *r)
{
    char payload[4200], cmd[4400];
    int len = snprintf(payload, sizeof(payload), "t=%llu;", (unsigned long long)lg_now_ns());
    while (len < r->o->size)
        payload[len++] = 'x';
    payload[len] = '\0';
    len = snprintf(cmd, sizeof(cmd), "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%d\r\n%s\r\n",
                   (int)strlen(payload), payload);
    r->sent++;
    lg_raw_send(&r->clients[0].conn, cmd, (size_t)len);
}

static int fanout_redis(struct lg_opts *o)
{
    struct lg_run r;
    int i;

    if (run_init(&r, o, o->members) < 0)
        return 1;
    for (i = 0; i < r.nclients; i++) {
        struct lg_client *c = &r.clients[i];
        c->run = &r;
        c->conn.user = c;
        c->conn.index = i;
        c->conn.on_frame = redis_frame;
        if (i == 0)
            c->conn.on_open = redis_publisher_open;
        lg_conn_open(&r.loop, &c->conn, o->host, o->port, CONN_RESP,
                     i == 0 ? NULL : "SUBSCRIBE bench\r\n", NULL);
        if (i % 256 == 255)
            run_for(&r, 20);        /* do not overflow the listen backlog */
    }
    if (wait_ready(&r, r.nclients) < 0)
        return 1;
    printf("fanout_members=%d\n", o->members);
    ramp(&r, "fanout", send_redis, (uint64_t)(o->members - 1));
    return 0;
}

int lg_run_fanout(struct lg_opts *o)
{
    return o->redis ? fanout_redis(o) : fanout_chatd(o);
}

/* ---- 1:1: pairs of users in direct rooms, senders taking turns ---- */
static void send_pairs(struct lg_run *r)
{
    struct lg_client *c = &r->clients[r->rr++ % r->nclients];
    lg_send_chat(c, r->o->size);
}

int lg_run_pairs(struct lg_opts *o)
{
    struct lg_run r;
    int n = 2 * o->pairs;

    if (o->redis || run_init(&r, o, n) < 0 || lg_users_create(&r, n) < 0)
        return 1;
    for (int p = 0; p < o->pairs; p++) {
        int64_t room = lg_dm_create(&r, 2 * p, 2 * p + 1);
        if (room < 0)
            return 1;
        r.clients[2 * p].room = r.clients[2 * p + 1].room = room;
    }
    r.on_ready = all_ready;
    lg_clients_open(&r, n, 256);
    if (wait_ready(&r, n) < 0)
        return 1;
    printf("pairs=%d\n", o->pairs);
    ramp(&r, "pairs", send_pairs, 1);
    return 0;
}

/* ---- durable throughput: closed loop, each sender keeps `window` unacked ---- */
static void durable_ack(struct lg_client *c)
{
    if (c->run->rate > 0)
        lg_send_chat(c, c->run->o->size);
}

static void durable_noop(struct lg_run *r) { (void)r; }

int lg_run_durable(struct lg_opts *o)
{
    struct lg_run r;
    struct step_result s;

    if (o->redis || run_init(&r, o, o->senders) < 0 || lg_users_create(&r, o->senders) < 0)
        return 1;
    for (int i = 0; i < o->senders; i++) {
        r.clients[i].room = lg_room_create(&r, i, i, 1);
        if (r.clients[i].room < 0)
            return 1;
    }
    r.on_ready = all_ready;
    lg_clients_open(&r, o->senders, 256);
    if (wait_ready(&r, o->senders) < 0)
        return 1;
    r.on_ack = durable_ack;
    r.rate = 1;
    for (int i = 0; i < o->senders; i++)
        for (int w = 0; w < o->window; w++)
            lg_send_chat(&r.clients[i], o->size);
    run_step(&r, 0.000001, durable_noop, 0, &s);
    r.rate = 0;
    printf("durable_senders=%d\ndurable_window=%d\n", o->senders, o->window);
    printf("durable_acked_per_s=%.0f\n", s.per_s);
    hist_print(&s.ack, "durable_ack");
    printf("durable_server_cpu_s=%.2f\ndurable_loadgen_cpu_s=%.2f\n", s.cpu_server, s.cpu_self);
    if (s.cpu_db > 0)
        printf("durable_db_cpu_s=%.2f\n", s.cpu_db);
    if (s.lag_p99 >= 0)
        printf("durable_loop_lag_p99_ms=%.3f\n", s.lag_p99);
    return 0;
}

/* ---- idle connections: memory per connection and the cost of heartbeats ---- */
int lg_run_idle(struct lg_opts *o)
{
    struct lg_run r;
    struct lg_lag lag0, lag1;
    long rss0, rss1;
    double cpu0, cpu1, self0;
    int users = o->conns < 20 ? o->conns : 20;

    if (o->redis || o->server_pid <= 0 || run_init(&r, o, o->conns) < 0 ||
        lg_users_create(&r, users) < 0)
        return 1;
    rss0 = lg_proc_rss_kb(o->server_pid);
    r.on_ready = all_ready;
    lg_clients_open(&r, o->conns, 500);
    if (wait_ready(&r, o->conns) < 0)
        return 1;
    run_for(&r, 1000);          /* let the server settle its buffers */
    rss1 = lg_proc_rss_kb(o->server_pid);
    lg_lag_scrape(o, &lag0);
    cpu0 = lg_proc_cpu_s(o->server_pid);
    self0 = lg_self_cpu_s();
    run_for(&r, (uint64_t)(o->duration * 1000));
    cpu1 = lg_proc_cpu_s(o->server_pid);
    self0 = lg_self_cpu_s() - self0;
    lg_lag_scrape(o, &lag1);
    printf("idle_conns=%d\nidle_open=%d\n", o->conns, r.ready);
    printf("idle_rss_before_kb=%ld\nidle_rss_after_kb=%ld\n", rss0, rss1);
    printf("idle_rss_per_conn_bytes=%.0f\n", (double)(rss1 - rss0) * 1024.0 / o->conns);
    printf("idle_cpu_pct=%.2f\n", 100.0 * (cpu1 - cpu0) / o->duration);
    printf("idle_server_cpu_s=%.2f\nidle_loadgen_cpu_s=%.2f\n", cpu1 - cpu0, self0);
    printf("idle_loop_lag_p99_ms=%.3f\n", lg_lag_p99_ms(&lag0, &lag1));
    return 0;
}

/* ---- auth: token refreshes (RS256 signing) and WebSocket upgrades per second ----
 * Refreshes: 8 blocking threads, each on one kept-alive connection, each rotating its
 * own user's refresh token. Upgrades: 64 clients on the loop, each opening a WebSocket,
 * counting the 101, closing and opening again. */
struct refresh_job {
    struct lg_run *r; int user; uint64_t until;
    uint64_t done, failed; int last_status; uint64_t connects;
};

static void *refresh_thread(void *arg)
{
    struct refresh_job *j = arg;
    struct lg_user *u = &j->r->users[j->user];
    struct lg_http_ka k;
    char body[1024], *buf = malloc(1 << 16);

    lg_http_ka_init(&k, j->r->o->host, j->r->o->port);
    while (buf && lg_now_ns() < j->until) {
        cJSON *resp, *rt;
        snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", u->refresh);
        j->last_status = lg_http_ka(&k, "POST", "/v1/auth/refresh", NULL, body, buf, 1 << 16);
        if (j->last_status != 200) {
            j->failed++;
            break;              /* the token is spent or refused: nothing more to rotate */
        }
        resp = cJSON_Parse(buf);
        rt = cJSON_GetObjectItem(resp, "refresh_token");
        if (cJSON_IsString(rt)) {
            free(u->refresh);
            u->refresh = strdup(rt->valuestring);
            j->done++;
        }
        cJSON_Delete(resp);
    }
    j->connects = k.connects;
    lg_http_ka_close(&k);
    free(buf);
    return NULL;
}

static void upgrade_closed(struct lg_conn *c, int status);
static void upgrade_open(struct lg_conn *c, int status);

static void upgrade_start(struct lg_run *r, struct lg_client *cl)
{
    memset(&cl->conn, 0, sizeof(cl->conn));
    cl->conn.user = cl;
    cl->conn.on_open = upgrade_open;
    cl->conn.on_close = upgrade_closed;
    cl->conn.on_frame = NULL;
    r->step_sent++;
    if (lg_conn_open(&r->loop, &cl->conn, r->o->host, r->o->port, CONN_WS, "/v1/ws",
                     r->users[cl->user].token) < 0)
        r->errors++;
}

static void upgrade_open(struct lg_conn *c, int status)
{
    struct lg_client *cl = c->user;
    if (status == 0) {
        if (cl->run->measuring)
            cl->run->acked++;
        lg_conn_close(c);
    }
}

static void upgrade_closed(struct lg_conn *c, int status)
{
    struct lg_client *cl = c->user;
    struct lg_run *r = cl->run;
    (void)status;
    if (c->upgrade_status != 101)
        r->errors++;            /* refused, or closed before an answer */
    if (r->rate > 0)
        upgrade_start(r, cl);
}

static void auth_refreshes(struct lg_run *r, struct lg_opts *o, int threads)
{
    struct refresh_job jobs[16];
    pthread_t th[16];
    uint64_t total = 0, failed = 0, connects = 0, t0 = lg_now_ns();
    double cpu0 = o->server_pid ? lg_proc_cpu_s(o->server_pid) : 0, self0 = lg_self_cpu_s(), secs;
    int last = 0;

    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct refresh_job){r, i, t0 + (uint64_t)(o->duration * 1e9), 0, 0, 0, 0};
        pthread_create(&th[i], NULL, refresh_thread, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].done;
        failed += jobs[i].failed;
        connects += jobs[i].connects;
        if (jobs[i].failed)
            last = jobs[i].last_status;
    }
    secs = (lg_now_ns() - t0) / 1e9;
    printf("auth_refresh_per_s=%.0f\n", (double)total / secs);
    printf("auth_refresh_threads=%d\nauth_refresh_connects=%llu\nauth_refresh_failed=%llu\n",
           threads, (unsigned long long)connects, (unsigned long long)failed);
    if (failed)
        fprintf(stderr, "loadgen: %llu refresh threads stopped early (last status %d)\n",
                (unsigned long long)failed, last);
    if (o->server_pid)
        printf("auth_refresh_server_cpu_s=%.2f\n", lg_proc_cpu_s(o->server_pid) - cpu0);
    printf("auth_refresh_loadgen_cpu_s=%.2f\nauth_refresh_secs=%.2f\n", lg_self_cpu_s() - self0, secs);
}

static void auth_upgrades(struct lg_run *r, struct lg_opts *o, int upgraders)
{
    double cpu0 = o->server_pid ? lg_proc_cpu_s(o->server_pid) : 0, self0 = lg_self_cpu_s(), secs;
    uint64_t t0 = lg_now_ns();

    r->rate = 1;
    r->measuring = 1;
    r->acked = r->errors = r->step_sent = 0;
    for (int i = 0; i < upgraders; i++) {
        r->clients[i].run = r;
        r->clients[i].user = i % r->nusers;
        upgrade_start(r, &r->clients[i]);
    }
    run_for(r, (uint64_t)(o->duration * 1000));
    secs = (lg_now_ns() - t0) / 1e9;
    r->measuring = 0;
    printf("auth_upgrades_per_s=%.0f\n", (double)r->acked / secs);
    printf("auth_upgrade_clients=%d\nauth_upgrades_tried=%llu\nauth_upgrades_failed=%llu\n",
           upgraders, (unsigned long long)r->step_sent, (unsigned long long)r->errors);
    if (o->server_pid)
        printf("auth_upgrade_server_cpu_s=%.2f\n", lg_proc_cpu_s(o->server_pid) - cpu0);
    printf("auth_upgrade_loadgen_cpu_s=%.2f\nauth_upgrade_secs=%.2f\n", lg_self_cpu_s() - self0, secs);
    r->rate = 0;
    run_for(r, 500);            /* let the last ones close */
}

int lg_run_auth(struct lg_opts *o)
{
    enum { THREADS = 8, UPGRADERS = 64 };
    struct lg_run r;

    if (o->redis || run_init(&r, o, UPGRADERS) < 0 || lg_users_create(&r, THREADS) < 0)
        return 1;
    auth_refreshes(&r, o, THREADS);
    auth_upgrades(&r, o, UPGRADERS);
    return 0;
}
