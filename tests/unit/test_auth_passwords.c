/* Password hashing, name rules, login throttling and refresh token shapes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

TEST(auth_password_format_and_verify)
{
    char h1[AUTH_PWHASH_MAX], h2[AUTH_PWHASH_MAX];
    const char *pw = "correct horse battery staple";

    ASSERT_EQ(auth_password_hash(pw, strlen(pw), AUTH_SCRYPT_LN, h1, sizeof h1), 0);
    ASSERT_EQ(auth_password_hash(pw, strlen(pw), AUTH_SCRYPT_LN, h2, sizeof h2), 0);
    ASSERT(strncmp(h1, "$scrypt$ln=14,r=8,p=1$", 22) == 0);
    ASSERT(strcmp(h1, h2) != 0);                     /* a fresh salt each time */
    ASSERT(strstr(h1, pw) == NULL);
    ASSERT_EQ(auth_password_verify(pw, strlen(pw), h1), 1);
    ASSERT_EQ(auth_password_verify(pw, strlen(pw), h2), 1);
    ASSERT_EQ(auth_password_verify("correct horse battery stapl", 27, h1), 0);
    ASSERT_EQ(auth_password_verify("", 0, h1), 0);
}

/* RFC 7914 section 12: scrypt("password", "NaCl", N=1024, r=8, p=16); scrypt's output
 * for 32 bytes is the first 32 of the 64-byte vector. */
TEST(auth_password_rfc7914_vector)
{
    static const char want_hex[] =
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162";
    char enc[AUTH_PWHASH_MAX], hex[65];
    uint8_t dk[64];
    const char *last;
    long n;

    ASSERT_EQ(auth_password_hash_with("password", 8, (const uint8_t *)"NaCl", 4, 10, 8, 16,
                                      enc, sizeof enc), 0);
    ASSERT(strncmp(enc, "$scrypt$ln=10,r=8,p=16$TmFDbA$", 30) == 0);
    last = strrchr(enc, '$');
    n = base64url_decode(last + 1, strlen(last + 1), dk, sizeof dk);
    ASSERT_EQ(n, 32);
    hex_encode(dk, 32, hex);
    ASSERT_STR_EQ(hex, want_hex);
    ASSERT_EQ(auth_password_verify("password", 8, enc), 1);
}

TEST(auth_password_rejects_bad_hashes)
{
    static const char *const bad[] = {
        "", "$scrypt$", "$bcrypt$ln=14,r=8,p=1$AAAA$AAAA", "plain text",
        "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$8Y1v1e0uB3m8i0P9z3Qm2O6aF8bG3XnLq3bF1gQ2a5c",
        "$scrypt$ln=14,r=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$8Y1v1e0uB3m8i0P9z3Qm2O6aF8bG3XnLq3bF1gQ2a5c",
        "$scrypt$ln=14,r=8,p=99$c2FsdHNhbHRzYWx0c2FsdA$8Y1v1e0uB3m8i0P9z3Qm2O6aF8bG3XnLq3bF1gQ2a5c",
        "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$short",
        "$scrypt$ln=14,r=8,p=1$$8Y1v1e0uB3m8i0P9z3Qm2O6aF8bG3XnLq3bF1gQ2a5c",
        "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA",
        "$scrypt$ln=14,r=8,p=1$c2Fs*HNh$8Y1v1e0uB3m8i0P9z3Qm2O6aF8bG3XnLq3bF1gQ2a5c",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = auth_password_verify("password", 8, bad[i]);
        if (rc != -EINVAL)
            test_fail(__FILE__, __LINE__, "hash %zu: %d", i, rc);
    }
    ASSERT_EQ(auth_password_verify("password", 8, NULL), -EINVAL);
    /* a cost outside the bounds is refused when hashing too */
    char out[AUTH_PWHASH_MAX];
    ASSERT_EQ(auth_password_hash_with("pw", 2, (const uint8_t *)"s", 1, 25, 8, 1, out,
                                      sizeof out), -EINVAL);
    ASSERT_EQ(auth_password_hash_with("pw", 2, (const uint8_t *)"s", 1, 10, 8, 1, out, 20),
              -ENOBUFS);
}

