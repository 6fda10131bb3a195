/* wire.c - the Confluent wire format (codec.h): encoding a value under its
 * version's id; decoding the framing, the schema id lookup, avro-c's binary
 * reader over the payload, and resolution of an older (or newer) writer's
 * record to the caller's version. */
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

static dsCodecVersion *wireVersionById(const dsCodec *c, int id) {
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].id == id) return &c->versions[i];
    return NULL;
}

/* Reads the Avro body into target, a value of the writer's schema. */
static bool wireReadBody(int id, const unsigned char *body, size_t len, avro_value_t *target, char *errbuf,
                         size_t errlen) {
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
