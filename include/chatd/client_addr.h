/* client_addr.h: the key under which every per-address limit counts a client (the
 * registrations, the WebSocket upgrades and open connections, the login throttle). No
 * state; safe from any thread. */
#ifndef CHATD_CLIENT_ADDR_H
#define CHATD_CLIENT_ADDR_H

/* INET6_ADDRSTRLEN (46, with its NUL) and "/64"; holds any http_req client_ip too. */
#define CLIENT_ADDR_KEY_MAX 49

/* The key of a client address as in http_req.client_ip (the peer, or the forwarded
 * address with [server] trust_proxy). An IPv6 address counts by its /64, written
 * "2001:db8:1:2::/64" whatever its spelling: that is one customer's network, and a
 * host holding one address of it usually holds all 2^64, so counting each apart would
 * multiply every per-address limit by 2^64. An IPv4-mapped address (::ffff:192.0.2.1)
 * is its IPv4 address, an IPv4 address itself, and anything else (not an address) is
 * its own key, cut to CLIENT_ADDR_KEY_MAX - 1 bytes. Writes out and returns it. */
const char *client_addr_key(const char *ip, char out[CLIENT_ADDR_KEY_MAX]);

#endif
