/* Access tokens: signing (auth), the key id, and the gateway's bearer check (core,
 * with the keys of the JWK Set auth publishes) refusing every kind of forged or stale
 * token (alg none, HS256 keyed with the public key, another key with
 * our kid, expired, not yet valid, wrong issuer or audience, malformed). Forged tokens
 * are built here by hand with OpenSSL so that nothing in libjwt helps them along. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "test.h"
#include "chatd/token.h"
#include "chatd/util.h"
#include "../../src/modules/auth/auth_internal.h"

/* Test keys, made for these tests only. */
static const char TEST_KEY_A[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDkr6pzdkgxNfrp\n"
    "pTdamEDjQcttfGU0Q9Li7vGUpEjRHiFK6H/8Ju5z2TR4dx218HUOfJeR2i8wC/mz\n"
    "5ofUazGhqnAUFGn9eqzaJuROWu/UNWgmXtXAwVcPljXdaNhbgJviZHYYm75RnQ/V\n"
    "OH+Z/nRSdE+V9XFk9yL//G4tu1N7tv586tKcsQuA+Q5Rcn7eYXwx3PxRhmM0AHN0\n"
    "ouQLbjqP6FEt1DWiAq4+24usDLjFW//PHJveXNbJmU0Q9pj2Nf/dywcKH2+p8Bk8\n"
    "CsE70mT0h4qzdMLOSnp/v4DFBd/M/OaYp3EWeM1yba5nT9PEtG5CAiWDbdRSA3/m\n"
    "WkBLJSzDAgMBAAECggEAHkDXDdtSBaCchxhiUEvgGbB0lxFj2hw24+q0bvOk5nVT\n"
    "9jL364XC+fR8KounlJAxDC+TZao1n+eVqyUORx2/PSHtHdrtgqkeAOYwQeVp4OsH\n"
    "0jutj4iEWf2HNrlOFhzXgoXD0dGYxfc/RvfoeZjeDqJwfOgxjifbq33bnZUwoCb/\n"
    "Qx/Qp+u5psupQvWbLS7V6NUoqU4G+F04s/72j/Cb5aG8noATTbSUVThkLPfklJgv\n"
    "2890yhxcMY9iJZ+A6NDaeqj/jxWBxHamgqGfDcrIGaW3wLOOoGWp5T30qwNFum16\n"
    "xPOQhyrkgWyETNFh+gzsgIO7G29MqwXJw/USVrmbkQKBgQD80Tz+E1Ir7hdVieqL\n"
    "HfVeQMV5Jqk6BBvZz/BqdqBty7IxTQY0Yp7s789qccCMBr7Ne2FknWBeIWG+pgWp\n"
    "bnFgyI46XgK04WL4kAwfTPA0+F1gJTjbkXGw172523RdC0RHU30W4Ns5DOZz9wwS\n"
    "SQ7pVnUDPQtxSuS8iFTeG7f31QKBgQDnkKjRLaXtnQAS79bnU7QDQlGi++U+QgRW\n"
    "/odKMXCtGzWGzXk1dUAk8GvQwXh6kEr60PJLswuFakgZo0oIYfr43Bak3gplziYq\n"
    "2bLgE1MpTJoXd/2uExZBJ77fCXWdhGMipy+BZlo1Xnh5Dj55/C5U3dgGmmgNkR3L\n"
    "hjZUqvg2NwKBgQCnwLb16CAYIi29hnvov4I2fkgJ8YtMgblxN7bRDdG5yPV+HRvG\n"
    "2sGVejJo8P3QbBFjC0E+n+Z3zzKqbENJf40fqTQmqoalOwCO6hYBFu40V7CtwUUO\n"
    "/F0x+JVdo658pqMxqMZRzfXozxSDUiPiZjPMxJ9z/KeBDy7jopqdnkrd2QKBgCN8\n"
    "RJKBl0rZY1iDjoA2kIBrWk1Koq+uuDGIobzZ5LVyVPqKZEev5xuCCFOeQlMt53+W\n"
    "I3s8Pci9J71eC4tLUIVwXLv5FsjRFYI9iC7UZ0sN5RMxnRte62sipxpQvchcsEBw\n"
    "NFR1Fd/V0Upjx2k0Hvl8YY1pfgaONW2p7It/A7hzAoGBALoRgJPH3d8AzH0npu/E\n"
    "74QmaUc7TprvP0O9nr1da/PBwH0gEcIAxVRPDhkSdvubnGP6bvk5aViSybCzhbao\n"
    "7cfUNhtfy/teRxhbfbj9sONW7rzodvHgIeptNM3jY2hYl4WYdseu+qAgOd8s/muc\n"
    "9N7S9++hsJTfDKf2lbPkqlsS\n"
    "-----END PRIVATE KEY-----\n"
    ;
static const char TEST_KEY_B[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCk3qcxQYXG3MvJ\n"
    "0wFKRfDx43RRyFWgPnArYUo9N2H0+dAPdtTOT93zdup+nWgdhfOpwOlNPUDVEeVk\n"
    "XHgO/ndUiGkbNGABTD0InKrECVl/n5NY1vsgvoyHfp+YEcuav8uxt42vyHg7lzlA\n"
    "NZYlqTGd+mkvQqEwvNhEsmtiSbh1y/56yxSFHAkhjJs/NYNsMs8DU6q518+9dEUC\n"
    "pW6ymI+7jnoLpbmggP62jJk7Jzgi0WsF10zVo57nD7gNY1LiZuYatgdIcWpTjn3T\n"
    "0uSKpTjt3NqTe9ReHkV+Bw86ZOwWQ0aSfulENdj7uipD6ikQ9QMUasxE1zTh1+iA\n"
    "oikLqgnPAgMBAAECggEAOdi/W9psCDa/L/yfdsJshEp0rR833+YYcDgOFsWAUrZ2\n"
    "CH7+sra2Hu7p3uv2tGkj8bs0gHvN7BR/4oNJQqWJE/lau4dYagwoXAWwKuFG7C7+\n"
    "wYyIh1gkMYQ9ldskj5Lc8ul+xp71hJ8OINfMa0FendnXHxRnPxT7YrshT1ajaHzO\n"
    "iluG1RTHj2IoSHkMLROLAGYpnLyBi5EnZUHHXyGh5TwAQNX9biBREFmQrqjHZE4N\n"
    "Buxq6wBPm4p18LlmfraN4Hls4RPVWjUP1pxS0w0u3+CQ5TUwqSpP/rO48V5sbxdy\n"
    "EXYWMvXiVY2ca8tZJaCLOfqVkyWNDM/VsOGmwLH4OQKBgQDfiu7WU/FMU49H2HJC\n"
    "5o0OPdrSkraFlT9MAdcPdDM5O8gfR83Jol82HHclKPqkFkQrWqSEdub2EKBIfDl5\n"
    "BGBp0V1Ic9ClAYXECK3NOfD/CikeyBCP0AvcwD0dKihx1DX7TUybK5e59e6ZnTSG\n"
    "9Y9wTQwX3Mp5VdymLR8xcKYKiQKBgQC8ztmV6JVeZlUaU35CMjr1OcFjMfpZOZKE\n"
    "2NNDe/7HjTgc2DQHCXOaq6I5ubpJDjjsRWAskZ+wo1VoJnzoNgVSMpCinRxGzbC6\n"
    "sBWHGTdxDxDv0+EUZn558RwpcD0JUt6sIoVPyETojJFHKxLOiK7E//vdTo8h46rC\n"
    "3dYlitp7lwKBgCp2eLHr1h06jjAGlIXSx56Z71QqnFM5q4FjpBeCaiyIB5axjAyu\n"
    "NEnSFGvRofLDbAWUPUYQVAUP2XKLbltnkmznYUHfBhYh+OfpAiLGy9mWc4MuW78F\n"
    "tQsk1TcSCAa/WdW3tEKRgEvJxJ4Xd5/fS3T4ncB2p1tvDO/gCFna3R+JAoGAGjml\n"
    "EWR38t/F7F0yiWFOvScjjHKxslkD1/4CAjqj3fXomGETgPK4IwC6DMiWbnVSRMcy\n"
    "H56ujqtxPoEyElMGlC8/1cZ62f7SEGxK4TQIdmTAVn+YoOvHn4p0/fCAGd5v3XsC\n"
    "B13q7F4yA6+g8h0cIXLo+gliajOkUWLczuQlissCgYAc+VQkvdGilp+/z34E4z+P\n"
    "k3FffZ+rfPtC+QnRe6TMvLL6TKw8wJOelt8AXhTaLNQc03Ww2+HM+De0C9rsv4pq\n"
    "3oMVFBz0X9MZX5ZL08QOFHYHBP9E3mZ4kFBrN52G3kU50QLNeXQf7ZYDhOQyEJHi\n"
    "p2pycqn/idXLKELfofEGHw==\n"
    "-----END PRIVATE KEY-----\n"
    ;
static const char TEST_KEY_SHORT[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAKT5yk4X9dWivSOj\n"
    "Kw3tx05Ik3eGDRhELuOu3XHwvrM9wmgrgGJnP0gzuXUbcTK7m/BW2QVTH325btMk\n"
    "B/4RgAJ/bGg0ps7ll18enLJANUegQU0f69MvTI7nkP5onhWgsJ+f/kJn4BPk5igK\n"
    "bjkOSLpm1zM/QNyGAS4M3De8L6SZAgMBAAECgYBHWkYWeqR3ztgRJsxDTPkrsZYe\n"
    "VtspCKxjC0l5s083hNmlZlMzvEYRe1WWAdV2xM/QJi/c7rOrE92L8oSGbZk4SYyN\n"
    "kC/S/gqvWKXmnhi96Bva6uD7xi++ZruJXQZ0pCQr+sg2Kfs1Kjkl0mvqNWoCHaCl\n"
    "+/n3MN08zzYlPQLhgQJBANCMU+KdbynbTvw+vFPrToypntI+CspIRQPltxj9UgNQ\n"
    "paRBWKMZ2VEG4NMcDPbczmx132iMSoP5+5iYI5YKK/ECQQDKg2xmEv2wEZj6SF0e\n"
    "KHc9bc0cz1RGK1Oqjc7C9Cx5l+9fJZJQbRzp/pTKzMnJ8l68jVnUe+nsPXY0efBf\n"
    "n0spAkEAoWX5BckR3zL7Tfy/g7L4d6ROZifd8e88emet7Ikgj7A6gYSRNKkspqjM\n"
    "FpX+8o6wswAGhsMMaFdvgAk+gUAeAQJAJIMdgCncY2pI0pdJcq6JESJC4PbgkuYs\n"
    "54s5xBySCDpEhjsX7jg+BlJIMWhK2YZBXm19zLmqq1VJgpyZoiPuQQJAZbEyPOCN\n"
    "thBGZiZcoyQAcm09M3SCVSqTcC5oGDgdzhuKXIGbdIjH5mwjVFBJmNiBYaJdA2/a\n"
    "fR3473WEsprASA==\n"
    "-----END PRIVATE KEY-----\n"
    ;

/* TEST_KEY_A again, in the traditional PKCS#1 form ("BEGIN RSA PRIVATE KEY"). */
static const char TEST_KEY_A_PKCS1[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA5K+qc3ZIMTX66aU3WphA40HLbXxlNEPS4u7xlKRI0R4hSuh/\n"
    "/Cbuc9k0eHcdtfB1DnyXkdovMAv5s+aH1GsxoapwFBRp/Xqs2ibkTlrv1DVoJl7V\n"
    "wMFXD5Y13WjYW4Cb4mR2GJu+UZ0P1Th/mf50UnRPlfVxZPci//xuLbtTe7b+fOrS\n"
    "nLELgPkOUXJ+3mF8Mdz8UYZjNABzdKLkC246j+hRLdQ1ogKuPtuLrAy4xVv/zxyb\n"
    "3lzWyZlNEPaY9jX/3csHCh9vqfAZPArBO9Jk9IeKs3TCzkp6f7+AxQXfzPzmmKdx\n"
    "FnjNcm2uZ0/TxLRuQgIlg23UUgN/5lpASyUswwIDAQABAoIBAB5A1w3bUgWgnIcY\n"
    "YlBL4BmwdJcRY9ocNuPqtG7zpOZ1U/Yy9+uFwvn0fCqLp5SQMQwvk2WqNZ/nlasl\n"
    "Dkcdvz0h7R3a7YKpHgDmMEHlaeDrB9I7rY+IhFn9hza5ThYc14KFw9HRmMX3P0b3\n"
    "6HmY3g6icHzoMY4n26t9252VMKAm/0Mf0KfruabLqUL1my0u1ejVKKlOBvhdOLP+\n"
    "9o/wm+WhvJ6AE020lFU4ZCz35JSYL9vPdMocXDGPYiWfgOjQ2nqo/48VgcR2poKh\n"
    "nw3KyBmlt8CzjqBlqeU99KsDRbptesTzkIcq5IFshEzRYfoM7ICDuxtvTKsFycP1\n"
    "Ela5m5ECgYEA/NE8/hNSK+4XVYnqix31XkDFeSapOgQb2c/wanagbcuyMU0GNGKe\n"
    "7O/PanHAjAa+zXthZJ1gXiFhvqYFqW5xYMiOOl4CtOFi+JAMH0zwNPhdYCU425Fx\n"
    "sNe9udt0XQtER1N9FuDbOQzmc/cMEkkO6VZ1Az0LcUrkvIhU3hu399UCgYEA55Co\n"
    "0S2l7Z0AEu/W51O0A0JRovvlPkIEVv6HSjFwrRs1hs15NXVAJPBr0MF4epBK+tDy\n"
    "S7MLhWpIGaNKCGH6+NwWpN4KZc4mKtmy4BNTKUyaF3f9rhMWQSe+3wl1nYRjIqcv\n"
    "gWZaNV54eQ4+efwuVN3YBppoDZEdy4Y2VKr4NjcCgYEAp8C29eggGCItvYZ76L+C\n"
    "Nn5ICfGLTIG5cTe20Q3Rucj1fh0bxtrBlXoyaPD90GwRYwtBPp/md88yqmxDSX+N\n"
    "H6k0JqqGpTsAjuoWARbuNFewrcFFDvxdMfiVXaOufKajMajGUc316M8Ug1Ij4mYz\n"
    "zMSfc/yngQ8u46KanZ5K3dkCgYAjfESSgZdK2WNYg46ANpCAa1pNSqKvrrgxiKG8\n"
    "2eS1clT6imRHr+cbgghTnkJTLed/liN7PD3IvSe9XguLS1CFcFy7+RbI0RWCPYgu\n"
    "1GdLDeUTMZ0bXutrIqcaUL3IXLBAcDRUdRXf1dFKY8dpNB75fGGNaX4GjjVtqeyL\n"
    "fwO4cwKBgQC6EYCTx93fAMx9J6bvxO+EJmlHO06a7z9DvZ69XWvzwcB9IBHCAMVU\n"
    "Tw4ZEnb7m5xj+m75OWlYksmws4W2qO3H1DYbX8v7XkcYW324/bDjVu686Hbx4CHq\n"
    "bTTN42NoWJeFmHbHrvqgIDnfLP5rnPTe0vfvobCU3wyn9pWz5KpbEg==\n"
    "-----END RSA PRIVATE KEY-----\n"
    ;
#define ISS "chatd-test"

struct token_keys *test_token_keys(const struct auth_key *k);   /* test_auth_rs256.c */

/* The gateway's check, with nothing of the key but its published JWK Set. */
static int verify(const struct auth_key *k, const char *iss, const char *token, long now,
                  struct http_user *u, const char **reason)
{
    struct token_keys *ks = test_token_keys(k);
    int rc = token_verify(ks, iss, token, now, u, reason);
    token_keys_free(ks);
    return rc;
}

static int load(struct auth_key *k, const char *pem)
{
    char err[256];
    return auth_key_from_pem(k, pem, strlen(pem), err, sizeof err);
}

static char *b64(const void *p, size_t n)
{
    char *out = malloc(base64url_enc_len(n) + 1);
    base64url_encode(p, n, out);
    return out;
}

/* header.payload.signature with alg: "RS256" signs with key (any RSA key), "HS256"
 * with secret, "none" leaves the signature empty. Caller frees. */
static char *forge(const char *alg, EVP_PKEY *key, const char *secret, const char *header,
                   const char *payload)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload)), *s = NULL;
    size_t in_len = strlen(h) + 1 + strlen(p);
    char *in = malloc(in_len + 1), *out;
    unsigned char sig[512];
    size_t sig_len = 0;

    snprintf(in, in_len + 1, "%s.%s", h, p);
    if (strcmp(alg, "RS256") == 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        sig_len = sizeof sig;
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
        EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)in, in_len);
        EVP_MD_CTX_free(ctx);
    } else if (strcmp(alg, "HS256") == 0) {
        unsigned int n = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)in, in_len,
             sig, &n);
        sig_len = n;
    }
    s = b64(sig, sig_len);
    out = malloc(in_len + 2 + strlen(s));
    sprintf(out, "%s.%s", in, s);
    free(h); free(p); free(s); free(in);
    return out;
}

