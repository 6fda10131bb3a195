/* from_json.c - posted JSON -> Avro value, enforcing every schema rule.
 *
 * Walks the JSON document, the rule tree and the avro_value_t together and
 * stops at the first broken rule, reporting its JSON path. Nothing here
 * allocates except what avro-c does to store the values (and a key array for
 * maps larger than the usual 64 entries), because this runs once per request.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "ds/timefmt.h"

/* ---- errors and paths ---- */

void dsUtf8TrimPartial(char *s) {
    size_t n = strlen(s), i = n;
    /* Walk back over continuation bytes to the last lead byte. */
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < need) s[i - 1] = '\0';
}

static bool fail(dsWalk *w, const char *code, const char *fmt, ...) {
    dsCodecError *e = w->err;
    char rest[384];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(rest, sizeof rest, fmt, ap) >= (int)sizeof rest) dsUtf8TrimPartial(rest);
    va_end(ap);
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->field, sizeof e->field, "%s", w->path);
    if (snprintf(e->message, sizeof e->message, "%s %s", w->plen ? w->path : "the document", rest) >=
        (int)sizeof e->message)
        dsUtf8TrimPartial(e->message);
    return false;
}

size_t dsWalkPushPath(dsWalk *w, const char *fmt, ...) {
    size_t saved = w->plen;
    if (w->plen < sizeof w->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->path + w->plen, sizeof w->path - w->plen, fmt, ap);
        va_end(ap);
        dsUtf8TrimPartial(w->path + w->plen);
        w->plen += strlen(w->path + w->plen);
    }
    return saved;
}

void dsWalkPopPath(dsWalk *w, size_t saved) {
    w->plen = saved;
    w->path[saved] = '\0';
}

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
    return fail(w, "wrong_type", "must be %s, not %s", want, jsonTypeName(j));
}

/* ---- strings ---- */

typedef enum { STR_OK, STR_BAD_UTF8, STR_NUL, STR_CONTROL } strScan;

/* One pass over the bytes: UTF-8 validity (jansson checks what it parses,
 * not what callers build with *_nocheck), NUL, and control characters: C0,
 * DEL and C1 (U+0080..U+009F, encoded C2 80..C2 9F). */
static strScan scanString(const unsigned char *s, size_t len, bool want_controls) {
    strScan found = STR_OK;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0) return STR_NUL;
            if (c < 0x20 || c == 0x7F) found = STR_CONTROL;
            i++;
            continue;
        }
        size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (n == 0 || c > 0xF4 || i + n > len) return STR_BAD_UTF8;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return STR_BAD_UTF8;
        unsigned char c1 = s[i + 1];
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
            return STR_BAD_UTF8; /* overlong, surrogate, or past U+10FFFF */
        if (c == 0xC2 && c1 <= 0x9F) found = STR_CONTROL;
        i += n;
    }
    return want_controls ? found : STR_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 8-4-4-4-12 hex digits of either case; writes the lower-case form. */
static bool uuidLower(const char *s, size_t len, char out[37]) {
    if (len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : hexval(s[i]) < 0) return false;
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    }
    out[36] = '\0';
    return true;
}

/* Checks a string against a string rule; on failure writes why (a phrase
 * that follows the field's name) into why. */
static bool stringRules(const dsRule *r, const char *s, size_t len, char uuid[37], char *why, size_t whylen) {
    switch (scanString((const unsigned char *)s, len, r->format == DSR_FORMAT_PRINTABLE)) {
    case STR_BAD_UTF8: return snprintf(why, whylen, "is not valid UTF-8"), false;
    case STR_NUL: return snprintf(why, whylen, "must not contain NUL characters"), false;
    case STR_CONTROL: return snprintf(why, whylen, "must not contain control characters"), false;
    case STR_OK: break;
    }
    if (len < r->min_len)
        return (r->min_len == 1 ? snprintf(why, whylen, "must not be empty")
                                : snprintf(why, whylen, "must be at least %zu bytes long", r->min_len)), false;
    if (len > r->max_len) return snprintf(why, whylen, "must be at most %zu bytes long (got %zu)", r->max_len, len), false;
    if (r->format == DSR_FORMAT_UUID && !uuidLower(s, len, uuid))
        return snprintf(why, whylen, "must be a UUID (8-4-4-4-12 hexadecimal digits)"), false;
    /* s is NUL-terminated (jansson) and holds no NUL (checked above), so
     * regexec sees exactly the value. */
    if (r->pattern && regexec(&r->re, s, 0, NULL, 0) != 0)
        return snprintf(why, whylen, "must match the pattern %s", r->pattern), false;
    return true;
}

