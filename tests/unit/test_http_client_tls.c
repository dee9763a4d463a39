/* Core's HTTP client over TLS, against an HTTPS server on a thread of the test (a
 * blocking OpenSSL server, one connection at a time) with a throwaway self-signed
 * certificate made here and given to the client as its CA file: kept-alive
 * connections, a server that ends an idle one with close_notify, and certificates
 * that are not trusted or name another host. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "chatd/chatd.h"
#include "chatd/http_client.h"
#include "chatd/log.h"
#include "test.h"

struct tls_srv {
    int fd, port;
    int close_after_answer;       /* end each connection after one answer */
    int stray_record;             /* a second record after each answer, one segment */
    SSL_CTX *ctx;
    pthread_t thread;
    atomic_int accepted, requests, stop;
};

/* A P-256 key and a self-signed certificate naming san ("IP:127.0.0.1,..."). */
static int make_cert(const char *san, EVP_PKEY **key, X509 **cert)
{
    *key = EVP_EC_gen("P-256");
    *cert = X509_new();
    if (!*key || !*cert)
        return -1;
    X509_set_version(*cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(*cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
    X509_set_pubkey(*cert, *key);
    X509_NAME *name = X509_get_subject_name(*cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1,
                               -1, 0);
    X509_set_issuer_name(*cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, *cert, *cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (!ext || !X509_add_ext(*cert, ext, -1))
        return -1;
    X509_EXTENSION_free(ext);
    return X509_sign(*cert, *key, EVP_sha256()) > 0 ? 0 : -1;
}

static void serve_conn(struct tls_srv *s, SSL *ssl)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        int n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        size_t body = cl && end && cl < end ? (size_t)atol(cl + 16) : 0;
        if (!end || len < (size_t)(end + 4 - buf) + body)
            continue;
        len = 0;                   /* the client sends one request at a time */
        atomic_fetch_add(&s->requests, 1);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        static const char stray[] = "HTTP/1.1 299 Stray\r\nContent-Length: 5\r\n\r\nstray";
        int cork = 1;
        if (s->stray_record)           /* both records in one segment */
            setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
        if (SSL_write(ssl, ok, sizeof(ok) - 1) <= 0 || s->close_after_answer)
            return;
        if (s->stray_record) {
            cork = 0;
            SSL_write(ssl, stray, sizeof(stray) - 1);
            setsockopt(SSL_get_fd(ssl), IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
        }
    }
}

static void *serve(void *arg)
{
    struct tls_srv *s = arg;
    while (!atomic_load(&s->stop)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        atomic_fetch_add(&s->accepted, 1);
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            serve_conn(s, ssl);
            SSL_shutdown(ssl);         /* close_notify */
        }
        SSL_free(ssl);
        close(c);
    }
    return NULL;
}

/* Starts the server with a certificate for san; its PEM goes to ca_path. */
static int tls_srv_start(struct tls_srv *s, const char *san, char *ca_path, size_t calen)
{
    EVP_PKEY *key;
    X509 *cert;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    memset(s, 0, sizeof(*s));
    if (make_cert(san, &key, &cert) < 0)
        return -1;
    snprintf(ca_path, calen, "/tmp/chatd-test-ca-XXXXXX");
    int fd = mkstemp(ca_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || PEM_write_X509(f, cert) != 1)
        return -1;
    fclose(f);
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ctx || SSL_CTX_use_certificate(s->ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(s->ctx, key) != 1)
        return -1;
    X509_free(cert);
    EVP_PKEY_free(key);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(s->fd, 8) < 0 || getsockname(s->fd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, serve, s) == 0 ? 0 : -1;
}

static void tls_srv_stop(struct tls_srv *s, const char *ca_path)
{
    atomic_store(&s->stop, 1);
    shutdown(s->fd, SHUT_RDWR);        /* wakes accept */
    pthread_join(s->thread, NULL);
    close(s->fd);
    SSL_CTX_free(s->ctx);
    unlink(ca_path);
}

struct result { int calls, status; char error[256]; char body[64]; };

static void on_result(void *arg, const struct http_client_result *res)
{
    struct result *r = arg;
    r->calls++;
    r->status = res->status;
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
    snprintf(r->body, sizeof(r->body), "%s", res->body);
}

struct client { uv_loop_t loop; struct chatd app; struct http_client *c; };

static int client_start(struct client *k, const char *ca_file)
{
    char err[256];
    struct http_client_opts opts = { .ca_file = ca_file, .max_inflight = 4, .max_queued = 4,
        .connect_timeout_ms = 5000, .response_timeout_ms = 5000, .max_idle_per_origin = 2,
        .max_idle = 4, .idle_timeout_ms = 5000 };
    memset(k, 0, sizeof(*k));
    uv_loop_init(&k->loop);
    k->app.loop = &k->loop;
    log_open(&k->app.log, CHATD_LOG_ERROR, 0, NULL);
    return http_client_new(&k->c, &k->app, &opts, err, sizeof(err));
}

static void client_get(struct client *k, const char *url, struct result *r)
{
    struct http_client_request rq = { .method = "GET", .url = url };
    int want = r->calls + 1;
    if (http_client_send(k->c, &rq, on_result, r) < 0)
        return;
    while (r->calls < want && uv_run(&k->loop, UV_RUN_ONCE))
        ;
}

static void client_stop(struct client *k)
{
    http_client_close(k->c, NULL, NULL);
    uv_run(&k->loop, UV_RUN_DEFAULT);
    http_client_free(k->c);
    uv_loop_close(&k->loop);
    log_close(k->app.log);
}

TEST(http_client_tls_reuses_one_connection)
{
    struct tls_srv s;
    struct client k;
    struct result r = {0};
    struct http_client_stats st;
    char ca[64], url[96];
    ASSERT_EQ(tls_srv_start(&s, "IP:127.0.0.1,DNS:localhost", ca, sizeof(ca)), 0);
    ASSERT_EQ(client_start(&k, ca), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", s.port);
    for (int i = 0; i < 3; i++) {
        client_get(&k, url, &r);
        ASSERT_EQ(r.status, 200);
        ASSERT_STR_EQ(r.body, "ok");
    }
    http_client_stats(k.c, &st);
    ASSERT_EQ(st.connections, 1);
    ASSERT_EQ(st.reused, 2);
    client_stop(&k);
    /* By name: SNI and the name checked (the server serves one connection at a time:
     * the first client's is closed). */
    ASSERT_EQ(client_start(&k, ca), 0);
    snprintf(url, sizeof(url), "https://localhost:%d/x", s.port);
    client_get(&k, url, &r);
    client_stop(&k);
    tls_srv_stop(&s, ca);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(atomic_load(&s.accepted), 2);
    ASSERT_EQ(atomic_load(&s.requests), 4);
}

/* The server ends each connection after its answer (close_notify, no Connection:
 * close): the next request still succeeds, on a new connection. */
TEST(http_client_tls_server_ends_idle_connection)
{
    struct tls_srv s;
    struct client k;
    struct result r = {0};
    char ca[64], url[96];
    ASSERT_EQ(tls_srv_start(&s, "IP:127.0.0.1", ca, sizeof(ca)), 0);
    s.close_after_answer = 1;
    ASSERT_EQ(client_start(&k, ca), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", s.port);
    for (int i = 0; i < 3; i++) {
        client_get(&k, url, &r);
        if (r.status != 200)
            break;
    }
    client_stop(&k);
    tls_srv_stop(&s, ca);
    ASSERT_EQ(r.calls, 3);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(atomic_load(&s.accepted), 3);
}

TEST(http_client_tls_refuses_untrusted_and_misnamed_certificates)
{
    struct tls_srv s;
    struct client k;
    struct result r = {0};
    char ca[64], url[96];
    ASSERT_EQ(tls_srv_start(&s, "DNS:other.example", ca, sizeof(ca)), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", s.port);
    ASSERT_EQ(client_start(&k, ""), 0);          /* not trusted */
    client_get(&k, url, &r);
    client_stop(&k);
    ASSERT_EQ(client_start(&k, ca), 0);          /* trusted, for another name */
    struct result r2 = {0};
    client_get(&k, url, &r2);
    client_stop(&k);
    tls_srv_stop(&s, ca);
    ASSERT_EQ(r.status, -EPROTO);
    ASSERT(strstr(r.error, "tls: certificate:") != NULL);
    ASSERT_EQ(r2.status, -EPROTO);
    ASSERT(strstr(r2.error, "tls: certificate:") != NULL);
    ASSERT(strstr(r2.error, "mismatch") != NULL);
}

/* A second record after an answer, read with it: the connection is not reused, and
 * the next request gets its own answer (never the stray one, never inside send). */
TEST(http_client_tls_record_after_the_answer_ends_the_connection)
{
    struct tls_srv s;
    struct client k;
    struct result r = {0};
    struct http_client_stats st;
    char ca[64], url[96];
    ASSERT_EQ(tls_srv_start(&s, "IP:127.0.0.1", ca, sizeof(ca)), 0);
    s.stray_record = 1;
    ASSERT_EQ(client_start(&k, ca), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", s.port);
    client_get(&k, url, &r);
    ASSERT_EQ(r.status, 200);
    http_client_stats(k.c, &st);
    ASSERT_EQ(st.idle, 0);
    struct http_client_request rq = { .method = "GET", .url = url };
    ASSERT_EQ(http_client_send(k.c, &rq, on_result, &r), 0);
    ASSERT_EQ(r.calls, 1);                       /* not from inside send */
    while (r.calls == 1 && uv_run(&k.loop, UV_RUN_ONCE))
        ;
    ASSERT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "ok");
    ASSERT_EQ(atomic_load(&s.requests), 2);
    ASSERT_EQ(atomic_load(&s.accepted), 2);
    client_stop(&k);
    tls_srv_stop(&s, ca);
}
