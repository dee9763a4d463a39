/* Tests for client_addr.c: the key every per-address limit counts a client by. */
#include <stdio.h>
#include <string.h>
#include "chatd/client_addr.h"
#include "test.h"

TEST(client_addr_key_table)
{
    static const struct { const char *ip, *key; } cases[] = {
        { "192.0.2.1", "192.0.2.1" },
        { "255.255.255.255", "255.255.255.255" },
        /* one /64 whatever the spelling: compressed, full, upper case */
        { "2001:db8:aa:1::1", "2001:db8:aa:1::/64" },
        { "2001:0db8:00aa:0001:0000:0000:0000:0001", "2001:db8:aa:1::/64" },
        { "2001:DB8:AA:1:FFFF:FFFF:FFFF:FFFF", "2001:db8:aa:1::/64" },
        { "2001:db8:aa:1:8000::", "2001:db8:aa:1::/64" },
        { "2001:db8:aa:2::1", "2001:db8:aa:2::/64" },
        { "2001:db8::1:0:0:1", "2001:db8::/64" },
        { "::1", "::/64" },
        /* IPv4-mapped: the IPv4 address, in either spelling */
        { "::ffff:1.2.3.4", "1.2.3.4" },
        { "::FFFF:0102:0304", "1.2.3.4" },
        { "0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4" },
        /* not an address: itself */
        { "test", "test" },
        { "", "" },
        { "1.2.3", "1.2.3" },
        { "01.2.3.4", "01.2.3.4" },
        { "2001:db8::1::2", "2001:db8::1::2" },
        { "fe80::1%eth0", "fe80::1%eth0" },
        { "2001:db8::1/64", "2001:db8::1/64" },
    };
    char key[CLIENT_ADDR_KEY_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = client_addr_key(cases[i].ip, key);
        ASSERT(got == key);
        if (strcmp(got, cases[i].key) != 0)
            printf("  %s -> %s, expected %s\n", cases[i].ip, got, cases[i].key);
        ASSERT_STR_EQ(got, cases[i].key);
    }
}

/* Any host bits give the /64's key; a change in the first 64 bits another key. */
TEST(client_addr_key_same_prefix_same_key)
{
    char base[CLIENT_ADDR_KEY_MAX], key[CLIENT_ADDR_KEY_MAX], ip[64];

    client_addr_key("2001:db8:5:6::", base);
    for (unsigned i = 0; i < 64; i++) {
        unsigned long long host = 1ull << i;
        snprintf(ip, sizeof ip, "2001:db8:5:6:%x:%x:%x:%x", (unsigned)(host >> 48) & 0xffff,
                 (unsigned)(host >> 32) & 0xffff, (unsigned)(host >> 16) & 0xffff,
                 (unsigned)host & 0xffff);
        ASSERT_STR_EQ(client_addr_key(ip, key), base);
    }
    for (unsigned i = 0; i < 64; i++) {
        unsigned long long prefix = 0x20010db800050006ull ^ (1ull << i);
        snprintf(ip, sizeof ip, "%x:%x:%x:%x::1", (unsigned)(prefix >> 48) & 0xffff,
                 (unsigned)(prefix >> 32) & 0xffff, (unsigned)(prefix >> 16) & 0xffff,
                 (unsigned)prefix & 0xffff);
        ASSERT(strcmp(client_addr_key(ip, key), base) != 0);
    }
}

/* Text longer than any address is cut, never written past the key. */
TEST(client_addr_key_long_text_is_cut)
{
    char key[CLIENT_ADDR_KEY_MAX + 8], in[128];

    memset(key, '#', sizeof key);
    memset(in, 'x', sizeof in - 1);
    in[sizeof in - 1] = '\0';
    client_addr_key(in, key);
    ASSERT_EQ(strlen(key), CLIENT_ADDR_KEY_MAX - 1);
    ASSERT_EQ(key[CLIENT_ADDR_KEY_MAX], '#');
}
