/* Which push endpoint hosts and addresses are allowed: a table of hosts as a client
 * could write them in a URL, each allowed or refused, and the same addresses as
 * resolved sockaddrs (what the connect-time check sees). */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include "test.h"
#include "../../src/modules/notification/notification_internal.h"

struct host_case {
    const char *host;
    int allowed;
};

static const struct host_case hosts[] = {
    /* public */
    { "push.example.com", 1 }, { "fcm.googleapis.com", 1 }, { "updates.push.services.mozilla.com.", 1 },
    { "8.8.8.8", 1 }, { "1.1.1.1", 1 }, { "100.63.255.255", 1 }, { "100.128.0.0", 1 },
    { "172.15.255.255", 1 }, { "172.32.0.0", 1 }, { "192.0.1.1", 1 }, { "198.17.255.255", 1 },
    { "198.20.0.0", 1 }, { "223.255.255.255", 1 }, { "169.253.0.1", 1 }, { "11.0.0.1", 1 },
    { "2606:4700:4700::1111", 1 }, { "2a00:1450:4001:80b::200a", 1 },
    { "::ffff:8.8.8.8", 1 }, { "64:ff9b::808:808", 1 }, { "2002:808:808::1", 1 },
    { "xn--bcher-kva.example", 1 }, { "a-b_c.example.org", 1 },
    /* IPv4 special purpose */
    { "127.0.0.1", 0 }, { "127.255.255.254", 0 }, { "0.0.0.0", 0 }, { "0.1.2.3", 0 },
    { "10.0.0.1", 0 }, { "10.255.255.255", 0 }, { "172.16.0.1", 0 }, { "172.31.255.255", 0 },
    { "192.168.1.1", 0 }, { "100.64.0.1", 0 }, { "100.127.255.255", 0 },
    { "169.254.169.254", 0 }, { "224.0.0.1", 0 }, { "239.255.255.250", 0 },
    { "240.0.0.1", 0 }, { "255.255.255.255", 0 }, { "192.0.0.8", 0 }, { "192.0.2.1", 0 },
    { "198.18.0.1", 0 }, { "198.19.255.255", 0 }, { "198.51.100.7", 0 }, { "203.0.113.9", 0 },
    { "192.88.99.1", 0 },
    /* IPv6 special purpose */
    { "::1", 0 }, { "::", 0 }, { "fe80::1", 0 }, { "febf::1", 0 }, { "fec0::1", 0 },
    { "fc00::1", 0 }, { "fdff:ffff::1", 0 }, { "ff02::1", 0 }, { "ff0e::1", 0 },
    { "2001:db8::1", 0 }, { "2001::1", 0 }, { "2001:0:4136:e378:8000:63bf:3fff:fdd2", 0 },
    { "2001:2::1", 0 }, { "2001:10::1", 0 }, { "3fff::1", 0 }, { "100::1", 0 },
    { "64:ff9b:1::1", 0 }, { "5f00::1", 0 }, { "4000::1", 0 },
    /* IPv6 carrying a non-global IPv4 address */
    { "::ffff:127.0.0.1", 0 }, { "::ffff:7f00:1", 0 }, { "::ffff:169.254.169.254", 0 },
    { "::ffff:10.0.0.1", 0 }, { "::127.0.0.1", 0 }, { "::ffff:0:127.0.0.1", 0 },
    { "64:ff9b::127.0.0.1", 0 }, { "64:ff9b::a00:1", 0 }, { "2002:7f00:1::1", 0 },
    { "2002:c0a8:101::", 0 },
    /* IPv4-compatible (deprecated, RFC 4291; ::/8 is not global unicast) */
    { "::8.8.8.8", 0 }, { "::808:808", 0 }, { "0:0:0:0:0:0:1.1.1.1", 0 },
    /* forms inet_aton reads as an address */
    { "2130706433", 0 }, { "0x7f000001", 0 }, { "0x7F.1", 0 }, { "0177.0.0.1", 0 },
    { "127.1", 0 }, { "127.0.1", 0 }, { "017700000001", 0 }, { "0", 0 }, { "8.8.8.010", 0 },
    { "0x7f000001.", 0 }, { "0X7F.1.", 0 }, { "0x0a000001.", 0 },
    /* not names */
    { "", 0 }, { "1.2.3.4.5", 0 }, { "127.0.0.1.", 0 }, { "example.123", 0 },
    { "exa mple.com", 0 }, { "a..b", 0 }, { ".example.com", 0 }, { "ex%41mple.com", 0 },
    { "fe80::1%eth0", 0 }, { "[::1]", 0 }, { "::ffff:1.2.3", 0 },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", 0 },
    /* this host and local networks, by name */
    { "localhost", 0 }, { "LOCALHOST", 0 }, { "localhost.", 0 }, { "a.localhost", 0 },
    { "x.y.Localhost.", 0 }, { "printer.local", 0 }, { "db.internal", 0 },
    { "nas.home.arpa", 0 }, { "box.localdomain", 0 }, { "x.invalid", 0 },
};

