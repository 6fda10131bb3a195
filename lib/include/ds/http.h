/* http.h - the HTTP server scaffold every daemon shares: h2o 2.2 on a libuv
 * loop, one listening TCP socket (bound here, or inherited from a
 * supervisor), JSON responses, and per-route request metrics.
 *
 * Routing is the program's: every request reaches the one dsHttpHandler.
 * A handler answers now or later (from any callback on the same loop) with
 * dsHttpRespond*(). h2o frees a request whose client went away; state that
 * outlives the handler must be tied to req->pool with h2o_mem_alloc_shared()
 * and a dispose callback (see decision-api/src/writer.c).
 */
#ifndef DS_HTTP_H
#define DS_HTTP_H

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "ds/config.h"
#include "ds/metrics.h"

typedef struct dsHttpServer dsHttpServer;

/* What an operator sets on every public HTTP server, under the same option
 * names in every program: DS_HTTP_CONFIG_OPTIONS(o) expands to the rows of
 * a dsConfigOption table (o: a dsHttpOptions variable). The strings are the
 * table's (dsConfigFree() frees them); ssl_ctx is dsHttpOptionsLoad()'s. */
typedef struct dsHttpOptions {
    char *tls_cert;       /* PEM certificate chain; empty: plain HTTP */
    char *tls_key;        /* PEM private key of tls_cert */
    char *tls_client_ca;  /* PEM CA certificates; set: every client must present one they signed */
    long max_connections; /* served at once; further connections wait in the listen backlog */
    bool http2;           /* serve HTTP/2 too (off: h2o 2.2.5 predates the 2023 rapid-reset fixes) */
    SSL_CTX *ssl_ctx;     /* filled by dsHttpOptionsLoad(); NULL: plain HTTP */
} dsHttpOptions;

#define DS_HTTP_CONFIG_OPTIONS(o)                                                                                    \
    {"tls-cert", DS_CFG_STRING, "", "PEM certificate chain to serve HTTPS with (empty: plain HTTP)", &(o).tls_cert, \
     0, 0},                                                                                                          \
    {"tls-key", DS_CFG_STRING, "", "PEM private key of tls-cert", &(o).tls_key, 0, 0},                              \
    {"tls-client-ca", DS_CFG_STRING, "",                                                                             \
     "PEM CA certificates: every client must present a certificate one of them signed (mutual TLS; empty: none "    \
     "asked)", &(o).tls_client_ca, 0, 0},                                                                            \
    {"max-connections", DS_CFG_INT, "1024",                                                                          \
     "connections served at once; further ones wait in the listen backlog until one closes", &(o).max_connections,  \
     1, 1000000},                                                                                                    \
    {"http2", DS_CFG_BOOL, "false",                                                                                  \
     "also serve HTTP/2 (TLS: ALPN h2; plain: prior knowledge or Upgrade: h2c); off because this h2o lacks the "     \
     "2023 rapid-reset fixes", &(o).http2, 0, 0}

/* Checks the TLS options and loads their files into o->ssl_ctx (nothing to
 * load without tls-cert). false with errbuf naming the option and the file
 * at fault. Call at start-up, before the server is started with o. */
bool dsHttpOptionsLoad(dsHttpOptions *o, char *errbuf, size_t errlen);
/* Frees o->ssl_ctx (a server started with o keeps its own reference). */
void dsHttpOptionsRelease(dsHttpOptions *o);

typedef struct dsHttpConfig {
    const char *host;      /* listen address, e.g. "0.0.0.0" or "127.0.0.1" */
    int port;
    size_t max_body_bytes; /* h2o answers 413 itself past this */
    int backlog;
    /* Borrowed for the call only; NULL: plain HTTP/1.1 with no
     * connection cap (internal endpoints such as a metrics port). */
    const dsHttpOptions *opts;
} dsHttpConfig;

/* Called once per request on the loop thread. The handler must eventually
 * answer with one dsHttpRespond*() call (unless the client goes away first). */
typedef void dsHttpHandler(void *app, h2o_req_t *req);

/* Binds and starts accepting. metrics may be NULL. Returns NULL and writes the
 * reason into errbuf on failure. The server is freed by dsHttpServerFree()
 * after the loop has stopped. */
dsHttpServer *dsHttpServerStart(uv_loop_t *loop, const dsHttpConfig *cfg, dsHttpHandler *handler,
                                void *app, dsMetrics *metrics, char *errbuf, size_t errlen);
/* Like dsHttpServerStart(), but accepts on listen_fd, an inherited socket
 * already bound and listening (systemd socket activation, or a supervisor
 * holding the socket across restarts so that a new process takes over
 * before the old one exits); cfg's host and port are then unused, and the
 * server owns the descriptor. listen_fd -1 binds cfg's host:port. Fails
 * with a clear errbuf if the descriptor is not a listening TCP socket.
 * (A parameter, not a dsHttpConfig field: the other daemons' positional
 * initializers would not compile with -Wextra -Werror.) */
dsHttpServer *dsHttpServerStartOn(uv_loop_t *loop, const dsHttpConfig *cfg, int listen_fd, dsHttpHandler *handler,
                                  void *app, dsMetrics *metrics, char *errbuf, size_t errlen);
