/* wire.c - decoding the Confluent wire format (codec.h): the framing, the
 * schema id lookup, and avro-c's binary reader over the payload. */
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

static const dsCodecVersion *wireVersionById(const dsCodec *c, int id) {
    for (size_t i = 0; i < c->nversions; i++)
        if (c->versions[i].id == id) return &c->versions[i];
    return NULL;
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
    int id = (int)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
    const dsCodecVersion *v = wireVersionById(c, id);
    if (v == NULL) {
        snprintf(errbuf, errlen, "unknown schema id %d", id);
        return false;
    }
    if (v != c->current) {
        snprintf(errbuf, errlen, "schema id %d (version %d) differs from the current version %d; resolution is not"
                 " implemented yet", id, v->version, c->current->version);
        return false;
    }
    avro_value_reset(out);
    avro_reader_t r = avro_reader_memory((const char *)b + DS_WIRE_HEADER_LEN, (int64_t)(len - DS_WIRE_HEADER_LEN));
    int rc = avro_value_read(r, out);
    avro_reader_free(r);
    /* avro-c's memory reader does not tell its position; the encoded size
     * of what was read does, since binary encoding is canonical. */
    size_t used = 0;
    bool trailing = rc == 0 && (avro_value_sizeof(out, &used) != 0 || used != len - DS_WIRE_HEADER_LEN);
    if (rc != 0 || trailing) {
        snprintf(errbuf, errlen, "schema id %d: %s", id, rc ? avro_strerror() : "trailing bytes after the record");
        return false;
    }
    if (version) *version = v->version;
    return true;
}
