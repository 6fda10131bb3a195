/* event.c - decisions into stored events and back (see event.h). */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool vsBufAppend(vsBuf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) return false;
        b->data = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

void vsBufFree(vsBuf *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static void eventPutBe64(uint8_t *out, uint64_t x) {
    for (int i = 7; i >= 0; i--, x >>= 8) out[i] = (uint8_t)x;
}

static uint64_t eventGetBe64(const uint8_t *p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | p[i];
    return x;
}

void vsEventTimeBytes(int64_t ms, uint8_t out[8]) {
    eventPutBe64(out, (uint64_t)ms ^ 0x8000000000000000ULL);
}

int64_t vsEventKeyTime(const uint8_t *key, size_t keylen) {
    return (int64_t)(eventGetBe64(key + keylen - VS_EVENT_SUFFIX) ^ 0x8000000000000000ULL);
}

size_t vsEventPrefix(uint8_t *out, const char *id, size_t idlen) {
    out[0] = (uint8_t)idlen;
    memcpy(out + 1, id, idlen);
    return 1 + idlen;
}

static int eventHex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool eventUuid(const char *s, uint8_t out[16]) {
    size_t n = 0;
    for (; *s && n < 32; s++) {
        if (*s == '-') continue;
        int h = eventHex(*s);
        if (h < 0) return false;
        if (n % 2 == 0) out[n / 2] = (uint8_t)(h << 4);
        else out[n / 2] |= (uint8_t)h;
        n++;
    }
    return n == 32 && *s == '\0';
}

/* The scalar at path in decision; a missing map key or a null union is null. */
static bool eventLookup(avro_value_t *decision, const vsPath *path, vsValue *out) {
    avro_value_t cur = *decision, next;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i <= path->nparts; i++) {
        if (avro_value_get_type(&cur) == AVRO_UNION) {
            if (avro_value_get_current_branch(&cur, &next) != 0) return false;
            cur = next;
        }
        if (avro_value_get_type(&cur) == AVRO_NULL) return true;
        if (i == path->nparts) break;
        if (avro_value_get_by_name(&cur, path->parts[i], &next, NULL) != 0)
            return avro_value_get_type(&cur) == AVRO_MAP; /* a key the map lacks reads as null */
        cur = next;
    }
    int32_t i32;
    int sym;
    switch (avro_value_get_type(&cur)) {
    case AVRO_STRING: {
        const char *s;
        size_t size;
        if (avro_value_get_string(&cur, &s, &size) != 0) return false;
        out->type = VS_VAL_STRING, out->u.str.s = s, out->u.str.len = size ? size - 1 : 0;
        return true;
    }
    case AVRO_ENUM:
        if (avro_value_get_enum(&cur, &sym) != 0) return false;
        out->u.str.s = avro_schema_enum_get(avro_value_get_schema(&cur), sym);
        if (out->u.str.s == NULL) return false;
        out->type = VS_VAL_STRING, out->u.str.len = strlen(out->u.str.s);
        return true;
    case AVRO_INT32:
        if (avro_value_get_int(&cur, &i32) != 0) return false;
        out->type = VS_VAL_LONG, out->u.l = i32;
        return true;
    case AVRO_INT64:
        out->type = VS_VAL_LONG;
        return avro_value_get_long(&cur, &out->u.l) == 0;
    case AVRO_FLOAT: {
        float f;
        if (avro_value_get_float(&cur, &f) != 0) return false;
        out->type = VS_VAL_DOUBLE, out->u.d = f;
        return true;
    }
    case AVRO_DOUBLE:
        out->type = VS_VAL_DOUBLE;
        return avro_value_get_double(&cur, &out->u.d) == 0;
    case AVRO_BOOLEAN: {
        int b;
        if (avro_value_get_boolean(&cur, &b) != 0) return false;
        out->type = VS_VAL_BOOL, out->u.b = b != 0;
        return true;
    }
    default:
        return false;
    }
}

bool vsEventPutValue(vsBuf *b, const vsValue *v) {
    uint8_t tag = (uint8_t)v->type, tmp[8];
    if (!vsBufAppend(b, &tag, 1)) return false;
    switch (v->type) {
    case VS_VAL_LONG:
        eventPutBe64(tmp, (uint64_t)v->u.l);
        return vsBufAppend(b, tmp, 8);
    case VS_VAL_DOUBLE:
        memcpy(tmp, &v->u.d, 8);
        return vsBufAppend(b, tmp, 8);
    case VS_VAL_BOOL:
        tmp[0] = v->u.b;
        return vsBufAppend(b, tmp, 1);
    case VS_VAL_STRING:
        if (v->u.str.len > 0xffff) return false;
        tmp[0] = (uint8_t)(v->u.str.len >> 8), tmp[1] = (uint8_t)v->u.str.len;
        return vsBufAppend(b, tmp, 2) && vsBufAppend(b, v->u.str.s, v->u.str.len);
    default:
        return true;
    }
}

