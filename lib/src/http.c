/* http.c - h2o-on-libuv server scaffold: listener, accept loop, connection
 * cap, response helpers and request metrics shared by every daemon (TLS in
 * http_tls.c, reading requests in http_request.c). */
#include "ds/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "ds/log.h"

struct dsHttpServer {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening;
    dsHttpHandler *handler;
    void *app;
    dsMetricFamily *requests;  /* http_requests_total{route,status} */
    dsMetricFamily *durations; /* http_request_duration_seconds{route} */
    dsMetric *m_open;          /* http_connections_open */
    dsMetric *m_held;          /* http_accept_paused_total */
    size_t open;               /* accepted connections not yet closed */
    size_t max_open;           /* 0: no cap */
    bool held;                 /* a connection waits in libuv for a slot (accepting paused) */
    struct httpConn *conns;    /* those connections, for dsHttpServerCloseIdle */
};

/* An accepted connection's handle, with the server to tell when it closes. */
typedef struct httpConn {
    uv_tcp_t tcp;      /* first: libuv hands back this pointer */
    h2o_socket_t *sock; /* h2o's, valid until the close callback; NULL if accept failed */
    dsHttpServer *server;
    struct httpConn *prev, *next;
} httpConn;

/* struct tcp_info as Linux fills it up to tcpi_bytes_received (Linux 4.1):
 * glibc's <netinet/tcp.h> ends at tcpi_total_retrans, and <linux/tcp.h>
 * cannot be included beside it. The kernel's layout only ever grows. */
typedef struct httpTcpInfo {
    struct tcp_info base;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
} httpTcpInfo;
_Static_assert(offsetof(httpTcpInfo, pacing_rate) == 104, "glibc's struct tcp_info is not the kernel's head");

/* h2o hands us a handler struct; we keep the server pointer beside it. */
typedef struct httpHandler {
    h2o_handler_t super;
    dsHttpServer *server;
} httpHandler;

/* The filter that turns h2o's own plain-text errors into JSON. */
typedef struct httpErrorFilter {
    h2o_filter_t super;
    dsHttpServer *server;
} httpErrorFilter;

typedef struct httpErrorStream {
    h2o_ostream_t super;
    dsHttpServer *server;
} httpErrorStream;

static const double httpLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};

static bool httpSameLength(const char *a, size_t alen, const char *b, size_t blen) {
    size_t x = h2o_strtosize(a, alen), y = h2o_strtosize(b, blen);
    return x != SIZE_MAX && x == y;
}

/* Why the request's framing is ambiguous, or NULL. h2o 2.2 reads the body
 * by the first Content-Length header, ignores any other, and lets
 * Transfer-Encoding win over Content-Length: a proxy in front that framed
 * the same bytes otherwise would see another request in the body (request
 * smuggling). h2o keeps none of these headers in req->headers, so this
 * reads the head h2o parsed, which stays at the start of the connection's
 * input buffer until the response is sent. */
static const char *httpFramingError(h2o_req_t *req) {
    h2o_socket_t *sock = req->version < 0x200 && req->conn->callbacks->get_socket != NULL
                             ? req->conn->callbacks->get_socket(req->conn)
                             : NULL;
    if (sock == NULL || sock->input == NULL) return NULL;
    const char *p = sock->input->bytes, *end = p + (sock->input->size < H2O_MAX_REQLEN ? sock->input->size : H2O_MAX_REQLEN);
    const char *cl = NULL;
    size_t cllen = 0, nte = 0;
    bool first = true;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) break;
        size_t len = (size_t)(eol - p) - (eol > p && eol[-1] == '\r');
        const char *line = p;
        p = eol + 1;
        if (first) { /* the request line */
            first = false;
            continue;
        }
        if (len == 0) break; /* end of the head */
        const char *colon = memchr(line, ':', len);
        if (colon == NULL || line[0] == ' ' || line[0] == '\t') continue; /* folded continuation */
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *vend = line + len;
        while (v < vend && (*v == ' ' || *v == '\t')) v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
        if (h2o_lcstris(line, nlen, H2O_STRLIT("transfer-encoding"))) {
            nte++;
        } else if (h2o_lcstris(line, nlen, H2O_STRLIT("content-length"))) {
            if (cl != NULL && !httpSameLength(cl, cllen, v, (size_t)(vend - v)))
                return "two different Content-Length headers";
            cl = v, cllen = (size_t)(vend - v);
        }
    }
    if (nte > 1) return "more than one Transfer-Encoding header";
    if (nte > 0 && cl != NULL) return "both Content-Length and Transfer-Encoding";
    return NULL;
}

