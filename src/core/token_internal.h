/* token_internal.h: what the token check's files share inside core. */
#ifndef CHATD_TOKEN_INTERNAL_H
#define CHATD_TOKEN_INTERNAL_H

#include <stddef.h>
#include <openssl/evp.h>

struct token_keys;

/* One public key of the set. All owned; read-only once the set is made. */
struct token_key {
    char *kid;
    char *n_b64, *e_b64;               /* as the JWK had them */
    EVP_PKEY *pub;                     /* n and e only: can verify, never sign */
    EVP_MD_CTX *verify_tmpl;           /* RS256 verification set up on pub; copied */
};

/* A JWK's members as a verifier reads them; NULL for one that is absent. */
struct token_jwk {
    const char *kty, *kid, *n, *e;
    const char *alg, *use;             /* optional; RS256 and sig when present */
    int private_members;               /* 1: it had "d", "p", ... (refused) */
};
/* The keys of a JWK Set given as its members: the checks and the error texts of
 * token_keys_from_jwks, which parses a set into these. */
int token_keys_from_list(struct token_keys **out, const struct token_jwk *jwks, size_t n,
                         char *err, size_t errlen);

/* The key named kid, or NULL. */
const struct token_key *token_keys_find(const struct token_keys *ks, const char *kid);

/* token_gateway.c: the gateway's state, owned by the HTTP server (http_server.c). */
struct chatd;
struct http_user;
struct token_gateway;
int  token_gateway_new(struct token_gateway **out, struct chatd *app);
void token_gateway_free(struct token_gateway *g);
/* The http_verify_fn the server starts with. */
int  token_gateway_verify(void *ctx, const char *token, struct http_user *user,
                          const char **reason);

#endif
