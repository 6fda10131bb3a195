/* test_roundtrip.c - a property of the whole pipeline: every document the
 * API accepts is served back by GET and by search, streamed, archived and
 * replayed as the same bytes in canonical form (codec.h).
 *
 * Documents are random but seeded (DT_ROUNDTRIP_SEED overrides the seed;
 * the seed is printed), with the edge values that broke storage in jsonb:
 * doubles of 2^63 and more, 1e308, 5e-324, -0.0, the largest integers, long
 * multi-byte strings and control characters where the rules allow them,
 * every list and map at its maximum. Each stage is read as it is: the API
 * over HTTP, the topics with kcat (raw wire records decoded here), the
 * archive files with avro-c's file reader, the replay into a fresh topic.
 * N is kept to 200 so the whole chain runs in seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <avro.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/codec.h"
#include "ds/timefmt.h"
#include "harness.h"

enum { N = 200, CUSTOMERS = 5 };
#define WINDOW_MS 1795165200000LL /* 2026-11-20T09:00:00Z: most decisions fall in the three hours after it */

static dtPg pg;
static dtApi api;
static dtKafka kafka;
static dtStream stream;
static pid_t archiver = -1;
static char env_abrokers[64], env_aroot[300];
static const char *archEnv[] = {env_abrokers, env_aroot, "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_LOG_LEVEL=error", NULL};

static dsCodec *codec;
static avro_value_t val;
static json_t *expected; /* decision_id -> canonical text, for every accepted document */
static char customers[CUSTOMERS][160];

/* ---- seeded generator (xorshift64*) ---- */

static uint64_t rng;

static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n) { return next() % n; }

/* UTF-8 text of 1..max bytes (max bytes when full); controls only where
 * the field's rules allow them, quotes and backslashes always. */
static json_t *text(size_t max, bool full, bool controls) {
    static const char *const printable[] = {"a", "Z", "0", " ", "\"", "\\", "/", "\xc3\xa5", "\xe2\x82\xac",
                                            "\xf0\x9d\x84\x9e", "\xef\xbf\xbd", "\xe2\x80\xa8", "<", "'"};
    static const char *const control[] = {"\x01", "\x1f", "\x7f", "\xc2\x85", "\t", "\n"};
    char buf[1100];
    size_t n = 0, want = full ? max : 1 + below(max < 12 ? max : 12);
    while (n < want) {
        const char *c = controls && below(5) == 0 ? control[below(6)] : printable[below(14)];
        size_t len = strlen(c);
        if (n + len > want) c = "x", len = 1;
        memcpy(buf + n, c, len);
        n += len;
    }
    return json_stringn(buf, n);
}

/* A double of any finite magnitude, or an edge: jsonb would print those
 * of 2^63 and more back as integers jansson cannot read, and -0.0 as 0.0. */
static json_t *number(void) {
    static const double edges[] = {9223372036854775808.0, -9223372036854775808.0, 9223372036854774784.0,
                                   1.7976931348623157e308, -1e308, 1e19, 5e-324, -0.0, 0.0, 2.2250738585072014e-308,
                                   1e-300, 0.1, 1.0 / 3, 1e17, 123456789012345678.0, 4503599627370497.0, -1.5};
    if (below(3) == 0) return json_real(edges[below(sizeof edges / sizeof edges[0])]);
    double d = ldexp((double)(next() >> 11) / 9007199254740992.0, (int)below(2098) - 1073);
    return json_real(below(2) ? -d : d);
}

static json_t *stamp(int64_t ms) {
    char ts[DS_TIME_BUFLEN];
    return dsTimeFormat(ms, ts) ? json_string(ts) : NULL;
}

