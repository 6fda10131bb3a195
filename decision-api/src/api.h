/* api.h - the decision API's server state, shared by its handlers.
 * Everything here lives on the one event-loop thread. */
#ifndef API_API_H
#define API_API_H

#include <avro.h>
#include <h2o.h>
#include <uv.h>

#include "cursor.h"
#include "ds/auth.h"
#include "ds/codec.h"
#include "ds/http.h"
#include "ds/metrics.h"
#include "reader.h"
#include "writer.h"

typedef struct apiServer {
    uv_loop_t *loop;
    dsHttpServer *http;
    dsMetrics *metrics;
    dsCodec *codec;
    avro_value_t scratch; /* reused for every document: the loop is single-threaded */
    avro_value_t again;   /* a second value of the current version, for round trips */
    avro_value_t *older;  /* older[v - 1]: a value of version v, each v before the current; owned */
    apiWriter *writer;
    apiReader *reader;
    dsAuth *auth;
    int retry_after_s;    /* advertised with 503 */
    size_t max_batch_items;
    long max_clock_skew_ms; /* how far ahead of our clock a posted decided_at may be */
    dsMetric *m_db_up;
    dsMetric *m_abandoned;
    apiCursorKey cursor_key; /* signs the search's cursors */
} apiServer;

/* The single h2o entry point: routes by method and path (routes.c). */
void apiHandle(void *app, h2o_req_t *req);

/* Shared checks for handlers (routes.c). Each answers the request itself and
 * returns false when the check fails. */
bool apiRequireRole(apiServer *s, h2o_req_t *req, const char *route, int role);
bool apiRequireJson(apiServer *s, h2o_req_t *req, const char *route);

/* Handlers (handlers_write.c, handlers_read.c). */
void apiPostDecision(apiServer *s, h2o_req_t *req);
void apiPostBatch(apiServer *s, h2o_req_t *req);
void apiGetDecision(apiServer *s, h2o_req_t *req, const char *id, size_t idlen);
void apiListDecisions(apiServer *s, h2o_req_t *req);

/* The read-only Confluent Schema Registry paths over the codec's schemas
 * (registry.c; no token). Returns false, answering nothing, when the path is
 * none of them; otherwise it has answered (405 for another method). */
bool apiRegistryRoute(apiServer *s, h2o_req_t *req);

#endif
