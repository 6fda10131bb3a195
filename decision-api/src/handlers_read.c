/* handlers_read.c - GET /v1/decisions/{id} and the support search
 * GET /v1/decisions?customer_id=...: newest first by decided_at, keyset
 * pagination with an opaque cursor (base64url of "v1:<decided_at ms>:<id>"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "decision.h"
#include "ds/log.h"
#include "ds/timefmt.h"
#include "pending.h"

#define ROUTE_GET "GET /v1/decisions/{id}"
#define ROUTE_LIST "GET /v1/decisions"
#define LIST_MAX_LIMIT 500
#define LIST_DEFAULT_LIMIT 50

/* The filters of a search, validated. Strings point into the request pool. */
typedef struct listQuery {
    const char *customer_id, *merchant_id, *purchase_id, *outcome;
    char from[DS_TIME_BUFLEN], to[DS_TIME_BUFLEN];
    bool has_from, has_to, has_cursor;
    char cursor_at[DS_TIME_BUFLEN];
    char cursor_id[37];
    long limit;
} listQuery;

typedef struct readState {
    apiServer *s;
    const char *route;
    long limit; /* list only */
} readState;

static void readUnavailable(apiServer *s, h2o_req_t *req, const char *route) {
    dsHttpRespondError(s->http, req, route, 503, "unavailable", "the database is unavailable; retry later", NULL,
                       s->retry_after_s);
}

/* Row columns of both queries: 0 decision_id, 1 decided_at ms, 2 recorded_at ms, 3 doc: the canonical text as
 * posted (jsonb's rendering for rows written before doc_text existed). */
static const char readColumns[] =
    "SELECT decision_id::text, floor(extract(epoch FROM decided_at) * 1000)::bigint,"
    " floor(extract(epoch FROM recorded_at) * 1000)::bigint, coalesce(doc_text, doc::text) FROM decisions";

static json_t *readRow(apiServer *s, PGresult *res, int row) {
    char err[256];
    json_t *doc = apiDecisionFromRow(s, PQgetvalue(res, row, 3), strtoll(PQgetvalue(res, row, 2), NULL, 10), err,
                                     sizeof(err));
    if (doc == NULL) dsLogError("decision %s: %s", PQgetvalue(res, row, 0), err);
    return doc;
}

static void readOnGet(PGresult *res, const char *error, void *arg) {
    apiPending *p = arg;
    readState *st = p->data;
    h2o_req_t *req = apiPendingReq(p);
    if (req == NULL) {
        /* client gone: nothing to answer */
    } else if (res == NULL) {
        readUnavailable(st->s, req, st->route);
    } else if (PQntuples(res) == 0) {
        dsHttpRespondError(st->s->http, req, st->route, 404, "not_found", "no decision with this decision_id", NULL, 0);
    } else {
        json_t *doc = readRow(st->s, res, 0);
        if (doc != NULL) dsHttpRespondJson(st->s->http, req, st->route, 200, doc, NULL, 0);
        else dsHttpRespondError(st->s->http, req, st->route, 500, "internal", "the stored decision is unreadable", NULL, 0);
    }
    PQclear(res);
    apiPendingFree(p);
}

/* Starts a query whose answer goes to done with a fresh apiPending. */
static void readStart(apiServer *s, h2o_req_t *req, const char *route, const char *sql, int nparams,
                      const char *const *params, apiReadDoneFn *done, long limit) {
    apiPending *p = apiPendingNew(req, sizeof(readState), s->m_abandoned);
    if (p == NULL) {
        dsHttpRespondError(s->http, req, route, 500, "internal", "out of memory", NULL, 0);
        return;
    }
    readState *st = p->data;
    st->s = s;
    st->route = route;
    st->limit = limit;
    if (!apiReaderQuery(s->reader, sql, nparams, params, done, p)) {
        apiPendingFree(p);
        readUnavailable(s, req, route);
    }
}

