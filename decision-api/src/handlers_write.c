/* handlers_write.c - POST /v1/decisions and POST /v1/decisions:batch.
 *
 * A decision is answered only after the transaction holding it committed
 * (writer.c). While it waits, the request may vanish (client gone): the
 * writer's callback then finds apiPending.req == NULL, finishes the
 * bookkeeping and frees, and the decision is still committed; the client's
 * retry will get 200 with the stored document. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "decision.h"
#include "pending.h"

#define ROUTE_POST "POST /v1/decisions"
#define ROUTE_BATCH "POST /v1/decisions:batch"

/* Handler state kept in apiPending.data. */
typedef struct postState {
    apiServer *s;
    bool batch;
    size_t n, remaining;
    json_t *results; /* batch: array of per-item results, index-aligned */
} postState;

static json_t *postErrorBody(const char *code, const char *message, const char *field) {
    json_t *o = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (o != NULL && field != NULL && field[0] != '\0') json_object_set_new(o, "field", json_string(field));
    return o;
}

/* Maps a finished write to its HTTP status and body (new reference). */
static int postOutcome(apiServer *s, const apiWriteItem *item, json_t **body) {
    char msg[400];
    switch (item->status) {
    case API_WRITE_INSERTED:
    case API_WRITE_DUPLICATE:
        *body = apiDecisionServed(s, item);
        return item->status == API_WRITE_INSERTED ? 201 : 200;
    case API_WRITE_CONFLICT:
        snprintf(msg, sizeof(msg), "decision %s already exists with a different body; nothing was changed",
                 item->params[0]);
        *body = postErrorBody("conflict", msg, "decision_id");
        return 409;
    case API_WRITE_UNAVAILABLE:
        snprintf(msg, sizeof(msg), "the decision was not stored (%s); retry with the same decision_id",
                 item->message);
        *body = postErrorBody("unavailable", msg, NULL);
        return 503;
    case API_WRITE_REJECTED:
        snprintf(msg, sizeof(msg), "the database rejected the decision: %s", item->message);
        *body = postErrorBody("rejected", msg, NULL);
        return 400;
    default:
        *body = postErrorBody("internal", "the decision could not be stored; retry with the same decision_id", NULL);
        return 500;
    }
}

static void postRespondBatch(apiPending *p) {
    postState *st = p->data;
    h2o_req_t *req = apiPendingReq(p);
    if (req != NULL) {
        dsHttpRespondJson(st->s->http, req, ROUTE_BATCH, 200, json_pack("{s:O}", "results", st->results), NULL, 0);
    }
    json_decref(st->results);
    apiPendingFree(p);
}

/* One element of the batch answer; steals body. */
static json_t *postBatchResult(size_t index, int status, json_t *body) {
    json_t *result = json_pack("{s:I, s:i}", "index", (json_int_t)index, "status", status);
    if (result == NULL || body == NULL) {
        json_decref(body);
        return result ? result : json_null();
    }
    if (status < 300) {
        json_object_set_new(result, "decision", body);
    } else {
        json_object_update(result, body); /* error, message, field */
        json_decref(body);
    }
    return result;
}

static void postRespondSingle(apiServer *s, h2o_req_t *req, const apiWriteItem *item, int status, json_t *body) {
    char value[64];
    dsHttpHeader h = {NULL, value};
    if (status == 201) {
        h.name = "location";
        snprintf(value, sizeof(value), "/v1/decisions/%s", item->params[0]);
    } else if (status == 503) {
        h.name = "retry-after";
        snprintf(value, sizeof(value), "%d", s->retry_after_s);
    }
    dsHttpRespondJson(s->http, req, ROUTE_POST, status, body, &h, h.name ? 1 : 0);
}

static void postOnWritten(apiWriteItem *item, void *arg) {
    apiPending *p = arg;
    postState *st = p->data;
    h2o_req_t *req = apiPendingReq(p);
    json_t *body = NULL;
    int status = postOutcome(st->s, item, &body);
    if (st->batch) {
        json_array_set_new(st->results, item->tag, postBatchResult(item->tag, status, body));
        apiWriteItemFree(item);
        if (--st->remaining == 0) postRespondBatch(p);
        return;
    }
    if (req != NULL) postRespondSingle(st->s, req, item, status, body);
    else json_decref(body);
    apiWriteItemFree(item);
    apiPendingFree(p);
}

static void postUnavailable(apiServer *s, h2o_req_t *req, const char *route, apiSubmitResult r) {
    if (r == API_SUBMIT_FULL)
        dsHttpRespondError(s->http, req, route, 503, "overloaded", "too many decisions waiting to be stored; retry later",
                           NULL, s->retry_after_s);
    else
        dsHttpRespondError(s->http, req, route, 503, "unavailable", "the database is unavailable; retry later", NULL,
                           s->retry_after_s);
}