TEST(auth_password_rehash_when_parameters_change)
{
    char h[AUTH_PWHASH_MAX];
    ASSERT_EQ(auth_password_hash("password", 8, AUTH_SCRYPT_LN, h, sizeof h), 0);
    ASSERT_EQ(auth_password_needs_rehash(h, AUTH_SCRYPT_LN), 0);
    ASSERT_EQ(auth_password_needs_rehash(h, 12), 1);           /* password_cost changed */
    ASSERT_EQ(auth_password_hash_with("password", 8, (const uint8_t *)"salt", 4, 10, 8, 1, h,
                                      sizeof h), 0);
    ASSERT_EQ(auth_password_needs_rehash(h, AUTH_SCRYPT_LN), 1);
    ASSERT_EQ(auth_password_needs_rehash(h, 10), 0);
    ASSERT_EQ(auth_password_verify("password", 8, h), 1);      /* old hashes still verify */
    ASSERT_EQ(auth_password_needs_rehash("garbage", AUTH_SCRYPT_LN), 1);
}

TEST(auth_username_rules)
{
    char out[AUTH_USERNAME_MAX + 1];
    const char *why;

    ASSERT_EQ(auth_username_normalize("Alice", out, &why), 0);
    ASSERT_STR_EQ(out, "alice");
    ASSERT_EQ(auth_username_normalize("bob_1.x-Y", out, &why), 0);
    ASSERT_STR_EQ(out, "bob_1.x-y");
    ASSERT_EQ(auth_username_normalize("abc", out, &why), 0);
    ASSERT_EQ(auth_username_normalize("abcdefghijabcdefghijabcdefghij12", out, &why), 0);
    ASSERT_EQ(auth_username_normalize("abcdefghijabcdefghijabcdefghij123", out, &why), -EINVAL);
    ASSERT(why != NULL);
    ASSERT_EQ(auth_username_normalize("ab", out, &why), -EINVAL);
    ASSERT_EQ(auth_username_normalize("", out, &why), -EINVAL);
    ASSERT_EQ(auth_username_normalize("a b", out, &why), -EINVAL);
    ASSERT_EQ(auth_username_normalize("al/ce", out, &why), -EINVAL);
    ASSERT_EQ(auth_username_normalize("j\xc3\xb6rg", out, &why), -EINVAL);
    ASSERT_EQ(auth_username_normalize("al'ce", out, &why), -EINVAL);
}

TEST(auth_password_rules)
{
    char big[1026];
    const char *why;

    memset(big, 'x', sizeof big);
    ASSERT_EQ(auth_password_check("1234567", 7, &why), -EINVAL);
    ASSERT(why != NULL);
    ASSERT_EQ(auth_password_check("12345678", 8, &why), 0);
    ASSERT_EQ(auth_password_check(big, 1024, &why), 0);
    ASSERT_EQ(auth_password_check(big, 1025, &why), -EINVAL);
    ASSERT_EQ(auth_password_check("1234\0" "5678", 9, &why), -EINVAL);
}

TEST(auth_throttle_backoff)
{
    struct auth_throttle *t;
    uint64_t now = 1000000;

    ASSERT_EQ(auth_throttle_new(&t, 16, 3), 0);
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now), 0);
    auth_throttle_fail(t, "u:bob", now);
    auth_throttle_fail(t, "u:bob", now + 10);
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now + 20), 0);
    auth_throttle_fail(t, "u:bob", now + 20);            /* third in a minute: locked */
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now + 20), 30000);
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now + 30019), 1);
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now + 30020), 0);
    ASSERT_EQ(auth_throttle_check(t, "u:eve", now + 20), 0);   /* per key */
    now += 30020;
    for (int i = 0; i < 3; i++)
        auth_throttle_fail(t, "u:bob", now);
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now), 60000);   /* doubled */
    auth_throttle_forget(t, "u:bob");
    ASSERT_EQ(auth_throttle_check(t, "u:bob", now), 0);
    ASSERT_EQ(auth_throttle_size(t), 0);
    /* failures spread over more than a minute never lock */
    for (int i = 0; i < 10; i++)
        auth_throttle_fail(t, "i:10.0.0.1", now + (uint64_t)i * 31000);
    ASSERT_EQ(auth_throttle_check(t, "i:10.0.0.1", now + 310000), 0);
    auth_throttle_free(t);
}

