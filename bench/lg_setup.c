/* Set-up shared by the chatd scenarios: users (registered and logged in over HTTP by
 * a few threads, since password hashing is slow on purpose), rooms, WebSocket clients,
 * and readings of the server process (/metrics, /proc). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "lg_run.h"

#define SETUP_THREADS 8
#define RESP_MAX (1 << 20)

struct setup_job { struct lg_run *r; int next; pthread_mutex_t mu; int failed; };

static int login_user(struct lg_run *r, struct lg_user *u, char *buf)
{
    char body[256];
    cJSON *j, *t, *rt, *user;
    int st;

    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"bench-password\"}", u->name);
    st = lg_http(r->o->host, r->o->port, "POST", "/v1/auth/register", NULL, body, buf, RESP_MAX);
    if (st != 201 && st != 409)
        return -EIO;
    st = lg_http(r->o->host, r->o->port, "POST", "/v1/auth/login", NULL, body, buf, RESP_MAX);
    if (st != 200)
        return -EIO;
    j = cJSON_Parse(buf);
    t = cJSON_GetObjectItem(j, "access_token");
    rt = cJSON_GetObjectItem(j, "refresh_token");
    user = cJSON_GetObjectItem(j, "user");
    if (!cJSON_IsString(t) || !cJSON_IsString(rt) || user == NULL) {
        cJSON_Delete(j);
        return -EIO;
    }
    u->token = strdup(t->valuestring);
    u->refresh = strdup(rt->valuestring);
    u->id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(user, "id"));
    cJSON_Delete(j);
    return 0;
}

static void *setup_thread(void *arg)
{
    struct setup_job *job = arg;
    char *buf = malloc(RESP_MAX);

    for (;;) {
        int i;
        pthread_mutex_lock(&job->mu);
        i = job->next++;
        pthread_mutex_unlock(&job->mu);
        if (i >= job->r->nusers || buf == NULL)
            break;
        if (login_user(job->r, &job->r->users[i], buf) < 0) {
            fprintf(stderr, "loadgen: cannot register/login %s\n", job->r->users[i].name);
            job->failed = 1;
        }
    }
    free(buf);
    return NULL;
}

int lg_users_create(struct lg_run *r, int n)
{
    pthread_t th[SETUP_THREADS];
    struct setup_job job = {r, 0, PTHREAD_MUTEX_INITIALIZER, 0};
    int i;

    r->users = calloc((size_t)n, sizeof(*r->users));
    if (r->users == NULL)
        return -ENOMEM;
    r->nusers = n;
    for (i = 0; i < n; i++)
        snprintf(r->users[i].name, sizeof(r->users[i].name), "%.20s_%d", r->o->prefix, i);
    for (i = 0; i < SETUP_THREADS; i++)
        pthread_create(&th[i], NULL, setup_thread, &job);
    for (i = 0; i < SETUP_THREADS; i++)
        pthread_join(th[i], NULL);
    return job.failed ? -EIO : 0;
}

static int64_t room_id_of(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    cJSON *room = cJSON_GetObjectItem(j, "room");
    int64_t id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(room, "id"));
    cJSON_Delete(j);
    return id > 0 ? id : -EIO;
}

int64_t lg_room_create(struct lg_run *r, int owner, int first, int count)
{
    cJSON *body = cJSON_CreateObject(), *members = cJSON_AddArrayToObject(body, "members");
    char *text, *buf = malloc(RESP_MAX);
    int64_t id = -EIO;
    int st;

    cJSON_AddStringToObject(body, "name", "bench");
    for (int i = first; i < first + count; i++)
        if (i != owner)
            cJSON_AddItemToArray(members, cJSON_CreateString(r->users[i].name));
    text = cJSON_PrintUnformatted(body);
    st = lg_http(r->o->host, r->o->port, "POST", "/v1/rooms", r->users[owner].token, text, buf, RESP_MAX);
    if (st == 201)
        id = room_id_of(buf);
    else
        fprintf(stderr, "loadgen: create room: %d %s\n", st, buf);
    free(text);
    free(buf);
    cJSON_Delete(body);
    return id;
}

int64_t lg_dm_create(struct lg_run *r, int a, int b)
{
    char body[128], buf[8192];
    int st;

    snprintf(body, sizeof(body), "{\"username\":\"%s\"}", r->users[b].name);
    st = lg_http(r->o->host, r->o->port, "POST", "/v1/dm", r->users[a].token, body, buf, sizeof(buf));
    return st == 200 || st == 201 ? room_id_of(buf) : -EIO;
}

/* ---- WebSocket clients ---- */
/* The send time a generator put at the start of a body ("t=<ns>;"). */
uint64_t lg_body_ts(const uint8_t *p, size_t n)
{
    const uint8_t *b = memmem(p, n, "\"body\":\"t=", 10), *end = p + n;
    uint64_t v = 0;

    if (b == NULL)
        return 0;
    for (b += 10; b < end && *b >= '0' && *b <= '9'; b++)
        v = v * 10 + (uint64_t)(*b - '0');
    return v;
}

