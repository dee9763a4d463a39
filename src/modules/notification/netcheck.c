/* netcheck.c: which hosts and addresses a push may go to.
 *
 * A push endpoint comes from a client, so without a check chatd would connect
 * wherever a user points it (its own loopback services, the cloud metadata address,
 * the operator's LAN) and POST there. A push service is on the public Internet:
 * only globally reachable unicast addresses are allowed (the IANA special-purpose
 * registries, RFC 6890 and its updates). Addresses that embed an IPv4 address
 * (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by that address, so
 * ::ffff:127.0.0.1 is loopback; IPv4-compatible ones (::a.b.c.d, deprecated) are
 * refused whatever they carry. Names are judged twice: here, for the forms inet_aton
 * would read as an address (2130706433, 0x7f000001, 0177.0.0.1, 127.1) and the names
 * that mean this host, and after resolution by the address connected to
 * (net_first_public, the HTTP client's address hook for a push). [notification] allow_private_endpoints turns both checks off. */
#include <ctype.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "notification_internal.h"

struct v4_range {
    uint32_t net;
    int bits;
    const char *what;
};

static const struct v4_range v4_refused[] = {
    { 0x00000000u, 8, "a \"this network\" address" },
    { 0x0a000000u, 8, "a private address" },
    { 0x64400000u, 10, "a shared (carrier-grade NAT) address" },
    { 0x7f000000u, 8, "a loopback address" },
    { 0xa9fe0000u, 16, "a link-local address" },
    { 0xac100000u, 12, "a private address" },
    { 0xc0000000u, 24, "an IETF protocol address" },
    { 0xc0000200u, 24, "a documentation address" },
    { 0xc0586300u, 24, "a 6to4 relay address" },
    { 0xc0a80000u, 16, "a private address" },
    { 0xc6120000u, 15, "a benchmarking address" },
    { 0xc6336400u, 24, "a documentation address" },
    { 0xcb007100u, 24, "a documentation address" },
    { 0xe0000000u, 4, "a multicast address" },
    { 0xf0000000u, 4, "a reserved address" },          /* with 255.255.255.255 */
};

/* a: 4 bytes in network order. */
static const char *v4_refusal(const uint8_t *a)
{
    uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
        uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
        if ((v & mask) == v4_refused[i].net)
            return v4_refused[i].what;
    }
    return NULL;
}

static int zeros(const uint8_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i])
            return 0;
    return 1;
}

static const uint8_t nat64_prefix[12] = { 0x00, 0x64, 0xff, 0x9b };

/* IPv6 addresses that carry an IPv4 address, which then decides: its 4 bytes, or
 * NULL when a is not one of them. */
static const uint8_t *v6_embedded_v4(const uint8_t *a)
{
    if (zeros(a, 12))                                       /* ::/96, with :: and ::1 */
        return a + 12;
    if (zeros(a, 10) && a[10] == 0xff && a[11] == 0xff)     /* ::ffff:0:0/96 mapped */
        return a + 12;
    if (zeros(a, 8) && a[8] == 0xff && a[9] == 0xff && zeros(a + 10, 2))
        return a + 12;                                      /* ::ffff:0:0:0/96 (SIIT) */
    if (memcmp(a, nat64_prefix, 12) == 0)                   /* 64:ff9b::/96 NAT64 */
        return a + 12;
    if (a[0] == 0x20 && a[1] == 0x02)                       /* 2002::/16 6to4 */
        return a + 2;
    return NULL;
}

