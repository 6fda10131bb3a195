/* test_api.c - the decision API end to end: real HTTP against a real
 * PostgreSQL started by the harness. Every rejected request must leave the
 * decisions table exactly as it was (compared by fingerprint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "ds/codec.h"
#include "harness.h"

static dtPg pg;
static dtApi api;

static int suiteSetup(void **state) {
    if (!dtPgStart(&pg)) return -1;
    /* HTTP/2 is off by default; test_client_gone_while_waiting needs it */
    static const char *env[] = {"DECISIONS_HTTP2=true", NULL};
    return dtApiStart(&api, &pg, env) ? 0 : -1;
}

static int suiteTeardown(void **state) {
    int rc = dtApiStop(&api);
    dtPgDestroy(&pg);
    return rc == 0 ? 0 : -1;
}

/* A valid decision with a fresh decision_id; caller decrefs. */
static json_t *newDecision(const char *customer) {
    json_t *d = dtFixture("decision.json");
    char id[37];
    dtUuid(id);
    json_object_set_new(d, "decision_id", json_string(id));
    if (customer) json_object_set_new(d, "customer_id", json_string(customer));
    return d;
}

static void post(const char *path, const char *token, const char *ctype, const char *body, dtResponse *r) {
    assert_true(dtHttp(&api, "POST", path, token, ctype, body, strlen(body), r));
}

static void postJson(const char *token, json_t *doc, dtResponse *r) {
    char *text = json_dumps(doc, JSON_COMPACT);
    post("/v1/decisions", token, "application/json", text, r);
    free(text);
}

static void get(const char *path, const char *token, dtResponse *r) {
    assert_true(dtHttp(&api, "GET", path, token, NULL, NULL, 0, r));
}

static void assertError(const dtResponse *r, long status, const char *code, const char *field) {
    if (r->status != status) fprintf(stderr, "expected %ld, got %ld: %s\n", status, r->status, r->body);
    assert_int_equal(r->status, status);
    assert_non_null(r->json);
    if (code) assert_string_equal(json_string_value(json_object_get(r->json, "error")), code);
    assert_non_null(json_string_value(json_object_get(r->json, "message")));
    if (field) assert_string_equal(json_string_value(json_object_get(r->json, "field")), field);
}

static void test_post_then_get(void **state) {
    json_t *d = newDecision(NULL);
    dtResponse r;
    postJson(DT_WRITER_TOKEN, d, &r);
    assert_int_equal(r.status, 201);
    const char *id = json_string_value(json_object_get(d, "decision_id"));
    char loc[128];
    snprintf(loc, sizeof(loc), "/v1/decisions/%s", id);
    assert_string_equal(r.location, loc);
    assert_string_equal(json_string_value(json_object_get(r.json, "decision_id")), id);
    assert_non_null(json_string_value(json_object_get(r.json, "recorded_at")));
    /* A version 1 document is stored and served as the current version,
     * the fields it lacks at their defaults. */
    assert_int_equal(json_integer_value(json_object_get(r.json, "schema_version")), 2);
    assert_true(json_is_null(json_object_get(r.json, "model")));
    assert_true(json_is_null(json_object_get(r.json, "risk_score")));
    json_t *posted = json_deep_copy(r.json);
    dtResponseFree(&r);

    get(loc, DT_READER_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_equal(r.json, posted));
    dtResponseFree(&r);

    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT customer_id || '|' || outcome FROM decisions WHERE decision_id = '%s'", id);
    char *row = dtPgScalar(&pg, sql);
    assert_string_equal(row, "cust-42|APPROVED");
    free(row);
    json_decref(posted);
    json_decref(d);
}

