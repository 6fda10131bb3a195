/* server.h - the variable store's HTTP side (CONTRACT §6), on one libuv
 * loop thread: variable lookups straight from LMDB snapshots, the ingest
 * endpoint that hands decisions to the writer thread, and the operational
 * endpoints. */
#ifndef VS_SERVER_H
#define VS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "ds/auth.h"
#include "ds/http.h"
#include "ds/metrics.h"
#include "feed.h"
#include "store.h"
#include "vars.h"

/* Who may read variables: a policy engine's lookup role, or a reader (admin
 * implies both). Ingest takes DS_ROLE_INGEST (or admin). */
#define VS_ROLES_LOOKUP (DS_ROLE_LOOKUP | DS_ROLE_READER)

/* The writer's counters /metrics reports (vsFeedCounters, gauges aside). */
#define VS_SERVER_COUNTERS 10

typedef struct vsServer {
    uv_loop_t *loop;
    dsHttpServer *http;
    dsMetrics *metrics;
    const vsVars *vars;     /* borrowed */
    vsStore *store;         /* borrowed */
    vsFeed *feed;           /* borrowed; NULL on a read replica */
    vsStoreReader *reader;  /* owned; the loop thread's snapshots */
    dsAuth *auth;           /* borrowed from main, which swaps it on SIGHUP */
    size_t batch_get_max;   /* keys per batchGet (413 above) */
    size_t ingest_max;      /* decisions per ingest request (413 above) */
    bool ingest;            /* whether POST /v1/decisions:ingest is served */
    int64_t max_clock_skew_ms; /* how far ahead of our clock an ingested decided_at may be */
    int retry_after_s;
    /* ingest jobs the writer finished, answered on the loop thread */
    uv_async_t done_async;
    pthread_mutex_t done_mu;
    bool done_mu_ready;
    struct vsFeedJob *done;
    /* what /metrics last reported of the writer's counters */
    uint64_t seen[VS_SERVER_COUNTERS];
    dsMetric *m_counters[VS_SERVER_COUNTERS], *m_lag, *m_last_commit, *m_caught_up, *m_used, *m_map;
    dsMetric *m_full, *m_queue_jobs, *m_queue_bytes, *m_readers;
    uint64_t seen_readers;
    dsMetricFamily *f_events, *f_entities;
} vsServer;

/* Fills the server's own parts (reader, metrics, async) and starts
 * listening. loop, vars, store, feed, and the limits must be set in s
 * before. false with errbuf filled on failure; vsServerFree() undoes a
 * partial start. */
bool vsServerStart(vsServer *s, const dsHttpConfig *http, char *errbuf, size_t errlen);
/* Stops accepting and asks open connections to close once answered; call
 * before stopping the feed. */
void vsServerShutdown(vsServer *s);
/* Closes connections left idle; once every answer owed has been sent. */
void vsServerCloseIdle(vsServer *s);
/* Whether every connection has closed. */
bool vsServerIdle(vsServer *s);
/* Answers ingest jobs the writer has finished (the async does it while the
 * loop runs; call once more after vsFeedStop). */
void vsServerDrainJobs(vsServer *s);
/* Closes the async handle; the loop must run once more to finish. */
void vsServerClose(vsServer *s);
/* Frees what vsServerStart made, after the loop has stopped. */
void vsServerFree(vsServer *s);

/* The single h2o entry point (routes.c). */
void vsServerHandle(void *app, h2o_req_t *req);

/* Handlers (lookup.c, ingest.c). */
void vsLookupGet(vsServer *s, h2o_req_t *req, const char *rest, size_t len);
void vsLookupBatch(vsServer *s, h2o_req_t *req);
void vsIngestPost(vsServer *s, h2o_req_t *req);

/* Shared by handlers: 415 unless the body is application/json; false when
 * the request has been answered. */
bool vsServerRequireJson(vsServer *s, h2o_req_t *req, const char *route);

#endif