/* Each lockout doubles the one before, from 30 s up to an hour, and stays there. */
TEST(auth_throttle_lockout_caps_at_an_hour)
{
    struct auth_throttle *t;
    uint64_t now = 100000;
    static const int64_t want[] = { 30000, 60000, 120000, 240000, 480000, 960000,
                                    1920000, 3600000, 3600000, 3600000 };

    ASSERT_EQ(auth_throttle_new(&t, 16, 1), 0);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        auth_throttle_fail(t, "bob", now);
        ASSERT_EQ(auth_throttle_check(t, "bob", now), want[i]);
        now += (uint64_t)want[i];             /* the next failure when this lock ends */
    }
    /* an hour and a bit without a failure: back to 30 s */
    auth_throttle_fail(t, "bob", now + 3600001);
    ASSERT_EQ(auth_throttle_check(t, "bob", now + 3600001), 30000);
    auth_throttle_free(t);
}

TEST(auth_throttle_is_bounded)
{
    struct auth_throttle *t;
    char key[32];

    ASSERT_EQ(auth_throttle_new(&t, 4, 1), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "i:10.0.0.%d", i);
        auth_throttle_fail(t, key, 5000);
        ASSERT(auth_throttle_size(t) <= 4);
    }
    ASSERT_EQ(auth_throttle_check(t, "i:10.0.0.99", 5000), 30000);
    ASSERT_EQ(auth_throttle_check(t, "i:10.0.0.96", 5000), 30000);
    ASSERT_EQ(auth_throttle_check(t, "i:10.0.0.95", 5000), 0);  /* forgotten: oldest */
    auth_throttle_free(t);
}

/* One try through the throttle: admitted (0) or the wait, settled as login.c does. */
static int64_t try_login(struct login_throttle *lt, const char *name, const char *ip,
                         uint64_t now, int ok)
{
    int64_t wait = login_throttle_admit(lt, name, ip, now);
    if (wait > 0)
        return wait;
    if (ok)
        login_throttle_succeeded(lt, name, ip, now);
    else
        login_throttle_failed(lt, name, ip, now);
    login_throttle_settle(lt, name, ip);
    return 0;
}