static char *claims(long iat, long exp, const char *iss, const char *aud_json,
                    const char *extra)
{
    char *out = malloc(512);
    snprintf(out, 512, "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"7\",\"name\":\"alice\","
             "\"iat\":%ld,\"exp\":%ld%s}", iss, aud_json, iat, exp, extra ? extra : "");
    return out;
}

/* Verifies and returns the reason ("ok" when accepted). */
static const char *check(const struct auth_key *k, const char *token, long now)
{
    struct http_user u;
    const char *reason = "?";
    int rc = verify(k, ISS, token, now, &u, &reason);
    if (rc == 0)
        return u.id == 7 && strcmp(u.name, "alice") == 0 ? "ok" : "wrong user";
    return reason;
}

/* RFC 7638 section 3.1 example. */
TEST(auth_jwk_thumbprint_rfc7638)
{
    char kid[48];
    ASSERT_EQ(auth_jwk_thumbprint(
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhA"
        "I4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "AQAB", kid, sizeof kid), 0);
    ASSERT_STR_EQ(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(auth_key_load_and_kid)
{
    struct auth_key k;
    char err[256], *jwks;

    ASSERT_EQ(load(&k, TEST_KEY_A), 0);
    ASSERT_EQ(k.bits, 2048);
    /* computed independently from the modulus (openssl rsa -modulus) */
    ASSERT_STR_EQ(k.kid, "f3ABzsLCCmz9PzyyN6WFIxmC0rERXBH8i_GQMDPkl74");
    ASSERT_STR_EQ(k.e_b64, "AQAB");
    ASSERT(strstr(k.pub_pem, "-----BEGIN PUBLIC KEY-----") == k.pub_pem);
    jwks = auth_jwks_json(&k);
    ASSERT(jwks != NULL);
    ASSERT(strstr(jwks, "\"kid\":\"f3ABzsLCCmz9PzyyN6WFIxmC0rERXBH8i_GQMDPkl74\""));
    ASSERT(strstr(jwks, "\"alg\":\"RS256\"") && strstr(jwks, "\"use\":\"sig\"") &&
           strstr(jwks, "\"kty\":\"RSA\"") && strstr(jwks, "\"e\":\"AQAB\""));
    ASSERT(strstr(jwks, "PRIVATE") == NULL && strstr(jwks, "\"d\"") == NULL);
    free(jwks);
    auth_key_free(&k);

    /* the same key as PKCS#1: the same kid */
    ASSERT_EQ(load(&k, TEST_KEY_A_PKCS1), 0);
    ASSERT_STR_EQ(k.kid, "f3ABzsLCCmz9PzyyN6WFIxmC0rERXBH8i_GQMDPkl74");
    auth_key_free(&k);

    ASSERT_EQ(auth_key_from_pem(&k, TEST_KEY_SHORT, strlen(TEST_KEY_SHORT), err, sizeof err),
              -EINVAL);
    ASSERT(strstr(err, "1024") != NULL);
    ASSERT_EQ(auth_key_from_pem(&k, "not a key", 9, err, sizeof err), -EINVAL);
}

TEST(auth_key_generate_file)
{
    char dir[] = "/tmp/chatd-auth-XXXXXX", path[128], err[256];
    struct auth_key k;
    struct stat st;

    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/jwt.pem", dir);
    ASSERT_EQ(auth_key_generate(path, 2048, err, sizeof err), 0);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(auth_key_generate(path, 2048, err, sizeof err), -EEXIST);  /* never replaced */
    ASSERT_EQ(auth_key_load(&k, path, err, sizeof err), 0);
    ASSERT_EQ(k.bits, 2048);
    auth_key_free(&k);
    unlink(path);
    rmdir(dir);
}

TEST(auth_token_sign_and_verify)
{
    struct auth_key k;
    struct http_user u;
    const char *reason = NULL;
    char *tok = NULL;
    long now = (long)time(NULL);
    jwt_t *jwt = NULL;

    ASSERT_EQ(load(&k, TEST_KEY_A), 0);
    ASSERT_EQ(auth_token_sign(&k, ISS, 42, "bob", now, 900, &tok), 0);
    ASSERT_EQ(verify(&k, ISS, tok, now, &u, &reason), 0);
    ASSERT_EQ(u.id, 42);
    ASSERT_STR_EQ(u.name, "bob");
    ASSERT_EQ(u.token_exp, now + 900);
    /* the claims and header api.md promises */
    ASSERT_EQ(jwt_decode(&jwt, tok, (const unsigned char *)k.pub_pem, (int)k.pub_len), 0);
    ASSERT_EQ(jwt_get_alg(jwt), JWT_ALG_RS256);
    ASSERT_STR_EQ(jwt_get_header(jwt, "kid"), k.kid);
    ASSERT_STR_EQ(jwt_get_grant(jwt, "iss"), ISS);
    ASSERT_STR_EQ(jwt_get_grant(jwt, "aud"), "chatd");
    ASSERT_STR_EQ(jwt_get_grant(jwt, "sub"), "42");
    ASSERT(jwt_get_grant(jwt, "jti") != NULL && strlen(jwt_get_grant(jwt, "jti")) >= 16);
    ASSERT_EQ(jwt_get_grant_int(jwt, "iat"), now);
    ASSERT_EQ(jwt_get_grant_int(jwt, "exp"), now + 900);
    jwt_free(jwt);
    /* leeway: 59 s after exp still passes, 60 s does not */
    ASSERT_EQ(verify(&k, ISS, tok, now + 959, &u, &reason), 0);
    ASSERT(verify(&k, ISS, tok, now + 960, &u, &reason) < 0);
    ASSERT_STR_EQ(reason, "expired");
    ASSERT_EQ(u.id, 0);
    /* another issuer configured: refused */
    ASSERT(verify(&k, "other", tok, now, &u, &reason) < 0);
    ASSERT_STR_EQ(reason, "bad_issuer");
    free(tok);
    auth_key_free(&k);
}

TEST(auth_token_refuses_forgeries)
{
    struct auth_key k, other;
    long now = (long)time(NULL);
    char hdr[256], *c, *t;
    jwt_t *jwt = NULL;

    ASSERT_EQ(load(&k, TEST_KEY_A), 0);
    ASSERT_EQ(load(&other, TEST_KEY_B), 0);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k.kid);
    c = claims(now, now + 600, ISS, "\"chatd\"", NULL);

    t = forge("RS256", k.pkey, NULL, hdr, c);               /* the genuine article */
    ASSERT_STR_EQ(check(&k, t, now), "ok");
    t[strlen(t) - 5] = t[strlen(t) - 5] == 'A' ? 'B' : 'A';  /* one bit of signature */
    ASSERT_STR_EQ(check(&k, t, now), "bad_signature");
    free(t);

    t = forge("RS256", other.pkey, NULL, hdr, c);            /* another key, our kid */
    ASSERT_STR_EQ(check(&k, t, now), "bad_signature");
    free(t);

    t = forge("none", NULL, NULL, "{\"alg\":\"none\",\"typ\":\"JWT\"}", c);
    ASSERT_STR_EQ(check(&k, t, now), "bad_alg");
    free(t);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"none\",\"kid\":\"%s\"}", k.kid);
    t = forge("none", NULL, NULL, hdr, c);
    ASSERT_STR_EQ(check(&k, t, now), "bad_alg");
    free(t);

    /* HS256 keyed with the public PEM: libjwt 1.10.2 itself accepts it ... */
    snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k.kid);
    t = forge("HS256", NULL, k.pub_pem, hdr, c);
    ASSERT_EQ(jwt_decode(&jwt, t, (const unsigned char *)k.pub_pem, (int)k.pub_len), 0);
    jwt_free(jwt);
    /* ... the bearer check does not */
    ASSERT_STR_EQ(check(&k, t, now), "bad_alg");
    free(t);

    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"someone-else\"}");
    t = forge("RS256", k.pkey, NULL, hdr, c);
    ASSERT_STR_EQ(check(&k, t, now), "unknown_kid");
    free(t);
    t = forge("RS256", k.pkey, NULL, "{\"alg\":\"RS256\"}", c);   /* no kid */
    ASSERT_STR_EQ(check(&k, t, now), "unknown_kid");
    free(t);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS512\",\"kid\":\"%s\"}", k.kid);
    t = forge("RS256", k.pkey, NULL, hdr, c);
    ASSERT_STR_EQ(check(&k, t, now), "bad_alg");
    free(t);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[\"x\"]}", k.kid);
    t = forge("RS256", k.pkey, NULL, hdr, c);
    ASSERT_STR_EQ(check(&k, t, now), "malformed");
    free(t);
    free(c);
    auth_key_free(&other);
    auth_key_free(&k);
}