static int httpOnReq(h2o_handler_t *self, h2o_req_t *req) {
    dsHttpServer *s = ((httpHandler *)self)->server;
    const char *framing = httpFramingError(req);
    if (framing != NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the request has %s, so where its body ends is ambiguous", framing);
        req->http1_is_persistent = 0; /* what follows on the connection cannot be trusted either */
        dsHttpRespondError(s, req, "other", 400, "bad_request", msg, NULL, 0);
        return 0;
    }
    s->handler(s->app, req);
    return 0;
}

static void httpServe(dsHttpServer *s);

static void httpOnConnClosed(uv_handle_t *h) {
    httpConn *conn = (httpConn *)h;
    dsHttpServer *s = conn->server;
    s->open--;
    if (s->m_open) dsMetricSet(s->m_open, (double)s->open);
    if (conn->prev) conn->prev->next = conn->next;
    else s->conns = conn->next;
    if (conn->next) conn->next->prev = conn->prev;
    free(conn);
    /* A slot is free: serve the connection libuv holds, which also makes
     * libuv watch the listening socket again. */
    if (s->held && s->open < s->max_open) {
        s->held = false;
        httpServe(s);
    }
}

/* Takes the connection libuv has accepted and hands it to h2o. */
static void httpServe(dsHttpServer *s) {
    uv_stream_t *listener = (uv_stream_t *)&s->listener;
    httpConn *conn = h2o_mem_alloc(sizeof(*conn));
    conn->sock = NULL;
    conn->server = s;
    conn->prev = NULL;
    conn->next = s->conns;
    if (s->conns) s->conns->prev = conn;
    s->conns = conn;
    s->open++;
    if (s->m_open) dsMetricSet(s->m_open, (double)s->open);
    uv_tcp_init(listener->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, httpOnConnClosed);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, httpOnConnClosed);
    h2o_accept(&s->accept_ctx, conn->sock);
}

static void httpOnAccept(uv_stream_t *listener, int status) {
    dsHttpServer *s = listener->data;
    if (status != 0) return;
    if (s->max_open > 0 && s->open >= s->max_open) {
        /* At the cap. A connection the callback does not uv_accept() stays
         * with libuv, which then stops watching the listening socket: the
         * next ones wait in the kernel's backlog. httpOnConnClosed serves it. */
        s->held = true;
        if (s->m_held) dsMetricInc(s->m_held, 1);
        return;
    }
    httpServe(s);
}

static void httpMetricsSetup(dsHttpServer *s, dsMetrics *m) {
    if (m == NULL) return;
    static const char *const rs[] = {"route", "status"};
    static const char *const r[] = {"route"};
    s->requests = dsMetricsFamily(m, "http_requests_total", "HTTP requests answered, by route and status.",
                                  DS_METRIC_COUNTER, rs, 2, NULL, 0);
    s->durations = dsMetricsFamily(m, "http_request_duration_seconds",
                                   "Time from request start to response, by route.", DS_METRIC_HISTOGRAM, r, 1,
                                   httpLatencyBuckets, sizeof(httpLatencyBuckets) / sizeof(httpLatencyBuckets[0]));
    s->m_open = dsMetricsGauge(m, "http_connections_open", "HTTP connections open (max-connections caps them).");
    s->m_held = dsMetricsCounter(m, "http_accept_paused_total",
                                 "Times accepting paused because max-connections were open.");
}

static void httpFreeOnClose(uv_handle_t *h) {
    dsHttpServerFree(h->data);
}

/* An inherited descriptor must be what we would have made ourselves: a
 * listening TCP socket. Anything else would fail later and less clearly
 * (uv_listen on a UDP socket, accept on a socket nobody called listen on). */
