/* wire.c - the Confluent wire format (codec.h): encoding a value under its
 * version's id; decoding the framing, the schema id lookup, avro-c's binary
 * reader over the payload, and resolution of an older (or newer) writer's
 * record to the caller's version. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

static dsCodecVersion *wireVersionById(const dsCodec *c, int id) {
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].id == id) return &c->versions[i];
    return NULL;
}

/* ---- the length pre-check ----
 *
 * avro-c trusts the lengths it reads: a string or bytes length is allocated
 * before the bytes are read (and leaked when they are not there), and an
 * array or map block count is looped over element by element, which for
 * items that take no bytes never ends. So before avro-c sees a body, it is
 * walked once here against the writer's schema: every length must fit in
 * what remains of the input, and the array and map items of the whole
 * record may not outnumber its bytes (so items that take no bytes, such as
 * nulls, cannot be repeated without end); union and enum indexes must
 * exist. What passes makes avro-c allocate in proportion to the input. */

typedef struct wireScan {
    const unsigned char *p, *end, *start;
    int64_t items_left; /* array and map items the rest of the record may hold */
    char *errbuf;
    size_t errlen;
} wireScan;

#define WIRE_MAX_DEPTH 64

static bool scanFail(wireScan *sc, const char *what, int64_t n) {
    snprintf(sc->errbuf, sc->errlen, "at byte %td: %s %" PRId64 " does not fit in the %td bytes left of the record",
             sc->p - sc->start, what, n, sc->end - sc->p);
    return false;
}

/* A zig-zag varint of at most 10 bytes, as avro-c reads a long. */
static bool scanLong(wireScan *sc, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (sc->p >= sc->end) {
            snprintf(sc->errbuf, sc->errlen, "at byte %td: the record ends inside a number", sc->p - sc->start);
            return false;
        }
        unsigned char b = *sc->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    snprintf(sc->errbuf, sc->errlen, "at byte %td: a number longer than 10 bytes", sc->p - sc->start);
    return false;
}

static bool scanSkip(wireScan *sc, const char *what, int64_t n) {
    if (n < 0 || n > sc->end - sc->p) return scanFail(sc, what, n);
    sc->p += n;
    return true;
}

static bool scanValue(wireScan *sc, avro_schema_t s, int depth);

/* Arrays and maps: blocks of a count (negative: followed by the block's
 * size in bytes) until a count of 0. */
static bool scanBlocks(wireScan *sc, avro_schema_t items, bool map, int depth) {
    for (;;) {
        int64_t count, size;
        if (!scanLong(sc, &count)) return false;
        if (count == 0) return true;
        if (count < 0) {
            if (count == INT64_MIN) return scanFail(sc, map ? "map block count" : "array block count", count);
            count = -count;
            if (!scanLong(sc, &size)) return false;
            if (size < 0 || size > sc->end - sc->p) return scanFail(sc, "block size", size);
        }
        if (count > sc->end - sc->p || count > sc->items_left)
            return scanFail(sc, map ? "map block count" : "array block count", count);
        sc->items_left -= count;
        for (int64_t i = 0; i < count; i++) {
            int64_t klen;
            if (map && !(scanLong(sc, &klen) && scanSkip(sc, "map key length", klen))) return false;
            if (!scanValue(sc, items, depth + 1)) return false;
        }
    }
}

static bool scanIndex(wireScan *sc, const char *what, int64_t n, int64_t *out) {
    int64_t i;
    if (!scanLong(sc, &i)) return false;
    if (i >= 0 && i < n) return *out = i, true;
    snprintf(sc->errbuf, sc->errlen, "at byte %td: %s %" PRId64 " does not exist (there are %" PRId64 ")",
             sc->p - sc->start, what, i, n);
    return false;
}

