/* pg.c - asynchronous libpq session in pipeline mode, driven by uv_poll on
 * the connection's socket, with reconnect and backoff. */
#include "ds/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"

typedef enum { PG_DOWN, PG_CONNECTING, PG_UP, PG_CLOSED } pgState;

struct dsPgConn {
    uv_loop_t *loop;
    char *conninfo;
    char *app_name;
    dsPgCallbacks cb;
    void *arg;
    PGconn *pg;
    pgState state;
    uv_poll_t *poll; /* heap: replaced when libpq changes sockets while connecting */
    int poll_fd;
    int poll_events;
    uv_timer_t retry;
    unsigned backoff_ms, backoff_min_ms, backoff_max_ms;
    int syncs;       /* syncs sent and not yet answered */
    bool want_write; /* libpq has unsent data */
    bool in_drain;   /* guards against re-entering pgDrain from a callback */
};

static void pgOnPoll(uv_poll_t *p, int status, int events);
static void pgConnect(dsPgConn *c);

static void pgNoticeProcessor(void *arg, const char *message) {
    dsLogDebug("postgres: %s", message);
}

static void pgFreeHandle(uv_handle_t *h) {
    free(h);
}

static void pgPollRelease(dsPgConn *c) {
    if (c->poll == NULL) return;
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t *)c->poll, pgFreeHandle);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* Watches fd for events, re-creating the poll handle if libpq switched
 * sockets (it may, while trying several addresses). */
static bool pgWatch(dsPgConn *c, int events) {
    int fd = PQsocket(c->pg);
    if (fd < 0) return false;
    if (c->poll != NULL && c->poll_fd != fd) pgPollRelease(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (c->poll == NULL || uv_poll_init(c->loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return false;
        }
        c->poll->data = c;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        if (uv_poll_start(c->poll, events, pgOnPoll) != 0) return false;
        c->poll_events = events;
    }
    return true;
}

static void pgOnRetry(uv_timer_t *t) {
    pgConnect(t->data);
}

static void pgScheduleRetry(dsPgConn *c) {
    unsigned delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > c->backoff_max_ms ? c->backoff_max_ms : c->backoff_ms * 2;
    uv_timer_start(&c->retry, pgOnRetry, delay, 0);
}

/* Tears the session down. Notifies the owner only if it had seen on_up. */
static void pgDrop(dsPgConn *c, const char *reason) {
    bool was_up = c->state == PG_UP;
    pgPollRelease(c);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->syncs = 0;
    c->want_write = false;
    c->state = PG_DOWN;
    if (was_up && c->cb.on_down) c->cb.on_down(c, reason, c->arg);
    if (c->state == PG_DOWN) pgScheduleRetry(c);
}

void dsPgConnFail(dsPgConn *c, const char *reason) {
    if (c->state != PG_UP && c->state != PG_CONNECTING) return;
    char why[512];
    snprintf(why, sizeof(why), "%s", reason && reason[0] ? reason : "connection lost");
    why[strcspn(why, "\n")] = '\0';
    dsLogWarn("postgres session lost: %s", why);
    pgDrop(c, why);
}

static bool pgFlush(dsPgConn *c) {
    int rc = PQflush(c->pg);
    if (rc < 0) {
        dsPgConnFail(c, PQerrorMessage(c->pg));
        return false;
    }
    c->want_write = rc == 1;
    if (!pgWatch(c, UV_READABLE | (c->want_write ? UV_WRITABLE : 0))) {
        dsPgConnFail(c, "cannot watch the postgres socket");
        return false;
    }
    return true;
}

static void pgDrain(dsPgConn *c) {
    if (c->in_drain) return;
    c->in_drain = true;
    while (c->state == PG_UP && c->syncs > 0 && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) continue; /* end of one statement's results */
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) c->syncs--;
        c->cb.on_result(c, res, c->arg);
        if (c->state == PG_UP && c->syncs == 0 && c->cb.on_idle) c->cb.on_idle(c, c->arg);
    }
    c->in_drain = false;
    if (c->state == PG_UP && PQstatus(c->pg) == CONNECTION_BAD) dsPgConnFail(c, PQerrorMessage(c->pg));
}

