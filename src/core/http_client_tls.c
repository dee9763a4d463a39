/* http_client_tls.c: OpenSSL for the HTTP client. The context verifies peers against
 * the system bundle plus an extra CA file; a session runs on two memory BIOs (the
 * connection feeds it what libuv read and writes out what it produced), with SNI and
 * the host name, or the IP address, checked against the certificate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "http_client_impl.h"

#define CA_WHY_MAX 1100              /* a path (CFG_PATH_MAX) and the reason */

/* The extra CA file, as the start and check-config read it: 0, or -EINVAL with
 * "path: cannot load PEM certificates". */
static int load_ca_file(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    int rc = 0;

    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        snprintf(err, errlen, "%s: cannot load PEM certificates", path);
        rc = -EINVAL;
    }
    ERR_clear_error();
    return rc;
}

int hc_tls_ctx_new(SSL_CTX **out, const char *ca_file, char *err, size_t errlen,
                   char *warn, size_t warnlen)
{
    char why[CA_WHY_MAX];

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* The system bundle is read now, at start-up, in one go: a hashed directory
     * would make OpenSSL open files during handshakes, on the loop thread. */
    const char *bundle = getenv(X509_get_default_cert_file_env());
    if (!bundle || !*bundle)
        bundle = X509_get_default_cert_file();
    if (SSL_CTX_load_verify_locations(ctx, bundle, NULL) != 1 && warn)
        snprintf(warn, warnlen, "no system CA bundle file=%s", bundle);
    ERR_clear_error();
    if (ca_file && ca_file[0] && load_ca_file(ctx, ca_file, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "ca_file %s", why);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    *out = ctx;
    return 0;
}

int hc_tls_session_new(SSL_CTX *ctx, const struct http_client_origin *o, SSL **out,
                       BIO **rbio, BIO **wbio)
{
    SSL *ssl = SSL_new(ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!ssl || !r || !w) {
        SSL_free(ssl);
        BIO_free(r);
        BIO_free(w);
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(r, -1);      /* empty means "wait", not EOF */
    SSL_set_bio(ssl, r, w);             /* ssl owns both from here */
    SSL_set_connect_state(ssl);
    int ok;
    if (o->host_is_ip)                  /* no SNI for addresses (RFC 6066) */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o->host) == 1;
    else
        ok = SSL_set_tlsext_host_name(ssl, o->host) == 1 && SSL_set1_host(ssl, o->host) == 1;
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return -EINVAL;
    }
    *out = ssl;
    *rbio = r;
    *wbio = w;
    return 0;
}

void hc_tls_error_text(SSL *ssl, const char *what, char *buf, size_t len)
{
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        snprintf(buf, len, "tls: certificate: %s", X509_verify_cert_error_string(v));
    } else {
        unsigned long e = ERR_peek_last_error();
        char reason[160] = "unknown";
        if (e)
            ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(buf, len, "tls: %s: %s", what, reason);
    }
    ERR_clear_error();
}

int http_client_check_ca_file(const char *path, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int rc;

    if (!ctx)
        return -ENOMEM;
    rc = load_ca_file(ctx, path, err, errlen);
    SSL_CTX_free(ctx);
    return rc;
}
