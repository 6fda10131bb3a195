/* record.c - decisions row -> Confluent wire-format Avro record. */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/timefmt.h"

void spRecordBufFree(spRecordBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static bool recordReserve(spRecordBuf *b, size_t need) {
    if (b->cap >= need) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (grown == NULL) return false;
    b->data = grown;
    b->cap = cap;
    return true;
}

char *spRowText(const spRelation *rel, const spTuple *tup, const char *name, char *why, size_t len) {
    const spValue *v = spTupleGet(rel, tup, name);
    if (v == NULL) snprintf(why, len, "column %s is missing from %s.%s", name, rel->nspname, rel->relname);
    else if (v->kind == SP_VAL_NULL) snprintf(why, len, "column %s is null", name);
    else if (v->kind == SP_VAL_UNCHANGED)
        snprintf(why, len, "column %s came as an unchanged TOAST value, which an insert cannot carry", name);
    else if (v->kind != SP_VAL_TEXT) snprintf(why, len, "column %s came in binary, not as text", name);
    else return strndup((const char *)v->data, v->len);
    return NULL;
}

/* A column value for the dead-letter row, cut to cut bytes when cut > 0. */
static json_t *rowDlqValue(const spValue *v, size_t cut) {
    if (v->kind == SP_VAL_UNCHANGED) return json_string("(unchanged TOAST value)");
    if (v->kind != SP_VAL_TEXT) return json_null();
    json_t *j = NULL;
    if (cut == 0 || v->len <= cut) {
        j = json_stringn((const char *)v->data, v->len);
    } else {
        while (cut > 0 && (v->data[cut] & 0xC0) == 0x80) cut--; /* not inside a UTF-8 sequence */
        char *text = NULL;
        if (asprintf(&text, "%.*s... (%u bytes in all)", (int)cut, (const char *)v->data, v->len) >= 0)
            j = json_string(text);
        free(text);
    }
    return j ? j : json_string("(not valid UTF-8)");
}

static char *rowDlqJsonCut(const spRelation *rel, const spTuple *tup, size_t cut) {
    json_t *row = json_object();
    for (int i = 0; row && i < rel->ncols && i < tup->ncols; i++)
        json_object_set_new(row, rel->cols[i].name, rowDlqValue(&tup->values[i], cut));
    char *text = row ? json_dumps(row, JSON_COMPACT) : NULL;
    json_decref(row);
    return text;
}

char *spRowDlqJson(const spRelation *rel, const spTuple *tup) {
    char *text = rowDlqJsonCut(rel, tup, 0);
    if (text == NULL || strlen(text) <= SP_DLQ_ROW_MAX) return text;
    free(text);
    return rowDlqJsonCut(rel, tup, SP_DLQ_VALUE_CUT);
}

bool spPgTimestampParse(const char *text, int64_t *ms, char *errbuf, size_t errlen) {
    /* PostgreSQL's ISO output differs from RFC 3339 in two ways: a space
     * between date and time, and an offset that may omit its minutes
     * ("+00"). Rewrite those, then let dsTimeParse do the rest. */
    char buf[64];
    size_t n = strlen(text);
    if (n < 20 || n + 4 >= sizeof(buf)) {
        snprintf(errbuf, errlen, "not a timestamptz: \"%.40s\"", text);
        return false;
    }
    memcpy(buf, text, n + 1);
    if (buf[10] == ' ') buf[10] = 'T';
    char *sign = strpbrk(buf + 19, "+-");
    if (sign != NULL && strlen(sign) == 3) strcat(buf, ":00");
    char why[128];
    if (!dsTimeParse(buf, strlen(buf), ms, why, sizeof(why))) {
        snprintf(errbuf, errlen, "timestamptz \"%.40s\": %s", text, why);
        return false;
    }
    return true;
}

/* Validates the stored document into scratch, a value of the row's version,
 * and sets the server fields, schema_version being that version. */
static bool recordFill(dsCodec *codec, avro_value_t *scratch, const char *doc_json, const char *recorded_at,
                       char *errbuf, size_t errlen) {
    json_error_t jerr;
    json_t *doc = json_loads(doc_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        snprintf(errbuf, errlen, "doc: not a JSON object: %s", doc ? "wrong type" : jerr.text);
        json_decref(doc);
        return false;
    }
    dsCodecError cerr;
    bool ok = dsCodecFromJson(codec, doc, scratch, &cerr);
    json_decref(doc);
    if (!ok) {
        snprintf(errbuf, errlen, "doc: %s %s: %s", cerr.code, cerr.field, cerr.message);
        return false;
    }
    int64_t ms;
    if (!spPgTimestampParse(recorded_at, &ms, errbuf, errlen)) return false;
    int version = dsCodecVersionOfSchema(codec, avro_value_get_schema(scratch));
    if (!dsCodecSetServerFields(codec, scratch, ms, version)) {
        snprintf(errbuf, errlen, "recorded_at: cannot be set in version %d", version);
        return false;
    }
    return true;
}

bool spRecordEncode(dsCodec *codec, avro_value_t *scratch, const char *doc_json, const char *recorded_at,
                    spRecordBuf *out, char *errbuf, size_t errlen) {
    if (!recordFill(codec, scratch, doc_json, recorded_at, errbuf, errlen)) return false;
    size_t n = dsCodecEncodeWire(codec, scratch, out->data, out->cap, errbuf, errlen);
    if (n > out->cap) {
        if (!recordReserve(out, n)) return snprintf(errbuf, errlen, "out of memory"), false;
        n = dsCodecEncodeWire(codec, scratch, out->data, out->cap, errbuf, errlen);
    }
    out->len = n;
    return n > 0;
}
