/* archive_gen.c - test archives from known documents. */
#include "archive_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "archive.h"
#include "ds/codec.h"
#include "ds/timefmt.h"

size_t dtGenBlockSize = 1 << 20;

void dtGenId(int i, char out[37]) {
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

static json_t *genDoc(const json_t *fixture, int i, int64_t decided_ms) {
    static const char *const outcomes[] = {"APPROVED", "REJECTED", "REFERRED"};
    char id[37], cust[32], merch[32], purchase[32], decided[DS_TIME_BUFLEN];
    json_t *doc = json_deep_copy(fixture);
    if (doc == NULL || !dsTimeFormat(decided_ms, decided)) return json_decref(doc), NULL;
    dtGenId(i, id);
    snprintf(cust, sizeof(cust), "cust-%d", i % 7);
    snprintf(merch, sizeof(merch), "m-%d", i % 5);
    snprintf(purchase, sizeof(purchase), "p-%d", i);
    json_object_set_new(doc, "decision_id", json_string(id));
    json_object_set_new(doc, "purchase_id", json_string(purchase));
    json_object_set_new(doc, "customer_id", json_string(cust));
    json_object_set_new(doc, "merchant_id", json_string(merch));
    json_object_set_new(doc, "outcome", json_string(outcomes[i % 3]));
    json_object_set_new(doc, "decided_at", json_string(decided));
    json_object_set_new(json_object_get(doc, "amount"), "value", json_integer(1000 + i));
    return doc;
}

typedef struct genPart {
    rpArchiveFile *file;
    int64_t hour, next_offset;
} genPart;

static bool genAppend(genPart *p, int partition, dsCodec *c, avro_value_t *v, int64_t decided_ms,
                      const char *root) {
    char err[512];
    int64_t hour = decided_ms / 3600000;
    if (p->file && p->hour != hour) {
        if (!rpArchiveCommit(p->file, err, sizeof(err))) return fprintf(stderr, "%s\n", err), false;
        p->file = NULL;
    }
    if (p->file == NULL) {
        p->file = rpArchiveOpen(root, decided_ms, partition, p->next_offset,
                                dsCodecSchema(c, dsCodecCurrentVersion(c)), dtGenBlockSize, err, sizeof(err));
        if (p->file == NULL) return fprintf(stderr, "%s\n", err), false;
        p->hour = hour;
    }
    p->next_offset++;
    return rpArchiveAppend(p->file, v, err, sizeof(err)) || (fprintf(stderr, "%s\n", err), false);
}

bool dtArchiveGenerate(const char *root, int n, int64_t first_ms, int64_t step_ms, json_t **docs) {
    char err[256];
    genPart parts[DT_GEN_PARTITIONS] = {{0}};
    dsCodec *c = dsCodecNew(err, sizeof(err));
    avro_value_t v;
    bool ok = c != NULL && dsCodecNewValue(c, &v);
    if (!ok) return fprintf(stderr, "codec: %s\n", err), dsCodecFree(c), false;
    json_t *fixture = json_load_file("tests/fixtures/decision.json", 0, NULL);
    ok = fixture != NULL;
    if (docs) *docs = json_array();
    for (int i = 0; ok && i < n; i++) {
        int64_t decided = first_ms + i * step_ms;
        json_t *doc = genDoc(fixture, i, decided);
        dsCodecError cerr;
        ok = doc && dsCodecFromJson(c, doc, &v, &cerr) && dsCodecSetServerFields(c, &v, decided + 5, 1) &&
             genAppend(&parts[(i % 7) % DT_GEN_PARTITIONS], (i % 7) % DT_GEN_PARTITIONS, c, &v, decided, root);
        if (doc && docs) json_array_append_new(*docs, doc);
        else json_decref(doc);
    }
    for (int p = 0; p < DT_GEN_PARTITIONS; p++) {
        if (parts[p].file == NULL) continue;
        if (!ok) rpArchiveAbort(parts[p].file);
        else if (!rpArchiveCommit(parts[p].file, err, sizeof(err))) ok = false;
    }
    json_decref(fixture);
    avro_value_decref(&v);
    dsCodecFree(c);
    return ok;
}

/* Overwrites a top-level string field of v; false on failure. */
static bool genSetString(avro_value_t *v, const char *name, const char *text) {
    avro_value_t field;
    return avro_value_get_by_name(v, name, &field, NULL) == 0 && avro_value_set_string(&field, text) == 0;
}

char *dtGenWire(const json_t *doc, int64_t decided_ms, const char *country, size_t *len) {
    char err[256] = "cannot make the value";
    dsCodec *c = dsCodecNew(err, sizeof(err));
    avro_value_t v, field;
    dsCodecError cerr;
    char *out = NULL;
    bool has_value = c != NULL && dsCodecNewValue(c, &v);
    if (has_value && dsCodecFromJson(c, doc, &v, &cerr) && dsCodecSetServerFields(c, &v, decided_ms + 5, 1) &&
        avro_value_get_by_name(&v, "decided_at", &field, NULL) == 0 && avro_value_set_long(&field, decided_ms) == 0 &&
        (country == NULL || genSetString(&v, "country", country))) {
        size_t n = dsCodecEncodeWire(c, &v, NULL, 0, err, sizeof(err));
        if (n > 0 && (out = malloc(n)) != NULL && dsCodecEncodeWire(c, &v, out, n, err, sizeof(err)) != n)
            free(out), out = NULL;
        if (out) *len = n;
    }
    if (out == NULL) fprintf(stderr, "dtGenWire: %s\n", err);
    if (has_value) avro_value_decref(&v);
    dsCodecFree(c);
    return out;
}

char *dtGenRecord(int i, int64_t decided_ms, size_t *len) {
    json_t *fixture = json_load_file("tests/fixtures/decision.json", 0, NULL);
    json_t *doc = fixture ? genDoc(fixture, i, decided_ms) : NULL;
    size_t n = 0;
    char *wire = doc ? dtGenWire(doc, decided_ms, NULL, &n) : NULL;
    json_decref(doc);
    json_decref(fixture);
    if (wire == NULL) return fprintf(stderr, "dtGenRecord %d failed\n", i), NULL;
    /* the Avro body alone, as a container block holds it */
    *len = n - DS_WIRE_HEADER_LEN;
    memmove(wire, wire + DS_WIRE_HEADER_LEN, *len);
    return wire;
}

/* An Avro long (zig-zag varint). */
static void genLong(FILE *fp, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z > 0x7f) fputc((int)((z & 0x7f) | 0x80), fp), z >>= 7;
    fputc((int)z, fp);
}

