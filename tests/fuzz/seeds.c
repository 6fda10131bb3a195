/* seeds.c - writes the binary seed corpora of tests/fuzz/corpus/ that are not
 * plain text: wire records and archive files of known documents, and
 * pgoutput streams from the recorded fixtures, and search queries with a
 * signed cursor. Run from the repository root
 * (make fuzz-seeds); the output is committed, so this runs only when the
 * schemas, the archive format or the fixtures change. */
#include <avro.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_gen.h"
#include "cursor.h"
#include "ds/codec.h"
#include "fuzz.h"
#include "../unit/pgoutput_fixtures.h"

#define OUT "tests/fuzz/corpus/"

static dsCodec *codec;

static void die(const char *what, const char *why) {
    fprintf(stderr, "seeds: %s: %s\n", what, why);
    exit(1);
}

static void writeFile(const char *path, const void *buf, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) die(path, "cannot write");
}

/* ---- pgoutput: CopyData payloads, each behind a 2-byte big-endian length */

typedef struct frameBuf {
    uint8_t data[1 << 16];
    size_t len;
} frameBuf;

static void frameAdd(frameBuf *b, const uint8_t *msg, size_t len) {
    if (len > 0xffff || b->len + 2 + len > sizeof(b->data)) die("pgoutput", "stream too long for one seed");
    b->data[b->len++] = (uint8_t)(len >> 8);
    b->data[b->len++] = (uint8_t)len;
    memcpy(b->data + b->len, msg, len);
    b->len += len;
}

/* The pgoutput type of a CopyData payload ('k' for a keepalive). */
static char frameType(const uint8_t *buf, size_t len) {
    return buf[0] == 'w' && len > 25 ? (char)buf[25] : (char)buf[0];
}

#define PGO_STREAM(name, arr)                                                                                          \
    pgoStream(name, sizeof(arr) / sizeof(arr[0]), (const uint8_t *const *)pgoPtrs(arr, sizeof(arr) / sizeof(arr[0])), \
              pgoLens(arr, sizeof(arr) / sizeof(arr[0])))

static void pgoStream(const char *name, size_t n, const uint8_t *const *bufs, const size_t *lens) {
    char path[256];
    static frameBuf all, one;
    all.len = 0;
    for (size_t i = 0; i < n; i++) frameAdd(&all, bufs[i], lens[i]);
    snprintf(path, sizeof(path), OUT "pgoutput/%s-stream", name);
    writeFile(path, all.data, all.len);
    /* Each message type once, after the last Relation message before it. */
    char seen[256] = {0};
    size_t rel = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char t = (unsigned char)frameType(bufs[i], lens[i]);
        if (t == 'R') rel = i;
        if (seen[t]++) continue;
        one.len = 0;
        if (rel < i && (t == 'I' || t == 'U' || t == 'D' || t == 'T')) frameAdd(&one, bufs[rel], lens[rel]);
        frameAdd(&one, bufs[i], lens[i]);
        snprintf(path, sizeof(path), OUT "pgoutput/%s-%c", name, t);
        writeFile(path, one.data, one.len);
    }
}

static void pgoSeeds(void) {
    const uint8_t *bufs[256];
    size_t lens[256];
    size_t n = sizeof(pgoRec) / sizeof(pgoRec[0]);
    for (size_t i = 0; i < n; i++) bufs[i] = pgoRec[i].buf, lens[i] = pgoRec[i].len;
    pgoStream("rec", n, bufs, lens);
    n = sizeof(pgoAll) / sizeof(pgoAll[0]);
    for (size_t i = 0; i < n; i++) bufs[i] = pgoAll[i].buf, lens[i] = pgoAll[i].len;
    pgoStream("all", n, bufs, lens);
}

/* ---- wire records and archive files of known documents ------------------- */

static json_t *loadDoc(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL) die(path, jerr.text);
    return doc;
}

/* A value of version holding doc, with its server fields set. */
static void docValue(const char *path, int version, avro_value_t *v) {
    dsCodecError err;
    json_t *doc = loadDoc(path);
    if (!dsCodecNewVersionValue(codec, version, v)) die(path, "no value");
    if (!dsCodecFromJson(codec, doc, v, &err)) die(path, err.message);
    if (!dsCodecSetServerFields(codec, v, 1764000000300, version)) die(path, "server fields");
    json_decref(doc);
}