static json_t *check(void) {
    static const char *const outcomes[] = {"PASS", "FAIL", "ERROR", "SKIPPED"};
    json_t *c = json_pack("{s:o, s:o, s:s}", "kind", text(128, below(4) == 0, true), "provider",
                          text(128, below(4) == 0, true), "outcome", outcomes[below(4)]);
    int s = (int)below(3);
    if (s) json_object_set_new(c, "score", s == 1 ? number() : json_null());
    if (below(2)) json_object_set_new(c, "latency_ms", below(3) ? json_integer((json_int_t)below(100000))
                                                                  : json_integer(INT64_MAX));
    /* Any renderable instant: years 0001 to 9999. */
    json_object_set_new(c, "performed_at", stamp(-62135596800000LL + (int64_t)below(315537897600000ULL)));
    return c;
}

static json_t *document(int i) {
    static const char *const outcomes[] = {"APPROVED", "REJECTED", "REFERRED"};
    char id[37];
    dtUuid(id);
    bool full = i % 10 == 0; /* every list, map and string at its maximum */
    json_t *d = json_pack("{s:s, s:o, s:s, s:o, s:s, s:{s:I, s:s}, s:s}", "decision_id", id, "purchase_id",
                          text(128, full, false), "customer_id", customers[i % CUSTOMERS], "merchant_id",
                          text(128, full, false), "country", "SE", "amount", "value",
                          (json_int_t)(below(4) == 0 ? 1000000000000000LL : (int64_t)below(1000000)), "currency",
                          "SEK", "outcome", outcomes[below(3)]);
    json_t *reasons = json_array(), *checks = json_array(), *attrs = json_object();
    for (size_t k = 0, n = full ? 32 : below(4); k < n; k++) json_array_append_new(reasons, text(64, full, true));
    for (size_t k = 0, n = full ? 64 : below(4); k < n; k++) json_array_append_new(checks, check());
    for (size_t k = 0, n = full ? 64 : below(4); k < n; k++) {
        char key[70];
        json_t *kt = text(60, full, false);
        snprintf(key, sizeof key, "%zu%s", k, json_string_value(kt)); /* distinct */
        json_decref(kt);
        json_object_set_new(attrs, key, text(1024, full, true));
    }
    json_object_set_new(d, "reasons", reasons);
    json_object_set_new(d, "checks", checks);
    json_object_set_new(d, "attributes", attrs);
    json_object_set_new(d, "policy", json_pack("{s:o, s:o}", "name", text(128, full, true), "version",
                                               text(128, full, true)));
    json_object_set_new(d, "producer", text(128, full, true));
    int64_t at = WINDOW_MS + (int64_t)below(3 * 3600000);
    if (i % 50 == 1) at = DS_CODEC_DECIDED_AT_MIN_MS; /* the first instant accepted */
    json_object_set_new(d, "decided_at", stamp(at));
    if (below(2)) json_object_set_new(d, "model", json_pack("{s:o, s:o}", "name", text(128, full, true), "version",
                                                            text(128, full, true)));
    if (below(2)) json_object_set_new(d, "risk_score", below(4) ? json_real((double)below(1000001) / 1e6)
                                                                : json_real(below(2) ? -0.0 : 5e-324));
    return d;
}

/* ---- setup ---- */

static int setup(void **state) {
    const char *seed = getenv("DT_ROUNDTRIP_SEED");
    rng = seed ? strtoull(seed, NULL, 0) : 0x5eed2026ULL;
    if (rng == 0) rng = 1;
    fprintf(stderr, "test_roundtrip: seed 0x%llx\n", (unsigned long long)rng);
    char err[512];
    if (!(codec = dsCodecNew(err, sizeof err)) || !dsCodecNewValue(codec, &val)) return -1;
    expected = json_object();
    for (int c = 0; c < CUSTOMERS; c++) snprintf(customers[c], sizeof customers[c], "cust-%d", c);
    /* One customer_id of 128 bytes of multi-byte text, searched for by it. */
    json_t *longest = text(128, true, false);
    snprintf(customers[0], sizeof customers[0], "%s", json_string_value(longest));
    json_decref(longest);

    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL) || !dtKafkaStart(&kafka)) return -1;
    snprintf(env_abrokers, sizeof(env_abrokers), "ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(env_aroot, sizeof(env_aroot), "ARCHIVER_ARCHIVE=%s/archive", pg.dir);
    archiver = dtSpawn("decision-archiver", NULL, archEnv);
    return dtStreamStart(&stream, &pg, &kafka, NULL) ? 0 : -1;
}

