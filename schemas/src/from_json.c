/* from_json.c - posted JSON -> Avro value, enforcing every schema rule.
 *
 * Walks the JSON document, the rule tree and the avro_value_t together and
 * stops at the first broken rule, reporting its JSON path. Nothing here
 * allocates except what avro-c does to store the values (and a key array for
 * maps larger than the usual 64 entries), because this runs once per request.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "ds/timefmt.h"

static const char *jsonTypeName(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static bool wrongType(dsWalk *w, const json_t *j, const char *want) {
    return dsWalkFail(w, "wrong_type", "must be %s, not %s", want, jsonTypeName(j));
}

/* ---- strings ---- */

static bool walkString(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_string(j)) return wrongType(w, j, "a string");
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    char uuid[37];
    if (!dsCheckString(w, r, s, len, uuid)) return false;
    if (r->format == DSR_FORMAT_UUID) s = uuid;
    /* avro-c's string length includes the NUL terminator. */
    if (v && avro_value_set_string_len(v, s, len + 1) != 0)
        return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
    return true;
}

/* ---- numbers, enums ---- */

static bool walkInteger(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    int64_t n;
    if (r->timestamp_ms && !w->from_default) {
        char why[128];
        if (!json_is_string(j)) return wrongType(w, j, "an RFC 3339 timestamp string");
        if (!dsTimeParse(json_string_value(j), json_string_length(j), &n, why, sizeof why))
            return dsWalkFail(w, "invalid_value", "must be an RFC 3339 timestamp with a UTC offset: %s", why);
    } else {
        if (!json_is_integer(j)) return wrongType(w, j, "an integer");
        n = json_integer_value(j);
        /* A default is an integer: held to what a parsed one would be. */
        if (r->timestamp_ms && !dsCheckTimestampRange(w, n)) return false;
    }
    if (!dsCheckInteger(w, r, n)) return false;
    if (!v) return true;
    int rc = r->kind == DSR_INT ? avro_value_set_int(v, (int32_t)n) : avro_value_set_long(v, n);
    return rc == 0 || dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
}

static bool walkReal(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_number(j)) return wrongType(w, j, "a number");
    double d = json_number_value(j);
    if (!dsCheckReal(w, r, d)) return false;
    if (!v) return true;
    int rc = r->kind == DSR_FLOAT ? avro_value_set_float(v, (float)d) : avro_value_set_double(v, d);
    return rc == 0 || dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
}

static bool walkEnum(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_string(j)) return wrongType(w, j, "a string");
    int i = dsRuleEnumIndex(r, json_string_value(j), json_string_length(j));
    if (!dsCheckEnum(w, r, i)) return false;
    return !v || avro_value_set_enum(v, i) == 0 || dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
}

/* ---- containers ---- */

static bool walkArray(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_array(j)) return wrongType(w, j, "an array");
    size_t n = json_array_size(j);
    if (!dsCheckItems(w, r, n)) return false;
    for (size_t i = 0; i < n; i++) {
        avro_value_t child, *cp = NULL;
        if (v) {
            if (avro_value_append(v, &child, NULL) != 0)
                return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
            cp = &child;
        }
        size_t saved = dsWalkPushIndex(w, i);
        bool ok = dsWalkValue(w, r->items, json_array_get(j, i), cp);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

static bool walkMapEntries(dsWalk *w, const dsRule *r, dsMapEntry *e, size_t n, avro_value_t *v) {
    for (size_t i = 0; i < n; i++) {
        if (!dsCheckMapKey(w, r, e[i].key, e[i].len)) return false;
        avro_value_t child, *cp = NULL;
        if (v) {
            if (avro_value_add(v, e[i].key, &child, NULL, NULL) != 0)
                return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
            cp = &child;
        }
        size_t saved = dsWalkPushKey(w, e[i].key, e[i].len);
        bool ok = dsWalkValue(w, r->items, e[i].val, cp);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

/* Keys are stored sorted by bytes so that documents differing only in key
 * order give the same Avro bytes and the same canonical JSON. */
static bool walkMap(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_object(j)) return wrongType(w, j, "an object");
    size_t n = json_object_size(j);
    if (!dsCheckItems(w, r, n)) return false;
    dsMapEntry stackbuf[64], *e = n <= 64 ? stackbuf : malloc(n * sizeof *e);
    if (!e) return dsWalkFail(w, "internal", "out of memory");
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it), i++)
        e[i] = (dsMapEntry){.key = json_object_iter_key(it), .len = json_object_iter_key_len(it), .val = json_object_iter_value(it)};
    qsort(e, n, sizeof *e, dsMapEntryCompare);
    bool ok = walkMapEntries(w, r, e, n, v);
    if (e != stackbuf) free(e);
    return ok;
}

