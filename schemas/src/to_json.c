/* to_json.c - Avro value -> the JSON document of CONTRACT section 1.
 *
 * The inverse of from_json.c, driven by the same rule tree: fields in schema
 * order (jansson keeps insertion order), map keys sorted by bytes, unions
 * unwrapped, timestamps as RFC 3339 UTC with milliseconds. Output fed back to
 * dsCodecFromJson() renders to the same bytes again.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "ds/timefmt.h"

static json_t *outValue(const dsRule *r, avro_value_t *v, int flags);

static json_t *outRecord(const dsRule *r, avro_value_t *v, int flags) {
    json_t *obj = json_object();
    if (!obj) return NULL;
    for (size_t i = 0; i < r->nfields; i++) {
        const dsRuleField *f = &r->fields[i];
        avro_value_t child;
        if ((flags & DS_CODEC_OMIT_SERVER_FIELDS) && f->server_set) continue;
        json_t *cj = avro_value_get_by_index(v, i, &child, NULL) == 0 ? outValue(f->type, &child, flags) : NULL;
        /* Field names were checked to be Avro names (ASCII) at load. */
        if (!cj || json_object_set_new_nocheck(obj, f->name, cj) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static json_t *outArray(const dsRule *r, avro_value_t *v, int flags) {
    size_t n;
    json_t *arr = avro_value_get_size(v, &n) == 0 ? json_array() : NULL;
    for (size_t i = 0; arr && i < n; i++) {
        avro_value_t child;
        json_t *cj = avro_value_get_by_index(v, i, &child, NULL) == 0 ? outValue(r->items, &child, flags) : NULL;
        if (!cj || json_array_append_new(arr, cj) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static json_t *outMapSorted(const dsRule *r, avro_value_t *v, dsMapEntry *k, size_t n, int flags) {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++) {
        avro_value_t child;
        json_t *cj = avro_value_get_by_index(v, k[i].index, &child, NULL) == 0 ? outValue(r->items, &child, flags) : NULL;
        /* Keys may come from an archive written elsewhere: json_object_setn_new
         * validates their UTF-8. */
        if (!cj || json_object_setn_new(obj, k[i].key, k[i].len, cj) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

/* Sorted by bytes, as from_json.c stores them, so a value from any source
 * renders canonically. */
static json_t *outMap(const dsRule *r, avro_value_t *v, int flags) {
    size_t n;
    if (avro_value_get_size(v, &n) != 0) return NULL;
    dsMapEntry stackbuf[64], *k = n <= 64 ? stackbuf : malloc(n * sizeof *k);
    if (!k) return NULL;
    json_t *obj = NULL;
    size_t i;
    for (i = 0; i < n; i++) {
        avro_value_t child;
        const char *key = NULL;
        if (avro_value_get_by_index(v, i, &child, &key) != 0 || !key) break;
        k[i] = (dsMapEntry){.key = key, .len = strlen(key), .index = i};
    }
    if (i == n) {
        qsort(k, n, sizeof *k, dsMapEntryCompare);
        obj = outMapSorted(r, v, k, n, flags);
    }
    if (k != stackbuf) free(k);
    return obj;
}

static json_t *outUnion(const dsRule *r, avro_value_t *v, int flags) {
    int d;
    avro_value_t branch;
    if (avro_value_get_discriminant(v, &d) != 0) return NULL;
    if (d == r->null_index) return json_null();
    if (d != r->branch_index || avro_value_get_current_branch(v, &branch) != 0) return NULL;
    return outValue(r->branch, &branch, flags);
}

static json_t *outScalar(const dsRule *r, avro_value_t *v) {
    int b, e;
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    const char *s;
    size_t len;
    char ts[DS_TIME_BUFLEN];
    switch (r->kind) {
    case DSR_NULL: return json_null();
    case DSR_BOOLEAN: return avro_value_get_boolean(v, &b) == 0 ? json_boolean(b) : NULL;
    case DSR_INT: return avro_value_get_int(v, &i32) == 0 ? json_integer(i32) : NULL;
    case DSR_LONG:
        if (avro_value_get_long(v, &i64) != 0) return NULL;
        if (!r->timestamp_ms) return json_integer(i64);
        return dsTimeFormat(i64, ts) ? json_string_nocheck(ts) : NULL;
    /* json_real() refuses NaN and infinities, which JSON cannot carry. */
    case DSR_FLOAT: return avro_value_get_float(v, &f) == 0 ? json_real(f) : NULL;
    case DSR_DOUBLE: return avro_value_get_double(v, &d) == 0 ? json_real(d) : NULL;
    case DSR_STRING:
        /* avro-c's size includes the NUL terminator. */
        if (avro_value_get_string(v, &s, &len) != 0 || len == 0) return NULL;
        return json_stringn(s, len - 1);
    case DSR_ENUM:
        if (avro_value_get_enum(v, &e) != 0 || e < 0 || (size_t)e >= r->nsymbols) return NULL;
        return json_string_nocheck(r->symbols[e]);
    default: return NULL;
    }
}

static json_t *outValue(const dsRule *r, avro_value_t *v, int flags) {
    switch (r->kind) {
    case DSR_RECORD: return outRecord(r, v, flags);
    case DSR_ARRAY: return outArray(r, v, flags);
    case DSR_MAP: return outMap(r, v, flags);
    case DSR_UNION: return outUnion(r, v, flags);
    default: return outScalar(r, v);
    }
}

json_t *dsCodecToJson(dsCodec *c, avro_value_t *val, int flags) {
    /* Values normally come from dsCodecNewValue(), whose schema is the
     * codec's own; a value of an equal schema parsed elsewhere (a file
     * reader's) is rendered with the matching rules too. */
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(val));
    return v ? outValue(v->rules.root, val, flags) : NULL;
}