static int teardown(void **state) {
    int rc = dtStreamStop(&stream);
    if (dtStop(archiver, SIGTERM) != 0) rc = -1;
    dtApiStop(&api);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    json_decref(expected);
    avro_value_decref(&val);
    dsCodecFree(codec);
    return rc == 0 ? 0 : -1;
}

/* ---- canonical text of what each stage holds ---- */

/* The canonical text of v (server-set fields left out); malloc'd. */
static char *canonicalOfValue(avro_value_t *v) {
    json_t *j = dsCodecToJson(codec, v, DS_CODEC_OMIT_SERVER_FIELDS);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* A served document without its server-set fields, as the API rendered it. */
static char *canonicalOfServed(json_t *doc) {
    json_t *copy = json_copy(doc);
    json_object_del(copy, "recorded_at");
    json_object_del(copy, "schema_version");
    char *s = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return s;
}

/* Compares one stage's text for id with the expected one; counts it. */
static void expectSame(const char *stage, const char *id, const char *got, json_t *seen) {
    const char *want = json_string_value(json_object_get(expected, id));
    if (!want) fail_msg("%s holds %s, which was not accepted", stage, id);
    if (strcmp(want, got) != 0) {
        size_t at = 0;
        while (want[at] == got[at]) at++;
        size_t from = at > 60 ? at - 60 : 0;
        fail_msg("%s: %s differs at byte %zu\nposted ...%.120s\n%s ...%.120s", stage, id, at, want + from, stage,
                 got + from);
    }
    json_object_set_new(seen, id, json_true());
}

/* ---- the stages ---- */

static void postAll(void) {
    for (int i = 0; i < N; i++) {
        json_t *doc = document(i);
        const char *id = json_string_value(json_object_get(doc, "decision_id"));
        dsCodecError cerr;
        /* The generator stays inside the rules. */
        if (!dsCodecFromJsonPosted(codec, doc, &val, dsTimeNowMs(), DS_CODEC_MAX_CLOCK_SKEW_MS, &cerr))
            fail_msg("document %d breaks a rule: %s", i, cerr.message);
        char *want = canonicalOfValue(&val), *body = json_dumps(doc, JSON_COMPACT);
        dtResponse r;
        assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
        if (r.status != 201) fail_msg("document %d: %ld %s", i, r.status, r.body);
        char *got = canonicalOfServed(r.json);
        if (strcmp(got, want) != 0) fail_msg("201 of %s differs\nposted %s\nserved %s", id, want, got);
        json_object_set_new(expected, id, json_string(want));
        free(got);
        dtResponseFree(&r);
        free(body);
        free(want);
        json_decref(doc);
    }
}

static void checkGets(void) {
    const char *id;
    json_t *v, *seen = json_object();
    json_object_foreach(expected, id, v) {
        char path[64];
        dtResponse r;
        snprintf(path, sizeof path, "/v1/decisions/%s", id);
        assert_true(dtHttp(&api, "GET", path, DT_READER_TOKEN, NULL, NULL, 0, &r));
        if (r.status != 200) fail_msg("GET %s: %ld %s", id, r.status, r.body);
        char *got = canonicalOfServed(r.json);
        expectSame("GET", id, got, seen);
        free(got);
        dtResponseFree(&r);
    }
    json_decref(seen);
}

static void urlEncode(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
    }
    out[n] = '\0';
}

static void checkSearch(void) {
    json_t *seen = json_object();
    for (int c = 0; c < CUSTOMERS; c++) {
        char enc[600], path[700];
        urlEncode(customers[c], enc, sizeof enc);
        snprintf(path, sizeof path, "/v1/decisions?customer_id=%s&limit=500", enc);
        dtResponse r;
        assert_true(dtHttp(&api, "GET", path, DT_READER_TOKEN, NULL, NULL, 0, &r));
        if (r.status != 200) fail_msg("search %s: %ld %s", customers[c], r.status, r.body);
        size_t i;
        json_t *doc;
        json_array_foreach(json_object_get(r.json, "decisions"), i, doc) {
            char *got = canonicalOfServed(doc);
            expectSame("search", json_string_value(json_object_get(doc, "decision_id")), got, seen);
            free(got);
        }
        dtResponseFree(&r);
    }
    assert_int_equal(json_object_size(seen), json_object_size(expected));
    json_decref(seen);
}

