/* ingest.c - POST /v1/decisions:ingest: decisions posted by decision-replay
 * (or anyone refilling the store). The loop thread only copies the body and
 * queues it: parsing and validating a thousand documents takes tens of
 * milliseconds, which lookups must not wait behind. The writer thread
 * validates and prepares them (ingestPrepare), applies them in one
 * transaction, and the loop thread answers once committed.
 *
 * The writer caps the jobs queued or being applied, by count and by body
 * bytes: beyond either, or while the LMDB map is full, the request is
 * answered 503 with Retry-After at once (nothing of it applied).
 *
 * The job lives on the heap, not in the request pool: h2o frees the request
 * if its client goes away while the writer holds the job. The pool holds only
 * a link whose dispose callback detaches the request from the job.
 */
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"
#include "ds/timefmt.h"
#include "event.h"
#include "server.h"

#define ROUTE_INGEST "POST /v1/decisions:ingest"

typedef struct ingestLink ingestLink;

typedef struct ingestJob {
    vsFeedJob job; /* first: the feed hands back this pointer */
    vsServer *s;   /* its vars and limits are read on the writer thread: fixed after start */
    h2o_req_t *req; /* NULL once the client went away */
    ingestLink *link;
    char *body; /* a copy: the request pool may go before the writer is done */
    size_t body_len;
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
    free(j->body);
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
        if (j->req && j->job.status == 200) {
            json_t *body = json_pack("{s:I, s:I, s:I, s:I}", "received", (json_int_t)j->job.n, "counted",
                                     (json_int_t)j->job.counted, "duplicates", (json_int_t)j->job.duplicates,
                                     "expired", (json_int_t)j->job.expired);
            dsHttpRespondJson(s->http, j->req, ROUTE_INGEST, 200, body, NULL, 0);
        } else if (j->req) {
            int st = j->job.status;
            dsHttpRespondError(s->http, j->req, ROUTE_INGEST, st, *j->job.code ? j->job.code : "unavailable",
                               j->job.error, j->job.field, st == 503 ? s->retry_after_s : 0);
        }
        ingestFree(j);
    }
}

static bool ingestRefuse(vsFeedJob *job, int status, const char *code, const char *field, const char *message) {
    job->status = status;
    snprintf(job->code, sizeof(job->code), "%s", code);
    snprintf(job->field, sizeof(job->field), "%.299s", field ? field : "");
    snprintf(job->error, sizeof(job->error), "%.511s", message);
    return false;
}

/* Every decision validated and prepared, or the first fault. Validated as
 * the API validates a post, future included: a decision dated after now
 * (plus the clock skew) would be counted in every window until that date
 * and be every later decision's "last", and no decision the API accepted
 * can be in the future by the time it is replayed. */
static bool ingestPrepareAll(ingestJob *j, json_t *decisions, dsCodec *codec, avro_value_t *scratch) {
    size_t i;
    json_t *doc;
    char field[300], msg[700];
    int64_t now_ms = dsTimeNowMs();
    json_array_foreach(decisions, i, doc) {
        dsCodecError cerr;
        if (!dsCodecFromJsonPosted(codec, doc, scratch, now_ms, j->s->max_clock_skew_ms, &cerr)) {
            snprintf(field, sizeof(field), "decisions[%zu]%s%s", i, *cerr.field ? "." : "", cerr.field);
            snprintf(msg, sizeof(msg), "decisions[%zu]: %s", i, cerr.message);
            return ingestRefuse(&j->job, 400, cerr.code, field, msg);
        }
        if (!vsEventPrepare(j->s->vars, scratch, &j->job.prepared, msg, sizeof(msg)) || !vsFeedJobMark(&j->job)) {
            snprintf(field, sizeof(field), "decisions[%zu]", i);
            return ingestRefuse(&j->job, 400, "invalid_value", field, msg);
        }
    }
    return true;
}

/* On the writer thread (vsFeedJob.prepare): the body into prepared decisions. */
static bool ingestPrepare(vsFeedJob *job, dsCodec *codec, avro_value_t *scratch) {
    ingestJob *j = (ingestJob *)job;
    json_error_t jerr;
    json_t *doc = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *decisions = json_is_object(doc) ? json_object_get(doc, "decisions") : NULL;
    char msg[300];
    bool ok = false;
    if (doc == NULL) {
        snprintf(msg, sizeof(msg), "malformed JSON: %s at line %d, column %d", jerr.text, jerr.line, jerr.column);
        ingestRefuse(job, 400, "malformed_json", NULL, msg);
    } else if (!json_is_array(decisions) || json_object_size(doc) != 1) {
        ingestRefuse(job, 400, "bad_request", "decisions", "the body must be {\"decisions\": [decision, ...]}");
    } else if (json_array_size(decisions) > j->s->ingest_max) {
        snprintf(msg, sizeof(msg), "%zu decisions; a request holds at most %zu", json_array_size(decisions),
                 j->s->ingest_max);
        ingestRefuse(job, 413, "too_many_items", "decisions", msg);
    } else {
        ok = ingestPrepareAll(j, decisions, codec, scratch);
    }
    json_decref(doc);
    free(j->body); /* not needed any more: the prepared form is what is applied */
    j->body = NULL;
    return ok;
}

void vsIngestPost(vsServer *s, h2o_req_t *req) {
    if (!dsAuthRequire(s->auth, s->http, req, ROUTE_INGEST, DS_ROLE_INGEST)) return;
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
    ingestJob *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->body = malloc(req->entity.len ? req->entity.len : 1)) == NULL) {
        free(j);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 500, "internal", "out of memory", NULL, 0);
        return;
    }
    if (req->entity.len) memcpy(j->body, req->entity.base, req->entity.len);
    j->body_len = req->entity.len;
    j->job.prepare = ingestPrepare;
    j->s = s, j->req = req;
    j->job.on_done = ingestOnDone;
    j->job.bytes = j->body_len;
    char why[512];
    vsFeedSubmitResult r = vsFeedSubmit(s->feed, &j->job, why, sizeof(why));
    if (r != VS_SUBMIT_OK) {
        ingestFree(j);
        dsHttpRespondError(s->http, req, ROUTE_INGEST, 503, r == VS_SUBMIT_QUEUE_FULL ? "overloaded" : "unavailable",
                           why, NULL, s->retry_after_s);
        return;
    }
    /* From here the writer owns the job until ingestOnDone. */
    j->link = h2o_mem_alloc_shared(&req->pool, sizeof(ingestLink), ingestDispose);
    j->link->job = j;
}