bool dsHttpCheckListenFd(int fd, char *errbuf, size_t errlen) {
    int type = 0, domain = 0, accepting = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        snprintf(errbuf, errlen, "listen fd %d is not a socket: %s", fd, strerror(errno));
        return false;
    }
    len = sizeof(domain);
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof(accepting);
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len);
    if (type != SOCK_STREAM || (domain != AF_INET && domain != AF_INET6)) {
        snprintf(errbuf, errlen, "listen fd %d is not a TCP socket", fd);
        return false;
    }
    if (!accepting) {
        snprintf(errbuf, errlen, "listen fd %d is a TCP socket but not listening (listen() was not called on it)", fd);
        return false;
    }
    return true;
}

/* Opens s->listener on the inherited socket, or on a new one bound to addr. */
static int httpOpenListener(dsHttpServer *s, int listen_fd, const struct sockaddr_in *addr) {
    if (listen_fd >= 0) return uv_tcp_open(&s->listener, listen_fd);
    return uv_tcp_bind(&s->listener, (const struct sockaddr *)addr, 0);
}

static const char *httpErrorCode(int status) {
    switch (status) {
    case 413: return "body_too_large";
    case 417: return "expectation_failed";
    default: return status >= 500 ? "internal" : "bad_request";
    }
}

/* A sentence for each error h2o 2.2 answers by itself (lib/http1.c,
 * lib/http2/); its own text otherwise. */
static void httpErrorMessage(dsHttpServer *s, const char *h2o_text, size_t len, char *out, size_t outlen) {
    if (h2o_memis(h2o_text, len, H2O_STRLIT("request entity is too large")))
        snprintf(out, outlen, "the body is larger than this server accepts (%zu bytes)",
                 s->globalconf.max_request_entity_size);
    else if (h2o_memis(h2o_text, len, H2O_STRLIT("broken chunked-encoding")))
        snprintf(out, outlen, "the chunked transfer-encoding of the body is malformed");
    else if (h2o_memis(h2o_text, len, H2O_STRLIT("broken content-length header")))
        snprintf(out, outlen, "Content-Length is not a decimal number of bytes");
    else if (h2o_memis(h2o_text, len, H2O_STRLIT("unknown transfer-encoding")))
        snprintf(out, outlen, "the only Transfer-Encoding accepted is chunked");
    else if (h2o_memis(h2o_text, len, H2O_STRLIT("unknown expectation")))
        snprintf(out, outlen, "the only Expect accepted is 100-continue");
    else
        snprintf(out, outlen, "%.*s", (int)(len > 200 ? 200 : len), h2o_text);
}

/* Replaces the plain-text body of h2o's own error with the JSON every
 * other error has. The final ostream writes the headers on its first
 * do_send, so content-length and content-type can still change here. */
static void httpErrorDoSend(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *in, size_t inlen, h2o_send_state_t state) {
    httpErrorStream *st = (httpErrorStream *)self;
    char msg[300], *body = NULL;
    if (!h2o_send_state_is_in_progress(state)) { /* h2o_send_inline(): the whole text at once */
        h2o_iovec_t text = inlen > 0 ? in[0] : h2o_iovec_init(req->res.reason, strlen(req->res.reason));
        httpErrorMessage(st->server, text.base, text.len, msg, sizeof(msg));
        json_t *j = json_pack("{s:s, s:s}", "error", httpErrorCode(req->res.status), "message", msg);
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    if (body == NULL) { /* out of memory: h2o's text it is */
        h2o_ostream_send_next(self, req, in, inlen, state);
        return;
    }
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, SIZE_MAX);
    free(body);
    req->res.content_length = buf.len;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct != -1) req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    /* HEAD: h2o sent no body, and neither do we */
    h2o_ostream_send_next(self, req, inlen > 0 ? &buf : NULL, inlen > 0 ? 1 : 0, state);
}

