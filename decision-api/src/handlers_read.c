/* handlers_read.c - GET /v1/decisions/{id} and the support search
 * GET /v1/decisions?customer_id=...: newest first by decided_at, keyset
 * pagination with a signed opaque cursor (cursor.h).
 *
 * Every search parameter is checked here, before PostgreSQL sees it: a
 * value no stored decision can hold (an id that breaks the document's own
 * rule, an outcome no schema version has) or text PostgreSQL cannot take
 * (NUL, invalid UTF-8) is the client's mistake and gets a 400 naming the
 * parameter, as does a parameter given twice. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cursor.h"
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
    unsigned seen; /* bit per listParams entry: each may come once */
} listQuery;

/* The document's rule for the id fields (CONTRACT: 1-128 bytes of UTF-8, no
 * control characters). */
#define LIST_ID_MAX 128

typedef struct readState {
    apiServer *s;
    const char *route;
    long limit; /* list only */
} readState;

static void readUnavailable(apiServer *s, h2o_req_t *req, const char *route) {
    dsHttpRespondError(s->http, req, route, 503, "unavailable", "the database is unavailable; retry later", NULL,
                       s->retry_after_s);
}

/* A statement's error: a value PostgreSQL refused (class 22, data
 * exception, e.g. text it cannot convert) is the client's, 400; a query the
 * server got wrong (42 syntax or access, XX internal) is a 500; the rest
 * (connection, resources, the statement timeout) is the database in
 * trouble, 503 with Retry-After. Never a 503 for the client's mistake. */
static void readRespondDbError(apiServer *s, h2o_req_t *req, const char *route, const PGresult *res) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char msg[256];
    if (state == NULL) state = "";
    if (strncmp(state, "22", 2) == 0) {
        /* PostgreSQL's message may quote the value; the client sent it */
        snprintf(msg, sizeof(msg), "the database refused a value of the query: %s", primary ? primary : state);
        dsHttpRespondError(s->http, req, route, 400, "invalid_query", msg, NULL, 0);
    } else if (strncmp(state, "42", 2) == 0 || strncmp(state, "XX", 2) == 0) {
        dsLogError("%s: query failed: %s %s", route, state, primary ? primary : "");
        dsHttpRespondError(s->http, req, route, 500, "internal", "the query failed", NULL, 0);
    } else {
        dsLogWarn("%s: query failed: %s %s", route, state, primary ? primary : "");
        readUnavailable(s, req, route);
    }
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
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        readRespondDbError(st->s, req, st->route, res);
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

/* Whether v is 1-LIST_ID_MAX bytes of UTF-8 without C0, DEL or C1
 * controls (NUL included), as an id field of a document must be. */
static bool listIdValid(h2o_iovec_t v) {
    if (v.len == 0 || v.len > LIST_ID_MAX) return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if (c < 0x20 || c == 0x7f) return false;
        /* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 */
        if (c == 0xc2 && i + 1 < v.len && (unsigned char)v.base[i + 1] < 0xa0) return false;
    }
    json_t *utf8 = json_stringn(v.base, v.len); /* NULL for invalid UTF-8 */
    json_decref(utf8);
    return utf8 != NULL;
}

/* Whether some schema version's outcome enum has the symbol. */
static bool listOutcomeKnown(const dsCodec *c, h2o_iovec_t v) {
    if (v.len == 0 || memchr(v.base, '\0', v.len) != NULL) return false;
    for (int ver = 1; ver <= dsCodecCurrentVersion(c); ver++) {
        avro_schema_t schema = dsCodecSchemaId(c, ver) >= 0 ? dsCodecSchema(c, ver) : NULL;
        avro_schema_t e = schema ? avro_schema_record_field_get(schema, "outcome") : NULL;
        if (e != NULL && is_avro_enum(e) && avro_schema_enum_get_by_name(e, v.base) >= 0) return true;
    }
    return false;
}

/* limit: plain decimal digits (no sign, space or trailing bytes), 1 to
 * LIST_MAX_LIMIT. */
static bool listLimit(h2o_iovec_t v, long *out) {
    if (v.len == 0 || v.len > 3) return false;
    long n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9') return false;
        n = n * 10 + (v.base[i] - '0');
    }
    if (n < 1 || n > LIST_MAX_LIMIT) return false;
    *out = n;
    return true;
}

static bool listTime(h2o_iovec_t v, char out[DS_TIME_BUFLEN], const char *name, char *msg, size_t msglen) {
    char err[128] = "out of range";
    int64_t ms;
    if (memchr(v.base, '\0', v.len) != NULL) {
        snprintf(msg, msglen, "%s must be an RFC 3339 timestamp with offset: it holds a NUL byte", name);
        return false;
    }
    if (!dsTimeParse(v.base, v.len, &ms, err, sizeof(err)) || !dsTimeFormat(ms, out)) {
        snprintf(msg, msglen, "%s must be an RFC 3339 timestamp with offset: %s", name, err);
        return false;
    }
    return true;
}