static void wireSeed(const char *doc, int version, const char *name) {
    char err[256], path[256];
    uint8_t buf[1 << 16];
    avro_value_t v;
    docValue(doc, version, &v);
    size_t n = dsCodecEncodeWire(codec, &v, buf, sizeof(buf), err, sizeof(err));
    if (n == 0 || n > sizeof(buf)) die(doc, err);
    snprintf(path, sizeof(path), OUT "wire/%s", name);
    writeFile(path, buf, n);
    avro_value_decref(&v);
}

/* An archive file written by avro-c with the given codec and block size. */
static void containerSeed(const char *doc, int version, int records, const char *avro_codec, size_t block,
                          const char *name) {
    char path[256];
    avro_value_t v;
    avro_file_writer_t w;
    snprintf(path, sizeof(path), OUT "archive/%s", name);
    unlink(path);
    docValue(doc, version, &v);
    if (avro_file_writer_create_with_codec(path, dsCodecSchema(codec, version), &w, avro_codec, block) != 0)
        die(path, avro_strerror());
    for (int i = 0; i < records; i++)
        if (avro_file_writer_append_value(w, &v) != 0) die(path, avro_strerror());
    if (avro_file_writer_close(w) != 0) die(path, avro_strerror());
    avro_value_decref(&v);
}

/* One file of the archiver's own layout (deflate, several blocks). */
static void archiverSeed(void) {
    char root[] = "/tmp/fuzz-seeds-XXXXXX", cmd[512];
    if (mkdtemp(root) == NULL) die("mkdtemp", "failed");
    dtGenBlockSize = 512;
    if (!dtArchiveGenerate(root, 6, 1764000000000, 1000, NULL)) die("dtArchiveGenerate", "failed");
    snprintf(cmd, sizeof(cmd),
             "f=$(find %s -name '*.avro' | sort | head -1) && cp \"$f\" " OUT "archive/archiver-deflate.avro"
             " && rm -rf %s",
             root, root);
    if (system(cmd) != 0) die("archive", "cannot copy the generated file");
}

/* Search queries with a cursor signed by the search target's key. */
static void cursorSeeds(void) {
    apiCursorKey key = {.len = sizeof(FUZZ_CURSOR_KEY) - 1};
    memcpy(key.key, FUZZ_CURSOR_KEY, key.len);
    char cursor[API_CURSOR_BUFLEN], query[512];
    if (!apiCursorEncode(&key, 1764000000250, "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11", cursor))
        die("cursor", "cannot encode");
    writeFile(OUT "search/signed-cursor", cursor, strlen(cursor));
    int n = snprintf(query, sizeof(query), "customer_id=cust-42&limit=2&cursor=%s", cursor);
    writeFile(OUT "search/cursor.txt", query, (size_t)n);
}

int main(void) {
    char err[256];
    if ((codec = dsCodecNew(err, sizeof(err))) == NULL) die("codec", err);
    pgoSeeds();
    wireSeed("tests/fixtures/decision.json", dsCodecCurrentVersion(codec), "current.bin");
    wireSeed("tests/fixtures/decision.json", 1, "v1.bin");
    wireSeed("tests/fuzz/corpus/codec/v2-all-fields.json", dsCodecCurrentVersion(codec), "all-fields.bin");
    wireSeed("tests/fuzz/corpus/codec/minimal.json", dsCodecCurrentVersion(codec), "minimal.bin");
    containerSeed("tests/fixtures/decision.json", dsCodecCurrentVersion(codec), 3, "null", 400, "null-3blocks.avro");
    containerSeed("tests/fuzz/corpus/codec/minimal.json", 1, 2, "null", 4096, "v1-null.avro");
    containerSeed("tests/fuzz/corpus/codec/v2-all-fields.json", dsCodecCurrentVersion(codec), 2, "deflate", 4096,
                  "deflate.avro");
    archiverSeed();
    cursorSeeds();
    dsCodecFree(codec);
    return 0;
}