static void genBytes(FILE *fp, const void *p, size_t n) {
    genLong(fp, (int64_t)n);
    fwrite(p, 1, n, fp);
}

bool dtGenContainer(const char *path, const char *codec, const dtGenBlock *blocks, size_t n) {
    static const unsigned char sync[16] = "0123456789abcdef";
    char err[256];
    dsCodec *c = dsCodecNew(err, sizeof(err));
    FILE *fp = c ? fopen(path, "wb") : NULL;
    if (fp == NULL) {
        fprintf(stderr, "dtGenContainer %s: %s\n", path, c ? "cannot create" : err);
        dsCodecFree(c);
        return false;
    }
    const char *schema = dsCodecSchemaText(c, dsCodecCurrentVersion(c));
    bool zip = strcmp(codec, "deflate") == 0, ok = true;
    fwrite("Obj\x01", 1, 4, fp);
    genLong(fp, 2);
    genBytes(fp, "avro.schema", 11);
    genBytes(fp, schema, strlen(schema));
    genBytes(fp, "avro.codec", 10);
    genBytes(fp, codec, strlen(codec));
    genLong(fp, 0);
    fwrite(sync, 1, 16, fp);
    for (size_t i = 0; ok && i < n; i++) {
        uLongf zlen = compressBound((uLong)blocks[i].len);
        unsigned char *z = zip ? malloc(zlen) : NULL;
        if (zip) {
            /* raw deflate (RFC 1951), as the Avro specification's deflate codec */
            z_stream s = {0};
            ok = z && deflateInit2(&s, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
            if (ok) {
                s.next_in = (Bytef *)blocks[i].data;
                s.avail_in = (uInt)blocks[i].len;
                s.next_out = z;
                s.avail_out = (uInt)zlen;
                ok = deflate(&s, Z_FINISH) == Z_STREAM_END;
                zlen = s.total_out;
                deflateEnd(&s);
            }
        }
        genLong(fp, blocks[i].count);
        if (zip) genBytes(fp, z, zlen);
        else genBytes(fp, blocks[i].data, blocks[i].len);
        fwrite(sync, 1, 16, fp);
        free(z);
    }
    ok = fclose(fp) == 0 && ok;
    dsCodecFree(c);
    return ok;
}

int dtGenCountRecords(const char *path) {
    avro_file_reader_t r;
    if (avro_file_reader(path, &r) != 0) return -1;
    avro_schema_t ws = avro_file_reader_get_writer_schema(r); /* a new reference */
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t v;
    avro_generic_value_new(iface, &v);
    int n = 0;
    while (avro_file_reader_read_value(r, &v) == 0) n++;
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(ws);
    avro_file_reader_close(r);
    return n;
}