bool vsEventGetValue(const uint8_t **p, const uint8_t *end, vsValue *out) {
    const uint8_t *q = *p;
    if (q >= end) return false;
    memset(out, 0, sizeof(*out));
    out->type = (vsValType)*q++;
    switch (out->type) {
    case VS_VAL_NULL:
        break;
    case VS_VAL_LONG:
    case VS_VAL_DOUBLE:
        if (end - q < 8) return false;
        if (out->type == VS_VAL_LONG) out->u.l = (int64_t)eventGetBe64(q);
        else memcpy(&out->u.d, q, 8);
        q += 8;
        break;
    case VS_VAL_BOOL:
        if (q >= end) return false;
        out->u.b = *q++ != 0;
        break;
    case VS_VAL_STRING:
        if (end - q < 2) return false;
        out->u.str.len = (size_t)q[0] << 8 | q[1];
        q += 2;
        if ((size_t)(end - q) < out->u.str.len) return false;
        out->u.str.s = (const char *)q;
        q += out->u.str.len;
        break;
    default:
        return false;
    }
    *p = q;
    return true;
}

bool vsEventFields(const uint8_t *val, size_t vallen, vsValue *out, size_t nfields) {
    const uint8_t *p = val, *end = val + vallen;
    for (size_t i = 0; i < nfields; i++)
        if (!vsEventGetValue(&p, end, &out[i])) return false;
    return p == end;
}

static bool eventPut16(vsBuf *b, size_t n) {
    uint8_t tmp[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    return n <= 0xffff && vsBufAppend(b, tmp, 2);
}

/* One entity's event: present flag, key, then the values with their length. */
static bool eventPrepareEntity(const vsEntity *e, avro_value_t *decision, int64_t decided_at, const uint8_t uuid[16],
                               vsBuf *out, char *errbuf, size_t errlen) {
    vsValue id;
    if (!eventLookup(decision, &e->key, &id)) return snprintf(errbuf, errlen, "%s: unreadable", e->key.text), false;
    uint8_t flag = id.type == VS_VAL_STRING;
    if (!vsBufAppend(out, &flag, 1)) goto oom;
    if (!flag) return true;
    if (id.u.str.len == 0 || id.u.str.len > VS_ID_MAX)
        return snprintf(errbuf, errlen, "%s: %zu bytes (1 to %d are stored)", e->key.text, id.u.str.len, VS_ID_MAX),
               false;
    uint8_t key[VS_KEY_MAX];
    size_t n = vsEventPrefix(key, id.u.str.s, id.u.str.len);
    vsEventTimeBytes(decided_at, key + n);
    memcpy(key + n + 8, uuid, 16);
    n += VS_EVENT_SUFFIX;
    if (!eventPut16(out, n) || !vsBufAppend(out, key, n)) goto oom;
    size_t lenpos = out->len;
    if (!eventPut16(out, 0)) goto oom;
    for (size_t f = 0; f < e->nfields; f++) {
        vsValue v;
        if (!eventLookup(decision, &e->fields[f], &v))
            return snprintf(errbuf, errlen, "%s: unreadable", e->fields[f].text), false;
        if (!vsEventPutValue(out, &v)) return snprintf(errbuf, errlen, "%s: too long to store", e->fields[f].text), false;
    }
    size_t vallen = out->len - lenpos - 2;
    if (vallen > 0xffff) return snprintf(errbuf, errlen, "the fields of %s are too long to store", e->name), false;
    out->data[lenpos] = (uint8_t)(vallen >> 8), out->data[lenpos + 1] = (uint8_t)vallen;
    return true;
oom:
    return snprintf(errbuf, errlen, "out of memory"), false;
}

bool vsEventPrepare(const vsVars *v, avro_value_t *decision, vsBuf *out, char *errbuf, size_t errlen) {
    size_t start = out->len;
    const char *id = dsCodecFieldText(decision, "decision_id");
    int64_t decided_at;
    uint8_t uuid[16];
    if (id == NULL || !eventUuid(id, uuid)) {
        snprintf(errbuf, errlen, "decision_id: not a UUID");
        goto failed;
    }
    if (!dsCodecFieldLong(decision, "decided_at", &decided_at)) {
        snprintf(errbuf, errlen, "decided_at: missing");
        goto failed;
    }
    for (size_t i = 0; i < v->nentities; i++)
        if (!eventPrepareEntity(&v->entities[i], decision, decided_at, uuid, out, errbuf, errlen)) goto failed;
    return true;
failed:
    out->len = start;
    return false;
}

bool vsEventNext(const uint8_t **p, const uint8_t *end, vsEventRef *out) {
    const uint8_t *q = *p;
    memset(out, 0, sizeof(*out));
    if (q >= end) return false;
    out->present = *q++ != 0;
    if (out->present) {
        if (end - q < 2) return false;
        out->keylen = (size_t)q[0] << 8 | q[1];
        q += 2;
        if ((size_t)(end - q) < out->keylen + 2 || out->keylen < 1 + VS_EVENT_SUFFIX || out->keylen > VS_KEY_MAX)
            return false;
        out->key = q;
        q += out->keylen;
        out->vallen = (size_t)q[0] << 8 | q[1];
        q += 2;
        if ((size_t)(end - q) < out->vallen) return false;
        out->val = q;
        q += out->vallen;
    }
    *p = q;
    return true;
}
