/* fakehttp.c - the test's stand-in HTTP server (fakehttp.h): the accept
 * loop, reading one request, writing the answer. */
#include "fakehttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FH_REQUEST_MAX 65536
#define FH_ANSWER_MAX 65536
#define FH_POLL_MS 20 /* how soon a stop is noticed */

/* The value of header name in req (lower-case name, "\r\n" lines). */
static void fhHeader(const char *req, const char *name, char *out, size_t len) {
    out[0] = '\0';
    for (const char *p = strstr(req, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, strlen(name)) == 0 && p[2 + strlen(name)] == ':') {
            const char *v = p + 3 + strlen(name), *end = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(out, len, "%.*s", (int)(end - v), v);
        }
}

/* Reads one request (headers, then Content-Length bytes) and answers it. */
static void fhServe(dtFakeHttp *h, int c) {
    /* per thread: a test may run several servers at once */
    static _Thread_local char req[FH_REQUEST_MAX], body[FH_ANSWER_MAX], head[256];
    size_t n = 0;
    char *start = NULL, cl[32] = "0";
    req[0] = '\0';
    while (n < sizeof req - 1) {
        ssize_t got = read(c, req + n, sizeof req - 1 - n);
        if (got <= 0) break;
        req[n += (size_t)got] = '\0';
        if (!start && (start = strstr(req, "\r\n\r\n"))) start += 4;
        if (start) {
            fhHeader(req, "content-length", cl, sizeof cl);
            if ((size_t)(start - req) + (size_t)atol(cl) <= n) break;
        }
    }
    dtFakeRequest r = {.body = start ? start : "", .len = start ? n - (size_t)(start - req) : 0};
    sscanf(req, "%15s %255s", r.method, r.path);
    fhHeader(req, "content-type", r.content_type, sizeof r.content_type);
    body[0] = '\0';
    int status = h->answer(h->arg, &r, body, sizeof body);
    size_t blen = strlen(body);
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, blen);
    /* Best effort: a client that went away is the test's to notice. */
    if (write(c, head, (size_t)hlen) == hlen && blen) {
        ssize_t sent = write(c, body, blen);
        (void)sent;
    }
}

static void *fhRun(void *arg) {
    dtFakeHttp *h = arg;
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    while (!atomic_load(&h->stop)) {
        if (poll(&p, 1, FH_POLL_MS) != 1) continue;
        int c = accept(h->fd, NULL, NULL);
        if (c < 0) continue;
        fhServe(h, c);
        close(c);
    }
    return NULL;
}

bool dtFakeHttpStart(dtFakeHttp *h, dtFakeAnswer *answer, void *arg) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    *h = (dtFakeHttp){.answer = answer, .arg = arg};
    atomic_init(&h->stop, false);
    if ((h->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(h->fd, 16) != 0 || getsockname(h->fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("fakehttp: listen");
        if (h->fd >= 0) close(h->fd);
        return false;
    }
    h->port = ntohs(a.sin_port);
    if (pthread_create(&h->thread, NULL, fhRun, h) != 0) {
        fprintf(stderr, "fakehttp: cannot start the server thread\n");
        close(h->fd);
        return false;
    }
    return true;
}

void dtFakeHttpStop(dtFakeHttp *h) {
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
}
