/* ingest.c - POST /v1/decisions:ingest: decisions posted by decision-replay
 * (or anyone refilling the store) are validated and prepared here, on the
 * loop thread, applied by the writer thread in one transaction, and
 * answered once committed.
 *
 * The job lives on the heap, not in the request pool: h2o frees the request
 * if its client goes away while the writer holds the job. The pool holds only
 * a link whose dispose callback detaches the request from the job.
 */
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"
#include "event.h"
#include "server.h"

#define ROUTE_INGEST "POST /v1/decisions:ingest"

typedef struct ingestLink ingestLink;

typedef struct ingestJob {
    vsFeedJob job; /* first: the feed hands back this pointer */
    vsServer *s;
    h2o_req_t *req; /* NULL once the client went away */
    ingestLink *link;
} ingestJob;

struct ingestLink {
    ingestJob *job;
};

static void ingestDispose(void *p) {
    ingestLink *l = p;
    if (l->job) l->job->req = NULL, l->job->link = NULL;
}

static void ingestFree(ingestJob *j) {
    if (j->link) j->link->job = NULL;
    vsFeedJobFree(&j->job);
    free(j);
}

/* On the writer thread: queue for the loop thread. */
static void ingestOnDone(vsFeedJob *job) {
    ingestJob *j = (ingestJob *)job;
    vsServer *s = j->s;
    pthread_mutex_lock(&s->done_mu);
    job->next = s->done;
    s->done = job;
    pthread_mutex_unlock(&s->done_mu);
    uv_async_send(&s->done_async);
}

void vsServerDrainJobs(vsServer *s) {
    pthread_mutex_lock(&s->done_mu);
    vsFeedJob *done = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (done) {
        ingestJob *j = (ingestJob *)done;
        done = done->next;
        if (j->req && j->job.ok) {
            json_t *body = json_pack("{s:I, s:I, s:I, s:I}", "received", (json_int_t)j->job.n, "counted",
                                     (json_int_t)j->job.counted, "duplicates", (json_int_t)j->job.duplicates,
                                     "expired", (json_int_t)j->job.expired);
            dsHttpRespondJson(s->http, j->req, ROUTE_INGEST, 200, body, NULL, 0);
        } else if (j->req) {
            dsHttpRespondError(s->http, j->req, ROUTE_INGEST, 503, "unavailable", j->job.error, NULL,
                               s->retry_after_s);
        }
        ingestFree(j);
    }
}

/* Validates and prepares every decision; false: answered (400), nothing queued. */
static bool ingestPrepare(vsServer *s, h2o_req_t *req, json_t *decisions, ingestJob *j) {
    size_t i;
    json_t *doc;
    char field[300], msg[700];
    json_array_foreach(decisions, i, doc) {
        dsCodecError cerr;
        if (!dsCodecFromJson(s->codec, doc, &s->scratch, &cerr)) {
            snprintf(field, sizeof(field), "decisions[%zu]%s%s", i, *cerr.field ? "." : "", cerr.field);
            snprintf(msg, sizeof(msg), "decisions[%zu]: %s", i, cerr.message);
            dsHttpRespondError(s->http, req, ROUTE_INGEST, 400, cerr.code, msg, field, 0);
            return false;
        }
        if (!vsEventPrepare(s->vars, &s->scratch, &j->job.prepared, msg, sizeof(msg)) || !vsFeedJobMark(&j->job)) {
            snprintf(field, sizeof(field), "decisions[%zu]", i);
            dsHttpRespondError(s->http, req, ROUTE_INGEST, 400, "invalid_value", msg, field, 0);
            return false;
        }
    }
    return true;
}

static json_t *ingestParse(vsServer *s, h2o_req_t *req) {
    json_error_t jerr;
    json_t *doc = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *decisions = json_is_object(doc) ? json_object_get(doc, "decisions") : NULL;
    char msg[300];
    if (doc == NULL) {
        snprintf(msg, sizeof(msg), "malformed JSON: %s at line %d, column %d", jerr.text, jerr.line, jerr.column);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 400, "malformed_json", msg, NULL, 0);
    } else if (!json_is_array(decisions) || json_object_size(doc) != 1) {
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 400, "bad_request",
                           "the body must be {\"decisions\": [decision, ...]}", "decisions", 0);
    } else if (json_array_size(decisions) > s->ingest_max) {
        snprintf(msg, sizeof(msg), "%zu decisions; a request holds at most %zu", json_array_size(decisions),
                 s->ingest_max);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 413, "too_many_items", msg, "decisions", 0);
    } else {
        return doc;
    }
    json_decref(doc);
    return NULL;
}

void vsIngestPost(vsServer *s, h2o_req_t *req) {
    if (!s->ingest) {
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 404, "not_found", "ingest is turned off on this server", NULL, 0);
        return;
    }
    if (s->feed == NULL) {
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 503, "unavailable",
                           "a read replica takes no writes: send decisions to the writer", NULL, s->retry_after_s);
        return;
    }
    if (!vsServerRequireJson(s, req, ROUTE_INGEST)) return;
    json_t *doc = ingestParse(s, req);
    if (doc == NULL) return;
    ingestJob *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        json_decref(doc);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 500, "internal", "out of memory", NULL, 0);
        return;
    }
    bool prepared = ingestPrepare(s, req, json_object_get(doc, "decisions"), j);
    json_decref(doc);
    if (!prepared) return ingestFree(j);
    j->s = s, j->req = req;
    j->job.on_done = ingestOnDone;
    if (!vsFeedSubmit(s->feed, &j->job)) {
        ingestFree(j);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 503, "unavailable", "the variable store is stopping", NULL,
                           s->retry_after_s);
        return;
    }
    /* From here the writer owns the job until ingestOnDone. */
    j->link = h2o_mem_alloc_shared(&req->pool, sizeof(ingestLink), ingestDispose);
    j->link->job = j;
}