static void httpErrorOnSetup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot) {
    if (req->res.status >= 400) {
        httpErrorStream *st = (httpErrorStream *)h2o_add_ostream(req, sizeof(*st), slot);
        st->super.do_send = httpErrorDoSend;
        st->server = ((httpErrorFilter *)self)->server;
        slot = &st->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

static void httpContextInit(dsHttpServer *s, uv_loop_t *loop, const dsHttpConfig *cfg) {
    h2o_config_init(&s->globalconf);
    s->globalconf.max_request_entity_size = cfg->max_body_bytes;
    /* HTTP/2 only when asked: h2o 2.2.5 predates the 2023 rapid-reset
     * fixes. Off, this flag also refuses the prior-knowledge preface. */
    s->globalconf.http1.upgrade_to_http2 = cfg->opts != NULL && cfg->opts->http2;
    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    httpHandler *h = (httpHandler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = httpOnReq;
    h->server = s;
    /* h2o answers an error it finds before routing (a malformed body, a
     * body over the limit) through the host's fallback path: every
     * response there is h2o's own. */
    httpErrorFilter *f = (httpErrorFilter *)h2o_create_filter(&host->fallback_path, sizeof(*f));
    f->super.on_setup_ostream = httpErrorOnSetup;
    f->server = s;
    h2o_context_init(&s->ctx, loop, &s->globalconf);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    if (cfg->opts != NULL && cfg->opts->ssl_ctx != NULL) {
        SSL_CTX_up_ref(cfg->opts->ssl_ctx);
        s->accept_ctx.ssl_ctx = cfg->opts->ssl_ctx;
    }
    s->max_open = cfg->opts != NULL ? (size_t)cfg->opts->max_connections : 0;
}

dsHttpServer *dsHttpServerStart(uv_loop_t *loop, const dsHttpConfig *cfg, dsHttpHandler *handler,
                                void *app, dsMetrics *metrics, char *errbuf, size_t errlen) {
    return dsHttpServerStartOn(loop, cfg, -1, handler, app, metrics, errbuf, errlen);
}

dsHttpServer *dsHttpServerStartOn(uv_loop_t *loop, const dsHttpConfig *cfg, int listen_fd, dsHttpHandler *handler,
                                  void *app, dsMetrics *metrics, char *errbuf, size_t errlen) {
    dsHttpServer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->app = app;
    if (cfg->opts != NULL && cfg->opts->tls_cert != NULL && cfg->opts->tls_cert[0] != '\0' &&
        cfg->opts->ssl_ctx == NULL) {
        snprintf(errbuf, errlen, "--tls-cert is set but dsHttpOptionsLoad() was not called");
        free(s);
        return NULL;
    }
    httpMetricsSetup(s, metrics);
    httpContextInit(s, loop, cfg);

    bool inherited = listen_fd >= 0;
    char where[300];
    if (inherited) snprintf(where, sizeof(where), "inherited fd %d", listen_fd);
    else snprintf(where, sizeof(where), "%s:%d", cfg->host, cfg->port);
    struct sockaddr_in addr;
    int rc = 0;
    if (inherited) {
        if (!dsHttpCheckListenFd(listen_fd, errbuf, errlen)) goto failed;
    } else if ((rc = uv_ip4_addr(cfg->host, cfg->port, &addr)) != 0) {
        snprintf(errbuf, errlen, "invalid listen address %s: %s", where, uv_strerror(rc));
        goto failed;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    if ((rc = httpOpenListener(s, listen_fd, &addr)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, cfg->backlog > 0 ? cfg->backlog : 1024, httpOnAccept)) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", where, uv_strerror(rc));
        /* The handle lives inside s: free s only once libuv has closed it. */
        uv_close((uv_handle_t *)&s->listener, httpFreeOnClose);
        return NULL;
    }
    return s;

failed:
    dsHttpServerFree(s);
    return NULL;
}

int dsHttpSystemdListenFd(void) {
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long n = 0;
    if (pid != NULL && fds != NULL) {
        char *end;
        long p = strtol(pid, &end, 10);
        if (end == pid || *end != '\0' || p != (long)getpid()) n = 0; /* meant for another process */
        else if ((n = strtol(fds, &end, 10)) < 0 || end == fds || *end != '\0') n = 0;
    }
    /* Like sd_listen_fds(1): the variables describe this process only, and
     * a child reading them would serve a socket it does not own. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n < 1) return -1;
    if (n > 1) dsLogWarn("systemd passed %ld sockets; accepting on the first (fd 3) only", n);
    /* SD_LISTEN_FDS_START; close-on-exec as sd_listen_fds() sets it. */
    fcntl(3, F_SETFD, FD_CLOEXEC);
    return 3;
}

void dsHttpServerAddress(dsHttpServer *s, char *out, size_t outlen) {
    struct sockaddr_storage a;
    int len = sizeof(a);
    char ip[INET6_ADDRSTRLEN];
    snprintf(out, outlen, "?");
    if (!s->listening || uv_is_closing((uv_handle_t *)&s->listener) ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&a, &len) != 0)
        return;
    if (a.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%d", ip, ntohs(in->sin_port));
    } else if (a.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a;
        uv_ip6_name(in6, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%d", ip, ntohs(in6->sin6_port));
    }
}

void dsHttpServerStopAccepting(dsHttpServer *s) {
    if (!s->listening || uv_is_closing((uv_handle_t *)&s->listener)) return;
    /* The connection held at the cap has been accepted already: closing
     * the listener would reset it, and no other process could take it. */
    if (s->held) {
        s->held = false;
        httpServe(s);
    }
    uv_close((uv_handle_t *)&s->listener, NULL);
}

void dsHttpServerShutdown(dsHttpServer *s) {
    dsHttpServerStopAccepting(s);
    h2o_context_request_shutdown(&s->ctx);
}

/* Whether the connection is between requests: it has received something
 * (a request, answered by now), and nothing of a next one has arrived,
 * neither in h2o's buffer nor in the kernel's. A connection that has not
 * received its first request yet is not idle: its client connected just
 * before the shutdown and is sending that request now, so cutting it off
 * would fail a request no retry logic covers (the connection was not
 * reused). h2o answers it and then closes the connection itself. With
 * TLS the handshake counts as received bytes, so a connection that has
 * finished its handshake but not yet sent its first request is taken for
 * idle. */
static bool httpConnIdle(httpConn *c, int fd) {
    if (c->sock == NULL || (c->sock->input != NULL && c->sock->input->size > 0)) return false;
    int unread = 0;
    if (ioctl(fd, FIONREAD, &unread) == 0 && unread > 0) return false;
    httpTcpInfo ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < sizeof(ti)) return true; /* cannot tell */
    return ti.bytes_received > 0;
}

void dsHttpServerCloseIdle(dsHttpServer *s) {
    /* h2o 2.2 keeps an idle HTTP/1 keep-alive connection open through a
     * shutdown request; ending its read side makes h2o see the client's EOF
     * and close it the ordinary way, while anything still being written goes out. */
    for (httpConn *c = s->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_is_closing((uv_handle_t *)&c->tcp) || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) continue;
        if (httpConnIdle(c, fd)) shutdown(fd, SHUT_RD);
    }
}

bool dsHttpServerIdle(dsHttpServer *s) {
    return s->open == 0;
}

void dsHttpServerFree(dsHttpServer *s) {
    if (s == NULL) return;
    if (!dsHttpServerIdle(s) || !h2o_linklist_is_empty(&s->ctx.http1.req_timeout._entries)) {
        /* h2o 2.2 asserts when a context is disposed under open connections
         * (their timers are still linked); the process is ending, so leave it. */
        dsLogWarn("HTTP: connections still open at exit; closing them with the process");
        return;
    }
    /* request_shutdown arms HTTP/2's graceful-shutdown timer; h2o 2.2 leaves
     * it linked, and dispose asserts that every timer list is empty. */
    if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&s->ctx);
    h2o_config_dispose(&s->globalconf);
    SSL_CTX_free(s->accept_ctx.ssl_ctx);
    free(s);
}