static void test_upper_case_uuid_and_offset_normalized(void **state) {
    json_t *d = newDecision(NULL);
    char upper[37];
    snprintf(upper, sizeof(upper), "%s", json_string_value(json_object_get(d, "decision_id")));
    for (char *p = upper; *p; p++) *p = (char)toupper((unsigned char)*p);
    json_object_set_new(d, "decision_id", json_string(upper));
    json_object_set_new(d, "decided_at", json_string("2026-11-24T12:00:00.5+02:00"));
    dtResponse r;
    postJson(DT_WRITER_TOKEN, d, &r);
    assert_int_equal(r.status, 201);
    const char *id = json_string_value(json_object_get(r.json, "decision_id"));
    for (const char *p = id; *p; p++) assert_false(*p >= 'A' && *p <= 'F');
    assert_string_equal(json_string_value(json_object_get(r.json, "decided_at")), "2026-11-24T10:00:00.500Z");
    dtResponseFree(&r);
    json_decref(d);
}

static void test_idempotent_retry_and_conflict(void **state) {
    json_t *d = newDecision(NULL);
    dtResponse first, again, clash;
    postJson(DT_WRITER_TOKEN, d, &first);
    assert_int_equal(first.status, 201);
    char *before = dtPgTableFingerprint(&pg);

    postJson(DT_WRITER_TOKEN, d, &again);
    assert_int_equal(again.status, 200);
    assert_true(json_equal(first.json, again.json));

    json_object_set_new(d, "outcome", json_string("REJECTED"));
    postJson(DT_WRITER_TOKEN, d, &clash);
    assertError(&clash, 409, "conflict", "decision_id");

    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    dtResponseFree(&first);
    dtResponseFree(&again);
    dtResponseFree(&clash);
    json_decref(d);
}

/* A version 2 document keeps its model and risk score, and its row says 2. */
static void test_version_2_document(void **state) {
    json_t *d = newDecision(NULL);
    json_object_set_new(d, "model", json_pack("{s:s, s:s}", "name", "gbm-risk", "version", "7.1"));
    json_object_set_new(d, "risk_score", json_real(0.375));
    dtResponse r, again;
    postJson(DT_WRITER_TOKEN, d, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "model"), "version")), "7.1");
    assert_true(json_real_value(json_object_get(r.json, "risk_score")) == 0.375);
    postJson(DT_WRITER_TOKEN, d, &again);
    assert_int_equal(again.status, 200);
    assert_true(json_equal(r.json, again.json));
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT schema_version FROM decisions WHERE decision_id = '%s'",
             json_string_value(json_object_get(d, "decision_id")));
    char *version = dtPgScalar(&pg, sql);
    assert_string_equal(version, "2");
    free(version);
    dtResponseFree(&r);
    dtResponseFree(&again);
    json_decref(d);
}

/* Stores d as an API whose current version was 1 did: that version's
 * canonical text, its hash, schema_version 1. */
static void storeAsVersion1(json_t *d) {
    char err[512], hex[2 * SHA256_DIGEST_LENGTH + 1];
    dsCodec *c = dsCodecNew(err, sizeof(err));
    assert_non_null(c);
    avro_value_t cur, v1;
    dsCodecError cerr;
    assert_true(dsCodecNewValue(c, &cur) && dsCodecNewVersionValue(c, 1, &v1));
    assert_true(dsCodecFromJson(c, d, &cur, &cerr));
    assert_true(dsCodecResolve(c, &cur, &v1, err, sizeof(err)));
    json_t *canon = dsCodecToJson(c, &v1, DS_CODEC_OMIT_SERVER_FIELDS);
    char *text = json_dumps(canon, JSON_COMPACT);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    char *sql;
    assert_true(asprintf(&sql,
                         "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome,"
                         " decided_at, schema_version, doc_sha256, doc) SELECT (d->>'decision_id')::uuid, d->>'purchase_id',"
                         " d->>'customer_id', d->>'merchant_id', d->>'outcome', (d->>'decided_at')::timestamptz, 1,"
                         " '\\x%s', d FROM (SELECT '%s'::jsonb AS d) AS t",
                         hex, text) > 0);
    assert_true(dtPgExec(&pg, sql));
    free(sql);
    free(text);
    json_decref(canon);
    avro_value_decref(&cur);
    avro_value_decref(&v1);
    dsCodecFree(c);
}

/* After the upgrade to version 2, a policy engine retries a decision the
 * version 1 API stored: the same decision is a duplicate (200), not a
 * conflict; the same id with a model it did not have, or another outcome,
 * is a conflict; the row is untouched. */