int lg_send_chat(struct lg_client *c, int size)
{
    char body[4200], frame[4600];
    int len;

    len = snprintf(body, sizeof(body), "t=%llu;", (unsigned long long)lg_now_ns());
    while (len < size && len < (int)sizeof(body) - 1)
        body[len++] = 'x';
    body[len] = '\0';
    len = snprintf(frame, sizeof(frame),
                   "{\"type\":\"send\",\"room_id\":%lld,\"body\":\"%s\",\"client_msg_id\":\"c%d-%llu\"}",
                   (long long)c->room, body, c->conn.index, (unsigned long long)++c->seq);
    c->run->sent++;
    return lg_ws_send_text(&c->conn, frame, (size_t)len);
}

/* The "type" of a server frame: chatd puts it first, so look only near the start. */
static const uint8_t *frame_type(const uint8_t *p, size_t n)
{
    const uint8_t *t = memmem(p, n < 48 ? n : 48, "\"type\":\"", 8);
    return t ? t + 8 : NULL;
}

static int type_is(const uint8_t *t, const uint8_t *end, const char *word, size_t len)
{
    return t && (size_t)(end - t) > len && memcmp(t, word, len) == 0 && t[len] == '"';
}

void lg_on_chat_frame(struct lg_conn *conn, const uint8_t *p, size_t n, uint64_t now)
{
    struct lg_client *c = conn->user;
    struct lg_run *r = c->run;
    const uint8_t *t = frame_type(p, n), *end = p + n;
    uint64_t ts;

    if (type_is(t, end, "message", 7)) {
        ts = lg_body_ts(t, (size_t)(end - t));
        if (r->measuring && ts) {
            hist_add(&r->deliver, now - ts);
            r->delivered++;
        }
    } else if (type_is(t, end, "ack", 3)) {
        ts = lg_body_ts(t, (size_t)(end - t));
        if (r->measuring && ts) {
            hist_add(&r->ack, now - ts);
            r->acked++;
        }
        if (r->on_ack)
            r->on_ack(c);
    } else if (type_is(t, end, "hello", 5)) {
        if (!c->ready) {
            c->ready = 1;
            r->ready++;
            r->connecting--;
            if (r->next_to_open < r->nclients)
                lg_clients_open(r, 1, 0);
            if (r->ready == r->nclients && r->on_ready)
                r->on_ready(r);
        }
    } else if (type_is(t, end, "error", 5)) {
        r->errors++;
        if (r->errors < 5)
            fprintf(stderr, "loadgen: server error frame: %.*s\n", (int)(n < 200 ? n : 200), p);
    }
}

static void client_closed(struct lg_conn *conn, int status)
{
    struct lg_client *c = conn->user;
    (void)status;
    if (c->ready)
        c->run->ready--;
    c->ready = 0;
}

/* Opens up to n more clients (client i belongs to user i % nusers); concurrency > 0
 * also sets how many handshakes may be in flight at once. */