/* Failures of one username from addresses A, B, C lock A, B and C out, not D. */
TEST(auth_login_throttle_per_address)
{
    struct login_throttle lt;
    uint64_t now = 1000000;

    ASSERT_EQ(login_throttle_init(&lt, 64, 3), 0);
    const char *guessers[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(try_login(&lt, "bob", guessers[i], now, 0), 0);
    /* the username is locked now: every guesser waits the username's lockout */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(login_throttle_admit(&lt, "bob", guessers[i], now + 5), 29995);
    /* an address that never failed for bob gets its try, one at a time */
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.0.0.4", now + 5), 0);
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.0.0.4", now + 5), 29995);
    /* the right password: D is let in, bob stays locked for the others */
    login_throttle_succeeded(&lt, "bob", "10.0.0.4", now + 6);
    login_throttle_settle(&lt, "bob", "10.0.0.4");
    ASSERT(login_throttle_admit(&lt, "bob", "10.0.0.1", now + 7) > 0);
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.0.0.4", now + 7), 0);
    /* a wrong password from D counts: D waits from now on, and bob's lockout doubles */
    login_throttle_failed(&lt, "bob", "10.0.0.4", now + 8);
    login_throttle_settle(&lt, "bob", "10.0.0.4");
    ASSERT(login_throttle_admit(&lt, "bob", "10.0.0.4", now + 9) > 0);
    ASSERT_EQ(try_login(&lt, "alice", "10.0.0.1", now + 9, 1), 0);   /* per user */
    ASSERT_EQ(try_login(&lt, "bob", "10.0.0.5", now + 9, 0), 0);
    ASSERT_EQ(try_login(&lt, "bob", "10.0.0.6", now + 10, 0), 0);   /* 3rd in the window */
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.0.0.1", now + 10), 60000);
    /* past the lockout every address may try again */
    ASSERT_EQ(try_login(&lt, "bob", "10.0.0.1", now + 60010, 1), 0);
    login_throttle_destroy(&lt);
}

/* Tries in flight count against every limit before their outcome is known. */
TEST(auth_login_throttle_in_flight)
{
    struct login_throttle lt;
    uint64_t now = 2000000;

    ASSERT_EQ(login_throttle_init(&lt, 64, 3), 0);
    /* one address, side by side: three tries start, the fourth waits a second */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.1", now), 0);
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.1", now), LOGIN_THROTTLE_BUSY_MS);
    ASSERT_EQ(login_throttle_admit(&lt, "carol", "10.1.0.1", now), LOGIN_THROTTLE_BUSY_MS);
    ASSERT_EQ(login_throttle_admit(&lt, NULL, "10.1.0.1", now), LOGIN_THROTTLE_BUSY_MS);
    /* bob's three in flight fill his limit: a new address gets one try at a time */
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.2", now), 0);
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.2", now), LOGIN_THROTTLE_BUSY_MS);
    /* they fail: all four counted, bob and 10.1.0.1 are locked */
    for (int i = 0; i < 3; i++) {
        login_throttle_failed(&lt, "bob", "10.1.0.1", now + 1);
        login_throttle_settle(&lt, "bob", "10.1.0.1");
    }
    login_throttle_failed(&lt, "bob", "10.1.0.2", now + 1);
    login_throttle_settle(&lt, "bob", "10.1.0.2");
    ASSERT_EQ(login_throttle_admit(&lt, NULL, "10.1.0.1", now + 1), 30000);
    ASSERT(login_throttle_admit(&lt, "bob", "10.1.0.2", now + 1) > 0);
    /* a try that came to nothing (settled without an outcome) gives its place back */
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.3", now + 2), 0);
    login_throttle_settle(&lt, "bob", "10.1.0.3");
    ASSERT_EQ(login_throttle_admit(&lt, "bob", "10.1.0.3", now + 2), 0);
    login_throttle_settle(&lt, "bob", "10.1.0.3");
    /* and leaves nothing behind in the tables */
    ASSERT_EQ(auth_throttle_size(lt.by_pair), 2);
    ASSERT_EQ(auth_throttle_size(lt.by_addr), 2);
    login_throttle_destroy(&lt);
}

/* An address that fails for many usernames is locked out for all of them. */
TEST(auth_login_throttle_address_and_pair)
{
    struct login_throttle lt;
    uint64_t now = 5000000;
    char name[16];

    ASSERT_EQ(login_throttle_init(&lt, 64, 3), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "user%d", i);
        ASSERT_EQ(try_login(&lt, name, "192.0.2.9", now, 0), 0);
    }
    ASSERT_EQ(login_throttle_admit(&lt, "carol", "192.0.2.9", now), 30000);
    ASSERT_EQ(login_throttle_admit(&lt, NULL, "192.0.2.9", now), 30000);
    ASSERT_EQ(try_login(&lt, "carol", "192.0.2.10", now, 1), 0);
    /* a success from one address while the username is locked ends no lockout */
    for (int i = 0; i < 3; i++)
        login_throttle_failed(&lt, "dave", i < 2 ? "192.0.2.11" : "192.0.2.12", now);
    ASSERT_EQ(try_login(&lt, "dave", "192.0.2.13", now, 1), 0);
    ASSERT(login_throttle_admit(&lt, "dave", "192.0.2.11", now) > 0);
    /* a success while the username is not locked forgets its count ... */
    login_throttle_failed(&lt, "erin", "192.0.2.20", now);
    login_throttle_failed(&lt, "erin", "192.0.2.20", now);
    ASSERT_EQ(try_login(&lt, "erin", "192.0.2.22", now, 1), 0);
    login_throttle_failed(&lt, "erin", "192.0.2.21", now);
    ASSERT_EQ(login_throttle_admit(&lt, "erin", "192.0.2.21", now), 0);
    login_throttle_settle(&lt, "erin", "192.0.2.21");
    /* ... but not the pairs of the other addresses, which lock by themselves */
    login_throttle_failed(&lt, "erin", "192.0.2.20", now);
    ASSERT_EQ(login_throttle_admit(&lt, "erin", "192.0.2.20", now), 30000);
    ASSERT_EQ(login_throttle_admit(&lt, "erin", "192.0.2.21", now), 0);
    login_throttle_settle(&lt, "erin", "192.0.2.21");
    /* a long IPv6 address and a long name keep their pairs apart; an IPv6 address
     * counts by its /64, whatever its spelling */
    const char *v6a = "2001:0db8:0000:0000:0000:ff00:0042:8329";
    const char *v6b = "2001:0db8:0000:0001:0000:ff00:0042:8329";
    const char *v6a_too = "2001:db8::ffff:ffff:ffff:ffff";
    const char *longname = "abcdefghijklmnopqrstuvwxyz012345";
    for (int i = 0; i < 3; i++)
        login_throttle_failed(&lt, longname, v6a, now);
    ASSERT(login_throttle_admit(&lt, longname, v6a, now) > 0);
    ASSERT(login_throttle_admit(&lt, longname, v6a_too, now) > 0);
    ASSERT_EQ(login_throttle_admit(&lt, longname, v6b, now), 0);
    login_throttle_settle(&lt, longname, v6b);
    login_throttle_destroy(&lt);
}