static void test_retry_of_a_decision_stored_by_version_1(void **state) {
    json_t *d = newDecision(NULL);
    storeAsVersion1(d);
    char *before = dtPgTableFingerprint(&pg);
    dtResponse r;
    postJson(DT_WRITER_TOKEN, d, &r);
    if (r.status != 200) fprintf(stderr, "retry: %ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(r.json, "model")));
    dtResponseFree(&r);
    json_t *changed = json_deep_copy(d);
    json_object_set_new(changed, "risk_score", json_real(0.5));
    postJson(DT_WRITER_TOKEN, changed, &r);
    assertError(&r, 409, "conflict", "decision_id");
    dtResponseFree(&r);
    json_object_del(changed, "risk_score");
    json_object_set_new(changed, "outcome", json_string("REJECTED"));
    postJson(DT_WRITER_TOKEN, changed, &r);
    assertError(&r, 409, "conflict", "decision_id");
    dtResponseFree(&r);
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    json_decref(changed);
    json_decref(d);
}

/* One rejected request: expected status, error code and field; the table
 * must be unchanged afterwards. */
typedef struct badCase {
    const char *name;
    long status;
    const char *code, *field;
} badCase;

static void expectRejected(const badCase *c, const char *token, const char *ctype, const char *body) {
    char *before = dtPgTableFingerprint(&pg);
    dtResponse r;
    post("/v1/decisions", token, ctype, body, &r);
    if (r.status != c->status) fprintf(stderr, "case %s: got %ld %s\n", c->name, r.status, r.body);
    assertError(&r, c->status, c->code, c->field);
    dtResponseFree(&r);
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void expectDocRejected(const badCase *c, json_t *doc) {
    char *text = json_dumps(doc, JSON_COMPACT);
    expectRejected(c, DT_WRITER_TOKEN, "application/json", text);
    free(text);
}

static void test_malformed_and_protocol_errors(void **state) {
    json_t *d = newDecision(NULL);
    char *valid = json_dumps(d, JSON_COMPACT);
    badCase malformed = {"malformed", 400, "malformed_json", NULL};
    expectRejected(&malformed, DT_WRITER_TOKEN, "application/json", "{\"decision_id\": ");
    expectRejected(&malformed, DT_WRITER_TOKEN, "application/json", "[1,2,3]");
    badCase unsupported = {"415", 415, "unsupported_media_type", NULL};
    expectRejected(&unsupported, DT_WRITER_TOKEN, "text/plain", valid);
    expectRejected(&unsupported, DT_WRITER_TOKEN, NULL, valid);
    badCase unauthorized = {"401", 401, "unauthorized", NULL};
    expectRejected(&unauthorized, NULL, "application/json", valid);
    expectRejected(&unauthorized, "not-a-token", "application/json", valid);
    badCase forbidden = {"403", 403, "forbidden", NULL};
    expectRejected(&forbidden, DT_READER_TOKEN, "application/json", valid);
    free(valid);
    json_decref(d);
}

static void test_oversize_body_413(void **state) {
    size_t n = 1024 * 1024 + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    char *before = dtPgTableFingerprint(&pg);
    dtResponse r;
    assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", big, n, &r));
    assert_int_equal(r.status, 413);
    dtResponseFree(&r);
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(big);
}

static void test_every_required_field_missing(void **state) {
    static const char *const required[] = {"decision_id", "purchase_id", "customer_id", "merchant_id", "country",
                                           "amount", "outcome", "policy", "decided_at", "producer"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        json_t *d = newDecision(NULL);
        json_object_del(d, required[i]);
        badCase c = {required[i], 400, "missing_field", required[i]};
        expectDocRejected(&c, d);
        json_decref(d);
    }
    static const char *const nested[][2] = {{"amount", "value"}, {"amount", "currency"}, {"policy", "name"},
                                            {"policy", "version"}};
    for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
        json_t *d = newDecision(NULL);
        json_object_del(json_object_get(d, nested[i][0]), nested[i][1]);
        char field[64];
        snprintf(field, sizeof(field), "%s.%s", nested[i][0], nested[i][1]);
        badCase c = {field, 400, "missing_field", field};
        expectDocRejected(&c, d);
        json_decref(d);
    }
    json_t *d = newDecision(NULL);
    json_object_del(json_array_get(json_object_get(d, "checks"), 1), "performed_at");
    badCase c = {"checks[1].performed_at", 400, "missing_field", "checks[1].performed_at"};
    expectDocRejected(&c, d);
    json_decref(d);
}

/* Sets one field (by a JSON path of object keys) to value, then expects a
 * 400 naming that field. */
static void rejectValue(const char *field, const char *parent, const char *key, json_t *value, const char *code) {
    json_t *d = newDecision(NULL);
    json_t *obj = parent ? json_object_get(d, parent) : d;
    json_object_set_new(obj, key, value);
    badCase c = {field, 400, code, field};
    expectDocRejected(&c, d);
    json_decref(d);
}

static void test_rule_violations(void **state) {
    rejectValue("decision_id", NULL, "decision_id", json_string("not-a-uuid"), "invalid_value");
    rejectValue("decision_id", NULL, "decision_id", json_string("7d3f0c1e5b7a4c2e9a510e4a1c9b2d11"), "invalid_value");
    rejectValue("decided_at", NULL, "decided_at", json_string("2026-11-24T10:00:00"), "invalid_value");
    rejectValue("decided_at", NULL, "decided_at", json_string("2026-13-24T10:00:00Z"), "invalid_value");
    rejectValue("decided_at", NULL, "decided_at", json_string("yesterday"), "invalid_value");
    rejectValue("country", NULL, "country", json_string("se"), "invalid_value");
    rejectValue("country", NULL, "country", json_string("SWE"), "invalid_value");
    rejectValue("amount.currency", "amount", "currency", json_string("sek"), "invalid_value");
    rejectValue("amount.currency", "amount", "currency", json_string("SEKK"), "invalid_value");
    rejectValue("amount.value", "amount", "value", json_integer(-1), "invalid_value");
    rejectValue("amount.value", "amount", "value", json_integer(1000000000000001LL), "invalid_value");
    rejectValue("outcome", NULL, "outcome", json_string("MAYBE"), "invalid_value");
    rejectValue("customer_id", NULL, "customer_id", json_string(""), "invalid_value");
    rejectValue("customer_id", NULL, "customer_id", json_string("cust\n42"), "invalid_value");
    /* wrong types */
    rejectValue("amount.value", "amount", "value", json_string("12999"), "wrong_type");
    rejectValue("amount.value", "amount", "value", json_real(129.5), "wrong_type");
    rejectValue("customer_id", NULL, "customer_id", json_integer(42), "wrong_type");
    rejectValue("reasons", NULL, "reasons", json_string("LOW_RISK"), "wrong_type");
    rejectValue("attributes.channel", "attributes", "channel", json_integer(1), "wrong_type");
    /* unknown fields, top level and nested */
    rejectValue("outcom", NULL, "outcom", json_string("APPROVED"), "unknown_field");
    rejectValue("amount.cents", "amount", "cents", json_integer(1), "unknown_field");
}

static void test_too_many_items(void **state) {
    json_t *d = newDecision(NULL);
    json_t *checks = json_object_get(d, "checks");
    json_t *one = json_deep_copy(json_array_get(checks, 0));
    while (json_array_size(checks) < 65) json_array_append(checks, one);
    json_decref(one);
    badCase c = {"checks", 400, "too_many_items", "checks"};
    expectDocRejected(&c, d);
    json_decref(d);

    d = newDecision(NULL);
    json_t *reasons = json_object_get(d, "reasons");
    while (json_array_size(reasons) < 33) json_array_append_new(reasons, json_string("R"));
    badCase r = {"reasons", 400, "too_many_items", "reasons"};
    expectDocRejected(&r, d);
    json_decref(d);
}

static void test_batch(void **state) {
    json_t *ok1 = newDecision(NULL), *ok2 = newDecision(NULL), *bad = newDecision(NULL);
    json_object_set_new(bad, "country", json_string("sweden"));
    json_t *dup = json_deep_copy(ok1);
    json_t *clash = json_deep_copy(ok2);
    json_object_set_new(clash, "outcome", json_string("REFERRED"));
    json_t *body = json_pack("{s:[O,O,O,O,O,i]}", "decisions", ok1, bad, ok2, dup, clash, 7);
    char *text = json_dumps(body, JSON_COMPACT);
    char *before_count = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    dtResponse r;
    post("/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", text, &r);
    assert_int_equal(r.status, 200);
    json_t *results = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(results), 6);
    long expect[] = {201, 400, 201, 200, 409, 400};
    for (size_t i = 0; i < 6; i++) {
        json_t *item = json_array_get(results, i);
        assert_int_equal(json_integer_value(json_object_get(item, "index")), i);
        if (json_integer_value(json_object_get(item, "status")) != expect[i]) fprintf(stderr, "item %zu: %s\n", i, r.body);
        assert_int_equal(json_integer_value(json_object_get(item, "status")), expect[i]);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(results, 1), "field")), "country");
    assert_non_null(json_object_get(json_object_get(json_array_get(results, 0), "decision"), "recorded_at"));
    char *after_count = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    assert_int_equal(atoi(after_count), atoi(before_count) + 2);
    free(before_count);
    free(after_count);
    dtResponseFree(&r);
    free(text);

    /* too many items, and a body that is not a batch */
    json_t *many = json_array();
    for (int i = 0; i < 1001; i++) json_array_append(many, ok1);
    json_t *big = json_pack("{s:o}", "decisions", many);
    text = json_dumps(big, JSON_COMPACT);
    badCase c = {"batch too big", 400, "too_many_items", "decisions"};
    char *before = dtPgTableFingerprint(&pg);
    post("/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", text, &r);
    assertError(&r, c.status, c.code, c.field);
    dtResponseFree(&r);
    post("/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", "{\"decision\":[]}", &r);
    assertError(&r, 400, "unknown_field", "decision");
    dtResponseFree(&r);
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(text);
    json_decref(big);
    json_decref(body);
    json_decref(ok1);
    json_decref(ok2);
    json_decref(bad);
    json_decref(dup);
    json_decref(clash);
}

