/* login_throttle.c: which login may be tried now, from the failures counted per
 * address, per username and per (username, address) in three throttle tables.
 *
 * Why three: counting per username alone lets anyone lock a user out by guessing its
 * password from anywhere; counting per address alone lets many addresses guess without
 * bound. So a username's lockout holds for the addresses that failed for it, and an
 * address that never did gets one try while the username is locked: a wrong password
 * marks it (it waits from then on, for as long as the username stays locked) and counts
 * towards the username, whose lockouts keep doubling up to an hour. Guessing from N
 * addresses thus earns at most N guesses per lockout of the username. A try counts from
 * the moment it is admitted (as in flight, until its outcome is known), so requests
 * sent side by side cannot all slip in before the first failure is counted. Loop
 * thread only. */
#include <errno.h>
#include <stdio.h>

#include "chatd/client_addr.h"
#include "auth_internal.h"

#define PAIR_KEY_MAX 96
_Static_assert(PAIR_KEY_MAX >= AUTH_USERNAME_MAX + 1 + CLIENT_ADDR_KEY_MAX, "a pair fits");

int login_throttle_init(struct login_throttle *lt, size_t capacity, int limit)
{
    int rc;
    lt->by_user = lt->by_addr = lt->by_pair = NULL;
    if ((rc = auth_throttle_new(&lt->by_user, capacity, limit)) < 0 ||
        (rc = auth_throttle_new(&lt->by_addr, capacity, limit)) < 0 ||
        (rc = auth_throttle_new(&lt->by_pair, capacity, limit)) < 0) {
        login_throttle_destroy(lt);
        return rc;
    }
    return 0;
}

void login_throttle_destroy(struct login_throttle *lt)
{
    auth_throttle_free(lt->by_user);
    auth_throttle_free(lt->by_addr);
    auth_throttle_free(lt->by_pair);
    lt->by_user = lt->by_addr = lt->by_pair = NULL;
}

/* A newline is in neither a username nor an address: the pair's key is unambiguous. */
static const char *pair_key(char *buf, const char *name, const char *addr)
{
    snprintf(buf, PAIR_KEY_MAX, "%s\n%s", name, addr);
    return buf;
}

static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The wait of one table: its lockout, or a second while the tries in flight fill its
 * limit (they are failures, for all we know yet). */
static int64_t table_wait(struct auth_throttle *t, const char *key, uint64_t now_ms)
{
    int64_t wait = auth_throttle_check(t, key, now_ms);
    if (wait == 0 && !auth_throttle_room(t, key, now_ms))
        wait = LOGIN_THROTTLE_BUSY_MS;
    return wait;
}

int64_t login_throttle_admit(struct login_throttle *lt, const char *name, const char *ip,
                             uint64_t now_ms)
{
    char pk[PAIR_KEY_MAX], addr[CLIENT_ADDR_KEY_MAX];
    int64_t wait = table_wait(lt->by_addr, client_addr_key(ip, addr), now_ms), user_wait = 0;

    if (name) {
        pair_key(pk, name, addr);
        wait = max_i64(wait, table_wait(lt->by_pair, pk, now_ms));
        user_wait = table_wait(lt->by_user, name, now_ms);
    }
    if (wait > 0)
        return wait;
    /* A username that is locked (or whose tries in flight fill its limit) admits an
     * address that never failed for it, one try at a time: requests sent side by side
     * from there get one try between them. */
    if (user_wait > 0 &&
        (auth_throttle_seen(lt->by_pair, pk, now_ms) || auth_throttle_pending(lt->by_pair, pk)))
        return user_wait;
    auth_throttle_begin(lt->by_addr, addr);
    if (name) {
        auth_throttle_begin(lt->by_pair, pk);
        auth_throttle_begin(lt->by_user, name);
    }
    return 0;
}

void login_throttle_failed(struct login_throttle *lt, const char *name, const char *ip,
                           uint64_t now_ms)
{
    char pk[PAIR_KEY_MAX], addr[CLIENT_ADDR_KEY_MAX];
    auth_throttle_fail(lt->by_addr, client_addr_key(ip, addr), now_ms);
    if (!name)
        return;
    auth_throttle_fail(lt->by_user, name, now_ms);
    auth_throttle_fail(lt->by_pair, pair_key(pk, name, addr), now_ms);
}

void login_throttle_succeeded(struct login_throttle *lt, const char *name, const char *ip,
                              uint64_t now_ms)
{
    char pk[PAIR_KEY_MAX], addr[CLIENT_ADDR_KEY_MAX];
    auth_throttle_forget(lt->by_pair, pair_key(pk, name, client_addr_key(ip, addr)));
    if (auth_throttle_check(lt->by_user, name, now_ms) == 0)
        auth_throttle_forget(lt->by_user, name);
}

void login_throttle_settle(struct login_throttle *lt, const char *name, const char *ip)
{
    char pk[PAIR_KEY_MAX], addr[CLIENT_ADDR_KEY_MAX];
    auth_throttle_end(lt->by_addr, client_addr_key(ip, addr));
    if (!name)
        return;
    auth_throttle_end(lt->by_pair, pair_key(pk, name, addr));
    auth_throttle_end(lt->by_user, name);
}