/* Every record of a topic, read raw with kcat (length-prefixed), decoded by
 * the codec's wire decoder; seen receives each decision_id. False when a
 * record does not decode. */
static bool readTopic(const char *topic, json_t *seen) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "kcat -C -b 127.0.0.1:%d -t %s -e -q -f '%%R%%s' 2>/dev/null", kafka.port, topic);
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    bool ok = true;
    unsigned char hdr[4], *rec = NULL;
    while (ok && fread(hdr, 1, 4, p) == 4) {
        int32_t len = (int32_t)((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]);
        char err[256];
        ok = len > 0 && (rec = realloc(rec, (size_t)len)) != NULL && fread(rec, 1, (size_t)len, p) == (size_t)len;
        if (ok && !dsCodecDecodeWire(codec, rec, (size_t)len, &val, NULL, err, sizeof err))
            fail_msg("%s: a record does not decode: %s", topic, err);
        char *got = ok ? canonicalOfValue(&val) : NULL;
        if (got) expectSame(topic, dsCodecFieldText(&val, "decision_id"), got, seen);
        free(got);
    }
    free(rec);
    pclose(p);
    return ok;
}

static bool topicComplete(void *topic) {
    json_t *seen = json_object();
    bool done = readTopic(topic, seen) && json_object_size(seen) == json_object_size(expected);
    json_decref(seen);
    return done;
}

static json_t *archiveSeen; /* for the nftw callback */

static int readArchiveFile(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    size_t n = strlen(path);
    if (type != FTW_F || n < 5 || strcmp(path + n - 5, ".avro") != 0) return 0;
    avro_file_reader_t fr;
    if (avro_file_reader(path, &fr) != 0) fail_msg("%s: %s", path, avro_strerror());
    avro_schema_t ws = avro_file_reader_get_writer_schema(fr);
    int version = dsCodecVersionOfSchema(codec, ws);
    avro_value_t rec;
    assert_true(version > 0 && dsCodecNewVersionValue(codec, version, &rec));
    int rc;
    while ((rc = avro_file_reader_read_value(fr, &rec)) == 0) {
        char *got = canonicalOfValue(&rec);
        assert_non_null(got);
        expectSame("archive", dsCodecFieldText(&rec, "decision_id"), got, archiveSeen);
        free(got);
    }
    avro_value_decref(&rec);
    avro_schema_decref(ws);
    avro_file_reader_close(fr);
    return 0;
}

static bool archiveComplete(void *arg) {
    char root[400];
    snprintf(root, sizeof root, "%s/archive", pg.dir);
    archiveSeen = json_object();
    nftw(root, readArchiveFile, 16, FTW_PHYS);
    bool done = json_object_size(archiveSeen) == json_object_size(expected);
    json_decref(archiveSeen);
    return done;
}

static void test_accepted_documents_survive_every_stage(void **state) {
    postAll();
    checkGets();
    checkSearch();
    assert_true(dtWaitFor(topicComplete, "decisions", 60000));
    assert_true(dtWaitFor(archiveComplete, NULL, 60000));

    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "${BUILD:-build}/bin/decision-replay --archive %s/archive --from 2000-01-01T00:00:00Z"
             " --to 2030-01-01T00:00:00Z --brokers 127.0.0.1:%d --log-level warn --target kafka --topic replayed"
             " 2>&1; echo rc=$?",
             pg.dir, kafka.port);
    char *out = dtCapture(cmd);
    if (!strstr(out, "rc=0")) fail_msg("replay: %s", out);
    free(out);
    assert_true(dtWaitFor(topicComplete, "replayed", 30000));
}

/* What the rules refuse at the API, field named: the bounds of decided_at
 * (max-clock-skew configurable). */
