/* http_tls.c - the HTTP servers' TLS: --tls-cert, --tls-key and
 * --tls-client-ca loaded into an OpenSSL context once at start, so that a
 * bad file is refused there, naming the option, rather than at the first
 * handshake. */
#include "ds/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* The reason OpenSSL gave for the last failure, and clears its queue. */
static const char *httpSslReason(char *buf, size_t len) {
    unsigned long e = ERR_peek_error(); /* the first: the lowest level, the most telling */
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
    ERR_clear_error();
    return buf;
}

/* Whether file can be opened, so that a missing file says so plainly. */
static bool httpReadable(const char *option, const char *file, char *errbuf, size_t errlen) {
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        snprintf(errbuf, errlen, "--%s %s: %s", option, file, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static bool httpSslFail(const char *option, const char *file, const char *what, char *errbuf, size_t errlen) {
    char reason[256];
    snprintf(errbuf, errlen, "--%s %s: %s (%s)", option, file, what, httpSslReason(reason, sizeof(reason)));
    return false;
}

/* Mutual TLS: the handshake fails unless the client presents a
 * certificate that a CA of file signed. */
static bool httpLoadClientCa(SSL_CTX *ctx, const char *file, char *errbuf, size_t errlen) {
    if (!httpReadable("tls-client-ca", file, errbuf, errlen)) return false;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(file);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return httpSslFail("tls-client-ca", file, "holds no PEM CA certificate", errbuf, errlen);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* OpenSSL refuses to resume a verified session without one */
    static const unsigned char sid[] = "ds-http";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    return true;
}

static bool httpLoadTls(SSL_CTX *ctx, const dsHttpOptions *o, char *errbuf, size_t errlen) {
    static const h2o_iovec_t http1_only[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!httpReadable("tls-cert", o->tls_cert, errbuf, errlen)) return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1)
        return httpSslFail("tls-cert", o->tls_cert, "not a PEM certificate", errbuf, errlen);
    if (!httpReadable("tls-key", o->tls_key, errbuf, errlen)) return false;
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1)
        return httpSslFail("tls-key", o->tls_key, "not the PEM private key of --tls-cert", errbuf, errlen);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return httpSslFail("tls-key", o->tls_key, "is not the key of --tls-cert", errbuf, errlen);
    if (o->tls_client_ca != NULL && o->tls_client_ca[0] != '\0' &&
        !httpLoadClientCa(ctx, o->tls_client_ca, errbuf, errlen))
        return false;
    h2o_ssl_register_alpn_protocols(ctx, o->http2 ? h2o_http2_alpn_protocols : http1_only);
    return true;
}

bool dsHttpOptionsLoad(dsHttpOptions *o, char *errbuf, size_t errlen) {
    bool cert = o->tls_cert != NULL && o->tls_cert[0] != '\0', key = o->tls_key != NULL && o->tls_key[0] != '\0',
         ca = o->tls_client_ca != NULL && o->tls_client_ca[0] != '\0';
    dsHttpOptionsRelease(o);
    if (!cert && (key || ca)) {
        snprintf(errbuf, errlen, "--%s is set but --tls-cert is not (TLS needs a certificate)",
                 key ? "tls-key" : "tls-client-ca");
        return false;
    }
    if (!cert) return true;
    if (!key) {
        snprintf(errbuf, errlen, "--tls-cert is set but --tls-key (its private key) is not");
        return false;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        char reason[256];
        snprintf(errbuf, errlen, "cannot set up TLS: %s", httpSslReason(reason, sizeof(reason)));
        return false;
    }
    if (!httpLoadTls(ctx, o, errbuf, errlen)) {
        SSL_CTX_free(ctx);
        return false;
    }
    o->ssl_ctx = ctx;
    return true;
}

void dsHttpOptionsRelease(dsHttpOptions *o) {
    SSL_CTX_free(o->ssl_ctx);
    o->ssl_ctx = NULL;
}