static void test_get_errors_and_roles(void **state) {
    dtResponse r;
    get("/v1/decisions/00000000-0000-4000-8000-000000000000", DT_READER_TOKEN, &r);
    assertError(&r, 404, "not_found", NULL);
    dtResponseFree(&r);
    get("/v1/decisions/xyz", DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_value", "decision_id");
    dtResponseFree(&r);
    get("/v1/decisions/00000000-0000-4000-8000-000000000000", DT_WRITER_TOKEN, &r);
    assertError(&r, 403, "forbidden", NULL);
    dtResponseFree(&r);
    get("/v1/decisions/00000000-0000-4000-8000-000000000000", NULL, &r);
    assertError(&r, 401, "unauthorized", NULL);
    dtResponseFree(&r);
    get("/v1/decisions/00000000-0000-4000-8000-000000000000", DT_ADMIN_TOKEN, &r);
    assert_int_equal(r.status, 404);
    dtResponseFree(&r);
    assert_true(dtHttp(&api, "DELETE", "/v1/decisions", DT_ADMIN_TOKEN, NULL, NULL, 0, &r));
    assertError(&r, 405, "method_not_allowed", NULL);
    dtResponseFree(&r);
    get("/nope", NULL, &r);
    assertError(&r, 404, "not_found", NULL);
    dtResponseFree(&r);
}

static void test_search_pagination_and_filters(void **state) {
    char customer[64];
    char id[37];
    dtUuid(id);
    snprintf(customer, sizeof(customer), "cust-%s", id);
    /* 7 decisions, decided one minute apart; every third is REJECTED */
    for (int i = 0; i < 7; i++) {
        json_t *d = newDecision(customer);
        char ts[48];
        snprintf(ts, sizeof(ts), "2026-11-20T10:%02d:00.000Z", i);
        json_object_set_new(d, "decided_at", json_string(ts));
        if (i % 3 == 0) json_object_set_new(d, "outcome", json_string("REJECTED"));
        dtResponse r;
        postJson(DT_WRITER_TOKEN, d, &r);
        assert_int_equal(r.status, 201);
        dtResponseFree(&r);
        json_decref(d);
    }
    char path[512];
    const char *cursor = NULL;
    char cursor_buf[256] = "";
    int seen = 0, pages = 0;
    char last[32] = "9999";
    do {
        snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&limit=3%s%s", customer, cursor ? "&cursor=" : "",
                 cursor ? cursor : "");
        dtResponse r;
        get(path, DT_READER_TOKEN, &r);
        assert_int_equal(r.status, 200);
        json_t *list = json_object_get(r.json, "decisions");
        size_t i;
        json_t *d;
        json_array_foreach(list, i, d) {
            const char *at = json_string_value(json_object_get(d, "decided_at"));
            assert_true(strcmp(at, last) < 0); /* newest first, no repeats */
            snprintf(last, sizeof(last), "%s", at);
            seen++;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        cursor = NULL;
        if (json_is_string(next)) {
            snprintf(cursor_buf, sizeof(cursor_buf), "%s", json_string_value(next));
            cursor = cursor_buf;
        }
        pages++;
        dtResponseFree(&r);
    } while (cursor != NULL && pages < 10);
    assert_int_equal(seen, 7);
    assert_int_equal(pages, 3);

    dtResponse r;
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&outcome=REJECTED", customer);
    get(path, DT_READER_TOKEN, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "decisions")), 3);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    dtResponseFree(&r);
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&from=2026-11-20T10:02:00Z&to=2026-11-20T12:05:00%%2B02:00",
             customer);
    get(path, DT_READER_TOKEN, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "decisions")), 3); /* 10:02, 10:03, 10:04 */
    dtResponseFree(&r);

    get("/v1/decisions?outcome=APPROVED", DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_query", NULL);
    dtResponseFree(&r);
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&limit=501", customer);
    get(path, DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_query", "limit");
    dtResponseFree(&r);
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&cursor=garbage", customer);
    get(path, DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_query", "cursor");
    dtResponseFree(&r);
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&colour=red", customer);
    get(path, DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_query", "colour");
    dtResponseFree(&r);
}

static void test_health_ready_metrics(void **state) {
    dtResponse r;
    get("/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    get("/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    get("/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.body, "http_requests_total{route=\"POST /v1/decisions\",status=\"201\"}"));
    assert_non_null(strstr(r.body, "http_request_duration_seconds_bucket{route=\"POST /v1/decisions\",le=\"+Inf\"}"));
    assert_non_null(strstr(r.body, "decision_commit_batch_size_count"));
    assert_non_null(strstr(r.body, "decision_write_queue_depth"));
    dtResponseFree(&r);
}

/* A client that goes away while its decision waits on the database: the
 * server must neither crash nor lose the decision. The table is locked so
 * the insert is certainly still waiting when the client closes. */
static bool decisionStored(void *arg) {
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM decisions WHERE decision_id = '%s'", (const char *)arg);
    char *n = dtPgScalar(&pg, sql);
    bool found = n && strcmp(n, "1") == 0;
    free(n);
    return found;
}

static bool insertWaitsOnLock(void *arg) {
    char *n = dtPgScalar(&pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
    bool waiting = n && atoi(n) > 0;
    free(n);
    return waiting;
}

static bool requestAbandoned(void *arg) {
    dtResponse r;
    bool seen = dtHttp(&api, "GET", "/metrics", NULL, NULL, NULL, 0, &r) &&
                strstr(r.body, "\nhttp_requests_abandoned_total 1\n") != NULL;
    dtResponseFree(&r);
    return seen;
}

static void test_client_gone_while_waiting(void **state) {
    PGconn *locker = PQconnectdb(pg.conninfo);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    PQclear(PQexec(locker, "BEGIN; LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE"));

    json_t *d = newDecision(NULL);
    char id[37];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "decision_id")));
    char *body = json_dumps(d, JSON_COMPACT);
    /* Send, wait until the insert is blocked on the lock, then hang up. */
    bool hung_up = dtHttp2PostAndHangUp(&api, "/v1/decisions", DT_WRITER_TOKEN, body, insertWaitsOnLock, NULL, 10000);
    bool abandoned = hung_up && dtWaitFor(requestAbandoned, NULL, 10000);
    PQclear(PQexec(locker, "COMMIT")); /* before asserting: a held lock would stall later tests */
    PQfinish(locker);
    assert_true(hung_up);
    assert_true(abandoned);

    assert_true(dtWaitFor(decisionStored, id, 10000));
    dtResponse r;
    get("/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    postJson(DT_WRITER_TOKEN, d, &r); /* the client's retry */
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    free(body);
    json_decref(d);
}

/* Many concurrent posts: all committed, grouped into transactions. */
static void test_concurrent_posts(void **state) {
    char *before = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    enum { N = 200 };
    int ok = 0;
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            int good = 0;
            for (int i = 0; i < N / 4; i++) {
                json_t *d = newDecision("cust-concurrent");
                dtResponse r;
                char *text = json_dumps(d, JSON_COMPACT);
                if (dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", text, strlen(text),
                           &r) &&
                    r.status == 201)
                    good++;
                dtResponseFree(&r);
                free(text);
                json_decref(d);
            }
            _exit(good == N / 4 ? 0 : 1);
        }
    }
    for (int k = 0; k < 4; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
    }
    assert_int_equal(ok, 4);
    char *after = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    assert_int_equal(atoi(after), atoi(before) + N);
    free(before);
    free(after);
}

