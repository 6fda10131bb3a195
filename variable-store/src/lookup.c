/* lookup.c - GET /v1/variables/{entity}/{id} and POST /v1/variables:batchGet
 * (CONTRACT §6). Answered at once from one LMDB snapshot per request, so a
 * batch sees one consistent state and one as_of. */
#include <string.h>

#include "ds/log.h"
#include "ds/timefmt.h"
#include "server.h"

#define ROUTE_GET "GET /v1/variables/{entity}/{id}"
#define ROUTE_BATCH "POST /v1/variables:batchGet"

static void lookupUnknownEntity(vsServer *s, h2o_req_t *req, const char *route, const char *name, size_t len,
                                const char *field) {
    char known[256] = "", msg[512];
    for (size_t i = 0; i < s->vars->nentities; i++) {
        size_t n = strlen(known);
        snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", s->vars->entities[i].name);
    }
    snprintf(msg, sizeof(msg), "no entity \"%s\" (this store keeps: %s)", dsHttpQuote(req, name, len, 64), known);
    dsHttpRespondError(s->http, req, route, 404, "unknown_entity", msg, field, 0);
}

/* {"entity", "id", "variables", "as_of"} for one key; NULL with errbuf filled. */
static json_t *lookupOne(vsServer *s, const vsEntity *e, const char *id, size_t idlen, int64_t as_of,
                         const char *as_of_text, char *errbuf, size_t errlen) {
    json_t *vars = vsStoreLookup(s->reader, e, id, idlen, as_of, errbuf, errlen);
    if (vars == NULL) return NULL;
    return json_pack("{s:s, s:s%, s:o, s:s}", "entity", e->name, "id", id, idlen, "variables", vars, "as_of",
                     as_of_text);
}

static void lookupFailed(vsServer *s, h2o_req_t *req, const char *route, const char *err) {
    dsLogError("%s: %s", route, err);
    dsHttpRespondError(s->http, req, route, 500, "internal", "the store could not be read", NULL, 0);
}

/* A lookup takes no query parameter: one ignored would be a silent lie, such
 * as min_position answered without waiting for that position. false:
 * answered 400 naming it (when it is short UTF-8, so that it renders). */
static bool lookupNoQuery(vsServer *s, h2o_req_t *req) {
    size_t pos = 0;
    bool bad = false;
    h2o_iovec_t name, value;
    if (!dsHttpQueryNext(req, &pos, &name, &value, &bad) && !bad) return true;
    char msg[160];
    json_t *shown = bad || name.len > 64 ? NULL : json_stringn(name.base, name.len);
    if (shown)
        snprintf(msg, sizeof(msg), "unknown query parameter \"%s\": a lookup takes none", json_string_value(shown));
    else
        snprintf(msg, sizeof(msg), "a lookup takes no query parameters");
    dsHttpRespondError(s->http, req, ROUTE_GET, 400, "invalid_query", msg, shown ? json_string_value(shown) : NULL, 0);
    json_decref(shown);
    return false;
}

void vsLookupGet(vsServer *s, h2o_req_t *req, const char *rest, size_t len) {
    if (!dsAuthRequire(s->auth, s->http, req, ROUTE_GET, VS_ROLES_LOOKUP)) return;
    if (!lookupNoQuery(s, req)) return;
    const char *slash = memchr(rest, '/', len);
    h2o_iovec_t id;
    if (slash == NULL || slash + 1 == rest + len) {
        dsHttpRespondError(s->http, req, ROUTE_GET, 400, "bad_request",
                           "the path is /v1/variables/{entity}/{id} (escape a '/' in an id as %2F)", NULL, 0);
        return;
    }
    const vsEntity *e = vsVarsEntity(s->vars, rest, (size_t)(slash - rest));
    if (e == NULL) return lookupUnknownEntity(s, req, ROUTE_GET, rest, (size_t)(slash - rest), NULL);
    if (!dsHttpUnescapePath(req, slash + 1, (size_t)(rest + len - slash - 1), &id)) {
        dsHttpRespondError(s->http, req, ROUTE_GET, 400, "bad_request", "malformed percent-escape in the id", NULL, 0);
        return;
    }
    json_t *utf8 = json_stringn(id.base, id.len);
    if (utf8 == NULL) {
        dsHttpRespondError(s->http, req, ROUTE_GET, 400, "bad_request", "the id is not UTF-8", NULL, 0);
        return;
    }
    json_decref(utf8);
    int64_t now = dsTimeNowMs();
    char as_of[DS_TIME_BUFLEN], err[512];
    dsTimeFormat(now, as_of);
    if (!vsStoreReaderBegin(s->reader, err, sizeof(err))) return lookupFailed(s, req, ROUTE_GET, err);
    json_t *body = lookupOne(s, e, id.base, id.len, now, as_of, err, sizeof(err));
    vsStoreReaderEnd(s->reader);
    if (body == NULL) return lookupFailed(s, req, ROUTE_GET, err);
    dsHttpRespondJson(s->http, req, ROUTE_GET, 200, body, NULL, 0);
}