/* An IPv6 /64 is one address to the throttle, an IPv4-mapped address its IPv4 one. */
TEST(auth_login_throttle_ipv6_prefix)
{
    struct login_throttle lt;
    uint64_t now = 9000000;

    ASSERT_EQ(login_throttle_init(&lt, 64, 3), 0);
    login_throttle_failed(&lt, NULL, "2001:db8:5:6::1", now);
    login_throttle_failed(&lt, NULL, "2001:db8:5:6:a:b:c:d", now);
    login_throttle_failed(&lt, NULL, "2001:0db8:0005:0006::ffff", now);
    ASSERT_EQ(login_throttle_admit(&lt, NULL, "2001:db8:5:6::42", now), 30000);
    ASSERT_EQ(try_login(&lt, NULL, "2001:db8:5:7::1", now, 0), 0);
    login_throttle_failed(&lt, NULL, "192.0.2.50", now);
    login_throttle_failed(&lt, NULL, "::ffff:192.0.2.50", now);
    login_throttle_failed(&lt, NULL, "192.0.2.50", now);
    ASSERT_EQ(login_throttle_admit(&lt, NULL, "::ffff:192.0.2.50", now), 30000);
    ASSERT_EQ(try_login(&lt, NULL, "192.0.2.51", now, 0), 0);
    ASSERT_EQ(try_login(&lt, NULL, "test", now, 0), 0);            /* not an address */
    login_throttle_destroy(&lt);
}

TEST(auth_refresh_token_shape)
{
    char tok[AUTH_REFRESH_CHARS + 1], tok2[AUTH_REFRESH_CHARS + 1];
    uint8_t h[32], h2[32];

    ASSERT_EQ(auth_refresh_new(tok, h), 0);
    ASSERT_EQ(strlen(tok), 43);
    ASSERT_EQ(auth_refresh_hash(tok, h2), 0);
    ASSERT(memcmp(h, h2, 32) == 0);
    ASSERT_EQ(auth_refresh_new(tok2, h2), 0);
    ASSERT(strcmp(tok, tok2) != 0);
    ASSERT_EQ(auth_refresh_hash("short", h2), -EINVAL);
    tok[5] = '+';
    ASSERT_EQ(auth_refresh_hash(tok, h2), -EINVAL);
}