static bool walkString(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_string(j)) return wrongType(w, j, "a string");
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    char uuid[37], why[256];
    if (!stringRules(r, s, len, uuid, why, sizeof why)) return fail(w, "invalid_value", "%s", why);
    if (r->format == DSR_FORMAT_UUID) s = uuid;
    /* avro-c's string length includes the NUL terminator. */
    if (v && avro_value_set_string_len(v, s, len + 1) != 0) return fail(w, "internal", "cannot be stored: %s", avro_strerror());
    return true;
}

/* ---- numbers, enums ---- */

/* A decision before 2000 is a client's bug (an unset clock, a zero value)
 * and one before 1970 cannot be placed in the archive; one in the future
 * would be counted by the variable store for ever. The future is only
 * refused at intake: a record validated again later (a stored row, an
 * archived record) was accepted then. */
static bool decisionTime(dsWalk *w, int64_t ms) {
    char ts[DS_TIME_BUFLEN];
    if (ms < DS_CODEC_DECIDED_AT_MIN_MS)
        return fail(w, "invalid_value", "must not be before 2000-01-01T00:00:00.000Z");
    if (w->bound_future && ms > w->latest_ms && dsTimeFormat(w->latest_ms, ts))
        return fail(w, "invalid_value", "is in the future: at most %s is accepted now (the server's clock plus the "
                    "allowed clock skew)", ts);
    return true;
}

static bool walkInteger(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    int64_t n;
    if (r->timestamp_ms && !w->from_default) {
        char why[128];
        if (!json_is_string(j)) return wrongType(w, j, "an RFC 3339 timestamp string");
        if (!dsTimeParse(json_string_value(j), json_string_length(j), &n, why, sizeof why))
            return fail(w, "invalid_value", "must be an RFC 3339 timestamp with a UTC offset: %s", why);
    } else {
        if (!json_is_integer(j)) return wrongType(w, j, "an integer");
        n = json_integer_value(j);
    }
    if (r->decision_time && !w->from_default && !decisionTime(w, n)) return false;
    if (n < r->imin)
        return r->has_min ? fail(w, "invalid_value", "must be at least %" PRId64, r->imin)
                          : fail(w, "invalid_value", "is out of range for a %d-bit integer", r->kind == DSR_INT ? 32 : 64);
    if (n > r->imax)
        return r->has_max ? fail(w, "invalid_value", "must be at most %" PRId64, r->imax)
                          : fail(w, "invalid_value", "is out of range for a %d-bit integer", r->kind == DSR_INT ? 32 : 64);
    if (!v) return true;
    int rc = r->kind == DSR_INT ? avro_value_set_int(v, (int32_t)n) : avro_value_set_long(v, n);
    return rc == 0 || fail(w, "internal", "cannot be stored: %s", avro_strerror());
}

static bool walkReal(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_number(j)) return wrongType(w, j, "a number");
    double d = json_number_value(j);
    if (d < r->dmin) return r->has_min ? fail(w, "invalid_value", "must be at least %g", r->dmin)
                                       : fail(w, "invalid_value", "is out of range for a %s", r->kind == DSR_FLOAT ? "float" : "double");
    if (d > r->dmax) return r->has_max ? fail(w, "invalid_value", "must be at most %g", r->dmax)
                                       : fail(w, "invalid_value", "is out of range for a %s", r->kind == DSR_FLOAT ? "float" : "double");
    if (!v) return true;
    int rc = r->kind == DSR_FLOAT ? avro_value_set_float(v, (float)d) : avro_value_set_double(v, d);
    return rc == 0 || fail(w, "internal", "cannot be stored: %s", avro_strerror());
}

static bool walkEnum(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_string(j)) return wrongType(w, j, "a string");
    for (size_t i = 0; i < r->nsymbols; i++)
        if (strcmp(r->symbols[i], json_string_value(j)) == 0 && strlen(r->symbols[i]) == json_string_length(j))
            return !v || avro_value_set_enum(v, (int)i) == 0 || fail(w, "internal", "cannot be stored: %s", avro_strerror());
    return fail(w, "invalid_value", "must be one of %s", r->symbol_list);
}

/* ---- containers ---- */

