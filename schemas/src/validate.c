/* validate.c - an Avro value against the rules of its schema version
 * (dsCodecValidate() in codec.h).
 *
 * Walks the value and the version's rule tree in lock step, as from_json.c
 * walks a document, and hands every node to the same per-rule checks
 * (check.c), so a value is refused exactly where the document it renders
 * as would be, with the same error. What JSON cannot get wrong and a value
 * can is checked here besides: NaN (dsCheckReal), a timestamp that cannot
 * be rendered, an enum index or union branch that is not the schema's, a
 * UUID not in the lower-case form every stored one has. Nothing is
 * allocated unless a map of more than 64 entries is out of order.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

static bool avroFail(dsWalk *w) { return dsWalkFail(w, "internal", "cannot be read: %s", avro_strerror()); }

static bool checkValue(dsWalk *w, const dsRule *r, avro_value_t *v);

static bool checkString(dsWalk *w, const dsRule *r, avro_value_t *v) {
    const char *s;
    size_t size;
    char uuid[37];
    if (avro_value_get_string(v, &s, &size) != 0) return avroFail(w);
    /* avro-c's size counts the NUL it keeps after the bytes; a value built
     * without one is a caller's bug, and the checks need it (regexec). */
    if (size == 0 || s[size - 1] != '\0') return dsWalkFail(w, "internal", "is a string without its NUL terminator");
    if (!dsCheckString(w, r, s, size - 1, uuid)) return false;
    if (r->format == DSR_FORMAT_UUID && memcmp(uuid, s, 36) != 0)
        return dsWalkFail(w, "invalid_value", "must be a UUID in lower case, as every stored one is");
    return true;
}

static bool checkScalar(dsWalk *w, const dsRule *r, avro_value_t *v) {
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    int e;
    switch (r->kind) {
    case DSR_INT:
        return avro_value_get_int(v, &i32) == 0 ? dsCheckInteger(w, r, i32) : avroFail(w);
    case DSR_LONG:
        if (avro_value_get_long(v, &i64) != 0) return avroFail(w);
        return (!r->timestamp_ms || dsCheckTimestampRange(w, i64)) && dsCheckInteger(w, r, i64);
    case DSR_FLOAT:
        return avro_value_get_float(v, &f) == 0 ? dsCheckReal(w, r, f) : avroFail(w);
    case DSR_DOUBLE:
        return avro_value_get_double(v, &d) == 0 ? dsCheckReal(w, r, d) : avroFail(w);
    case DSR_ENUM:
        return avro_value_get_enum(v, &e) == 0 ? dsCheckEnum(w, r, e) : avroFail(w);
    case DSR_STRING:
        return checkString(w, r, v);
    default: /* null, boolean: the type is the whole rule */
        return true;
    }
}

static bool checkArray(dsWalk *w, const dsRule *r, avro_value_t *v) {
    size_t n;
    if (avro_value_get_size(v, &n) != 0) return avroFail(w);
    if (!dsCheckItems(w, r, n)) return false;
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        if (avro_value_get_by_index(v, i, &child, NULL) != 0) return avroFail(w);
        size_t saved = dsWalkPushIndex(w, i);
        bool ok = checkValue(w, r->items, &child);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

static bool checkEntries(dsWalk *w, const dsRule *r, avro_value_t *v, const dsMapEntry *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        if (!dsCheckMapKey(w, r, e[i].key, e[i].len)) return false;
        if (avro_value_get_by_index(v, e[i].index, &child, NULL) != 0) return avroFail(w);
        size_t saved = dsWalkPushKey(w, e[i].key, e[i].len);
        bool ok = checkValue(w, r->items, &child);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

/* Entries in key order, as from_json.c checks (and stores) them, so with
 * several bad entries both report the same one. Stored values are in that
 * order already; only another order is sorted. */
static bool checkMap(dsWalk *w, const dsRule *r, avro_value_t *v) {
    size_t n;
    if (avro_value_get_size(v, &n) != 0) return avroFail(w);
    if (!dsCheckItems(w, r, n)) return false;
    dsMapEntry stackbuf[64], *e = n <= 64 ? stackbuf : malloc(n * sizeof *e);
    if (!e) return dsWalkFail(w, "internal", "out of memory");
    bool sorted = true, ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        avro_value_t child;
        const char *key = NULL;
        if (avro_value_get_by_index(v, i, &child, &key) != 0 || !key) {
            ok = avroFail(w);
            break;
        }
        e[i] = (dsMapEntry){.key = key, .len = strlen(key), .index = i};
        if (i > 0 && dsMapEntryCompare(&e[i - 1], &e[i]) > 0) sorted = false;
    }
    if (ok && !sorted) qsort(e, n, sizeof *e, dsMapEntryCompare);
    ok = ok && checkEntries(w, r, v, e, n);
    if (e != stackbuf) free(e);
    return ok;
}

static bool checkUnion(dsWalk *w, const dsRule *r, avro_value_t *v) {
    int d;
    avro_value_t branch;
    if (avro_value_get_discriminant(v, &d) != 0) return avroFail(w);
    if (d == r->null_index) return true;
    /* A generic union reset and never set has no branch (-1). */
    if (d != r->branch_index) return dsWalkFail(w, "invalid_value", "has no value (no branch of its union is set)");
    if (avro_value_get_current_branch(v, &branch) != 0) return avroFail(w);
    return checkValue(w, r->branch, &branch);
}

/* Server-set fields too: a stored value carries them (recorded_at must
 * render like any timestamp), where a posted one's are ignored. */
static bool checkRecord(dsWalk *w, const dsRule *r, avro_value_t *v) {
    size_t n;
    if (avro_value_get_size(v, &n) != 0) return avroFail(w);
    if (n != r->nfields) return dsWalkFail(w, "internal", "has %zu fields where its schema has %zu", n, r->nfields);
    for (size_t i = 0; i < r->nfields; i++) {
        avro_value_t child;
        if (avro_value_get_by_index(v, i, &child, NULL) != 0) return avroFail(w);
        size_t saved = dsWalkPushField(w, r->fields[i].name);
        bool ok = checkValue(w, r->fields[i].type, &child);
        dsWalkPopPath(w, saved);
        if (!ok) return false;
    }
    return true;
}

static bool checkValue(dsWalk *w, const dsRule *r, avro_value_t *v) {
    switch (r->kind) {
    case DSR_RECORD: return checkRecord(w, r, v);
    case DSR_ARRAY: return checkArray(w, r, v);
    case DSR_MAP: return checkMap(w, r, v);
    case DSR_UNION: return checkUnion(w, r, v);
    default: return checkScalar(w, r, v);
    }
}

static bool validate(dsCodec *c, avro_value_t *val, dsWalk *w) {
    memset(w->err, 0, sizeof *w->err);
    /* The rules of val's own version: children are addressed by index. */
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(val));
    if (!v) return dsWalkFail(w, "internal", "is of no known schema version");
    return checkValue(w, v->rules.root, val);
}

bool dsCodecValidate(dsCodec *c, avro_value_t *val, dsCodecError *err) {
    dsWalk w;
    dsWalkInit(&w, err);
    return validate(c, val, &w);
}

bool dsCodecValidateNotFuture(dsCodec *c, avro_value_t *val, int64_t now_ms, int64_t max_skew_ms, dsCodecError *err) {
    dsWalk w;
    dsWalkInit(&w, err);
    dsWalkBoundFuture(&w, now_ms, max_skew_ms);
    return validate(c, val, &w);
}