static void pgBecomeUp(dsPgConn *c) {
    if (PQenterPipelineMode(c->pg) != 1) {
        dsPgConnFail(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, pgNoticeProcessor, c);
    c->state = PG_UP;
    c->backoff_ms = c->backoff_min_ms;
    dsLogInfo("postgres session up (%s, server %d)", c->app_name, PQserverVersion(c->pg));
    if (!pgWatch(c, UV_READABLE)) {
        dsPgConnFail(c, "cannot watch the postgres socket");
        return;
    }
    if (c->cb.on_up) c->cb.on_up(c, c->arg);
    if (c->state == PG_UP && c->syncs == 0 && c->cb.on_idle) c->cb.on_idle(c, c->arg);
}

static void pgContinueConnect(dsPgConn *c) {
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (!pgWatch(c, UV_READABLE)) pgDrop(c, "cannot watch the postgres socket");
        return;
    case PGRES_POLLING_WRITING:
        if (!pgWatch(c, UV_WRITABLE)) pgDrop(c, "cannot watch the postgres socket");
        return;
    case PGRES_POLLING_OK:
        pgBecomeUp(c);
        return;
    default: {
        char why[512];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(c->pg));
        why[strcspn(why, "\n")] = '\0';
        dsLogWarn("postgres connect failed (retry in %u ms): %s", c->backoff_ms, why);
        pgDrop(c, why);
        return;
    }
    }
}

char *dsPgSessionOptions(const char *conninfo) {
    /* A bare database name does not parse as a conninfo and carries no
     * options; libpq falls back to PGOPTIONS only when "options" is unset,
     * which it no longer is. */
    PQconninfoOption *parsed = PQconninfoParse(conninfo, NULL);
    const char *own = NULL;
    for (PQconninfoOption *o = parsed; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && o->val[0]) own = o->val;
    if (own == NULL) own = getenv("PGOPTIONS");
    char *out = NULL;
    if (asprintf(&out, "%s%s-c DateStyle=ISO -c TimeZone=UTC", own ? own : "", own && own[0] ? " " : "") < 0)
        out = NULL;
    PQconninfoFree(parsed);
    return out;
}

static void pgConnect(dsPgConn *c) {
    char *options = dsPgSessionOptions(c->conninfo);
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
    const char *vals[] = {c->conninfo, c->app_name, "5", options, NULL};
    c->pg = options ? PQconnectStartParams(keys, vals, 1) : NULL;
    free(options);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD || PQsetnonblocking(c->pg, 1) != 0) {
        dsLogWarn("postgres connect failed: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        pgDrop(c, "connect failed");
        return;
    }
    c->state = PG_CONNECTING;
    /* libpq's documented start: wait for writability before the first
     * PQconnectPoll(), so the non-blocking connect() has completed. */
    if (!pgWatch(c, UV_WRITABLE)) pgDrop(c, "cannot watch the postgres socket");
}

static void pgOnPoll(uv_poll_t *p, int status, int events) {
    dsPgConn *c = p->data;
    if (c->state == PG_CONNECTING) {
        pgContinueConnect(c);
        return;
    }
    if (c->state != PG_UP) return;
    if (status < 0) {
        dsPgConnFail(c, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && !pgFlush(c)) return;
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pg)) {
            dsPgConnFail(c, PQerrorMessage(c->pg));
            return;
        }
        pgDrain(c);
    }
}

dsPgConn *dsPgConnNew(uv_loop_t *loop, const char *conninfo, const char *app_name, const dsPgCallbacks *cb,
                      void *arg) {
    dsPgConn *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->conninfo = strdup(conninfo);
    c->app_name = strdup(app_name);
    if (c->conninfo == NULL || c->app_name == NULL) {
        free(c->conninfo);
        free(c->app_name);
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->cb = *cb;
    c->arg = arg;
    c->poll_fd = -1;
    c->backoff_min_ms = c->backoff_ms = 100;
    c->backoff_max_ms = 5000;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    return c;
}

void dsPgConnStart(dsPgConn *c) {
    pgConnect(c);
}

static void pgFreeConn(uv_handle_t *h) {
    dsPgConn *c = h->data;
    free(c->conninfo);
    free(c->app_name);
    free(c);
}

void dsPgConnClose(dsPgConn *c) {
    if (c == NULL) return;
    pgPollRelease(c);
    if (c->pg != NULL) PQfinish(c->pg);
    c->pg = NULL;
    c->state = PG_CLOSED;
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->retry, pgFreeConn);
}

PGconn *dsPgConnRaw(dsPgConn *c) {
    return c->pg;
}

bool dsPgConnIsUp(const dsPgConn *c) {
    return c->state == PG_UP;
}

bool dsPgConnIsIdle(const dsPgConn *c) {
    return c->state == PG_UP && c->syncs == 0;
}

bool dsPgConnSync(dsPgConn *c) {
    if (c->state != PG_UP) return false;
    if (PQpipelineSync(c->pg) != 1) {
        dsPgConnFail(c, PQerrorMessage(c->pg));
        return false;
    }
    c->syncs++;
    return pgFlush(c);
}
