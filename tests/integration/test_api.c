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
#include <poll.h>

#include "ds/codec.h"
#include "harness.h"

static dtPg pg;
static dtApi api;

/* HTTP/2 is off by default; test_client_gone_while_waiting needs it, so
 * every start of the API in this suite turns it on. */
#define API_HTTP2 "DECISIONS_HTTP2=true"
static const char *apiEnv[] = {API_HTTP2, NULL};

static int suiteSetup(void **state) {
    if (!dtPgStart(&pg)) return -1;
    return dtApiStart(&api, &pg, apiEnv) ? 0 : -1;
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


/* Whether the decision is stored. */
static bool storedRow(const char *id) {
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM decisions WHERE decision_id = '%s'", id);
    char *n = dtPgScalar(&pg, sql);
    assert_non_null(n);
    bool stored = atoi(n) == 1;
    free(n);
    return stored;
}

/* A commit that fails after every statement succeeded (a deferred
 * constraint trigger raising at COMMIT) stores nothing, so it must never
 * be answered 201: a lone post gets the error (400 for an integrity class,
 * 500 otherwise); in a batch the failed row is found by sending each item
 * again alone, and its neighbours are stored. */
static void test_commit_failure_is_not_success(void **state) {
    assert_true(dtPgExec(&pg,
                         "CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                         " IF NEW.customer_id LIKE 'check-at-commit%' THEN"
                         "  RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation'; END IF;"
                         " IF NEW.customer_id LIKE 'raise-at-commit%' THEN RAISE EXCEPTION 'broken at commit'; END IF;"
                         " RETURN NULL; END $$"));
    assert_true(dtPgExec(&pg, "CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON decisions"
                              " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_at_commit()"));
    json_t *check = newDecision("check-at-commit-1"), *raise = newDecision("raise-at-commit-1");
    dtResponse r;
    postJson(DT_WRITER_TOKEN, check, &r);
    assertError(&r, 400, "rejected", NULL);
    dtResponseFree(&r);
    postJson(DT_WRITER_TOKEN, raise, &r);
    assertError(&r, 500, "internal", NULL);
    dtResponseFree(&r);
    assert_false(storedRow(json_string_value(json_object_get(check, "decision_id"))));
    assert_false(storedRow(json_string_value(json_object_get(raise, "decision_id"))));

    json_t *ok1 = newDecision(NULL), *ok2 = newDecision(NULL), *bad = newDecision("check-at-commit-2");
    json_t *body = json_pack("{s:[O,O,O]}", "decisions", ok1, bad, ok2);
    char *text = json_dumps(body, JSON_COMPACT);
    post("/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", text, &r);
    assert_int_equal(r.status, 200);
    long expect[] = {201, 400, 201};
    for (size_t i = 0; i < 3; i++) {
        json_t *item = json_array_get(json_object_get(r.json, "results"), i);
        if (json_integer_value(json_object_get(item, "status")) != expect[i]) fprintf(stderr, "item %zu: %s\n", i, r.body);
        assert_int_equal(json_integer_value(json_object_get(item, "status")), expect[i]);
    }
    dtResponseFree(&r);
    assert_true(storedRow(json_string_value(json_object_get(ok1, "decision_id"))));
    assert_true(storedRow(json_string_value(json_object_get(ok2, "decision_id"))));
    assert_false(storedRow(json_string_value(json_object_get(bad, "decision_id"))));

    assert_true(dtPgExec(&pg, "DROP TRIGGER test_fail_at_commit ON decisions; DROP FUNCTION test_fail_at_commit()"));
    /* the same decision goes in once nothing refuses it */
    postJson(DT_WRITER_TOKEN, check, &r);
    assert_int_equal(r.status, 201);
    dtResponseFree(&r);
    free(text);
    json_decref(body);
    json_decref(ok1);
    json_decref(ok2);
    json_decref(bad);
    json_decref(check);
    json_decref(raise);
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


/* Every search parameter is checked before PostgreSQL sees it: NUL bytes,
 * invalid UTF-8, signs and spaces around numbers, values no decision can
 * hold and repeated parameters are the client's mistake (400 naming the
 * parameter), never a 503 and never silently cut short. */
static void test_search_refuses_bad_parameters(void **state) {
    static const struct {
        const char *query;
        const char *field;
    } bad[] = {
        {"customer_id=c&limit=5%00junk", "limit"},
        {"customer_id=c&limit=%2B5", "limit"},
        {"customer_id=c&limit=+5", "limit"},
        {"customer_id=c&limit=-5", "limit"},
        {"customer_id=c&limit=%205", "limit"},
        {"customer_id=c&limit=5%20", "limit"},
        {"customer_id=c&limit=0x10", "limit"},
        {"customer_id=c&limit=99999999999999999999999", "limit"},
        {"customer_id=c&limit=", "limit"},
        {"customer_id=c&limit=5&limit=6", "limit"},
        {"customer_id=a%00b", "customer_id"},
        {"customer_id=%ff", "customer_id"},
        {"customer_id=ab%c3", "customer_id"},
        {"customer_id=%01x", "customer_id"},
        {"customer_id=", "customer_id"},
        {"customer_id=a&customer_id=b", "customer_id"},
        {"merchant_id=%c2%85", "merchant_id"},
        {"merchant_id=m%7f", "merchant_id"},
        {"purchase_id=%ed%a0%80", "purchase_id"},
        {"customer_id=c&outcome=%ff", "outcome"},
        {"customer_id=c&outcome=APPROVED%00x", "outcome"},
        {"customer_id=c&outcome=MAYBE", "outcome"},
        {"customer_id=c&outcome=approved", "outcome"},
        {"customer_id=c&outcome=APPROVED&outcome=REJECTED", "outcome"},
        {"customer_id=c&from=2026-11-20T10:00:00Z%00", "from"},
        {"customer_id=c&from=%ff", "from"},
        {"customer_id=c&from=%202026-11-20T10:00:00Z", "from"},
        {"customer_id=c&to=%2B2026-11-20T10:00:00Z", "to"},
        {"customer_id=c&to=99999-11-20T10:00:00Z", "to"},
        {"customer_id=c&to=2026-11-20T10:00:00Z&to=2026-11-21T10:00:00Z", "to"},
        {"customer_id=c&cursor=%ff", "cursor"},
        {"customer_id=c&cursor=", "cursor"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dtResponse r;
        snprintf(path, sizeof(path), "/v1/decisions?%s", bad[i].query);
        get(path, DT_READER_TOKEN, &r);
        if (r.status != 400) fprintf(stderr, "%s: %ld %s\n", bad[i].query, r.status, r.body);
        assertError(&r, 400, "invalid_query", bad[i].field);
        assert_true(r.retry_after[0] == '\0');
        dtResponseFree(&r);
    }
    /* the limits of the rules themselves still pass */
    char longest[200];
    memset(longest, 'x', 128);
    longest[128] = '\0';
    const char *good[] = {"customer_id=caf%C3%A9%20%E2%82%AC", "customer_id=c&limit=500&outcome=REFERRED",
                          "customer_id=c&limit=007", longest};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        dtResponse r;
        snprintf(path, sizeof(path), "/v1/decisions?%s%s", good[i] == longest ? "merchant_id=" : "", good[i]);
        get(path, DT_READER_TOKEN, &r);
        if (r.status != 200) fprintf(stderr, "%s: %ld %s\n", good[i], r.status, r.body);
        assert_int_equal(r.status, 200);
        dtResponseFree(&r);
    }
    memset(longest, 'x', 129);
    longest[129] = '\0';
    dtResponse r;
    snprintf(path, sizeof(path), "/v1/decisions?merchant_id=%s", longest);
    get(path, DT_READER_TOKEN, &r);
    assertError(&r, 400, "invalid_query", "merchant_id");
    dtResponseFree(&r);
}

/* Posts n decisions for a fresh customer, one minute apart; writes the
 * customer into out. */
static void postSeries(int n, char out[64]) {
    char id[37];
    dtUuid(id);
    snprintf(out, 64, "cust-%s", id);
    for (int i = 0; i < n; i++) {
        json_t *d = newDecision(out);
        char ts[48];
        snprintf(ts, sizeof(ts), "2026-11-21T10:%02d:00.000Z", i);
        json_object_set_new(d, "decided_at", json_string(ts));
        dtResponse r;
        postJson(DT_WRITER_TOKEN, d, &r);
        assert_int_equal(r.status, 201);
        dtResponseFree(&r);
        json_decref(d);
    }
}

/* One page of limit 1 after cursor (may be NULL): the status, the page's
 * decided_at into at and its next_cursor into next (both "" when none). */
static long searchPage(const char *customer, const char *cursor, char at[48], char next[256]) {
    char path[512];
    snprintf(path, sizeof(path), "/v1/decisions?customer_id=%s&limit=1%s%s", customer, cursor ? "&cursor=" : "",
             cursor ? cursor : "");
    dtResponse r;
    get(path, DT_READER_TOKEN, &r);
    long status = r.status;
    at[0] = next[0] = '\0';
    if (status == 200) {
        json_t *d = json_array_get(json_object_get(r.json, "decisions"), 0);
        snprintf(at, 48, "%s", d ? json_string_value(json_object_get(d, "decided_at")) : "");
        const char *n = json_string_value(json_object_get(r.json, "next_cursor"));
        snprintf(next, 256, "%s", n ? n : "");
    } else {
        assertError(&r, 400, "invalid_query", "cursor");
    }
    dtResponseFree(&r);
    return status;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The cursor is signed: any changed byte, a cut or an extension, an
 * unsigned cursor of the old form, or one signed under another key is a
 * 400, never another page. A key file shared across a restart keeps
 * cursors valid. */
static void test_search_cursor_signed(void **state) {
    char customer[64], at[48], next[256], cursor[256];
    postSeries(3, customer);
    assert_int_equal(searchPage(customer, NULL, at, cursor), 200);
    assert_string_equal(at, "2026-11-21T10:02:00.000Z");
    assert_int_equal(searchPage(customer, cursor, at, next), 200);
    assert_string_equal(at, "2026-11-21T10:01:00.000Z");

    size_t len = strlen(cursor);
    char bad[300];
    for (size_t i = 0; i < len; i++) {
        for (int k = 1; k < 64; k += 21) { /* three other characters at every position */
            memcpy(bad, cursor, len + 1);
            const char *p = strchr(b64url, cursor[i]);
            assert_non_null(p);
            bad[i] = b64url[(p - b64url + k) % 64];
            assert_int_equal(searchPage(customer, bad, at, next), 400);
        }
    }
    for (size_t cut = 1; cut < len; cut += 7) {
        snprintf(bad, sizeof(bad), "%.*s", (int)(len - cut), cursor);
        assert_int_equal(searchPage(customer, bad, at, next), 400);
    }
    snprintf(bad, sizeof(bad), "%sA", cursor);
    assert_int_equal(searchPage(customer, bad, at, next), 400);
    snprintf(bad, sizeof(bad), "%sAAAA", cursor);
    assert_int_equal(searchPage(customer, bad, at, next), 400);
    /* the unsigned form earlier servers issued: v1:<ms>:<uuid> */
    assert_int_equal(searchPage(customer, "djE6MTc5NTI1MjQ2MDAwMDowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA", at,
                                next),
                     400);

    /* no key file: a random key per process, so a restart refuses the cursor */
    assert_int_equal(dtApiStop(&api), 0);
    char key1[320], key2[320];
    snprintf(key1, sizeof(key1), "%s.cursor1", api.tokens_file);
    snprintf(key2, sizeof(key2), "%s.cursor2", api.tokens_file);
    FILE *f = fopen(key1, "w");
    assert_non_null(f);
    fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    f = fopen(key2, "w");
    assert_non_null(f);
    fputs("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n", f);
    fclose(f);
    static char env1[360], env2[360];
    snprintf(env1, sizeof(env1), "DECISIONS_CURSOR_KEY_FILE=%s", key1);
    snprintf(env2, sizeof(env2), "DECISIONS_CURSOR_KEY_FILE=%s", key2);
    const char *with1[] = {env1, API_HTTP2, NULL}, *with2[] = {env2, API_HTTP2, NULL};
    assert_true(dtApiRestart(&api, &pg, with1));
    assert_int_equal(searchPage(customer, cursor, at, next), 400);
    assert_int_equal(searchPage(customer, NULL, at, cursor), 200);
    /* the same key file after a restart: the cursor goes on where it was */
    assert_int_equal(dtApiStop(&api), 0);
    assert_true(dtApiRestart(&api, &pg, with1));
    assert_int_equal(searchPage(customer, cursor, at, next), 200);
    assert_string_equal(at, "2026-11-21T10:01:00.000Z");
    /* another key: refused */
    assert_int_equal(dtApiStop(&api), 0);
    assert_true(dtApiRestart(&api, &pg, with2));
    assert_int_equal(searchPage(customer, cursor, at, next), 400);
    assert_int_equal(dtApiStop(&api), 0);
    assert_true(dtApiRestart(&api, &pg, apiEnv));
    unlink(key1);
    unlink(key2);
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


typedef struct dtConnect {
    int port;
    int fd;
} dtConnect;

static bool connectOnce(void *arg) {
    dtConnect *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        c->fd = fd;
        return true;
    }
    if (fd >= 0) close(fd);
    return false;
}

/* The whole answer on fd, until the server closes it (deadline 30 s). */
static char *readAll(int fd) {
    static char buf[65536];
    size_t len = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len + 1 < sizeof(buf) && poll(&p, 1, 30000) == 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* The API starting while PostgreSQL is not up yet (both restarting) binds
 * its own port but accepts nothing until its sessions are up: a request
 * sent meanwhile waits in the backlog and is served, never answered 503. */
static void test_own_port_accepts_only_when_ready(void **state) {
    assert_true(dtPgStop(&pg));
    dtConnect c = {dtFreePort(), -1};
    static char port[64], db[320], tokens[360];
    snprintf(port, sizeof(port), "DECISIONS_LISTEN_PORT=%d", c.port);
    snprintf(db, sizeof(db), "DECISIONS_DSN=%s", pg.conninfo);
    snprintf(tokens, sizeof(tokens), "DECISIONS_TOKENS_FILE=%s", api.tokens_file);
    const char *env[] = {"DECISIONS_LISTEN_HOST=127.0.0.1", port, db, tokens, "DECISIONS_MIGRATE=false",
                         "DECISIONS_LOG_LEVEL=error", NULL};
    pid_t pid = dtSpawn("decision-api", NULL, env);
    assert_true(pid > 0);
    if (!dtWaitFor(connectOnce, &c, 10000)) {
        dtStop(pid, SIGKILL);
        fail_msg("the API never listened on port %d", c.port);
    }
    static const char request[] = "GET /v1/decisions?customer_id=cust-42 HTTP/1.1\r\nHost: api\r\n"
                                  "Authorization: Bearer " DT_READER_TOKEN "\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(c.fd, request, sizeof(request) - 1), (ssize_t)(sizeof(request) - 1));
    bool restarted = dtPgRestart(&pg);
    char *answer = readAll(c.fd);
    close(c.fd);
    int rc = dtStop(pid, SIGTERM); /* before any assertion: it must not outlive the test */
    assert_true(restarted);
    if (strncmp(answer, "HTTP/1.1 200", 12) != 0) fprintf(stderr, "answer: %s\n", answer);
    assert_true(strncmp(answer, "HTTP/1.1 200", 12) == 0);
    assert_int_equal(rc, 0);
    long ready = 200;
    assert_true(dtWaitFor(apiReady, &ready, 30000));
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
        cmocka_unit_test(test_commit_failure_is_not_success),
        cmocka_unit_test(test_get_errors_and_roles),
        cmocka_unit_test(test_search_pagination_and_filters),
        cmocka_unit_test(test_search_refuses_bad_parameters),
        cmocka_unit_test(test_search_cursor_signed),
        cmocka_unit_test(test_client_gone_while_waiting),
        cmocka_unit_test(test_concurrent_posts),
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_own_port_accepts_only_when_ready),
        cmocka_unit_test(test_database_down_then_recovers),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