static const char *httpReason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

static void httpRecord(dsHttpServer *s, h2o_req_t *req, const char *route, int status) {
    if (s->requests == NULL) return;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    const char *rs[] = {route, code};
    dsMetricInc(dsMetricGet(s->requests, rs), 1);
    struct timeval now;
    gettimeofday(&now, NULL);
    double secs = (double)h2o_timeval_subtract(&req->timestamps.request_begin_at, &now) / 1e6;
    const char *r[] = {route};
    dsMetricObserve(dsMetricGet(s->durations, r), secs);
}

void dsHttpRespond(dsHttpServer *s, h2o_req_t *req, const char *route, int status, const char *content_type,
                   const char *body, size_t len, const dsHttpHeader *headers, size_t nheaders) {
    static h2o_generator_t generator = {NULL, NULL};
    httpRecord(s, req, route, status);
    req->res.status = status;
    req->res.reason = httpReason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    for (size_t i = 0; i < nheaders; i++) {
        h2o_iovec_t v = h2o_strdup(&req->pool, headers[i].value, SIZE_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers, headers[i].name, strlen(headers[i].name), 1, NULL,
                              v.base, v.len);
    }
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, dsHttpMethodIs(req, "HEAD") ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void dsHttpRespondJson(dsHttpServer *s, h2o_req_t *req, const char *route, int status, json_t *body,
                       const dsHttpHeader *headers, size_t nheaders) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char oom[] = "{\"error\":\"internal\",\"message\":\"cannot render the response\"}";
        dsHttpRespond(s, req, route, 500, "application/json", oom, sizeof(oom) - 1, NULL, 0);
        return;
    }
    dsHttpRespond(s, req, route, status, "application/json", text, strlen(text), headers, nheaders);
    free(text);
}

