/* routes.c - the variable store's routing, its operational endpoints
 * (/healthz, /readyz, /metrics) and the server's start and end. */
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"
#include "server.h"

enum {
    M_CONSUMED,
    M_INGESTED,
    M_COUNTED,
    M_DUPLICATES,
    M_EXPIRED,
    M_REJECTED,
    M_COMMITS,
    M_SWEPT,
    M_MAP_FULL,
    M_REFUSED,
    M_NCOUNTERS
};
_Static_assert(M_NCOUNTERS == VS_SERVER_COUNTERS, "server.h sizes the counters /metrics reports");

bool vsServerRequireJson(vsServer *s, h2o_req_t *req, const char *route) {
    if (dsHttpBodyIsJson(req)) return true;
    dsHttpRespondError(s->http, req, route, 415, "unsupported_media_type", "the body must be application/json", NULL, 0);
    return false;
}

static void routeMetricsSetup(vsServer *s) {
    static const char *const names[M_NCOUNTERS][2] = {
        {"variable_store_kafka_messages_total", "Messages read from the decision topic."},
        {"variable_store_ingested_total", "Decisions received through POST /v1/decisions:ingest."},
        {"variable_store_counted_total", "Decisions new to the store."},
        {"variable_store_duplicates_total", "Decisions the store had already counted (redelivery, replay)."},
        {"variable_store_expired_total", "Decisions older than every window: nothing to count."},
        {"variable_store_rejected_total", "Kafka messages that did not decode (each is logged)."},
        {"variable_store_commits_total", "Write transactions committed."},
        {"variable_store_swept_total", "Expired events deleted by the sweep."},
        {"variable_store_map_full_total", "Batches aborted (and read again later) because the LMDB map was full."},
        {"variable_store_ingest_refused_total", "Ingest requests answered 503: queue or LMDB map full."},
    };
    for (int i = 0; i < M_NCOUNTERS; i++) s->m_counters[i] = dsMetricsCounter(s->metrics, names[i][0], names[i][1]);
    s->m_lag = dsMetricsGauge(s->metrics, "variable_store_consumer_lag", "Messages behind the partitions' ends.");
    s->m_last_commit = dsMetricsGauge(s->metrics, "variable_store_last_commit_timestamp_seconds",
                                      "When the writer last committed.");
    s->m_caught_up = dsMetricsGauge(s->metrics, "variable_store_caught_up",
                                    "1 once every assigned partition was read to its end.");
    s->m_used = dsMetricsGauge(s->metrics, "variable_store_used_bytes", "LMDB pages in use.");
    s->m_map = dsMetricsGauge(s->metrics, "variable_store_map_bytes", "LMDB map size: the most the state may use.");
    s->m_full = dsMetricsGauge(s->metrics, "variable_store_map_full",
                               "1 while the LMDB map is full: consumption paused, ingest refused.");
    s->m_queue_jobs = dsMetricsGauge(s->metrics, "variable_store_ingest_queue_requests",
                                     "Ingest requests queued or being applied.");
    s->m_queue_bytes = dsMetricsGauge(s->metrics, "variable_store_ingest_queue_bytes",
                                      "Body bytes of the ingest requests queued or being applied.");
    s->m_readers = dsMetricsCounter(s->metrics, "variable_store_stale_readers_cleared_total",
                                    "LMDB reader slots of dead processes cleared (mdb_reader_check).");
    static const char *const entity[] = {"entity"};
    s->f_events = dsMetricsFamily(s->metrics, "variable_store_events", "Stored events (decisions in a window).",
                                  DS_METRIC_GAUGE, entity, 1, NULL, 0);
    s->f_entities = dsMetricsFamily(s->metrics, "variable_store_running_entities",
                                    "Entities with all-time running values.", DS_METRIC_GAUGE, entity, 1, NULL, 0);
}

static void routeMetricsUpdate(vsServer *s) {
    if (s->feed) dsKafkaHealthPublish(vsFeedKafkaHealth(s->feed), s->metrics);
    if (s->feed) {
        vsFeedCounters *c = vsFeedGetCounters(s->feed);
        uint64_t now[M_NCOUNTERS] = {atomic_load(&c->consumed), atomic_load(&c->ingested), atomic_load(&c->counted),
                                     atomic_load(&c->duplicates), atomic_load(&c->expired), atomic_load(&c->rejected),
                                     atomic_load(&c->commits), atomic_load(&c->swept), atomic_load(&c->map_full),
                                     atomic_load(&c->refused)};
        for (int i = 0; i < M_NCOUNTERS; i++) {
            dsMetricInc(s->m_counters[i], (double)(now[i] - s->seen[i]));
            s->seen[i] = now[i];
        }
        dsMetricSet(s->m_lag, (double)atomic_load(&c->lag));
        dsMetricSet(s->m_last_commit, (double)atomic_load(&c->last_commit_ms) / 1000.0);
        dsMetricSet(s->m_caught_up, vsFeedCaughtUp(s->feed) ? 1 : 0);
        dsMetricSet(s->m_full, vsFeedMapFull(s->feed) ? 1 : 0);
        dsMetricSet(s->m_queue_jobs, (double)atomic_load(&c->queue_jobs));
        dsMetricSet(s->m_queue_bytes, (double)atomic_load(&c->queue_bytes));
    }
    uint64_t cleared = vsStoreReadersCleared(s->store);
    dsMetricInc(s->m_readers, (double)(cleared - s->seen_readers));
    s->seen_readers = cleared;
    vsStoreStats st;
    char err[256];
    if (vsStoreReaderBegin(s->reader, err, sizeof(err))) {
        if (vsStoreReaderStats(s->reader, &st)) {
            for (size_t i = 0; i < s->vars->nentities && i < 16; i++) {
                const char *label[] = {s->vars->entities[i].name};
                dsMetricSet(dsMetricGet(s->f_events, label), (double)st.events[i]);
                dsMetricSet(dsMetricGet(s->f_entities, label), (double)st.entities[i]);
            }
            dsMetricSet(s->m_used, (double)st.used_bytes);
            dsMetricSet(s->m_map, (double)st.map_bytes);
        }
        vsStoreReaderEnd(s->reader);
    }
}