void apiGetDecision(apiServer *s, h2o_req_t *req, const char *id, size_t idlen) {
    if (!apiRequireRole(s, req, ROUTE_GET, DS_ROLE_READER)) return;
    char norm[37];
    if (!apiDecisionNormalizeId(id, idlen, norm)) {
        dsHttpRespondError(s->http, req, ROUTE_GET, 400, "invalid_value", "decision_id must be a UUID",
                           "decision_id", 0);
        return;
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "%s WHERE decision_id = $1", readColumns);
    const char *params[] = {norm};
    readStart(s, req, ROUTE_GET, sql, 1, params, readOnGet, 0);
}

static bool listCursorEncode(const char *decided_at_ms, const char *id, char *out, size_t outlen) {
    char raw[96];
    int n = snprintf(raw, sizeof(raw), "v1:%s:%s", decided_at_ms, id);
    if (n < 0 || (size_t)n >= sizeof(raw) || outlen < (size_t)(n + 2) / 3 * 4 + 1) return false;
    h2o_base64_encode(out, raw, (size_t)n, 1);
    return true;
}

static bool listCursorDecode(h2o_mem_pool_t *pool, h2o_iovec_t v, listQuery *q) {
    h2o_iovec_t raw = h2o_decode_base64url(pool, v.base, v.len);
    if (raw.base == NULL || raw.len < 4 || raw.len > 80 || memcmp(raw.base, "v1:", 3) != 0) return false;
    char buf[96];
    memcpy(buf, raw.base, raw.len);
    buf[raw.len] = '\0';
    char *end;
    errno = 0;
    long long ms = strtoll(buf + 3, &end, 10);
    if (errno != 0 || *end != ':' || !dsTimeFormat(ms, q->cursor_at)) return false;
    if (!apiDecisionNormalizeId(end + 1, strlen(end + 1), q->cursor_id)) return false;
    q->has_cursor = true;
    return true;
}

/* Validates one query parameter into q; writes a message on failure. */
static bool listParam(h2o_req_t *req, h2o_iovec_t name, h2o_iovec_t v, listQuery *q, char *msg, size_t msglen) {
    char err[128];
    if (h2o_memis(name.base, name.len, H2O_STRLIT("customer_id"))) q->customer_id = v.base;
    else if (h2o_memis(name.base, name.len, H2O_STRLIT("merchant_id"))) q->merchant_id = v.base;
    else if (h2o_memis(name.base, name.len, H2O_STRLIT("purchase_id"))) q->purchase_id = v.base;
    else if (h2o_memis(name.base, name.len, H2O_STRLIT("outcome"))) q->outcome = v.base;
    else if (h2o_memis(name.base, name.len, H2O_STRLIT("from")) || h2o_memis(name.base, name.len, H2O_STRLIT("to"))) {
        int64_t ms;
        bool from = name.base[0] == 'f';
        if (!dsTimeParse(v.base, v.len, &ms, err, sizeof(err))) {
            snprintf(msg, msglen, "%s must be an RFC 3339 timestamp with offset: %s", from ? "from" : "to", err);
            return false;
        }
        dsTimeFormat(ms, from ? q->from : q->to);
        *(from ? &q->has_from : &q->has_to) = true;
    } else if (h2o_memis(name.base, name.len, H2O_STRLIT("limit"))) {
        char *end;
        errno = 0;
        q->limit = strtol(v.base, &end, 10);
        if (v.len == 0 || *end != '\0' || errno != 0 || q->limit < 1 || q->limit > LIST_MAX_LIMIT) {
            snprintf(msg, msglen, "limit must be an integer from 1 to %d", LIST_MAX_LIMIT);
            return false;
        }
    } else if (h2o_memis(name.base, name.len, H2O_STRLIT("cursor"))) {
        if (!listCursorDecode(&req->pool, v, q)) {
            snprintf(msg, msglen, "cursor is not one this server issued");
            return false;
        }
    } else {
        snprintf(msg, msglen, "unknown query parameter \"%.*s\"", (int)(name.len > 64 ? 64 : name.len), name.base);
        return false;
    }
    return true;
}