TEST(notif_netcheck_hosts)
{
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        const char *why = net_host_refusal(hosts[i].host);
        if ((why == NULL) != hosts[i].allowed) {
            ASSERT_STR_EQ(hosts[i].host, hosts[i].allowed ? "allowed" : "refused");
            return;
        }
    }
}

/* The connect-time check judges sockaddrs: every literal above that parses as an
 * address gets the same verdict there, and the reason says what the address is. */
TEST(notif_netcheck_addresses)
{
    int checked = 0;
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        struct sockaddr_in in = { .sin_family = AF_INET };
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
        const char *why;
        if (inet_pton(AF_INET, hosts[i].host, &in.sin_addr) == 1)
            why = net_addr_refusal((struct sockaddr *)&in);
        else if (inet_pton(AF_INET6, hosts[i].host, &in6.sin6_addr) == 1)
            why = net_addr_refusal((struct sockaddr *)&in6);
        else
            continue;
        checked++;
        if ((why == NULL) != hosts[i].allowed) {
            ASSERT_STR_EQ(hosts[i].host, hosts[i].allowed ? "allowed" : "refused");
            return;
        }
    }
    ASSERT(checked > 60);    /* the table is mostly literals */
    struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
    ASSERT_STR_EQ(net_addr_refusal((struct sockaddr *)&lo), "a loopback address");
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::ffff:169.254.169.254", &mapped.sin6_addr);
    ASSERT_STR_EQ(net_addr_refusal((struct sockaddr *)&mapped), "a link-local address");
    struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6 }, any6 = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::1", &lo6.sin6_addr);
    ASSERT_STR_EQ(net_addr_refusal((struct sockaddr *)&lo6), "a loopback address");
    ASSERT_STR_EQ(net_addr_refusal((struct sockaddr *)&any6), "an unspecified address");
    struct sockaddr unix_sa = { .sa_family = AF_UNIX };
    ASSERT(net_addr_refusal(&unix_sa) != NULL);
}

/* A resolution with a private and a public address connects to the public one; one
 * with only refused addresses connects nowhere and says what the first one is. */
TEST(notif_netcheck_first_public)
{
    struct sockaddr_in lan = { .sin_family = AF_INET }, pub = { .sin_family = AF_INET };
    struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET, "10.0.0.5", &lan.sin_addr);
    inet_pton(AF_INET, "8.8.8.8", &pub.sin_addr);
    inet_pton(AF_INET6, "::1", &lo6.sin6_addr);
    struct addrinfo a3 = { .ai_family = AF_INET, .ai_addr = (struct sockaddr *)&pub };
    struct addrinfo a2 = { .ai_family = AF_INET6, .ai_addr = (struct sockaddr *)&lo6 };
    struct addrinfo a1 = { .ai_family = AF_INET, .ai_addr = (struct sockaddr *)&lan,
                           .ai_next = &a2 };
    char why[256] = "";
    ASSERT(net_first_public(&a1, "push.example", why, sizeof(why)) == NULL);
    ASSERT_STR_EQ(why, "push.example resolves to 10.0.0.5, a private address: "
                       "not a public address");
    a2.ai_next = &a3;
    ASSERT(net_first_public(&a1, "push.example", why, sizeof(why)) == &a3);
}