static void routeMetrics(vsServer *s, h2o_req_t *req) {
    routeMetricsUpdate(s);
    dsHttpRespondMetrics(s->http, req, s->metrics);
}

/* A replica is ready once its snapshot opens; a writer once it has read
 * every assigned partition to its end (the variables are current). */
static void routeReady(vsServer *s, h2o_req_t *req) {
    const char *why = NULL;
    char held[1400];
    if (s->feed && vsFeedFailed(s->feed)) why = "the writer stopped (a storage error, or the consumer fenced: the log says which)";
    else if (s->feed && vsFeedHeldUp(s->feed, held, sizeof(held))) why = held;
    else if (s->feed && !vsFeedCaughtUp(s->feed)) why = "catching up with the decision stream";
    if (why == NULL)
        dsHttpRespondJson(s->http, req, "GET /readyz", 200, json_pack("{s:s}", "status", "ready"), NULL, 0);
    else
        dsHttpRespondError(s->http, req, "GET /readyz", 503, "unavailable", why, NULL, s->retry_after_s);
}

void vsServerHandle(void *app, h2o_req_t *req) {
    vsServer *s = app;
    h2o_iovec_t path = req->path_normalized;
    bool get = dsHttpMethodIs(req, "GET") || dsHttpMethodIs(req, "HEAD");
    bool post = dsHttpMethodIs(req, "POST");
    static const char prefix[] = "/v1/variables/";
    size_t plen = sizeof(prefix) - 1;
    /* The raw path: an id may hold an escaped '/', which path_normalized decodes. */
    size_t rawlen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;

    if (path.len > plen && memcmp(path.base, prefix, plen) == 0 && rawlen > plen &&
        memcmp(req->path.base, prefix, plen) == 0) {
        if (get) vsLookupGet(s, req, req->path.base + plen, rawlen - plen);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/v1/variables:batchGet")) {
        if (post) vsLookupBatch(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "POST");
    } else if (dsHttpPathIs(&path, "/v1/decisions:ingest")) {
        if (post) vsIngestPost(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "POST");
    } else if (dsHttpPathIs(&path, "/healthz")) {
        if (get) dsHttpRespondJson(s->http, req, "GET /healthz", 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/readyz")) {
        if (get) routeReady(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else if (dsHttpPathIs(&path, "/metrics")) {
        if (get) routeMetrics(s, req);
        else dsHttpRespondMethodNotAllowed(s->http, req, "GET");
    } else {
        dsHttpRespondError(s->http, req, "other", 404, "not_found", "no such endpoint", NULL, 0);
    }
}

static void routeOnDone(uv_async_t *a) {
    vsServerDrainJobs(a->data);
}

bool vsServerStart(vsServer *s, const dsHttpConfig *http, char *errbuf, size_t errlen) {
    pthread_mutex_init(&s->done_mu, NULL);
    s->done_mu_ready = true;
    if ((s->metrics = dsMetricsNew()) == NULL || (s->reader = vsStoreReaderNew(s->store)) == NULL)
        return snprintf(errbuf, errlen, "out of memory"), false;
    routeMetricsSetup(s);
    uv_async_init(s->loop, &s->done_async, routeOnDone);
    s->done_async.data = s;
    return (s->http = dsHttpServerStart(s->loop, http, vsServerHandle, s, s->metrics, errbuf, errlen)) != NULL;
}

void vsServerShutdown(vsServer *s) {
    if (s->http) dsHttpServerShutdown(s->http);
}

void vsServerCloseIdle(vsServer *s) {
    if (s->http) dsHttpServerCloseIdle(s->http);
}

bool vsServerIdle(vsServer *s) {
    return s->http == NULL || dsHttpServerIdle(s->http);
}

void vsServerClose(vsServer *s) {
    if (uv_is_active((uv_handle_t *)&s->done_async) && !uv_is_closing((uv_handle_t *)&s->done_async))
        uv_close((uv_handle_t *)&s->done_async, NULL);
}

void vsServerFree(vsServer *s) {
    dsHttpServerFree(s->http);
    s->http = NULL;
    vsStoreReaderFree(s->reader);
    dsMetricsFree(s->metrics);
    if (s->done_mu_ready) pthread_mutex_destroy(&s->done_mu);
    s->done_mu_ready = false;
}