int lg_clients_open(struct lg_run *r, int n, int concurrency)
{
    if (concurrency > 0)
        r->open_limit = concurrency;
    while (n-- > 0 && r->next_to_open < r->nclients && r->connecting < r->open_limit) {
        struct lg_client *c = &r->clients[r->next_to_open];
        c->run = r;
        c->conn.user = c;
        c->conn.index = r->next_to_open;
        c->user = r->next_to_open % r->nusers;
        c->conn.on_frame = lg_on_chat_frame;
        c->conn.on_close = client_closed;
        r->next_to_open++;
        r->connecting++;
        if (lg_conn_open(&r->loop, &c->conn, r->o->host, r->o->port, CONN_WS, "/v1/ws",
                         r->users[c->user].token) < 0)
            return -EIO;
    }
    return 0;
}

/* ---- the server process ---- */
int lg_lag_scrape(const struct lg_opts *o, struct lg_lag *out)
{
    char *buf = malloc(RESP_MAX), *line, *save = NULL;
    int st;

    memset(out, 0, sizeof(*out));
    if (buf == NULL)
        return -ENOMEM;
    st = lg_http(o->host, o->port, "GET", "/metrics", NULL, NULL, buf, RESP_MAX);
    for (line = strtok_r(buf, "\n", &save); st == 200 && line; line = strtok_r(NULL, "\n", &save)) {
        const char *le = strstr(line, "le=\"");
        if (strncmp(line, "chatd_loop_lag_seconds_bucket", 29) != 0 || le == NULL ||
            out->n >= LG_LAG_BUCKETS)
            continue;
        out->le[out->n] = strncmp(le + 4, "+Inf", 4) == 0 ? 1e9 : atof(le + 4);
        out->cnt[out->n] = atof(strrchr(line, ' ') + 1);
        out->n++;
    }
    free(buf);
    return st == 200 ? 0 : -EIO;
}

double lg_lag_p99_ms(const struct lg_lag *a, const struct lg_lag *b)
{
    double total, want;
    int i;

    if (a->n == 0 || a->n != b->n)
        return -1;
    total = b->cnt[b->n - 1] - a->cnt[a->n - 1];
    if (total <= 0)
        return 0;
    want = total * 0.99;
    for (i = 0; i < b->n; i++)
        if (b->cnt[i] - a->cnt[i] >= want)
            return b->le[i] >= 1e9 ? -1 : b->le[i] * 1000.0;
    return -1;
}

double lg_proc_cpu_s(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');      /* the command name may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Fields 14-17 of /proc/PID/stat (utime, stime, cutime, cstime) in seconds, and its
 * parent's pid. -1 when the process is gone. */
static double stat_cpu_s(int pid, int with_children, int *ppid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    long long cut = 0, cst = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                            ppid, &ut, &st, &cut, &cst) != 5)
        return -1;
    return (double)(ut + st + (with_children ? (unsigned long long)(cut + cst) : 0)) /
           (double)sysconf(_SC_CLK_TCK);
}

/* A multi-process server (PostgreSQL: a postmaster forking a backend per connection
 * and its helpers): the first process with what it reaped of exited children, plus
 * every live child. A child that exits between two readings moves from one term to
 * the other, so the sum stays monotonic. */
double lg_tree_cpu_s(int pid)
{
    int ppid;
    double sum = stat_cpu_s(pid, 1, &ppid);
    DIR *d = opendir("/proc");
    struct dirent *e;

    if (sum < 0 || d == NULL) {
        if (d)
            closedir(d);
        return sum;
    }
    while ((e = readdir(d)) != NULL) {
        int child = atoi(e->d_name);
        double c;
        if (child <= 0 || child == pid)
            continue;
        c = stat_cpu_s(child, 0, &ppid);
        if (c >= 0 && ppid == pid)
            sum += c;
    }
    closedir(d);
    return sum;
}

long lg_proc_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

double lg_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