static bool listParse(h2o_req_t *req, listQuery *q, char *msg, size_t msglen, const char **field) {
    memset(q, 0, sizeof(*q));
    q->limit = LIST_DEFAULT_LIMIT;
    size_t pos = 0;
    bool bad = false;
    h2o_iovec_t name, value;
    while (dsHttpQueryNext(req, &pos, &name, &value, &bad)) {
        *field = name.base;
        if (!listParam(req, name, value, q, msg, msglen)) return false;
    }
    *field = NULL;
    if (bad) {
        snprintf(msg, msglen, "malformed percent-encoding in the query string");
        return false;
    }
    if (!q->customer_id && !q->merchant_id && !q->purchase_id) {
        snprintf(msg, msglen, "give at least one of customer_id, merchant_id, purchase_id");
        return false;
    }
    return true;
}

/* Builds the search SQL with only the conditions given. */
static int listBuildSql(const listQuery *q, char *sql, size_t len, const char **params) {
    int n = 0;
    size_t off = (size_t)snprintf(sql, len, "%s WHERE true", readColumns);
#define LIST_COND(cond, fmt, value)                                                                                   \
    if (cond) {                                                                                                       \
        params[n++] = (value);                                                                                        \
        off += (size_t)snprintf(sql + off, len - off, fmt, n);                                                        \
    }
    LIST_COND(q->customer_id, " AND customer_id = $%d", q->customer_id);
    LIST_COND(q->merchant_id, " AND merchant_id = $%d", q->merchant_id);
    LIST_COND(q->purchase_id, " AND purchase_id = $%d", q->purchase_id);
    LIST_COND(q->outcome, " AND outcome = $%d", q->outcome);
    LIST_COND(q->has_from, " AND decided_at >= $%d", q->from);
    LIST_COND(q->has_to, " AND decided_at < $%d", q->to);
#undef LIST_COND
    if (q->has_cursor) {
        params[n++] = q->cursor_at;
        params[n++] = q->cursor_id;
        off += (size_t)snprintf(sql + off, len - off, " AND (decided_at, decision_id) < ($%d::timestamptz, $%d::uuid)",
                                n - 1, n);
    }
    snprintf(sql + off, len - off, " ORDER BY decided_at DESC, decision_id DESC LIMIT %ld", q->limit + 1);
    return n;
}

static void readOnList(PGresult *res, const char *error, void *arg) {
    apiPending *p = arg;
    readState *st = p->data;
    h2o_req_t *req = apiPendingReq(p);
    if (req == NULL) goto done;
    if (res == NULL) {
        readUnavailable(st->s, req, st->route);
        goto done;
    }
    int rows = PQntuples(res), shown = rows > st->limit ? (int)st->limit : rows;
    json_t *list = json_array();
    for (int i = 0; i < shown; i++) {
        json_t *doc = readRow(st->s, res, i);
        if (doc == NULL) {
            /* Named, so the one row can be found and repaired (the log says why). */
            char msg[128];
            snprintf(msg, sizeof(msg), "stored decision %s is unreadable; this page cannot be served",
                     PQgetvalue(res, i, 0));
            json_decref(list);
            dsHttpRespondError(st->s->http, req, st->route, 500, "internal", msg, NULL, 0);
            goto done;
        }
        json_array_append_new(list, doc);
    }
    char cursor[160];
    json_t *next = json_null();
    if (rows > shown && listCursorEncode(PQgetvalue(res, shown - 1, 1), PQgetvalue(res, shown - 1, 0), cursor,
                                         sizeof(cursor)))
        next = json_string(cursor);
    dsHttpRespondJson(st->s->http, req, st->route, 200, json_pack("{s:o, s:o}", "decisions", list, "next_cursor", next),
                      NULL, 0);
done:
    PQclear(res);
    apiPendingFree(p);
}

void apiListDecisions(apiServer *s, h2o_req_t *req) {
    if (!apiRequireRole(s, req, ROUTE_LIST, DS_ROLE_READER)) return;
    listQuery q;
    char msg[256];
    const char *field = NULL;
    if (!listParse(req, &q, msg, sizeof(msg), &field)) {
        dsHttpRespondError(s->http, req, ROUTE_LIST, 400, "invalid_query", msg, field, 0);
        return;
    }
    char sql[1024];
    const char *params[8];
    int n = listBuildSql(&q, sql, sizeof(sql), params);
    readStart(s, req, ROUTE_LIST, sql, n, params, readOnList, q.limit);
}