static bool scanValue(wireScan *sc, avro_schema_t s, int depth) {
    int64_t n;
    if (depth > WIRE_MAX_DEPTH) {
        snprintf(sc->errbuf, sc->errlen, "at byte %td: values nested deeper than %d", sc->p - sc->start, WIRE_MAX_DEPTH);
        return false;
    }
    while (is_avro_link(s)) s = avro_schema_link_target(s);
    switch (avro_typeof(s)) {
    case AVRO_NULL: return true;
    case AVRO_BOOLEAN: return scanSkip(sc, "boolean of size", 1);
    case AVRO_INT32:
    case AVRO_INT64: return scanLong(sc, &n);
    case AVRO_FLOAT: return scanSkip(sc, "float of size", 4);
    case AVRO_DOUBLE: return scanSkip(sc, "double of size", 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        return scanLong(sc, &n) && scanSkip(sc, avro_typeof(s) == AVRO_STRING ? "string length" : "bytes length", n);
    case AVRO_FIXED: return scanSkip(sc, "fixed size", avro_schema_fixed_size(s));
    case AVRO_ENUM: return scanIndex(sc, "enum symbol", avro_schema_enum_number_of_symbols(s), &n);
    case AVRO_UNION:
        return scanIndex(sc, "union branch", (int64_t)avro_schema_union_size(s), &n) &&
               scanValue(sc, avro_schema_union_branch(s, (int)n), depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (!scanValue(sc, avro_schema_record_field_get_by_index(s, (int)i), depth + 1)) return false;
        return true;
    case AVRO_ARRAY: return scanBlocks(sc, avro_schema_array_items(s), false, depth);
    case AVRO_MAP: return scanBlocks(sc, avro_schema_map_values(s), true, depth);
    default:
        snprintf(sc->errbuf, sc->errlen, "the schema has a type the decoder does not check");
        return false;
    }
}

bool dsCodecCheckBinary(avro_schema_t s, const void *buf, size_t len, int64_t count, char *errbuf, size_t errlen) {
    char why[256];
    wireScan sc = {buf, (const unsigned char *)buf + len, buf, (int64_t)len, why, sizeof why};
    for (int64_t i = 0; i < count; i++) {
        if (scanValue(&sc, s, 0)) continue;
        if (count == 1) snprintf(errbuf, errlen, "%s", why);
        else snprintf(errbuf, errlen, "record %" PRId64 " of %" PRId64 ": %s", i, count, why);
        return false;
    }
    if (sc.p == sc.end) return true;
    if (count == 1) snprintf(errbuf, errlen, "trailing bytes after the record");
    else snprintf(errbuf, errlen, "%td bytes left after %" PRId64 " records", sc.end - sc.p, count);
    return false;
}

/* Reads the Avro body into target, a value of the writer's schema. */
static bool wireReadBody(int id, const unsigned char *body, size_t len, avro_value_t *target, char *errbuf,
                         size_t errlen) {
    char why[320];
    if (!dsCodecCheckBinary(avro_value_get_schema(target), body, len, 1, why, sizeof why)) {
        snprintf(errbuf, errlen, "schema id %d: %s", id, why);
        return false;
    }
    avro_value_reset(target);
    avro_reader_t r = avro_reader_memory((const char *)body, (int64_t)len);
    int rc = avro_value_read(r, target);
    avro_reader_free(r);
    /* avro-c's memory reader does not tell its position; the encoded size
     * of what was read does, since binary encoding is canonical. */
    size_t used = 0;
    bool trailing = rc == 0 && (avro_value_sizeof(target, &used) != 0 || used != len);
    if (rc != 0 || trailing) {
        snprintf(errbuf, errlen, "schema id %d: %s", id, rc ? avro_strerror() : "trailing bytes after the record");
        return false;
    }
    return true;
}

/* Where the writer's record is decoded: out itself when it is of the
 * writer's version (no copy), else the version's scratch value. */
static avro_value_t *wireTarget(dsCodec *c, dsCodecVersion *v, avro_value_t *out, char *errbuf, size_t errlen) {
    const dsCodecVersion *outv = dsCodecFindSchema(c, avro_value_get_schema(out));
    if (!outv) {
        snprintf(errbuf, errlen, "the value to decode into is not of a known schema version");
        return NULL;
    }
    if (outv == v) return out;
    if (!v->has_scratch && avro_generic_value_new(v->iface, &v->scratch) != 0) {
        snprintf(errbuf, errlen, "version %d: avro-c cannot make a value: %s", v->version, avro_strerror());
        return NULL;
    }
    v->has_scratch = true;
    return &v->scratch;
}

/* The id in the header (0 to UINT32_MAX); -1 when buf cannot be a record. */
static int64_t wireHeaderId(const unsigned char *b, size_t len) {
    if (len < DS_WIRE_HEADER_LEN + 1 || b[0] != 0) return -1;
    return (int64_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
}

int dsCodecWireId(const void *buf, size_t len) {
    int64_t id = wireHeaderId(buf, len);
    return id <= INT32_MAX ? (int)id : -1;
}

int dsCodecVersionOfId(const dsCodec *c, int id) {
    const dsCodecVersion *v = wireVersionById(c, id);
    return v ? v->version : -1;
}

bool dsCodecDecodeWire(dsCodec *c, const void *buf, size_t len, avro_value_t *out, int *version, char *errbuf,
                       size_t errlen) {
    const unsigned char *b = buf;
    if (len < DS_WIRE_HEADER_LEN + 1) {
        snprintf(errbuf, errlen, "record of %zu bytes is shorter than the wire header and a body", len);
        return false;
    }
    if (b[0] != 0) {
        snprintf(errbuf, errlen, "magic byte is 0x%02x, not 0x00 (not the Confluent wire format)", b[0]);
        return false;
    }
    int64_t wide = wireHeaderId(b, len);
    dsCodecVersion *v = wide <= INT32_MAX ? wireVersionById(c, (int)wide) : NULL;
    int id = (int)wide; /* for messages; an id past INT32_MAX is unknown anyway */
    if (v == NULL) {
        snprintf(errbuf, errlen, "unknown schema id %d", id);
        return false;
    }
    avro_value_t *target = wireTarget(c, v, out, errbuf, errlen);
    if (!target || !wireReadBody(id, b + DS_WIRE_HEADER_LEN, len - DS_WIRE_HEADER_LEN, target, errbuf, errlen))
        return false;
    if (target != out && !dsCodecResolve(c, target, out, errbuf, errlen)) return false;
    if (version) *version = v->version;
    return true;
}

size_t dsCodecEncodeWire(dsCodec *c, avro_value_t *val, void *buf, size_t cap, char *errbuf, size_t errlen) {
    const dsCodecVersion *v = dsCodecFindSchema(c, avro_value_get_schema(val));
    size_t body = 0;
    if (v == NULL) {
        snprintf(errbuf, errlen, "the value is of none of the codec's schema versions");
        return 0;
    }
    if (avro_value_sizeof(val, &body) != 0) {
        snprintf(errbuf, errlen, "cannot size the Avro record: %s", avro_strerror());
        return 0;
    }
    if (body + DS_WIRE_HEADER_LEN > cap) return body + DS_WIRE_HEADER_LEN;
    unsigned char *b = buf;
    uint32_t id = (uint32_t)v->id;
    b[0] = 0x00; /* magic byte, then the id in network order */
    b[1] = (unsigned char)(id >> 24);
    b[2] = (unsigned char)(id >> 16);
    b[3] = (unsigned char)(id >> 8);
    b[4] = (unsigned char)id;
    avro_writer_t w = avro_writer_memory((char *)b + DS_WIRE_HEADER_LEN, (int64_t)body);
    int rc = avro_value_write(w, val);
    avro_writer_free(w);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot encode the Avro record: %s", avro_strerror());
        return 0;
    }
    return body + DS_WIRE_HEADER_LEN;
}