static bool walkArray(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_array(j)) return wrongType(w, j, "an array");
    size_t n = json_array_size(j);
    if (n > r->max_items)
        return fail(w, "too_many_items", "has %zu items; at most %zu are allowed", n, r->max_items);
    for (size_t i = 0; i < n; i++) {
        avro_value_t child, *cp = NULL;
        if (v) {
            if (avro_value_append(v, &child, NULL) != 0) return fail(w, "internal", "cannot be stored: %s", avro_strerror());
            cp = &child;
        }
        size_t saved = dsWalkPushPath(w, "[%zu]", i);
        bool ok = dsWalkValue(w, r->items, json_array_get(j, i), cp);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

typedef struct {
    const char *key;
    size_t len;
    json_t *val;
} mapEntry;

static int cmpEntry(const void *a, const void *b) {
    const mapEntry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A bad key is reported at the entry's path, with a message naming the map
 * ("attributes key \"\" must not be empty"). */
static bool badKey(dsWalk *w, const mapEntry *e, const char *why) {
    fail(w, "invalid_value", "key \"%s\" %s", e->key, why);
    size_t saved = dsWalkPushPath(w, ".%s", e->key);
    snprintf(w->err->field, sizeof w->err->field, "%s", w->path);
    dsWalkPopPath(w, saved);
    return false;
}

static bool walkMapEntries(dsWalk *w, const dsRule *r, mapEntry *e, size_t n, avro_value_t *v) {
    for (size_t i = 0; i < n; i++) {
        char why[256], uuid[37];
        if (!stringRules(r->keys, e[i].key, e[i].len, uuid, why, sizeof why)) return badKey(w, &e[i], why);
        avro_value_t child, *cp = NULL;
        if (v) {
            if (avro_value_add(v, e[i].key, &child, NULL, NULL) != 0)
                return fail(w, "internal", "cannot be stored: %s", avro_strerror());
            cp = &child;
        }
        size_t saved = dsWalkPushPath(w, ".%s", e[i].key);
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
    if (n > r->max_items) return fail(w, "too_many_items", "has %zu entries; at most %zu are allowed", n, r->max_items);
    mapEntry stackbuf[64], *e = n <= 64 ? stackbuf : malloc(n * sizeof *e);
    if (!e) return fail(w, "internal", "out of memory");
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it), i++)
        e[i] = (mapEntry){json_object_iter_key(it), json_object_iter_key_len(it), json_object_iter_value(it)};
    qsort(e, n, sizeof *e, cmpEntry);
    bool ok = walkMapEntries(w, r, e, n, v);
    if (e != stackbuf) free(e);
    return ok;
}

static bool walkUnion(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v) {
    avro_value_t branch;
    bool null = json_is_null(j);
    if (v && avro_value_set_branch(v, null ? r->null_index : r->branch_index, &branch) != 0)
        return fail(w, "internal", "cannot be stored: %s", avro_strerror());
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
            size_t saved = dsWalkPushPath(w, "%s%s", w->plen ? "." : "", key);
            fail(w, "unknown_field", "is not a known field");
            dsWalkPopPath(w, saved);
            return true;
        }
    }
    return false;
}

static bool walkField(dsWalk *w, const dsRuleField *f, const json_t *fj, avro_value_t *child) {
    size_t saved = dsWalkPushPath(w, "%s%s", w->plen ? "." : "", f->name);
    bool ok;
    if (fj) {
        ok = dsWalkValue(w, f->type, fj, child);
    } else if (!f->def) {
        ok = fail(w, "missing_field", "is required");
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
            return fail(w, "internal", "cannot be stored: %s", avro_strerror());
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
    return fail(w, "internal", "has an unknown rule kind");
}

static bool fromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsWalk w, dsCodecError *err) {
    memset(err, 0, sizeof *err);
    /* The rules of out's own version: the walk addresses its fields by
     * index, so the rule tree must be that schema's. */
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(out));
    if (!v) return fail(&w, "internal", "cannot be stored: the value is of no known schema version");
    if (!doc) return fail(&w, "wrong_type", "must be a JSON object");
    if (avro_value_reset(out) != 0) return fail(&w, "internal", "cannot be stored: %s", avro_strerror());
    return dsWalkValue(&w, v->rules.root, doc, out);
}

bool dsCodecFromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsCodecError *err) {
    return fromJson(c, doc, out, (dsWalk){.err = err}, err);
}

bool dsCodecFromJsonPosted(dsCodec *c, const json_t *doc, avro_value_t *out, int64_t now_ms, int64_t max_skew_ms,
                           dsCodecError *err) {
    if (max_skew_ms < 0) max_skew_ms = 0;
    int64_t latest = now_ms > 0 && max_skew_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + max_skew_ms;
    return fromJson(c, doc, out, (dsWalk){.err = err, .bound_future = true, .latest_ms = latest}, err);
}