static bool walkUnion(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    avro_value_t branch;
    bool null = json_is_null(j);
    if (v && avro_value_set_branch(v, null ? r->null_index : r->branch_index, &branch) != 0)
        return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
    if (null) return !v || avro_value_set_null(&branch) == 0;
    return dsWalkValue(w, r->branch, j, v ? &branch : NULL);
}

/* ---- records ---- */

static bool findUnknownField(dsWalk *w, const dsRule *r, const json_t *j) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)j, key, val) {
        size_t i;
        for (i = 0; i < r->nfields && strcmp(r->fields[i].name, key) != 0; i++)
            ;
        if (i == r->nfields) {
            size_t saved = dsWalkPushField(w, key);
            dsWalkFail(w, "unknown_field", "is not a known field");
            dsWalkPopPath(w, saved);
            return true;
        }
    }
    return false;
}

static bool walkField(dsWalk *w, const dsRuleField *f, const json_t *fj, avro_value_t *child) {
    size_t saved = dsWalkPushField(w, f->name);
    bool ok;
    if (fj) {
        ok = dsWalkValue(w, f->type, fj, child);
    } else if (!f->def) {
        ok = dsWalkFail(w, "missing_field", "is required");
    } else {
        bool was = w->from_default;
        w->from_default = true;
        ok = dsWalkValue(w, f->type, f->def, child);
        w->from_default = was;
    }
    dsWalkPopPath(w, saved);
    return ok;
}

static bool walkRecord(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_object(j)) return wrongType(w, j, "an object");
    /* Unknown fields first: a misspelt field is the likelier cause of a
     * "missing" one, and must never be dropped silently. */
    size_t known = 0;
    for (size_t i = 0; i < r->nfields; i++) known += json_object_get(j, r->fields[i].name) != NULL;
    if (known != json_object_size(j) && findUnknownField(w, r, j)) return false;
    for (size_t i = 0; i < r->nfields; i++) {
        const dsRuleField *f = &r->fields[i];
        avro_value_t child;
        if (v && avro_value_get_by_index(v, i, &child, NULL) != 0)
            return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
        /* A posted server-set value is ignored: the server always decides. */
        const json_t *fj = f->server_set ? NULL : json_object_get(j, f->name);
        if (!walkField(w, f, fj, v ? &child : NULL)) return false;
    }
    return true;
}

bool dsWalkValue(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    switch (r->kind) {
    case DSR_NULL:
        return json_is_null(j) ? (!v || avro_value_set_null(v) == 0) : wrongType(w, j, "null");
    case DSR_BOOLEAN:
        if (!json_is_boolean(j)) return wrongType(w, j, "true or false");
        return !v || avro_value_set_boolean(v, json_is_true(j)) == 0;
    case DSR_INT:
    case DSR_LONG: return walkInteger(w, r, j, v);
    case DSR_FLOAT:
    case DSR_DOUBLE: return walkReal(w, r, j, v);
    case DSR_STRING: return walkString(w, r, j, v);
    case DSR_ENUM: return walkEnum(w, r, j, v);
    case DSR_ARRAY: return walkArray(w, r, j, v);
    case DSR_MAP: return walkMap(w, r, j, v);
    case DSR_UNION: return walkUnion(w, r, j, v);
    case DSR_RECORD: return walkRecord(w, r, j, v);
    }
    return dsWalkFail(w, "internal", "has an unknown rule kind");
}

static bool fromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsWalk *w) {
    memset(w->err, 0, sizeof *w->err);
    /* The rules of out's own version: the walk addresses its fields by
     * index, so the rule tree must be that schema's. */
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(out));
    if (!v) return dsWalkFail(w, "internal", "cannot be stored: the value is of no known schema version");
    if (!doc) return dsWalkFail(w, "wrong_type", "must be a JSON object");
    if (avro_value_reset(out) != 0) return dsWalkFail(w, "internal", "cannot be stored: %s", avro_strerror());
    return dsWalkValue(w, v->rules.root, doc, out);
}

bool dsCodecFromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsCodecError *err) {
    dsWalk w;
    dsWalkInit(&w, err);
    return fromJson(c, doc, out, &w);
}

bool dsCodecFromJsonPosted(dsCodec *c, const json_t *doc, avro_value_t *out, int64_t now_ms, int64_t max_skew_ms,
                           dsCodecError *err) {
    dsWalk w;
    dsWalkInit(&w, err);
    dsWalkBoundFuture(&w, now_ms, max_skew_ms);
    return fromJson(c, doc, out, &w);
}