static void test_refused_at_intake(void **state) {
    static const struct {
        const char *path, *value, *field;
    } cases[] = {
        {"decided_at", "\"1969-12-31T23:59:59.999Z\"", "decided_at"},
        {"decided_at", "\"1999-12-31T23:59:59.999Z\"", "decided_at"},
        {"decided_at", "\"2000-01-01T00:30:00+01:00\"", "decided_at"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = dtFixture("decision.json");
        char id[37];
        dtUuid(id);
        json_object_set_new(doc, "decision_id", json_string(id));
        json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        json_object_set_new(doc, cases[i].path, v);
        char *body = json_dumps(doc, JSON_COMPACT);
        dtResponse r;
        assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
        if (r.status != 400) fail_msg("%s = %s: %ld %s", cases[i].path, cases[i].value, r.status, r.body);
        assert_string_equal(json_string_value(json_object_get(r.json, "field")), cases[i].field);
        dtResponseFree(&r);
        free(body);
        json_decref(doc);
    }

    /* The future: 5 minutes of skew by default, max-clock-skew to change it. */
    static const char *const skewEnv[] = {"DECISIONS_MAX_CLOCK_SKEW=1h", NULL};
    dtApi wide;
    assert_true(dtApiStart(&wide, &pg, skewEnv));
    static const struct {
        int64_t ahead_ms;
        long narrow, widened;
    } future[] = {{60000, 201, 201}, {30 * 60000, 400, 201}, {2 * 3600000, 400, 400}};
    for (size_t i = 0; i < sizeof future / sizeof future[0]; i++) {
        for (int w = 0; w < 2; w++) {
            json_t *doc = dtFixture("decision.json");
            char id[37];
            dtUuid(id);
            json_object_set_new(doc, "decision_id", json_string(id));
            json_object_set_new(doc, "decided_at", stamp(dsTimeNowMs() + future[i].ahead_ms));
            char *body = json_dumps(doc, JSON_COMPACT);
            dtResponse r;
            assert_true(dtHttp(w ? &wide : &api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body,
                               strlen(body), &r));
            if (r.status != (w ? future[i].widened : future[i].narrow))
                fail_msg("%lld ms ahead, %s: %ld %s", (long long)future[i].ahead_ms, w ? "1h skew" : "default",
                         r.status, r.body);
            if (r.status == 400) assert_string_equal(json_string_value(json_object_get(r.json, "field")), "decided_at");
            dtResponseFree(&r);
            free(body);
            json_decref(doc);
        }
    }
    assert_int_equal(dtApiStop(&wide), 0);
}

/* A row stored before doc_text existed, whose jsonb prints 1e19 back as an
 * integer jansson cannot read, fails its search page naming the decision,
 * so it can be found; the other customers' pages are served. */
static void test_unreadable_row_is_named(void **state) {
    char id[37], sql[1024];
    dtUuid(id);
    snprintf(sql, sizeof sql,
             "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) SELECT '%s', 'p-legacy', 'cust-legacy', 'm-1', 'APPROVED',"
             " '2026-11-20T09:00:00Z', 2, '\\x00', jsonb_set(jsonb_set(doc, '{decision_id}', to_jsonb('%s'::text)),"
             " '{checks,0,score}', '1e19'::jsonb) FROM decisions WHERE jsonb_array_length(doc->'checks') > 0 LIMIT 1",
             id, id);
    assert_true(dtPgExec(&pg, sql));
    dtResponse r;
    assert_true(dtHttp(&api, "GET", "/v1/decisions?customer_id=cust-legacy", DT_READER_TOKEN, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 500);
    if (!strstr(json_string_value(json_object_get(r.json, "message")), id))
        fail_msg("the 500 does not name %s: %s", id, r.body);
    dtResponseFree(&r);
    assert_true(dtHttp(&api, "GET", "/v1/decisions?customer_id=cust-1", DT_READER_TOKEN, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_documents_survive_every_stage),
        cmocka_unit_test(test_refused_at_intake),
        cmocka_unit_test(test_unreadable_row_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
