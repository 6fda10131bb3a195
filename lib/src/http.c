/* http.c - h2o-on-libuv server scaffold: listener, accept loop, response
 * helpers and request metrics shared by every daemon. */
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
    size_t open;               /* accepted connections not yet closed */
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

static const double httpLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};

static int httpOnReq(h2o_handler_t *self, h2o_req_t *req) {
    dsHttpServer *s = ((httpHandler *)self)->server;
    s->handler(s->app, req);
    return 0;
}

static void httpOnConnClosed(uv_handle_t *h) {
    httpConn *conn = (httpConn *)h;
    conn->server->open--;
    if (conn->prev) conn->prev->next = conn->next;
    else conn->server->conns = conn->next;
    if (conn->next) conn->next->prev = conn->prev;
    free(conn);
}

static void httpOnAccept(uv_stream_t *listener, int status) {
    dsHttpServer *s = listener->data;
    if (status != 0) return;
    httpConn *conn = h2o_mem_alloc(sizeof(*conn));
    conn->sock = NULL;
    conn->server = s;
    conn->prev = NULL;
    conn->next = s->conns;
    if (s->conns) s->conns->prev = conn;
    s->conns = conn;
    s->open++;
    uv_tcp_init(listener->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, httpOnConnClosed);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, httpOnConnClosed);
    h2o_accept(&s->accept_ctx, conn->sock);
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

static void httpContextInit(dsHttpServer *s, uv_loop_t *loop, const dsHttpConfig *cfg) {
    h2o_config_init(&s->globalconf);
    s->globalconf.max_request_entity_size = cfg->max_body_bytes;
    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    httpHandler *h = (httpHandler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = httpOnReq;
    h->server = s;
    h2o_context_init(&s->ctx, loop, &s->globalconf);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
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
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener)) uv_close((uv_handle_t *)&s->listener, NULL);
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
 * reused). h2o answers it and then closes the connection itself. */
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

void dsHttpRespondError(dsHttpServer *s, h2o_req_t *req, const char *route, int status, const char *code,
                        const char *message, const char *field, int retry_after_s) {
    json_t *body = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (body != NULL && field != NULL && field[0] != '\0') json_object_set_new(body, "field", json_string(field));
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

bool dsHttpPathIs(const h2o_iovec_t *path, const char *literal) {
    return h2o_memis(path->base, path->len, literal, strlen(literal));
}

bool dsHttpBodyIsJson(const h2o_req_t *req) {
    h2o_iovec_t ct;
    size_t n = strlen("application/json");
    return dsHttpHeaderGet(req, H2O_TOKEN_CONTENT_TYPE, &ct) && ct.len >= n &&
           strncasecmp(ct.base, "application/json", n) == 0 && (ct.len == n || ct.base[n] == ';' || ct.base[n] == ' ');
}

bool dsHttpMethodIs(const h2o_req_t *req, const char *method) {
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

bool dsHttpHeaderGet(const h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *out) {
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1) return false;
    *out = req->headers.entries[i].value;
    return true;
}

static int httpHexVal(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into the request pool; in a query a '+' is a space. */
static bool httpUnescape(h2o_mem_pool_t *pool, const char *src, size_t len, bool plus_is_space, h2o_iovec_t *out) {
    char *dst = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '+' && plus_is_space) {
            dst[n++] = ' ';
        } else if (src[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = httpHexVal(src[i + 1])) < 0 || (lo = httpHexVal(src[i + 2])) < 0)
                return false;
            dst[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    dst[n] = '\0';
    *out = h2o_iovec_init(dst, n);
    return true;
}

bool dsHttpQueryNext(h2o_req_t *req, size_t *pos, h2o_iovec_t *name, h2o_iovec_t *value, bool *bad) {
    *bad = false;
    if (req->query_at == SIZE_MAX) return false;
    const char *q = req->path.base + req->query_at + 1;
    size_t qlen = req->path.len - req->query_at - 1;
    while (*pos < qlen) {
        const char *start = q + *pos;
        const char *end = memchr(start, '&', qlen - *pos);
        size_t plen = end ? (size_t)(end - start) : qlen - *pos;
        *pos += plen + 1;
        if (plen == 0) continue;
        const char *eq = memchr(start, '=', plen);
        size_t nlen = eq ? (size_t)(eq - start) : plen;
        const char *v = eq ? eq + 1 : start + plen;
        size_t vlen = eq ? plen - nlen - 1 : 0;
        if (!httpUnescape(&req->pool, start, nlen, true, name) || !httpUnescape(&req->pool, v, vlen, true, value)) {
            *bad = true;
            return false;
        }
        return true;
    }
    return false;
}

bool dsHttpUnescapePath(h2o_req_t *req, const char *src, size_t len, h2o_iovec_t *out) {
    return httpUnescape(&req->pool, src, len, false, out);
}