/* The length of the UTF-8 character at s[0..len) as jansson accepts it
 * (shortest form, no surrogates, at most U+10FFFF, no NUL); 0 if invalid. */
static size_t httpUtf8Len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0x01 && c <= 0x7F) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (len < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* Copies src[0..len) into out (room for outlen bytes and a NUL) as valid
 * UTF-8: every byte that is not part of a valid character becomes the
 * text "\xNN". Past outlen it stops before the character or escape that
 * would not fit, never inside one. Returns the bytes of src consumed. */
static size_t httpUtf8Copy(const char *src, size_t len, char *out, size_t outlen, size_t *outn) {
    const unsigned char *p = (const unsigned char *)src;
    size_t i = 0, n = 0;
    while (i < len) {
        size_t c = httpUtf8Len(p + i, len - i);
        size_t need = c ? c : 4;
        if (n + need > outlen) break;
        if (c) memcpy(out + n, p + i, c);
        else snprintf(out + n, 5, "\\x%02X", p[i]);
        n += need;
        i += c ? c : 1;
    }
    out[n] = '\0';
    *outn = n;
    return i;
}

const char *dsHttpQuote(h2o_req_t *req, const char *src, size_t len, size_t max) {
    char *out = h2o_mem_alloc_pool(&req->pool, max + sizeof("..."));
    size_t n;
    if (httpUtf8Copy(src, len, out, max, &n) < len) memcpy(out + n, "...", sizeof("..."));
    return out;
}

/* A JSON string of text, with any invalid byte escaped: a message may echo
 * what a client sent, and the answer must render whatever that was. */
static json_t *httpJsonText(const char *text) {
    json_t *j = json_string(text);
    if (j != NULL) return j;
    size_t len = strlen(text), n;
    char *safe = malloc(len * 4 + 1);
    if (safe == NULL) return NULL;
    httpUtf8Copy(text, len, safe, len * 4, &n);
    j = json_stringn(safe, n);
    free(safe);
    return j;
}

void dsHttpRespondError(dsHttpServer *s, h2o_req_t *req, const char *route, int status, const char *code,
                        const char *message, const char *field, int retry_after_s) {
    json_t *body = json_pack("{s:s, s:o*}", "error", code, "message", httpJsonText(message));
    if (body != NULL && field != NULL && field[0] != '\0') json_object_set_new(body, "field", httpJsonText(field));
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", retry_after_s);
    dsHttpHeader h = {"retry-after", retry};
    dsHttpRespondJson(s, req, route, status, body, &h, retry_after_s > 0 ? 1 : 0);
}

void dsHttpRespondMethodNotAllowed(dsHttpServer *s, h2o_req_t *req, const char *allow) {
    dsHttpHeader h = {"allow", allow};
    json_t *body = json_pack("{s:s, s:s}", "error", "method_not_allowed", "message", "method not allowed on this path");
    dsHttpRespondJson(s, req, "other", 405, body, &h, 1);
}

void dsHttpRespondMetrics(dsHttpServer *s, h2o_req_t *req, const dsMetrics *m) {
    size_t len;
    char *text = dsMetricsRender(m, &len);
    if (text == NULL) {
        dsHttpRespondError(s, req, "GET /metrics", 500, "internal", "out of memory", NULL, 0);
        return;
    }
    dsHttpRespond(s, req, "GET /metrics", 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL, 0);
    free(text);
}
