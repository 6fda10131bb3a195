/* forward.c - the bootstrap forwarder of dev-kafka (see forward.h). */
#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"

#define DK_MAX_TARGETS 16
/* Stop reading one side while the other has this much unsent. */
#define DK_HIGH_WATER (1u << 20)

typedef struct dkPipe dkPipe;

/* One side of a piped connection. */
typedef struct dkSide {
    uv_tcp_t tcp;
    dkPipe *pipe;
    struct dkSide *peer;
    bool connected;
} dkSide;

struct dkPipe {
    dkForward *f;
    dkSide client, broker;
    uv_connect_t connect;
    int open;       /* handles not yet closed */
    bool closing;
    dkPipe *next;   /* live pipes, for shutdown */
};

struct dkForward {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct sockaddr_in targets[DK_MAX_TARGETS];
    int ntargets, next_target;
    dkPipe *pipes;
    bool closing;
};

typedef struct dkWrite {
    uv_write_t req;
    dkSide *to;
    char data[];
} dkWrite;

static void dkOnRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void dkOnClosed(uv_handle_t *h) {
    dkPipe *p = ((dkSide *)h->data)->pipe;
    if (--p->open > 0) return;
    dkPipe **pp = &p->f->pipes;
    while (*pp != p) pp = &(*pp)->next;
    *pp = p->next;
    free(p);
}

static void dkPipeClose(dkPipe *p) {
    if (p->closing) return;
    p->closing = true;
    uv_close((uv_handle_t *)&p->client.tcp, dkOnClosed);
    uv_close((uv_handle_t *)&p->broker.tcp, dkOnClosed);
}

static void dkAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void dkOnWritten(uv_write_t *req, int status) {
    dkWrite *w = (dkWrite *)req;
    dkSide *to = w->to;
    free(w);
    if (status < 0) {
        dkPipeClose(to->pipe);
        return;
    }
    /* The writer side drained: let its peer read again. */
    if (!to->pipe->closing && to->tcp.write_queue_size < DK_HIGH_WATER)
        uv_read_start((uv_stream_t *)&to->peer->tcp, dkAlloc, dkOnRead);
}

static void dkOnRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    dkSide *from = s->data;
    if (n < 0) {
        free(buf->base);
        dkPipeClose(from->pipe);
        return;
    }
    if (n == 0) {
        free(buf->base);
        return;
    }
    dkSide *to = from->peer;
    dkWrite *w = malloc(sizeof(*w) + (size_t)n);
    if (w == NULL) {
        free(buf->base);
        dkPipeClose(from->pipe);
        return;
    }
    memcpy(w->data, buf->base, (size_t)n);
    free(buf->base);
    w->to = to;
    uv_buf_t out = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&to->tcp, &out, 1, dkOnWritten) != 0) {
        free(w);
        dkPipeClose(from->pipe);
        return;
    }
    if (to->tcp.write_queue_size >= DK_HIGH_WATER) uv_read_stop(s);
}

static void dkOnBrokerConnected(uv_connect_t *req, int status) {
    dkPipe *p = req->data;
    if (p->closing) return;
    if (status < 0) {
        /* The client sees its connection drop and bootstraps again; round
         * robin sends that attempt to the next broker (one may be down). */
        dsLogWarn("mock broker refused a forwarded connection: %s", uv_strerror(status));
        dkPipeClose(p);
        return;
    }
    p->broker.connected = true;
    uv_tcp_nodelay(&p->broker.tcp, 1);
    uv_read_start((uv_stream_t *)&p->client.tcp, dkAlloc, dkOnRead);
    uv_read_start((uv_stream_t *)&p->broker.tcp, dkAlloc, dkOnRead);
}

static void dkConnectNext(dkPipe *p) {
    dkForward *f = p->f;
    const struct sockaddr_in *target = &f->targets[f->next_target];
    f->next_target = (f->next_target + 1) % f->ntargets;
    uv_tcp_init(f->loop, &p->broker.tcp);
    p->broker.tcp.data = &p->broker;
    p->open++;
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, &p->broker.tcp, (const struct sockaddr *)target, dkOnBrokerConnected) != 0)
        dkPipeClose(p);
}

static void dkOnAccept(uv_stream_t *listener, int status) {
    dkForward *f = listener->data;
    if (status < 0 || f->closing) return;
    dkPipe *p = calloc(1, sizeof(*p));
    if (p == NULL) return;
    p->f = f;
    p->client.pipe = p->broker.pipe = p;
    p->client.peer = &p->broker;
    p->broker.peer = &p->client;
    uv_tcp_init(f->loop, &p->client.tcp);
    p->client.tcp.data = &p->client;
    p->open = 1;
    p->next = f->pipes;
    f->pipes = p;
    if (uv_accept(listener, (uv_stream_t *)&p->client.tcp) != 0) {
        p->closing = true;
        uv_close((uv_handle_t *)&p->client.tcp, dkOnClosed);
        return;
    }
    uv_tcp_nodelay(&p->client.tcp, 1);
    dkConnectNext(p);
}

static bool dkParseTargets(dkForward *f, const char *targets, char *errbuf, size_t errlen) {
    char *copy = strdup(targets), *save = NULL;
    if (copy == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    for (char *t = strtok_r(copy, ",", &save); t && f->ntargets < DK_MAX_TARGETS; t = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(t, ':');
        if (colon == NULL) continue;
        *colon = '\0';
        if (uv_ip4_addr(t, atoi(colon + 1), &f->targets[f->ntargets]) == 0) f->ntargets++;
    }
    free(copy);
    if (f->ntargets == 0) snprintf(errbuf, errlen, "no usable broker address in \"%s\"", targets);
    return f->ntargets > 0;
}

static void dkOnListenerClosed(uv_handle_t *h) {
    free(h->data);
}

dkForward *dkForwardStart(uv_loop_t *loop, const char *host, int port, const char *targets, char *errbuf,
                          size_t errlen) {
    dkForward *f = calloc(1, sizeof(*f));
    if (f == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    f->loop = loop;
    if (!dkParseTargets(f, targets, errbuf, errlen)) {
        free(f);
        return NULL;
    }
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(host, port, &addr);
    if (rc != 0) {
        snprintf(errbuf, errlen, "invalid listen address %s:%d", host, port);
        free(f);
        return NULL;
    }
    uv_tcp_init(loop, &f->listener);
    f->listener.data = f;
    if ((rc = uv_tcp_bind(&f->listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&f->listener, 128, dkOnAccept)) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        f->closing = true;
        uv_close((uv_handle_t *)&f->listener, dkOnListenerClosed);
        return NULL;
    }
    return f;
}

void dkForwardClose(dkForward *f) {
    f->closing = true;
    for (dkPipe *p = f->pipes; p != NULL; p = p->next) dkPipeClose(p);
    uv_close((uv_handle_t *)&f->listener, dkOnListenerClosed);
}