/* The keys of a batch, checked before any is read. false: answered. */
static bool lookupKeys(vsServer *s, h2o_req_t *req, json_t *doc, json_t **keys) {
    char field[64], msg[256];
    *keys = json_is_object(doc) ? json_object_get(doc, "keys") : NULL;
    if (!json_is_array(*keys) || json_object_size(doc) != 1) {
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, "bad_request",
                           "the body must be {\"keys\": [{\"entity\": ..., \"id\": ...}, ...]}", "keys", 0);
        return false;
    }
    if (json_array_size(*keys) > s->batch_get_max) {
        snprintf(msg, sizeof(msg), "%zu keys; a batch holds at most %zu", json_array_size(*keys), s->batch_get_max);
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 413, "too_many_keys", msg, "keys", 0);
        return false;
    }
    size_t i;
    json_t *k;
    json_array_foreach(*keys, i, k) {
        json_t *ent = json_object_get(k, "entity"), *id = json_object_get(k, "id");
        const char *bad = !json_is_object(k) ? "" : !json_is_string(ent) ? ".entity" : !json_is_string(id) ? ".id" : NULL;
        if (bad == NULL && json_object_size(k) != 2) bad = "";
        if (bad != NULL) {
            snprintf(field, sizeof(field), "keys[%zu]%s", i, bad);
            snprintf(msg, sizeof(msg), "%s must be %s", field,
                     *bad ? "a string" : "an object with exactly \"entity\" and \"id\" (strings)");
            dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, "bad_request", msg, field, 0);
            return false;
        }
        if (vsVarsEntity(s->vars, json_string_value(ent), json_string_length(ent)) == NULL) {
            snprintf(field, sizeof(field), "keys[%zu].entity", i);
            lookupUnknownEntity(s, req, ROUTE_BATCH, json_string_value(ent), json_string_length(ent), field);
            return false;
        }
    }
    return true;
}

void vsLookupBatch(vsServer *s, h2o_req_t *req) {
    if (!dsAuthRequire(s->auth, s->http, req, ROUTE_BATCH, VS_ROLES_LOOKUP)) return;
    if (!vsServerRequireJson(s, req, ROUTE_BATCH)) return;
    json_error_t jerr;
    json_t *doc = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr), *keys;
    if (doc == NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "malformed JSON: %s at line %d, column %d", jerr.text, jerr.line, jerr.column);
        dsHttpRespondError(s->http, req, ROUTE_BATCH, 400, "malformed_json", msg, NULL, 0);
        return;
    }
    if (!lookupKeys(s, req, doc, &keys)) {
        json_decref(doc);
        return;
    }
    int64_t now = dsTimeNowMs();
    char as_of[DS_TIME_BUFLEN], err[512];
    dsTimeFormat(now, as_of);
    json_t *results = json_array(), *k;
    size_t i;
    bool ok = vsStoreReaderBegin(s->reader, err, sizeof(err));
    json_array_foreach(keys, i, k) {
        if (!ok) break;
        json_t *ent = json_object_get(k, "entity"), *id = json_object_get(k, "id");
        const vsEntity *e = vsVarsEntity(s->vars, json_string_value(ent), json_string_length(ent));
        json_t *one = lookupOne(s, e, json_string_value(id), json_string_length(id), now, as_of, err, sizeof(err));
        ok = one != NULL && json_array_append_new(results, one) == 0;
    }
    vsStoreReaderEnd(s->reader);
    json_decref(doc);
    if (!ok) {
        json_decref(results);
        return lookupFailed(s, req, ROUTE_BATCH, err);
    }
    dsHttpRespondJson(s->http, req, ROUTE_BATCH, 200, json_pack("{s:o, s:s}", "results", results, "as_of", as_of),
                      NULL, 0);
}
