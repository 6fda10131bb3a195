/* test_resolve.c - schema resolution between codec versions (schemas/src/
 * resolve.c): the fixture set's version matrix (v1, v2, v3 each way, defaults filled,
 * new fields dropped, round trips), the wire decoder on an older writer's
 * record, writer schemas of container files, and an ad-hoc schema set for
 * every rule that can refuse (missing field without default, unknown enum
 * symbol, type mismatch, null into a non-nullable field, renamed record) and
 * for the promotions. Also values of a version other than the current one
 * (validation, server fields, wire id) and schema directories on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ds/codec.h"
#include "fixture_schemas.h"
#include "schemadir.h"

/* Version 1 of the decision, as in CONTRACT section 1. */
static const char *V1DOC =
    "{\"decision_id\": \"7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11\", \"purchase_id\": \"p-20261124-000042\","
    " \"customer_id\": \"cust-42\", \"merchant_id\": \"m-7\", \"country\": \"SE\","
    " \"amount\": {\"value\": 12999, \"currency\": \"SEK\"}, \"outcome\": \"APPROVED\", \"reasons\": [\"LOW_RISK\"],"
    " \"policy\": {\"name\": \"bnpl-checkout\", \"version\": \"2026.11.3\"},"
    " \"checks\": ["
    "  {\"kind\": \"CREDIT\", \"provider\": \"bureau-x\", \"outcome\": \"PASS\","
    "   \"score\": 0.12, \"latency_ms\": 85, \"performed_at\": \"2026-11-24T10:00:00.123Z\"},"
    "  {\"kind\": \"FRAUD\", \"provider\": \"in-house\", \"outcome\": \"FAIL\","
    "   \"score\": null, \"latency_ms\": 4, \"performed_at\": \"2026-11-24T10:00:00.180Z\"}],"
    " \"decided_at\": \"2026-11-24T10:00:00.250Z\", \"producer\": \"policy-engine-eu-1\","
    " \"attributes\": {\"device\": \"ios\", \"campaign\": \"bf\"}}";

/* What versions 2 and 3 add at the top level, every field away from its
 * default; version 3 also adds checks[].attempts (see withVersion()). */
static const char *EXTRA[4] = {NULL, NULL, "{\"model\": {\"name\": \"gbm-risk\", \"version\": \"7.1\"}, \"risk_score\": 0.42}",
                               "{\"channel\": \"in-store\"}"};
/* The defaults they take in a record of an older writer. */
static const char *DEFAULTS[4] = {NULL, NULL, "{\"model\": null, \"risk_score\": null}", "{\"channel\": \"online\"}"};
#define NVERSIONS 3

typedef struct {
    dsCodec *fc;                 /* the fixture set: current version 3 */
    dsCodec *cur[NVERSIONS + 1]; /* cur[v]: the same files with current version v, to build version v documents */
} fixture;

/* ---- helpers ---- */

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) fail_msg("bad test JSON: %s", e.text);
    return j;
}

/* The fixture table with another manifest and extra files; NULL manifest
 * keeps the fixture's. */