TEST(auth_token_refuses_bad_claims)
{
    static const struct { long iat_off, exp_off; const char *iss, *aud, *extra, *want; } cases[] = {
        {    0,   600, ISS, "\"chatd\"", NULL, "ok" },
        { -700,   -61, ISS, "\"chatd\"", NULL, "expired" },
        { -700,   -30, ISS, "\"chatd\"", NULL, "ok" },                  /* leeway */
        {  120,   900, ISS, "\"chatd\"", NULL, "not_yet_valid" },       /* iat ahead */
        {   30,   900, ISS, "\"chatd\"", NULL, "ok" },
        {    0,   600, ISS, "\"chatd\"", ",\"nbf\":9999999999", "not_yet_valid" },
        {    0,   600, "evil", "\"chatd\"", NULL, "bad_issuer" },
        {    0,   600, ISS, "\"other\"", NULL, "bad_audience" },
        {    0,   600, ISS, "[\"x\",\"chatd\"]", NULL, "ok" },
        {    0,   600, ISS, "[\"x\"]", NULL, "bad_audience" },
        {    0,   600, ISS, "null", NULL, "bad_audience" },
    };
    struct auth_key k;
    long now = (long)time(NULL);
    char hdr[256];

    ASSERT_EQ(load(&k, TEST_KEY_A), 0);
    snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", k.kid);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = claims(now + cases[i].iat_off, now + cases[i].exp_off, cases[i].iss,
                         cases[i].aud, cases[i].extra);
        char *t = forge("RS256", k.pkey, NULL, hdr, c);
        const char *got = check(&k, t, now);
        if (strcmp(got, cases[i].want) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: %s, want %s", i, got, cases[i].want);
        free(t);
        free(c);
    }
    /* claims of the wrong type or missing */
    static const char *const bad_payloads[] = {
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"7\",\"name\":\"alice\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"7\",\"name\":\"alice\",\"exp\":\"9999999999\"}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"7\",\"name\":\"alice\",\"exp\":9999999999.5}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":7,\"name\":\"alice\",\"exp\":9999999999}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"07\",\"name\":\"alice\",\"exp\":9999999999}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"-7\",\"name\":\"alice\",\"exp\":9999999999}",
        "{\"iss\":\"" ISS "\",\"aud\":\"chatd\",\"sub\":\"7\",\"exp\":9999999999}",
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        char *t = forge("RS256", k.pkey, NULL, hdr, bad_payloads[i]);
        const char *got = check(&k, t, now);
        if (strcmp(got, "ok") == 0)
            test_fail(__FILE__, __LINE__, "payload %zu accepted", i);
        free(t);
    }
    auth_key_free(&k);
}

TEST(auth_token_refuses_malformed)
{
    static const char *const bad[] = {
        "", "abc", "a.b", "a.b.c.d", ".b.c", "a..", "eyJhbGciOiJSUzI1NiJ9.e30.a+b",
        "eyJhbGciOiJSUzI1NiJ9.e30.a b", "bm90IGpzb24.e30.c2ln", "e30.e30.c2ln",
        "W10.e30.c2ln",
    };
    struct auth_key k;
    char *huge;

    ASSERT_EQ(load(&k, TEST_KEY_A), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *got = check(&k, bad[i], (long)time(NULL));
        if (strcmp(got, "ok") == 0)
            test_fail(__FILE__, __LINE__, "token %zu accepted", i);
    }
    ASSERT_STR_EQ(check(&k, "abc", 0), "malformed");
    huge = malloc(TOKEN_MAX + 10);
    memset(huge, 'a', TOKEN_MAX + 9);
    huge[TOKEN_MAX + 9] = '\0';
    huge[10] = huge[20] = '.';
    ASSERT_STR_EQ(check(&k, huge, 0), "malformed");
    free(huge);
    auth_key_free(&k);
}
