/* loadgen: the chatd load generator. One scenario per run, results as name=value
 * lines on stdout (bench/run.sh turns them into docs/benchmarks.md).
 *
 *   loadgen --target chatd|redis --port P --scenario fanout --members 1000 --rates 100,1000
 *   loadgen --target chatd --port P --scenario pairs --pairs 100 --rates 1000
 *   loadgen --target chatd --port P --scenario durable --senders 50 --window 32
 *   loadgen --target chatd --port P --scenario idle --conns 19000 --server-pid PID
 *   loadgen --target chatd --port P --scenario auth
 *   (--db-pid PID: also the CPU of a database server, PID and its child processes)
 *   loadgen --self-test
 *
 * Senders are open-loop (a 1 ms timer sends what is due at the target rate), so a
 * server that falls behind shows it as latency rather than as a lower send rate. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include "lg.h"
#include "lg_run.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --target chatd|redis --port P [--host 127.0.0.1]\n"
            "  --scenario fanout|pairs|durable|idle|auth\n"
            "  [--members N] [--pairs N] [--senders N] [--window N] [--conns N]\n"
            "  [--rates R1,R2,...] [--duration S] [--size BYTES] [--server-pid PID]\n"
            "  [--max-p99-ms MS] [--prefix NAME] [--db-pid PID]\n"
            "   or: loadgen --self-test\n");
}

static int parse_rates(struct lg_opts *o, const char *s)
{
    char *copy = strdup(s), *tok, *save = NULL;
    o->nrates = 0;
    for (tok = strtok_r(copy, ",", &save); tok && o->nrates < LG_MAX_RATES;
         tok = strtok_r(NULL, ",", &save))
        o->rates[o->nrates++] = atof(tok);
    free(copy);
    return o->nrates > 0 ? 0 : -EINVAL;
}

static int parse_args(struct lg_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"target", 1, 0, 't'}, {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'},
        {"scenario", 1, 0, 's'}, {"members", 1, 0, 'm'}, {"pairs", 1, 0, 'P'},
        {"senders", 1, 0, 'S'}, {"window", 1, 0, 'w'}, {"conns", 1, 0, 'c'},
        {"rates", 1, 0, 'r'}, {"duration", 1, 0, 'd'}, {"size", 1, 0, 'z'},
        {"server-pid", 1, 0, 'x'}, {"max-p99-ms", 1, 0, 'l'}, {"prefix", 1, 0, 'u'},
        {"db-pid", 1, 0, 'D'}, {0, 0, 0, 0},
    };
    int ch;

    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    snprintf(o->prefix, sizeof(o->prefix), "b%ld", (long)getpid());
    o->members = 1000; o->pairs = 100; o->senders = 20; o->window = 32; o->conns = 1000;
    o->duration = 5; o->size = 100; o->max_p99_ms = 50;
    o->rates[0] = 100; o->nrates = 1;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 't': o->redis = strcmp(optarg, "redis") == 0; break;
        case 'h': snprintf(o->host, sizeof(o->host), "%s", optarg); break;
        case 'p': o->port = atoi(optarg); break;
        case 's': snprintf(o->scenario, sizeof(o->scenario), "%s", optarg); break;
        case 'm': o->members = atoi(optarg); break;
        case 'P': o->pairs = atoi(optarg); break;
        case 'S': o->senders = atoi(optarg); break;
        case 'w': o->window = atoi(optarg); break;
        case 'c': o->conns = atoi(optarg); break;
        case 'r': if (parse_rates(o, optarg) < 0) return -EINVAL; break;
        case 'd': o->duration = atof(optarg); break;
        case 'z': o->size = atoi(optarg); break;
        case 'x': o->server_pid = atoi(optarg); break;
        case 'l': o->max_p99_ms = atof(optarg); break;
        case 'u': snprintf(o->prefix, sizeof(o->prefix), "%s", optarg); break;
        case 'D': o->db_pid = atoi(optarg); break;
        default: return -EINVAL;
        }
    }
    if (o->port <= 0 || o->scenario[0] == '\0' || o->size < 24 || o->size > 4000)
        return -EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    struct rlimit rl;

    memset(&o, 0, sizeof(o));
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return lg_self_test();
    if (parse_args(&o, argc, argv) < 0) {
        usage();
        return 2;
    }
    /* Many sockets: take the whole hard limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(o.scenario, "fanout") == 0)
        return lg_run_fanout(&o);
    if (strcmp(o.scenario, "pairs") == 0)
        return lg_run_pairs(&o);
    if (strcmp(o.scenario, "durable") == 0)
        return lg_run_durable(&o);
    if (strcmp(o.scenario, "idle") == 0)
        return lg_run_idle(&o);
    if (strcmp(o.scenario, "auth") == 0)
        return lg_run_auth(&o);
    usage();
    return 2;
}