static bool listCursor(apiServer *s, h2o_req_t *req, h2o_iovec_t v, listQuery *q) {
    int64_t ms;
    if (!apiCursorDecode(&s->cursor_key, &req->pool, v.base, v.len, &ms, q->cursor_id) ||
        !dsTimeFormat(ms, q->cursor_at))
        return false;
    q->has_cursor = true;
    return true;
}

typedef enum { P_CUSTOMER, P_MERCHANT, P_PURCHASE, P_OUTCOME, P_FROM, P_TO, P_LIMIT, P_CURSOR, P_COUNT } listParamId;
static const char *const listParams[P_COUNT] = {"customer_id", "merchant_id", "purchase_id", "outcome",
                                                "from",        "to",          "limit",       "cursor"};

static bool listId(h2o_iovec_t v, const char **out, const char *name, char *msg, size_t msglen) {
    if (!listIdValid(v)) {
        snprintf(msg, msglen, "%s must be 1-%d bytes of UTF-8 without control characters", name, LIST_ID_MAX);
        return false;
    }
    *out = v.base; /* NUL-terminated by the decoder, and holds no NUL */
    return true;
}

/* Validates one query parameter into q; writes a message on failure. */
static bool listParam(apiServer *s, h2o_req_t *req, h2o_iovec_t name, h2o_iovec_t v, listQuery *q, char *msg,
                      size_t msglen) {
    int id = 0;
    while (id < P_COUNT && !h2o_memis(name.base, name.len, listParams[id], strlen(listParams[id]))) id++;
    if (id == P_COUNT) {
        snprintf(msg, msglen, "unknown query parameter \"%s\"", dsHttpQuote(req, name.base, name.len, 64));
        return false;
    }
    if (q->seen & (1u << id)) {
        snprintf(msg, msglen, "%s is given more than once", listParams[id]);
        return false;
    }
    q->seen |= 1u << id;
    switch ((listParamId)id) {
    case P_CUSTOMER: return listId(v, &q->customer_id, listParams[id], msg, msglen);
    case P_MERCHANT: return listId(v, &q->merchant_id, listParams[id], msg, msglen);
    case P_PURCHASE: return listId(v, &q->purchase_id, listParams[id], msg, msglen);
    case P_OUTCOME:
        if (!listOutcomeKnown(s->codec, v)) {
            snprintf(msg, msglen, "outcome must be one of the schema's outcome symbols");
            return false;
        }
        q->outcome = v.base;
        return true;
    case P_FROM: return (q->has_from = listTime(v, q->from, "from", msg, msglen));
    case P_TO: return (q->has_to = listTime(v, q->to, "to", msg, msglen));
    case P_LIMIT:
        if (!listLimit(v, &q->limit)) {
            snprintf(msg, msglen, "limit must be an integer from 1 to %d, in plain digits", LIST_MAX_LIMIT);
            return false;
        }
        return true;
    case P_CURSOR:
        if (!listCursor(s, req, v, q)) {
            snprintf(msg, msglen, "cursor is not one this server issued (changed, cut short or signed by another key)");
            return false;
        }
        return true;
    default: return false;
    }
}

static bool listParse(apiServer *s, h2o_req_t *req, listQuery *q, char *msg, size_t msglen, const char **field) {
    memset(q, 0, sizeof(*q));
    q->limit = LIST_DEFAULT_LIMIT;
    size_t pos = 0;
    bool bad = false;
    h2o_iovec_t name, value;
    while (dsHttpQueryNext(req, &pos, &name, &value, &bad)) {
        *field = name.base;
        if (!listParam(s, req, name, value, q, msg, msglen)) return false;
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
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        readRespondDbError(st->s, req, st->route, res);
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
    char cursor[API_CURSOR_BUFLEN];
    json_t *next = json_null();
    if (rows > shown && apiCursorEncode(&st->s->cursor_key, strtoll(PQgetvalue(res, shown - 1, 1), NULL, 10),
                                        PQgetvalue(res, shown - 1, 0), cursor))
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
    if (!listParse(s, req, &q, msg, sizeof(msg), &field)) {
        dsHttpRespondError(s->http, req, ROUTE_LIST, 400, "invalid_query", msg, field, 0);
        return;
    }
    char sql[1024];
    const char *params[8];
    int n = listBuildSql(&q, sql, sizeof(sql), params);
    readStart(s, req, ROUTE_LIST, sql, n, params, readOnList, q.limit);
}