static const char *v6_refusal(const uint8_t *a)
{
    /* Before the IPv4 judged in ::/96: ::1 would read as 0.0.0.1, "this network". */
    if (zeros(a, 15) && a[15] == 1)
        return "a loopback address";
    if (zeros(a, 16))
        return "an unspecified address";
    const uint8_t *v4 = v6_embedded_v4(a);
    if (v4 && v4_refusal(v4))
        return v4_refusal(v4);
    if (zeros(a, 12))                /* ::a.b.c.d: deprecated, in ::/8, never global */
        return "an IPv4-compatible address";
    if (v4)
        return NULL;
    if ((a[0] & 0xe0) != 0x20) {                            /* outside 2000::/3 */
        if ((a[0] & 0xfe) == 0xfc)
            return "a unique local address";
        if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
            return "a link-local address";
        if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
            return "a site-local address";
        if (a[0] == 0xff)
            return "a multicast address";
        return "a reserved address";                         /* 64:ff9b:1::/48, 100::/64... */
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return "a documentation address";                    /* 2001:db8::/32 */
    if (a[0] == 0x20 && a[1] == 0x01 && zeros(a + 2, 2))
        return "a Teredo address";                           /* 2001::/32 */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02)
        return "an IETF protocol address";                   /* 2001::/23 */
    if (a[0] == 0x3f && (a[1] & 0xf0) == 0xf0)
        return "a documentation address";                    /* 3fff::/20 */
    return NULL;
}

const char *net_addr_refusal(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_refusal((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_refusal(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return "not an IP address";
}

/* Names that mean this host or a local network, whatever DNS says (RFC 6761,
 * RFC 6762, RFC 8375). */
static int local_name(const char *h, size_t len)
{
    static const char *const suffixes[] = { "localhost", "localdomain", "local",
                                            "internal", "home.arpa", "invalid" };
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (len == sl && strncasecmp(h, suffixes[i], sl) == 0)
            return 1;
        if (len > sl && h[len - sl - 1] == '.' && strncasecmp(h + len - sl, suffixes[i], sl) == 0)
            return 1;
    }
    return 0;
}

/* A DNS name: labels of letters, digits, '-' and '_', 1 to 63 long, the last one not
 * all digits (no top-level domain is, and such a name would read as an address). */
static const char *name_refusal(const char *h, size_t len)
{
    size_t label = 0, digits = 0;
    if (len == 0 || len > 253)
        return "is not a host name";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return "is not a host name";
            label = digits = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return "is not a host name";
        if (++label > 63)
            return "is not a host name";
        digits += isdigit(c) != 0;
    }
    if (label == 0 || digits == label)
        return "is not a host name";
    if (local_name(h, len))
        return "names this host or a local network";
    return NULL;
}

const char *net_host_refusal(const char *host)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    struct in_addr any;
    char bare[NI_MAXHOST];
    size_t len = strlen(host);
    if (inet_pton(AF_INET, host, &in.sin_addr) == 1)
        return net_addr_refusal((struct sockaddr *)&in);
    if (strchr(host, ':'))
        return inet_pton(AF_INET6, host, &in6.sin6_addr) == 1
            ? net_addr_refusal((struct sockaddr *)&in6) : "is not an IPv6 address";
    if (len > 0 && host[len - 1] == '.')
        len--;                                               /* the root label */
    if (len >= sizeof(bare))
        return "is not a host name";
    memcpy(bare, host, len);
    bare[len] = '\0';
    /* Without its root label too: 0x7f000001. is the same name to a resolver. */
    if (inet_aton(bare, &any))
        return "is an IPv4 address in a non-standard form";
    return name_refusal(bare, len);
}

const struct addrinfo *net_first_public(const struct addrinfo *res, const char *host,
                                        char *why, size_t whylen)
{
    char text[INET6_ADDRSTRLEN] = "no address";
    const char *what = "nothing to connect to";
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const char *refusal = net_addr_refusal(ai->ai_addr);
        if (!refusal)
            return ai;
        if (ai != res)
            continue;
        what = refusal;
        const void *a = ai->ai_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (!inet_ntop(ai->ai_family, a, text, sizeof(text)))
            snprintf(text, sizeof(text), "?");
    }
    snprintf(why, whylen, "%s resolves to %s, %s: not a public address", host, text, what);
    return NULL;
}