void apiPostDecision(apiServer *s, h2o_req_t *req) {
    if (!apiRequireRole(s, req, ROUTE_POST, DS_ROLE_WRITER) || !apiRequireJson(s, req, ROUTE_POST)) return;
    dsCodecError err;
    json_t *doc = apiDecisionParseBody(req->entity.base, req->entity.len, &err);
    apiWriteItem *item = doc ? apiDecisionPrepare(s, doc, &err) : NULL;
    json_decref(doc);
    if (item == NULL) {
        int status = strcmp(err.code, "internal") == 0 ? 500 : 400;
        dsHttpRespondError(s->http, req, ROUTE_POST, status, err.code, err.message, err.field, 0);
        return;
    }
    apiPending *p = apiPendingNew(req, sizeof(postState), s->m_abandoned);
    if (p == NULL) {
        apiWriteItemFree(item);
        dsHttpRespondError(s->http, req, ROUTE_POST, 500, "internal", "out of memory", NULL, 0);
        return;
    }
    postState *st = p->data;
    st->s = s;
    st->n = st->remaining = 1;
    item->done = postOnWritten;
    item->arg = p;
    apiSubmitResult r = apiWriterSubmit(s->writer, item);
    if (r != API_SUBMIT_QUEUED) {
        apiWriteItemFree(item);
        apiPendingFree(p);
        postUnavailable(s, req, ROUTE_POST, r);
    }
}

/* The batch body: exactly {"decisions": [ ... ]}. Returns the array
 * (borrowed from body) or NULL after answering 400. */
static json_t *postBatchDecisions(apiServer *s, h2o_req_t *req, json_t *body) {
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "decisions") != 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unknown field \"%s\"; the batch body is {\"decisions\": [...]}",
                     dsHttpQuote(req, key, strlen(key), 200));
            dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, "unknown_field", msg, key, 0);
            return NULL;
        }
    }
    json_t *list = json_object_get(body, "decisions");
    if (!json_is_array(list)) {
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, list ? "wrong_type" : "missing_field",
                           "\"decisions\" must be an array of decision documents", "decisions", 0);
        return NULL;
    }
    if (json_array_size(list) > s->max_batch_items) {
        char msg[128];
        snprintf(msg, sizeof(msg), "a batch holds at most %zu decisions, got %zu", s->max_batch_items,
                 json_array_size(list));
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, "too_many_items", msg, "decisions", 0);
        return NULL;
    }
    return list;
}

/* Validates every element; invalid ones get their 400 result now. Returns
 * the number of valid items stored into items[] (NULL where invalid). */
static size_t postBatchPrepare(apiServer *s, json_t *list, apiWriteItem **items, json_t *results) {
    size_t nvalid = 0, i;
    json_t *doc;
    json_array_foreach(list, i, doc) {
        dsCodecError err = {.code = "wrong_type", .message = "each batch element must be a JSON object"};
        items[i] = json_is_object(doc) ? apiDecisionPrepare(s, doc, &err) : NULL;
        if (items[i] != NULL) {
            items[i]->tag = i;
            nvalid++;
            continue;
        }
        int status = strcmp(err.code, "internal") == 0 ? 500 : 400;
        json_array_set_new(results, i, postBatchResult(i, status, postErrorBody(err.code, err.message, err.field)));
    }
    return nvalid;
}

void apiPostBatch(apiServer *s, h2o_req_t *req) {
    if (!apiRequireRole(s, req, ROUTE_BATCH, DS_ROLE_WRITER) || !apiRequireJson(s, req, ROUTE_BATCH)) return;
    dsCodecError err;
    json_t *body = apiDecisionParseBody(req->entity.base, req->entity.len, &err);
    if (body == NULL) {
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, err.code, err.message, err.field, 0);
        return;
    }
    json_t *list = postBatchDecisions(s, req, body);
    size_t n = list ? json_array_size(list) : 0;
    apiPending *p = list ? apiPendingNew(req, sizeof(postState), s->m_abandoned) : NULL;
    apiWriteItem **items = list ? calloc(n ? n : 1, sizeof(*items)) : NULL;
    json_t *results = json_array();
    if (list == NULL || p == NULL || items == NULL || results == NULL) {
        if (list != NULL) dsHttpRespondError(s->http, req, ROUTE_BATCH, 500, "internal", "out of memory", NULL, 0);
        goto done;
    }
    for (size_t i = 0; i < n; i++) json_array_append_new(results, json_null());
    postState *st = p->data;
    st->s = s;
    st->batch = true;
    st->n = n;
    st->results = json_incref(results);
    st->remaining = postBatchPrepare(s, list, items, results);
    apiSubmitResult r = st->remaining ? apiWriterCanAccept(s->writer, st->remaining) : API_SUBMIT_QUEUED;
    if (r != API_SUBMIT_QUEUED) {
        json_decref(st->results);
        postUnavailable(s, req, ROUTE_BATCH, r);
        goto done;
    }
    if (st->remaining == 0) {
        postRespondBatch(p);
        p = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL) continue;
        items[i]->done = postOnWritten;
        items[i]->arg = p;
        if (apiWriterSubmit(s->writer, items[i]) != API_SUBMIT_QUEUED) {
            /* Accepted by the check above, in the same loop turn; were it
             * refused after all, the item is answered as not written
             * (safe to retry) rather than never. */
            items[i]->status = API_WRITE_UNAVAILABLE;
            snprintf(items[i]->message, sizeof(items[i]->message), "the writer refused the decision");
            postOnWritten(items[i], items[i]->arg);
        }
        items[i] = NULL;
    }
    p = NULL;

done:
    for (size_t i = 0; items != NULL && i < n; i++) apiWriteItemFree(items[i]);
    free(items);
    json_decref(results);
    apiPendingFree(p);
    json_decref(body);
}