/* Stops accepting new connections; open connections are left to finish.
 * An inherited socket stays open in every other process holding it, so
 * connections waiting in its backlog are accepted there, not refused. */
void dsHttpServerStopAccepting(dsHttpServer *s);
/* Stops accepting and asks every connection to close: idle keep-alive
 * connections at once, busy ones after their response (HTTP/2: GOAWAY). */
void dsHttpServerShutdown(dsHttpServer *s);
/* After dsHttpServerShutdown, once every response the program owes has been
 * sent: closes the connections left idle between requests (h2o 2.2 keeps
 * HTTP/1 keep-alive connections open through a shutdown). A connection that
 * has not received its first request yet (accepted just before the
 * shutdown), or has part of a request waiting, is left open: h2o answers
 * that request and closes it after the response. A request that starts
 * arriving on an idle connection at this very moment may still be cut off
 * (its client retries it: the connection was reused), so call it only when
 * no work is pending. */
void dsHttpServerCloseIdle(dsHttpServer *s);
/* Whether no connection is open (after dsHttpServerShutdown, the moment to
 * stop the loop). */
bool dsHttpServerIdle(dsHttpServer *s);
/* Frees the server. With connections still open (h2o 2.2 cannot dispose a
 * context under them) it logs and leaves the memory to the exiting process. */
void dsHttpServerFree(dsHttpServer *s);

/* Whether fd is a listening TCP socket (what dsHttpServerStartOn() needs);
 * false with the reason in errbuf. For a program that starts accepting
 * later but wants to refuse a wrong descriptor at once. */
bool dsHttpCheckListenFd(int fd, char *errbuf, size_t errlen);
/* The listening socket systemd passes (sd_listen_fds() semantics, without
 * libsystemd): fd 3 when LISTEN_PID is this process and LISTEN_FDS >= 1,
 * else -1. Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so a child does
 * not take the socket for its own, and marks fd 3 close-on-exec. */
int dsHttpSystemdListenFd(void);
/* Where the server accepts, for the log: "127.0.0.1:8080" (IPv6 in
 * brackets); "?" if unknown. */
void dsHttpServerAddress(dsHttpServer *s, char *out, size_t outlen);

/* Extra response headers for dsHttpRespond(); name and value are copied. */
typedef struct dsHttpHeader {
    const char *name;
    const char *value;
} dsHttpHeader;

/* Sends a complete response. body is copied into the request pool. route is
 * a static label for the request metrics ("POST /v1/decisions"). */
void dsHttpRespond(dsHttpServer *s, h2o_req_t *req, const char *route, int status,
                   const char *content_type, const char *body, size_t len,
                   const dsHttpHeader *headers, size_t nheaders);
/* Sends body (a JSON value; the reference is stolen) as application/json. */
void dsHttpRespondJson(dsHttpServer *s, h2o_req_t *req, const char *route, int status, json_t *body,
                       const dsHttpHeader *headers, size_t nheaders);
/* Sends {"error":code,"message":message[,"field":field]}; field may be NULL
 * or "". Adds Retry-After when retry_after_s > 0. Any byte of message or
 * field that is not part of valid UTF-8 is sent as the text "\xNN", so an
 * error that echoes a client's bytes always renders. */
void dsHttpRespondError(dsHttpServer *s, h2o_req_t *req, const char *route, int status,
                        const char *code, const char *message, const char *field, int retry_after_s);

/* src[0..len), bytes a client sent, ready to quote in an error message:
 * valid UTF-8 kept, any other byte as the text "\xNN", and cut to at most
 * max bytes between two characters, never inside one (then "..." follows).
 * NUL-terminated, in req's pool. */
const char *dsHttpQuote(h2o_req_t *req, const char *src, size_t len, size_t max);

/* Sends 405 with an Allow header (route label "other"). */
void dsHttpRespondMethodNotAllowed(dsHttpServer *s, h2o_req_t *req, const char *allow);
/* Sends the registry in the Prometheus text format (500 if it cannot be
 * rendered). */
void dsHttpRespondMetrics(dsHttpServer *s, h2o_req_t *req, const dsMetrics *m);

/* Request helpers. */
/* Whether path is exactly literal. */
bool dsHttpPathIs(const h2o_iovec_t *path, const char *literal);
/* Whether the Content-Type is application/json (parameters such as charset
 * allowed). */
bool dsHttpBodyIsJson(const h2o_req_t *req);
bool dsHttpMethodIs(const h2o_req_t *req, const char *method);
/* The value of a request header (case-insensitive name); false if absent. */
bool dsHttpHeaderGet(const h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *out);

/* Iterates the query string: call with *pos = 0 first; returns false at the
 * end. name and value are percent-decoded ('+' is a space) into the request
 * pool. Returns false and sets *bad = true on a malformed escape. */
bool dsHttpQueryNext(h2o_req_t *req, size_t *pos, h2o_iovec_t *name, h2o_iovec_t *value, bool *bad);

/* Percent-decodes part of the raw path (req->path, not path_normalized,
 * which keeps escapes such as %2F) into the request pool; a '+' stays a
 * '+'. false on a malformed escape. */
bool dsHttpUnescapePath(h2o_req_t *req, const char *src, size_t len, h2o_iovec_t *out);

#endif