static dsCodec *codecFrom(const char *manifest, const dsEmbeddedFile *extra, size_t nextra) {
    dsEmbeddedFile files[32];
    size_t n = 0;
    for (size_t i = 0; i < dtFixtureSchemasCount; i++)
        if (!manifest || strcmp(dtFixtureSchemas[i].name, "manifest.json") != 0) files[n++] = dtFixtureSchemas[i];
    if (manifest) files[n++] = (dsEmbeddedFile){"manifest.json", (const unsigned char *)manifest, strlen(manifest)};
    for (size_t i = 0; i < nextra; i++) files[n++] = extra[i];
    char err[512] = "";
    dsCodec *c = dsCodecNewFrom(files, n, err, sizeof err);
    if (!c) fail_msg("dsCodecNewFrom: %s", err);
    return c;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->fc = f->cur[NVERSIONS] = codecFrom(NULL, NULL, 0);
    for (int v = 1; v < NVERSIONS; v++) {
        char manifest[512];
        snprintf(manifest, sizeof manifest,
                 "{\"subject\": \"decisions-value\", \"current\": %d, \"versions\": ["
                 "{\"version\": 1, \"id\": 1, \"file\": \"v1.avsc\"}, {\"version\": 2, \"id\": 2, \"file\": \"v2.avsc\"},"
                 "{\"version\": 3, \"id\": 3, \"file\": \"v3.avsc\"}]}", v);
        f->cur[v] = codecFrom(manifest, NULL, 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (int v = 1; v <= NVERSIONS; v++) dsCodecFree(f->cur[v]);
    free(f);
    return 0;
}

/* A new value of the codec's current version holding text. */
static void fromJson(dsCodec *c, const char *text, avro_value_t *out) {
    dsCodecError err;
    json_t *doc = parse(text);
    assert_true(dsCodecNewValue(c, out));
    if (!dsCodecFromJson(c, doc, out, &err)) fail_msg("rejected: %s %s: %s", err.code, err.field, err.message);
    json_decref(doc);
}

/* Avro binary of v; caller frees. */
static char *encode(avro_value_t *v, size_t *len) {
    assert_int_equal(avro_value_sizeof(v, len), 0);
    char *buf = malloc(*len + DS_WIRE_HEADER_LEN);
    avro_writer_t w = avro_writer_memory(buf + DS_WIRE_HEADER_LEN, (int64_t)*len);
    assert_int_equal(avro_value_write(w, v), 0);
    avro_writer_free(w);
    return buf;
}

/* Encodes v and decodes the bytes into a new value of c's version. */
static void reencode(dsCodec *c, avro_value_t *v, int version, avro_value_t *out) {
    size_t len;
    char *buf = encode(v, &len);
    assert_true(dsCodecNewVersionValue(c, version, out));
    avro_reader_t r = avro_reader_memory(buf + DS_WIRE_HEADER_LEN, (int64_t)len);
    assert_int_equal(avro_value_read(r, out), 0);
    avro_reader_free(r);
    free(buf);
}

static json_t *toJson(dsCodec *c, avro_value_t *v) {
    json_t *j = dsCodecToJson(c, v, 0);
    assert_non_null(j);
    return j;
}

static char *dump(dsCodec *c, avro_value_t *v) {
    json_t *j = toJson(c, v);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void expectJson(dsCodec *c, avro_value_t *v, json_t *want) {
    json_t *got = toJson(c, v);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(want, JSON_COMPACT);
        fail_msg("got %s\nwant %s", g, w);
    }
    json_decref(got);
}

/* ---- the fixture set ---- */

static void test_fixture_codec(void **state) {
    fixture *f = *state;
    char err[512] = "";
    dsCodec *shipped = dsCodecNew(err, sizeof err);
    assert_non_null(shipped);
    assert_string_equal(dsCodecSubject(f->fc), "decisions-value");
    assert_int_equal(dsCodecCurrentVersion(f->fc), 3);
    for (int v = 1; v <= NVERSIONS; v++) assert_int_equal(dsCodecSchemaId(f->fc, v), v);
    /* Versions 1 and 2 of the fixture are the shipped files themselves. */
    for (int v = 1; v <= 2; v++) {
        assert_string_equal(dsCodecSchemaText(f->fc, v), dsCodecSchemaText(shipped, v));
        assert_int_equal(dsCodecVersionOfSchema(f->fc, dsCodecSchema(shipped, v)), v);
    }
    dsCodecFree(shipped);
    avro_value_t v;
    assert_false(dsCodecNewVersionValue(f->fc, 4, &v));
    assert_true(dsCodecNewVersionValue(f->fc, 1, &v));
    assert_true(avro_value_get_schema(&v) == dsCodecSchema(f->fc, 1));
    avro_value_decref(&v);
    /* A missing file is named. */
    assert_null(dsCodecNewFrom(dtFixtureSchemas, 1, err, sizeof err));
    assert_non_null(strstr(err, "is not embedded"));
}

/* Adds version v's fields to doc: from the writer (EXTRA) when the writer
 * has them, else the defaults. */
static void withVersion(json_t *doc, int v, bool from_writer) {
    json_t *top = parse(from_writer ? EXTRA[v] : DEFAULTS[v]);
    json_object_update(doc, top);
    json_decref(top);
    if (v != 3) return;
    for (size_t i = 0; i < 2; i++)
        json_object_set_new(json_array_get(json_object_get(doc, "checks"), i), "attempts",
                            json_integer(from_writer ? (json_int_t)i + 2 : 1));
}

/* A version w document: version 1 plus every field of versions 2..w set. */
static json_t *writerDoc(int w) {
    json_t *doc = parse(V1DOC);
    for (int v = 2; v <= w; v++) withVersion(doc, v, true);
    return doc;
}

/* The documents the matrix expects: [writer][reader]. A reader keeps the
 * writer's fields it knows, takes its defaults for the others, and
 * schema_version stays the writer's. */
static void expectedDocs(json_t *want[NVERSIONS + 1][NVERSIONS + 1]) {
    for (int w = 1; w <= NVERSIONS; w++)
        for (int r = 1; r <= NVERSIONS; r++) {
            json_t *doc = parse(V1DOC);
            for (int v = 2; v <= r; v++) withVersion(doc, v, v <= w);
            json_object_set_new(doc, "recorded_at", json_string("1970-01-01T00:00:00.000Z"));
            json_object_set_new(doc, "schema_version", json_integer(w));
            want[w][r] = doc;
        }
}

static void releaseDocs(json_t *want[NVERSIONS + 1][NVERSIONS + 1]) {
    for (int w = 1; w <= NVERSIONS; w++)
        for (int r = 1; r <= NVERSIONS; r++) json_decref(want[w][r]);
}

/* A record written under version w, as a reader of the fixture set gets it:
 * built by a codec whose current version is w, so its schema_version is w. */
static void writerValue(fixture *f, int w, avro_value_t *out) {
    avro_value_t built;
    json_t *doc = writerDoc(w);
    char *text = json_dumps(doc, JSON_COMPACT);
    fromJson(f->cur[w], text, &built);
    free(text);
    json_decref(doc);
    reencode(f->fc, &built, w, out);
    avro_value_decref(&built);
}

static void test_version_matrix(void **state) {
    fixture *f = *state;
    json_t *want[NVERSIONS + 1][NVERSIONS + 1];
    char err[512] = "";
    expectedDocs(want);
    for (int w = 1; w <= NVERSIONS; w++) {
        avro_value_t src, dst;
        writerValue(f, w, &src);
        for (int r = 1; r <= NVERSIONS; r++) {
            assert_true(dsCodecNewVersionValue(f->fc, r, &dst));
            if (!dsCodecResolve(f->fc, &src, &dst, err, sizeof err)) fail_msg("v%d -> v%d: %s", w, r, err);
            assert_int_equal(dsCodecVersionOfSchema(f->fc, avro_value_get_schema(&dst)), r);
            expectJson(f->fc, &dst, want[w][r]);
            /* The result is a complete value: it encodes, and decodes back equal. */
            avro_value_t back;
            reencode(f->fc, &dst, r, &back);
            assert_true(avro_value_equal(&dst, &back));
            avro_value_decref(&back);
            avro_value_decref(&dst);
        }
        avro_value_decref(&src);
    }
    releaseDocs(want);
}

/* The filled defaults as Avro sees them, not only as rendered. */
static void test_defaults_are_avro_values(void **state) {
    fixture *f = *state;
    avro_value_t src, dst, field, item;
    char err[512] = "";
    const char *s;
    size_t len;
    int d;
    int32_t attempts;
    writerValue(f, 1, &src);
    assert_true(dsCodecNewValue(f->fc, &dst));
    assert_true(dsCodecResolve(f->fc, &src, &dst, err, sizeof err));
    assert_int_equal(avro_value_get_by_name(&dst, "channel", &field, NULL), 0);
    assert_int_equal(avro_value_get_string(&field, &s, &len), 0);
    assert_string_equal(s, "online");
    assert_int_equal(avro_value_get_by_name(&dst, "model", &field, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&field, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(avro_value_get_by_name(&dst, "risk_score", &field, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&field, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(avro_value_get_by_name(&dst, "checks", &field, NULL), 0);
    assert_int_equal(avro_value_get_by_index(&field, 1, &item, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&item, "attempts", &field, NULL), 0);
    assert_int_equal(avro_value_get_int(&field, &attempts), 0);
    assert_int_equal(attempts, 1);
    avro_value_decref(&dst);
    avro_value_decref(&src);
}

/* An older record up to every newer version and back is unchanged. */
static void test_round_trip_up_and_back(void **state) {
    fixture *f = *state;
    char err[512] = "";
    for (int w = 1; w < NVERSIONS; w++)
        for (int up = w + 1; up <= NVERSIONS; up++) {
            avro_value_t old, newer, back;
            writerValue(f, w, &old);
            assert_true(dsCodecNewVersionValue(f->fc, up, &newer));
            assert_true(dsCodecNewVersionValue(f->fc, w, &back));
            assert_true(dsCodecResolve(f->fc, &old, &newer, err, sizeof err));
            assert_true(dsCodecResolve(f->fc, &newer, &back, err, sizeof err));
            char *a = dump(f->fc, &old), *b = dump(f->fc, &back);
            assert_string_equal(a, b);
            assert_true(avro_value_equal(&old, &back));
            /* dst is reset first: resolving again into the same value gives the same. */
            assert_true(dsCodecResolve(f->fc, &newer, &back, err, sizeof err));
            char *c = dump(f->fc, &back);
            assert_string_equal(a, c);
            free(a);
            free(b);
            free(c);
            avro_value_decref(&old);
            avro_value_decref(&newer);
            avro_value_decref(&back);
        }
}

/* ---- the wire decoder ---- */

/* The wire form of v under schema id; caller frees. */
static char *frame(avro_value_t *v, int id, size_t *len) {
    char *buf = encode(v, len);
    buf[0] = 0;
    for (int i = 0; i < 4; i++) buf[1 + i] = (char)((uint32_t)id >> (24 - 8 * i));
    *len += DS_WIRE_HEADER_LEN;
    return buf;
}

static void test_decode_wire_older_writer(void **state) {
    fixture *f = *state;
    json_t *want[NVERSIONS + 1][NVERSIONS + 1];
    avro_value_t v1, v2, out, out1;
    char err[512] = "";
    size_t len1, len2;
    int version = 0;
    expectedDocs(want);
    writerValue(f, 1, &v1);
    writerValue(f, 2, &v2);
    char *w1 = frame(&v1, 1, &len1), *w2 = frame(&v2, 2, &len2);
    assert_true(dsCodecNewValue(f->fc, &out));
    for (int round = 0; round < 2; round++) { /* the second reuses the scratch value */
        if (!dsCodecDecodeWire(f->fc, w1, len1, &out, &version, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(version, 1);
        expectJson(f->fc, &out, want[1][3]);
    }
    assert_true(dsCodecDecodeWire(f->fc, w2, len2, &out, &version, err, sizeof err));
    assert_int_equal(version, 2);
    expectJson(f->fc, &out, want[2][3]);
    /* Into an older reader's value: resolved down. */
    assert_true(dsCodecNewVersionValue(f->fc, 1, &out1));
    assert_true(dsCodecDecodeWire(f->fc, w2, len2, &out1, &version, err, sizeof err));
    assert_int_equal(version, 2);
    expectJson(f->fc, &out1, want[2][1]);
    w1[4] = 99;
    assert_false(dsCodecDecodeWire(f->fc, w1, len1, &out, &version, err, sizeof err));
    assert_non_null(strstr(err, "unknown schema id 99"));
    free(w1);
    free(w2);
    avro_value_decref(&out);
    avro_value_decref(&out1);
    avro_value_decref(&v1);
    avro_value_decref(&v2);
    releaseDocs(want);
}

/* A document is validated against, and the server fields set in, the
 * version of the value it goes into, not only the current one: the stream
 * processor re-encodes a row under the version it was stored with. */
static void test_any_version_value(void **state) {
    fixture *f = *state;
    avro_value_t v1;
    dsCodecError cerr;
    char err[256];
    int32_t sv = 0;
    assert_int_equal(dsCodecCurrentVersion(f->fc), NVERSIONS);
    assert_true(dsCodecNewVersionValue(f->fc, 1, &v1));
    json_t *doc = parse(V1DOC);
    if (!dsCodecFromJson(f->fc, doc, &v1, &cerr)) fail_msg("%s %s: %s", cerr.code, cerr.field, cerr.message);
    assert_true(dsCodecSetServerFields(f->fc, &v1, 1795514401000LL, 1));
    avro_value_t field;
    assert_int_equal(avro_value_get_by_name(&v1, "schema_version", &field, NULL), 0);
    assert_int_equal(avro_value_get_int(&field, &sv), 0);
    assert_int_equal(sv, 1);
    /* framed under version 1's id although the current version is another */
    unsigned char buf[4096];
    size_t n = dsCodecEncodeWire(f->fc, &v1, buf, sizeof buf, err, sizeof err);
    assert_true(n > DS_WIRE_HEADER_LEN && n <= sizeof buf);
    assert_int_equal(dsCodecWireId(buf, n), 1);
    /* a field of a later version is unknown to version 1 */
    json_object_set_new(doc, "risk_score", json_real(0.5));
    assert_false(dsCodecFromJson(f->fc, doc, &v1, &cerr));
    assert_string_equal(cerr.code, "unknown_field");
    assert_string_equal(cerr.field, "risk_score");
    json_decref(doc);
    avro_value_decref(&v1);
}

static void test_wire_id(void **state) {
    unsigned char rec[] = {0, 0, 0, 1, 2, 0x2a};
    assert_int_equal(dsCodecWireId(rec, sizeof rec), 258);
    assert_int_equal(dsCodecWireId(rec, DS_WIRE_HEADER_LEN), -1); /* no body */
    rec[1] = 0x80;
    assert_int_equal(dsCodecWireId(rec, sizeof rec), -1); /* past INT32_MAX */
    rec[1] = 0;
    rec[0] = 1;
    assert_int_equal(dsCodecWireId(rec, sizeof rec), -1); /* not the magic byte */
}

static void writeText(const char *dir, const char *name, const char *text) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void expectDirRefused(const char *dir, const char *why) {
    char err[1024] = "";
    dsCodec *c = dsCodecNewFromDir(dir, err, sizeof err);
    if (c || !strstr(err, why)) fail_msg("want \"%s\", got: %s", why, c ? "a codec" : err);
}

/* A schema directory on disk (--schemas-dir): loaded like the embedded set;
 * every failure names the file. */
static void test_codec_from_dir(void **state) {
    char dir[] = "/tmp/test_resolve.XXXXXX", err[512] = "", path[300];
    assert_non_null(mkdtemp(dir));
    assert_true(dtSchemaDirWrite(dir, 2));
    dsCodec *c = dsCodecNewFromDir(dir, err, sizeof err);
    if (!c) fail_msg("%s", err);
    assert_int_equal(dsCodecCurrentVersion(c), 2);
    assert_int_equal(dsCodecSchemaId(c, 1), 1);
    assert_int_equal(dsCodecVersionOfId(c, 2), 2);
    assert_non_null(strstr(dsCodecSchemaText(c, 2), "risk_score"));
    dsCodecFree(c);

    writeText(dir, "v2.avsc", "{\"type\": ");
    snprintf(path, sizeof path, "%s: v2.avsc: line", dir);
    expectDirRefused(dir, path);
    writeText(dir, "manifest.json", "{\"subject\": \"decisions-value\", \"current\": 3, \"versions\": "
                                    "[{\"version\": 3, \"id\": 3, \"file\": \"v3.avsc\"}]}");
    snprintf(path, sizeof path, "%s/v3.avsc: No such file or directory", dir);
    expectDirRefused(dir, path);
    writeText(dir, "manifest.json", "{\"subject\": \"decisions-value\", \"current\": 1, \"versions\": "
                                    "[{\"version\": 1, \"id\": 1, \"file\": \"../v1.avsc\"}]}");
    expectDirRefused(dir, "\"../v1.avsc\" is not a file name of the directory");
    writeText(dir, "manifest.json", "{\"subject\": ");
    snprintf(path, sizeof path, "%s/manifest.json: line 1", dir);
    expectDirRefused(dir, path);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
    expectDirRefused(dir, "manifest.json: No such file or directory");
}

/* ---- container files ---- */

/* avro-c's JSON form of s: what it writes into a container file header. */
static char *schemaJson(avro_schema_t s) {
    static char buf[16384];
    avro_writer_t w = avro_writer_memory(buf, sizeof buf - 1);
    assert_int_equal(avro_schema_to_json(s, w), 0);
    buf[avro_writer_tell(w)] = '\0';
    avro_writer_free(w);
    return buf;
}

/* An old binary meeting a newer writer's id learns that version at run time
 * (from the registry, in production) and decodes its records from then on;
 * its current version stays. */
static void test_version_learned_at_run_time(void **state) {
    fixture *f = *state;
    json_t *want[NVERSIONS + 1][NVERSIONS + 1];
    avro_value_t v2, out;
    char err[512] = "";
    size_t len2;
    int version = 0;
    expectedDocs(want);
    dsCodec *old = codecFrom("{\"subject\": \"decisions-value\", \"current\": 1, \"versions\": ["
                             "{\"version\": 1, \"id\": 1, \"file\": \"v1.avsc\"}]}", NULL, 0);
    writerValue(f, 2, &v2);
    char *w2 = frame(&v2, 2, &len2);
    assert_true(dsCodecNewValue(old, &out));
    assert_false(dsCodecDecodeWire(old, w2, len2, &out, &version, err, sizeof err));
    assert_non_null(strstr(err, "unknown schema id 2"));

    const dsEmbeddedFile *v2file = NULL;
    for (size_t i = 0; i < dtFixtureSchemasCount; i++)
        if (strcmp(dtFixtureSchemas[i].name, "v2.avsc") == 0) v2file = &dtFixtureSchemas[i];
    assert_non_null(v2file);
    assert_false(dsCodecAddVersion(old, 2, 2, "{", 1, err, sizeof err)); /* not JSON: nothing added */
    assert_false(dsCodecAddVersion(old, 1, 7, (const char *)v2file->data, v2file->len, err, sizeof err));
    assert_non_null(strstr(err, "already known"));
    assert_int_equal(dsCodecSchemaId(old, 2), -1);
    if (!dsCodecAddVersion(old, 2, 2, (const char *)v2file->data, v2file->len, err, sizeof err)) fail_msg("%s", err);
    assert_false(dsCodecAddVersion(old, 3, 2, (const char *)v2file->data, v2file->len, err, sizeof err));

    assert_int_equal(dsCodecCurrentVersion(old), 1);
    assert_int_equal(dsCodecSchemaId(old, 2), 2);
    assert_string_equal(dsCodecSchemaText(old, 2), (const char *)v2file->data);
    for (int round = 0; round < 2; round++) {
        if (!dsCodecDecodeWire(old, w2, len2, &out, &version, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(version, 2);
        expectJson(old, &out, want[2][1]); /* resolved down to the old binary's version */
    }
    free(w2);
    avro_value_decref(&out);
    avro_value_decref(&v2);
    dsCodecFree(old);
    releaseDocs(want);
}

static void test_stripped_schemas_recognised(void **state) {
    fixture *f = *state;
    for (int v = 1; v <= NVERSIONS; v++) {
        const char *text = schemaJson(dsCodecSchema(f->fc, v));
        assert_null(strstr(text, "\"default\""));
        assert_null(strstr(text, "logicalType"));
        avro_schema_t s;
        assert_int_equal(avro_schema_from_json_length(text, strlen(text), &s), 0);
        assert_true(s != dsCodecSchema(f->fc, v));
        assert_int_equal(dsCodecVersionOfSchema(f->fc, s), v);
        avro_schema_decref(s);
    }
    assert_int_equal(dsCodecVersionOfSchema(f->fc, dsCodecSchema(f->fc, 1)), 1);
    avro_schema_t other = avro_schema_string();
    assert_int_equal(dsCodecVersionOfSchema(f->fc, other), -1);
    avro_schema_decref(other);
}

/* Writes v into a new container file; avro-c puts a stripped copy of schema
 * into its header. */
static void writeContainer(const char *path, avro_schema_t schema, avro_value_t *v) {
    avro_file_writer_t w;
    if (avro_file_writer_create(path, schema, &w) != 0) fail_msg("avro_file_writer_create: %s", avro_strerror());
    assert_int_equal(avro_file_writer_append_value(w, v), 0);
    assert_int_equal(avro_file_writer_close(w), 0);
}

static void test_container_writer_schema(void **state) {
    fixture *f = *state;
    json_t *want[NVERSIONS + 1][NVERSIONS + 1];
    char dir[] = "/tmp/test_resolve.XXXXXX", path[64], err[512] = "";
    avro_value_t v1, rec, out;
    expectedDocs(want);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/v1.avro", dir);
    writerValue(f, 1, &v1);
    writeContainer(path, dsCodecSchema(f->fc, 1), &v1);

    avro_file_reader_t r;
    assert_int_equal(avro_file_reader(path, &r), 0);
    avro_schema_t ws = avro_file_reader_get_writer_schema(r);
    assert_true(ws != dsCodecSchema(f->fc, 1));
    assert_int_equal(dsCodecVersionOfSchema(f->fc, ws), 1);
    /* A record read with the file's own schema resolves like any other. */
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    assert_int_equal(avro_file_reader_read_value(r, &rec), 0);
    assert_true(dsCodecNewValue(f->fc, &out));
    if (!dsCodecResolve(f->fc, &rec, &out, err, sizeof err)) fail_msg("%s", err);
    expectJson(f->fc, &out, want[1][3]);
    avro_value_decref(&out);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(ws);
    avro_file_reader_close(r);
    avro_value_decref(&v1);
    unlink(path);
    rmdir(dir);
    releaseDocs(want);
}

/* ---- an ad-hoc schema set for every refusal and the promotions ---- */

/* Slots: Money's name, Money's fields, CheckOutcome's symbol array (and
 * default), the scalar fields. Version 1 is current. */
static const char *TEMPLATE =
    "{\"type\":\"record\",\"name\":\"T\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"amount\",\"type\":{\"type\":\"record\",\"name\":\"%s\",\"fields\":[%s]}},"
    "{\"name\":\"checks\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"Check\",\"fields\":["
    "{\"name\":\"outcome\",\"type\":{\"type\":\"enum\",\"name\":\"CheckOutcome\",\"symbols\":%s}}]}}},"
    "%s,"
    "{\"name\":\"recorded_at\",\"type\":\"long\",\"default\":0,\"serverSet\":true},"
    "{\"name\":\"schema_version\",\"type\":\"int\",\"default\":1,\"serverSet\":true}]}";

#define MONEY "{\"name\":\"value\",\"type\":\"long\"},{\"name\":\"currency\",\"type\":\"string\"}"
#define SYMBOLS "[\"PASS\",\"FAIL\"]"
#define SCALARS                                                                                                  \
    "{\"name\":\"n\",\"type\":\"int\"},{\"name\":\"f\",\"type\":\"float\"},"                                     \
    "{\"name\":\"opt\",\"type\":[\"null\",\"int\"],\"default\":null},{\"name\":\"plain\",\"type\":\"int\"},"      \
    "{\"name\":\"mandatory\",\"type\":\"string\"},{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}"

static const struct {
    const char *money_name, *money, *symbols, *scalars;
} ADHOC[] = {
    /* 1: the base */
    {"Money", MONEY, SYMBOLS, SCALARS},
    /* 2: amount.currency removed (required in 1) */
    {"Money", "{\"name\":\"value\",\"type\":\"long\"}", SYMBOLS, SCALARS},
    /* 3: a symbol 1 does not know */
    {"Money", MONEY, "[\"PASS\",\"FAIL\",\"MAYBE\"]", SCALARS},
    /* 4: 1's symbols, with a default for unknown ones */
    {"Money", MONEY, SYMBOLS ",\"default\":\"FAIL\"", SCALARS},
    /* 5: every promotion, and non-union writers into unions */
    {"Money", MONEY, SYMBOLS,
     "{\"name\":\"n\",\"type\":\"double\"},{\"name\":\"f\",\"type\":\"double\"},"
     "{\"name\":\"opt\",\"type\":[\"null\",\"long\"],\"default\":null},"
     "{\"name\":\"plain\",\"type\":[\"null\",\"long\"],\"default\":null},"
     "{\"name\":\"mandatory\",\"type\":[\"null\",\"string\"],\"default\":null},"
     "{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"long\"}}"},
    /* 6: n retyped to a string */
    {"Money", MONEY, SYMBOLS,
     "{\"name\":\"n\",\"type\":\"string\"},{\"name\":\"f\",\"type\":\"float\"},"
     "{\"name\":\"opt\",\"type\":[\"null\",\"int\"],\"default\":null},{\"name\":\"plain\",\"type\":\"int\"},"
     "{\"name\":\"mandatory\",\"type\":\"string\"},{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}"},
    /* 7: Money renamed */
    {"Cash", MONEY, SYMBOLS, SCALARS},
    /* 8: map values retyped to string */
    {"Money", MONEY, SYMBOLS,
     "{\"name\":\"n\",\"type\":\"int\"},{\"name\":\"f\",\"type\":\"float\"},"
     "{\"name\":\"opt\",\"type\":[\"null\",\"int\"],\"default\":null},{\"name\":\"plain\",\"type\":\"int\"},"
     "{\"name\":\"mandatory\",\"type\":\"string\"},{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"string\"}}"},
    /* 9: 5 with mandatory not nullable: a union writer into a plain reader */
    {"Money", MONEY, SYMBOLS,
     "{\"name\":\"n\",\"type\":\"double\"},{\"name\":\"f\",\"type\":\"double\"},"
     "{\"name\":\"opt\",\"type\":[\"null\",\"long\"],\"default\":null},"
     "{\"name\":\"plain\",\"type\":[\"null\",\"long\"],\"default\":null},"
     "{\"name\":\"mandatory\",\"type\":\"string\"},"
     "{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"long\"}}"},
};
#define NADHOC (sizeof ADHOC / sizeof ADHOC[0])

static const char *ADHOC_DOC = "{\"id\":\"a\",\"amount\":{\"value\":5,\"currency\":\"EUR\"},"
                               "\"checks\":[{\"outcome\":\"PASS\"},{\"outcome\":\"FAIL\"}],"
                               "\"n\":7,\"f\":1.5,\"opt\":3,\"plain\":4,\"mandatory\":\"x\",\"tags\":{\"b\":2,\"a\":1}}";

static dsCodec *adhocCodec(void) {
    static char texts[NADHOC][2048], names[NADHOC][16];
    char manifest[1024];
    dsEmbeddedFile files[NADHOC + 1];
    int at = snprintf(manifest, sizeof manifest, "{\"subject\":\"t\",\"current\":1,\"versions\":[");
    for (size_t i = 0; i < NADHOC; i++) {
        snprintf(texts[i], sizeof texts[i], TEMPLATE, ADHOC[i].money_name, ADHOC[i].money, ADHOC[i].symbols,
                 ADHOC[i].scalars);
        snprintf(names[i], sizeof names[i], "t%zu.avsc", i + 1);
        files[i] = (dsEmbeddedFile){names[i], (const unsigned char *)texts[i], strlen(texts[i])};
        at += snprintf(manifest + at, sizeof manifest - (size_t)at, "%s{\"version\":%zu,\"id\":%zu,\"file\":\"%s\"}",
                       i ? "," : "", i + 1, i + 11, names[i]);
    }
    snprintf(manifest + at, sizeof manifest - (size_t)at, "]}");
    files[NADHOC] = (dsEmbeddedFile){"manifest.json", (const unsigned char *)manifest, strlen(manifest)};
    char err[512] = "";
    dsCodec *c = dsCodecNewFrom(files, NADHOC + 1, err, sizeof err);
    if (!c) fail_msg("dsCodecNewFrom: %s", err);
    return c;
}

/* ADHOC_DOC under version 1, resolved to version to: must succeed. */
static void adhocAt(dsCodec *c, int to, avro_value_t *out) {
    avro_value_t base;
    char err[512] = "";
    fromJson(c, ADHOC_DOC, &base);
    assert_true(dsCodecNewVersionValue(c, to, out));
    if (!dsCodecResolve(c, &base, out, err, sizeof err)) fail_msg("1 -> %d: %s", to, err);
    avro_value_decref(&base);
}

/* Resolving src to version to fails with a message holding every needle. */
static void expectRefused(dsCodec *c, avro_value_t *src, int to, const char *n1, const char *n2) {
    avro_value_t dst;
    char err[512] = "";
    assert_true(dsCodecNewVersionValue(c, to, &dst));
    if (dsCodecResolve(c, src, &dst, err, sizeof err)) fail_msg("resolved to %d; expected a refusal", to);
    if (!strstr(err, n1) || !strstr(err, n2)) fail_msg("\"%s\" lacks \"%s\" or \"%s\"", err, n1, n2);
    avro_value_decref(&dst);
}

static void test_missing_field_without_default(void **state) {
    dsCodec *c = adhocCodec();
    avro_value_t v1, v2, dst;
    char err[512] = "";
    adhocAt(c, 2, &v2); /* a field the reader lacks is dropped */
    expectRefused(c, &v2, 1, "version 2 -> 1: amount.currency is missing", "no default");
    /* A value a refusal left half-filled takes the next resolution cleanly. */
    fromJson(c, ADHOC_DOC, &v1);
    assert_true(dsCodecNewVersionValue(c, 1, &dst));
    assert_false(dsCodecResolve(c, &v2, &dst, err, sizeof err));
    assert_true(dsCodecResolve(c, &v1, &dst, err, sizeof err));
    assert_true(avro_value_equal(&v1, &dst));
    avro_value_decref(&dst);
    avro_value_decref(&v1);
    avro_value_decref(&v2);
    dsCodecFree(c);
}

static void test_enum_symbols(void **state) {
    dsCodec *c = adhocCodec();
    avro_value_t v3, item, field, v4;
    char err[512] = "";
    adhocAt(c, 3, &v3);
    assert_int_equal(avro_value_get_by_name(&v3, "checks", &field, NULL), 0);
    assert_int_equal(avro_value_get_by_index(&field, 1, &item, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&item, "outcome", &field, NULL), 0);
    assert_int_equal(avro_value_set_enum(&field, 2), 0); /* MAYBE */
    expectRefused(c, &v3, 1, "checks[1].outcome", "MAYBE");
    /* A reader enum with a default takes it for the unknown symbol. */
    assert_true(dsCodecNewVersionValue(c, 4, &v4));
    if (!dsCodecResolve(c, &v3, &v4, err, sizeof err)) fail_msg("%s", err);
    json_t *j = toJson(c, &v4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "checks"), 1), "outcome")),
                        "FAIL");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "checks"), 0), "outcome")),
                        "PASS");
    json_decref(j);
    avro_value_decref(&v4);
    avro_value_decref(&v3);
    dsCodecFree(c);
}

static void test_promotions_and_unions(void **state) {
    dsCodec *c = adhocCodec();
    avro_value_t v5, v9, field, branch;
    char err[512] = "";
    adhocAt(c, 5, &v5);
    json_t *want = parse("{\"id\":\"a\",\"amount\":{\"value\":5,\"currency\":\"EUR\"},"
                         "\"checks\":[{\"outcome\":\"PASS\"},{\"outcome\":\"FAIL\"}],"
                         "\"n\":7.0,\"f\":1.5,\"opt\":3,\"plain\":4,\"mandatory\":\"x\",\"tags\":{\"a\":1,\"b\":2},"
                         "\"recorded_at\":0,\"schema_version\":1}");
    expectJson(c, &v5, want);
    /* Back down: a double does not narrow to an int. */
    expectRefused(c, &v5, 1, "version 5 -> 1: n is a double in the writer and an int in the reader", "promotion");
    /* A union writer into a plain reader: the branch it holds resolves. */
    assert_true(dsCodecNewVersionValue(c, 9, &v9));
    if (!dsCodecResolve(c, &v5, &v9, err, sizeof err)) fail_msg("%s", err);
    expectJson(c, &v9, want);
    json_decref(want);
    avro_value_decref(&v9);
    /* ... and null has nowhere to go. */
    assert_int_equal(avro_value_get_by_name(&v5, "mandatory", &field, NULL), 0);
    assert_int_equal(avro_value_set_branch(&field, 0, &branch), 0);
    assert_int_equal(avro_value_set_null(&branch), 0);
    expectRefused(c, &v5, 9, "version 5 -> 9: mandatory is null in the writer and a string in the reader",
                  "do not resolve");
    avro_value_decref(&v5);
    dsCodecFree(c);
}

static void test_other_refusals(void **state) {
    dsCodec *c = adhocCodec();
    avro_value_t v1;
    fromJson(c, ADHOC_DOC, &v1);
    expectRefused(c, &v1, 6, "version 1 -> 6: n is an int in the writer and a string in the reader", "promotion");
    expectRefused(c, &v1, 7, "amount is record t.Money in the writer and record t.Cash in the reader", "unqualified name");
    expectRefused(c, &v1, 8, "tags.a is an int in the writer and a string in the reader", "do not resolve");
    avro_value_decref(&v1);
    dsCodecFree(c);
}

static void test_unknown_schema_refused(void **state) {
    fixture *f = *state;
    avro_value_t v, dst;
    char err[512] = "";
    avro_schema_t s = avro_schema_string();
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    assert_true(dsCodecNewValue(f->fc, &dst));
    assert_false(dsCodecResolve(f->fc, &v, &dst, err, sizeof err));
    assert_non_null(strstr(err, "source value is not of a known schema version"));
    assert_false(dsCodecResolve(f->fc, &dst, &v, err, sizeof err));
    assert_non_null(strstr(err, "target value"));
    avro_value_decref(&dst);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_codec),
        cmocka_unit_test(test_version_matrix),
        cmocka_unit_test(test_defaults_are_avro_values),
        cmocka_unit_test(test_round_trip_up_and_back),
        cmocka_unit_test(test_decode_wire_older_writer),
        cmocka_unit_test(test_version_learned_at_run_time),
        cmocka_unit_test(test_any_version_value),
        cmocka_unit_test(test_wire_id),
        cmocka_unit_test(test_codec_from_dir),
        cmocka_unit_test(test_stripped_schemas_recognised),
        cmocka_unit_test(test_container_writer_schema),
        cmocka_unit_test(test_missing_field_without_default),
        cmocka_unit_test(test_enum_symbols),
        cmocka_unit_test(test_promotions_and_unions),
        cmocka_unit_test(test_other_refusals),
        cmocka_unit_test(test_unknown_schema_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
