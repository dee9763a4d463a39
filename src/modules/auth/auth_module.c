/* auth_module.c: the auth module's descriptor and lifecycle. init migrates the
 * tables, loads (or on first start creates) the signing key (key_source.c), and
 * learns the highest user id; start adds the routes, hands the public key and the
 * users bound to the gateway and answers users.lookup; drain waits for every request
 * in flight. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/bus.h"
#include "chatd/config.h"
#include "chatd/log.h"
#include "chatd/metrics.h"
#include "chatd/module.h"
#include "chatd/util.h"
#include "auth_internal.h"

#define GC_FIRST_MS 60000u
#define GC_EVERY_MS 3600000u

static void register_metrics(struct auth *a)
{
    static const double hash_bounds[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };
    struct metrics *m = a->app->metrics;

    a->m.logins_ok = metrics_counter(m, "chatd_logins_total", "result=\"ok\"",
                                     "Login attempts by result");
    a->m.logins_bad = metrics_counter(m, "chatd_logins_total", "result=\"bad_credentials\"",
                                      "Login attempts by result");
    a->m.logins_throttled = metrics_counter(m, "chatd_logins_total", "result=\"throttled\"",
                                            "Login attempts by result");
    a->m.tokens_issued = metrics_counter(m, "chatd_tokens_issued_total", NULL,
                                         "Access tokens issued (logins and refreshes)");
    a->m.registrations = metrics_counter(m, "chatd_registrations_total", NULL,
                                         "Users registered through the API");
    a->m.refresh_ok = metrics_counter(m, "chatd_token_refreshes_total", "result=\"ok\"",
                                      "Refresh token uses by result");
    a->m.refresh_invalid = metrics_counter(m, "chatd_token_refreshes_total",
                                           "result=\"invalid\"", "Refresh token uses by result");
    a->m.refresh_reused = metrics_counter(m, "chatd_token_refreshes_total", "result=\"reused\"",
                                          "Refresh token uses by result");
    a->m.hash_seconds = metrics_histogram(m, "chatd_password_hash_seconds", NULL,
                                          "Time of one scrypt password hash", hash_bounds,
                                          (int)(sizeof hash_bounds / sizeof hash_bounds[0]));
}

static int make_dummy_hash(struct auth *a)
{
    uint8_t pw[16];
    int rc = random_bytes(pw, sizeof pw);
    if (rc < 0)
        return rc;
    return auth_password_hash((const char *)pw, sizeof pw,
                              auth_settings(a->app->cfg)->password_cost, a->dummy_hash,
                              sizeof a->dummy_hash);
}

static void auth_destroy(void *state);

static int auth_init(struct chatd *app, void **state)
{
    const struct chatd_config *cfg = app->cfg;
    struct auth *a = calloc(1, sizeof *a);
    int rc, per_min = auth_settings(cfg)->registrations_per_min;

    *state = NULL;
    if (!a)
        return -ENOMEM;
    a->app = app;
    a->hash_parallel = auth_hash_parallelism();
    a->early_sign = uv_available_parallelism() > 1;
    if ((rc = auth_store_open(&a->store, app->db)) < 0 || (rc = auth_signing_key_load(a)) < 0)
        goto fail;
    rc = -ENOMEM;
    if (!(a->jwks = auth_jwks_json(&a->key)))
        goto fail;
    a->jwks_len = strlen(a->jwks);
    if ((rc = make_dummy_hash(a)) < 0 || (rc = auth_load_max_user_id(a)) < 0 ||
        (rc = login_throttle_init(&a->throttle, AUTH_THROTTLE_ENTRIES,
                                  auth_settings(cfg)->login_failures_per_min)) < 0)
        goto fail;
    if (per_min > 0 && (rc = ratelimit_new(&a->reg_limit, AUTH_REG_LIMIT_ENTRIES,
                                           per_min / 60.0, per_min)) < 0)
        goto fail;
    if (!(a->gc_timer = malloc(sizeof *a->gc_timer)) ||
        (rc = uv_timer_init(app->loop, a->gc_timer)) < 0) {
        free(a->gc_timer);
        a->gc_timer = NULL;
        rc = rc < 0 ? rc : -ENOMEM;
        goto fail;
    }
    a->gc_timer->data = a;
    register_metrics(a);
    LOG_INFO(app, AUTH_MOD, "ready users=%lld registration=%s hash_threads=%d",
             (long long)a->max_user_id,
             auth_settings(cfg)->registration_open ? "open" : "closed", a->hash_parallel);
    *state = a;
    return 0;
fail:
    auth_destroy(a);
    return rc;
}

/* --- expired refresh tokens ------------------------------------------------------- */

/* An op without a request: its trip through the writer is the requests' (ops.c), so a
 * deletion that ends after the bus closed is freed as theirs are. */
static int gc_apply(struct auth_op *op, struct db_conn *conn)
{
    return auth_store_gc(&op->a->store, conn, now_ms());
}

static void gc_finished(struct auth_op *op)
{
    if (op->status < 0)
        LOG_WARN(op->a->app, AUTH_MOD, "deleting expired refresh tokens failed err=%d",
                 op->status);
    auth_op_done(op);
}

static void gc_free(struct auth_op *op)
{
    free(op);
}

static void gc_tick(uv_timer_t *t)
{
    struct auth *a = t->data;
    struct auth_op *op;

    if (a->draining || !(op = calloc(1, sizeof *op)))
        return;
    auth_op_init(op, a, NULL, gc_free);
    if (auth_op_write(op, gc_apply, gc_finished) < 0)
        auth_op_done(op);
}

/* --- lifecycle --------------------------------------------------------------------- */

static int auth_start(void *state)
{
    struct auth *a = state;
    int rc;

    if ((rc = auth_routes_start(a)) < 0 || (rc = auth_users_start(a)) < 0)
        return rc;
    uv_timer_start(a->gc_timer, gc_tick, GC_FIRST_MS, GC_EVERY_MS);
    uv_unref((uv_handle_t *)a->gc_timer);
    return 0;
}

static void auth_drain(void *state, void (*done)(void *))
{
    struct auth *a = state;

    a->draining = 1;
    uv_timer_stop(a->gc_timer);
    if (a->inflight == 0) {
        done(state);
        return;
    }
    a->drain_done = done;
}

static void close_timer(uv_handle_t *h)
{
    free(h);
}

static void auth_destroy(void *state)
{
    struct auth *a = state;

    if (!a)
        return;
    if (a->gc_timer)
        uv_close((uv_handle_t *)a->gc_timer, close_timer);
    login_throttle_destroy(&a->throttle);
    if (a->reg_limit)
        ratelimit_free(a->reg_limit);
    free(a->jwks);
    auth_key_free(&a->key);
    auth_store_free(&a->store);
    free(a);
}

static const char *const auth_kept_keys[] = { AUTH_KEY_KEPT_NAME, NULL };

const struct chatd_module auth_module = {
    .settings = &auth_settings_table,
    .name = "auth", .commands = auth_commands, .init = auth_init, .start = auth_start,
    .drain = auth_drain, .destroy = auth_destroy,
    .kept_keys = auth_kept_keys, .migrate = auth_migrate,
};
