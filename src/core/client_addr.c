/* client_addr.c: a client address as the per-address limits count it (client_addr.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "chatd/client_addr.h"

_Static_assert(CLIENT_ADDR_KEY_MAX >= INET6_ADDRSTRLEN + 3, "room for an IPv6 /64 key");

const char *client_addr_key(const char *ip, char out[CLIENT_ADDR_KEY_MAX])
{
    struct in6_addr a6;
    struct in_addr a4;
    char s[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET, ip, &a4) == 1 && inet_ntop(AF_INET, &a4, s, sizeof s)) {
        snprintf(out, CLIENT_ADDR_KEY_MAX, "%s", s);
        return out;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6) && inet_ntop(AF_INET, &a6.s6_addr[12], s, sizeof s)) {
            snprintf(out, CLIENT_ADDR_KEY_MAX, "%s", s);
            return out;
        }
        memset(&a6.s6_addr[8], 0, 8);   /* the interface identifier */
        if (inet_ntop(AF_INET6, &a6, s, sizeof s)) {
            snprintf(out, CLIENT_ADDR_KEY_MAX, "%s/64", s);
            return out;
        }
    }
    snprintf(out, CLIENT_ADDR_KEY_MAX, "%s", ip);
    return out;
}