static bool apiReady(void *want) {
    dtResponse r;
    bool ok = dtHttp(&api, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == *(long *)want;
    dtResponseFree(&r);
    return ok;
}

/* PostgreSQL stops mid-run: 503 with Retry-After and nothing written; when
 * it comes back the API recovers by itself. */
static void test_database_down_then_recovers(void **state) {
    char *before = dtPgTableFingerprint(&pg);
    assert_true(dtPgStop(&pg));
    json_t *d = newDecision(NULL);
    dtResponse r;
    postJson(DT_WRITER_TOKEN, d, &r);
    assertError(&r, 503, NULL, NULL);
    assert_true(atoi(r.retry_after) >= 1);
    dtResponseFree(&r);
    long unavailable = 503, ready = 200;
    assert_true(dtWaitFor(apiReady, &unavailable, 10000));
    postJson(DT_WRITER_TOKEN, d, &r);
    assertError(&r, 503, NULL, NULL);
    dtResponseFree(&r);
    get("/v1/decisions?customer_id=cust-42", DT_READER_TOKEN, &r);
    assertError(&r, 503, "unavailable", NULL);
    dtResponseFree(&r);

    assert_true(dtPgRestart(&pg));
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);
    assert_true(dtWaitFor(apiReady, &ready, 30000));
    postJson(DT_WRITER_TOKEN, d, &r);
    assert_int_equal(r.status, 201);
    dtResponseFree(&r);
    free(before);
    free(after);
    json_decref(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_then_get),
        cmocka_unit_test(test_upper_case_uuid_and_offset_normalized),
        cmocka_unit_test(test_idempotent_retry_and_conflict),
        cmocka_unit_test(test_version_2_document),
        cmocka_unit_test(test_retry_of_a_decision_stored_by_version_1),
        cmocka_unit_test(test_malformed_and_protocol_errors),
        cmocka_unit_test(test_oversize_body_413),
        cmocka_unit_test(test_every_required_field_missing),
        cmocka_unit_test(test_rule_violations),
        cmocka_unit_test(test_too_many_items),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_get_errors_and_roles),
        cmocka_unit_test(test_search_pagination_and_filters),
        cmocka_unit_test(test_client_gone_while_waiting),
        cmocka_unit_test(test_concurrent_posts),
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_database_down_then_recovers),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
