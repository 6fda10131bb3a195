/* test_codec.c - the decision codec (schemas/src): every rule of the v1
 * schema, defaults, server-set fields, canonical output and round trips. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ds/codec.h"
#include "ds/timefmt.h"
/* For the schema-compiler tests: the rule compiler is internal to the codec. */
#include "../../schemas/src/codec_internal.h"

static const char *EXAMPLE =
    "{\"decision_id\": \"7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11\","
    " \"purchase_id\": \"p-20261124-000042\","
    " \"customer_id\": \"cust-42\","
    " \"merchant_id\": \"m-7\","
    " \"country\": \"SE\","
    " \"amount\": {\"value\": 12999, \"currency\": \"SEK\"},"
    " \"outcome\": \"APPROVED\","
    " \"reasons\": [\"LOW_RISK\"],"
    " \"policy\": {\"name\": \"bnpl-checkout\", \"version\": \"2026.11.3\"},"
    " \"checks\": ["
    "  {\"kind\": \"CREDIT\", \"provider\": \"bureau-x\", \"outcome\": \"PASS\","
    "   \"score\": 0.12, \"latency_ms\": 85, \"performed_at\": \"2026-11-24T10:00:00.123Z\"},"
    "  {\"kind\": \"FRAUD\", \"provider\": \"in-house\", \"outcome\": \"PASS\","
    "   \"score\": 0.02, \"latency_ms\": 4, \"performed_at\": \"2026-11-24T10:00:00.180Z\"}"
    " ],"
    " \"decided_at\": \"2026-11-24T10:00:00.250Z\","
    " \"producer\": \"policy-engine-eu-1\","
    " \"attributes\": {\"channel\": \"web\"}}";

typedef struct {
    dsCodec *codec;
    avro_value_t val;
    dsCodecError err;
} fixture;

static int setup(void **state) {
    char errbuf[512] = "";
    fixture *f = calloc(1, sizeof *f);
    f->codec = dsCodecNew(errbuf, sizeof errbuf);
    if (!f->codec) {
        fprintf(stderr, "dsCodecNew: %s\n", errbuf);
        free(f);
        return -1;
    }
    if (!dsCodecNewValue(f->codec, &f->val)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    avro_value_decref(&f->val);
    dsCodecFree(f->codec);
    free(f);
    return 0;
}

/* ---- document helpers ---- */

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) fail_msg("bad test JSON: %s", e.text);
    return j;
}

static json_t *example(void) { return parse(EXAMPLE); }

/* Resolves "a.b[2].c" to the parent container of the last step; *last gets
 * the last name (or NULL) and *idx the last index. */
static json_t *walkTo(json_t *doc, const char *path, char *last, size_t lastlen, long *idx) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = doc;
    char *save = NULL;
    char *tok = strtok_r(buf, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        char *br = strchr(tok, '[');
        long i = -1;
        if (br) {
            i = strtol(br + 1, NULL, 10);
            *br = '\0';
        }
        if (!next) {
            if (i >= 0) {
                cur = json_object_get(cur, tok);
                last[0] = '\0';
            } else {
                snprintf(last, lastlen, "%s", tok);
            }
            *idx = i;
            return cur;
        }
        cur = json_object_get(cur, tok);
        if (i >= 0) cur = json_array_get(cur, (size_t)i);
        tok = next;
    }
    return NULL;
}

static void setPath(json_t *doc, const char *path, json_t *v) {
    char last[128];
    long idx;
    json_t *parent = walkTo(doc, path, last, sizeof last, &idx);
    assert_non_null(parent);
    if (last[0])
        json_object_set_new(parent, last, v);
    else
        json_array_set_new(parent, (size_t)idx, v);
}

static void delPath(json_t *doc, const char *path) {
    char last[128];
    long idx;
    json_t *parent = walkTo(doc, path, last, sizeof last, &idx);
    assert_non_null(parent);
    assert_int_equal(json_object_del(parent, last), 0);
}

static json_t *getPath(json_t *doc, const char *path) {
    char last[128];
    long idx;
    json_t *parent = walkTo(doc, path, last, sizeof last, &idx);
    if (!parent) return NULL;
    return last[0] ? json_object_get(parent, last) : json_array_get(parent, (size_t)idx);
}

static char *repeat(const char *s, int n) {
    size_t len = strlen(s);
    char *out = malloc(len * (size_t)n + 1);
    for (int i = 0; i < n; i++) memcpy(out + len * (size_t)i, s, len);
    out[len * (size_t)n] = '\0';
    return out;
}

static json_t *stringOf(const char *s, int n) {
    char *r = repeat(s, n);
    json_t *j = json_string(r);
    free(r);
    return j;
}

/* ---- the value path beside the JSON path ----
 *
 * dsCodecValidate() must refuse a value exactly where dsCodecFromJson()
 * refuses the document it renders as. To hand it values that break rules,
 * rawValue() builds the Avro value a document describes by the types alone
 * (the rule tree's shape, no rule checked, defaults filled and server-set
 * fields given theirs as from_json.c does, uuids lower-cased as it stores
 * them). A document with no such value (a missing required field, an
 * unknown field, a wrong type, a timestamp string that does not parse, a
 * map key holding NUL) is not compared. expectOk() and expectErr() compare
 * every document they see, so every case in this file runs through both
 * paths. */

static bool rawValue(const dsRule *r, const json_t *j, avro_value_t *v, bool from_default);

static bool rawRecord(const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_object(j)) return false;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)j, key, val) {
        size_t i;
        for (i = 0; i < r->nfields && strcmp(r->fields[i].name, key) != 0; i++)
            ;
        if (i == r->nfields) return false;
    }
    for (size_t i = 0; i < r->nfields; i++) {
        const dsRuleField *f = &r->fields[i];
        const json_t *fj = f->server_set ? NULL : json_object_get(j, f->name);
        avro_value_t child;
        assert_int_equal(avro_value_get_by_index(v, i, &child, NULL), 0);
        if (fj ? !rawValue(f->type, fj, &child, false) : !f->def || !rawValue(f->type, f->def, &child, true))
            return false;
    }
    return true;
}

static bool rawContainer(const dsRule *r, const json_t *j, avro_value_t *v) {
    avro_value_t child;
    if (r->kind == DSR_ARRAY) {
        if (!json_is_array(j)) return false;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (avro_value_append(v, &child, NULL) != 0 || !rawValue(r->items, json_array_get(j, i), &child, false))
                return false;
        return true;
    }
    if (!json_is_object(j)) return false;
    for (void *it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it)) {
        const char *key = json_object_iter_key(it);
        if (strlen(key) != json_object_iter_key_len(it)) return false; /* avro-c keys end at a NUL */
        if (avro_value_add(v, key, &child, NULL, NULL) != 0 || !rawValue(r->items, json_object_iter_value(it), &child, false))
            return false;
    }
    return true;
}

static bool rawString(const dsRule *r, const json_t *j, avro_value_t *v) {
    if (!json_is_string(j)) return false;
    size_t len = json_string_length(j);
    char *s = malloc(len + 1);
    memcpy(s, json_string_value(j), len + 1);
    for (size_t i = 0; r->format == DSR_FORMAT_UUID && i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'F') s[i] = (char)(s[i] - 'A' + 'a');
    int rc = avro_value_set_string_len(v, s, len + 1);
    free(s);
    return rc == 0;
}

static bool rawValue(const dsRule *r, const json_t *j, avro_value_t *v, bool from_default) {
    int64_t ms;
    char why[128];
    avro_value_t branch;
    switch (r->kind) {
    case DSR_NULL: return json_is_null(j) && avro_value_set_null(v) == 0;
    case DSR_BOOLEAN: return json_is_boolean(j) && avro_value_set_boolean(v, json_is_true(j)) == 0;
    case DSR_INT:
        return json_is_integer(j) && json_integer_value(j) >= INT32_MIN && json_integer_value(j) <= INT32_MAX &&
               avro_value_set_int(v, (int32_t)json_integer_value(j)) == 0;
    case DSR_LONG:
        if (r->timestamp_ms && !from_default)
            return json_is_string(j) && dsTimeParse(json_string_value(j), json_string_length(j), &ms, why, sizeof why) &&
                   avro_value_set_long(v, ms) == 0;
        return json_is_integer(j) && avro_value_set_long(v, json_integer_value(j)) == 0;
    case DSR_FLOAT: return json_is_number(j) && avro_value_set_float(v, (float)json_number_value(j)) == 0;
    case DSR_DOUBLE: return json_is_number(j) && avro_value_set_double(v, json_number_value(j)) == 0;
    case DSR_STRING: return rawString(r, j, v);
    case DSR_ENUM: {
        if (!json_is_string(j)) return false;
        int i = dsRuleEnumIndex(r, json_string_value(j), json_string_length(j));
        /* An unknown symbol: an index past the symbols, as a damaged record has. */
        return avro_value_set_enum(v, i < 0 ? (int)r->nsymbols : i) == 0;
    }
    case DSR_ARRAY:
    case DSR_MAP: return rawContainer(r, j, v);
    case DSR_UNION:
        if (avro_value_set_branch(v, json_is_null(j) ? r->null_index : r->branch_index, &branch) != 0) return false;
        return json_is_null(j) ? avro_value_set_null(&branch) == 0 : rawValue(r->branch, j, &branch, from_default);
    case DSR_RECORD: return rawRecord(r, j, v);
    }
    return false;
}

/* The value doc describes, by types alone, into *out (of f->val's version;
 * the caller releases it); false if there is none. */
static bool rawBuild(fixture *f, const json_t *doc, avro_value_t *out) {
    const dsCodecVersion *ver = dsCodecFindSchema(f->codec, avro_value_get_schema(&f->val));
    assert_non_null(ver);
    assert_true(dsCodecNewVersionValue(f->codec, ver->version, out));
    if (doc && rawValue(ver->rules.root, doc, out, false)) return true;
    avro_value_decref(out);
    return false;
}

/* Whether the value path agrees with the JSON path's verdict on doc (ok,
 * or the error in *json_err): accepts, or refuses with the same code,
 * field and message. Returns whether doc had a value to compare. */
static bool valueAgrees(fixture *f, const json_t *doc, bool json_ok, const dsCodecError *json_err) {
    avro_value_t raw;
    if (!rawBuild(f, doc, &raw)) return false;
    dsCodecError verr;
    bool ok = dsCodecValidate(f->codec, &raw, &verr);
    avro_value_decref(&raw);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (ok && !json_ok)
        fail_msg("the value path accepts what the JSON path refuses (%s at %s: %s): %.300s", json_err->code,
                 json_err->field, json_err->message, text);
    if (!ok && json_ok) fail_msg("the value path refuses (%s at %s: %s) what the JSON path accepts: %.300s", verr.code,
                                 verr.field, verr.message, text);
    if (!ok && (strcmp(verr.code, json_err->code) != 0 || strcmp(verr.field, json_err->field) != 0 ||
                strcmp(verr.message, json_err->message) != 0))
        fail_msg("the paths disagree: JSON %s at \"%s\" (%s), value %s at \"%s\" (%s): %.300s", json_err->code,
                 json_err->field, json_err->message, verr.code, verr.field, verr.message, text);
    free(text);
    return true;
}

/* ---- codec helpers ---- */

/* Takes ownership of doc. What the JSON path accepts, the value path
 * accepts too, both as converted and as described by the types. */
static void expectOk(fixture *f, json_t *doc) {
    bool ok = dsCodecFromJson(f->codec, doc, &f->val, &f->err);
    if (!ok) fail_msg("rejected: %s %s: %s", f->err.code, f->err.field, f->err.message);
    dsCodecError verr;
    if (!dsCodecValidate(f->codec, &f->val, &verr))
        fail_msg("converted, then refused by the value path: %s %s: %s", verr.code, verr.field, verr.message);
    valueAgrees(f, doc, true, NULL);
    json_decref(doc);
}

/* Takes ownership of doc; returns the message (valid until the next call). */
static const char *expectErr(fixture *f, json_t *doc, const char *code, const char *field) {
    bool ok = dsCodecFromJson(f->codec, doc, &f->val, &f->err);
    if (ok) fail_msg("accepted; expected %s at %s", code, field);
    valueAgrees(f, doc, false, &f->err);
    json_decref(doc);
    if (strcmp(f->err.code, code) != 0 || strcmp(f->err.field, field) != 0)
        fail_msg("got %s at \"%s\" (%s); expected %s at \"%s\"", f->err.code, f->err.field, f->err.message, code, field);
    assert_true(strlen(f->err.message) > 0);
    /* The message names the field, or for a bad map key the map. */
    const char *dot = strrchr(field, '.');
    size_t named = strncmp(f->err.message, field, strlen(field)) == 0 ? strlen(field) : dot ? (size_t)(dot - field) : strlen(field);
    assert_true(strncmp(f->err.message, field, named) == 0);
    /* Both end up in a JSON error body: they must be valid UTF-8. */
    json_t *check = json_pack("{ssss}", "field", f->err.field, "message", f->err.message);
    assert_non_null(check);
    json_decref(check);
    return f->err.message;
}

/* Renders the current value; caller frees. */
static char *render(fixture *f, int flags) {
    json_t *j = dsCodecToJson(f->codec, &f->val, flags);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static char *canonical(fixture *f, json_t *doc) {
    expectOk(f, doc);
    return render(f, DS_CODEC_OMIT_SERVER_FIELDS);
}

/* ---- tests ---- */

static void test_registry_facts(void **state) {
    fixture *f = *state;
    assert_string_equal(dsCodecSubject(f->codec), "decisions-value");
    assert_int_equal(dsCodecCurrentVersion(f->codec), 2);
    assert_int_equal(dsCodecSchemaId(f->codec, 1), 1);
    assert_int_equal(dsCodecSchemaId(f->codec, 2), 2);
    assert_int_equal(dsCodecSchemaId(f->codec, 99), -1);
    assert_null(dsCodecSchemaText(f->codec, 99));
    assert_null(dsCodecSchema(f->codec, 99));
    assert_non_null(dsCodecSchema(f->codec, 1));
    /* The shipped text, with everything avro-c drops (docs, rules, logical types). */
    json_t *s = parse(dsCodecSchemaText(f->codec, 1));
    assert_string_equal(json_string_value(json_object_get(s, "name")), "Decision");
    assert_non_null(strstr(dsCodecSchemaText(f->codec, 1), "timestamp-millis"));
    json_decref(s);
}

static void test_example_accepted_and_round_trips(void **state) {
    fixture *f = *state;
    char *first = canonical(f, example());
    assert_string_equal(
        first,
        "{\"decision_id\":\"7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11\",\"purchase_id\":\"p-20261124-000042\","
        "\"customer_id\":\"cust-42\",\"merchant_id\":\"m-7\",\"country\":\"SE\","
        "\"amount\":{\"value\":12999,\"currency\":\"SEK\"},\"outcome\":\"APPROVED\",\"reasons\":[\"LOW_RISK\"],"
        "\"policy\":{\"name\":\"bnpl-checkout\",\"version\":\"2026.11.3\"},"
        "\"checks\":[{\"kind\":\"CREDIT\",\"provider\":\"bureau-x\",\"outcome\":\"PASS\",\"score\":0.12,"
        "\"latency_ms\":85,\"performed_at\":\"2026-11-24T10:00:00.123Z\"},"
        "{\"kind\":\"FRAUD\",\"provider\":\"in-house\",\"outcome\":\"PASS\",\"score\":0.02,\"latency_ms\":4,"
        "\"performed_at\":\"2026-11-24T10:00:00.180Z\"}],"
        "\"decided_at\":\"2026-11-24T10:00:00.250Z\",\"producer\":\"policy-engine-eu-1\","
        "\"attributes\":{\"channel\":\"web\"},\"model\":null,\"risk_score\":null}");
    /* ToJson output fed back gives the same bytes, with and without the
     * server-set fields. */
    char *second = canonical(f, parse(first));
    assert_string_equal(first, second);
    char *full = render(f, 0);
    char *again = (expectOk(f, parse(full)), render(f, 0));
    assert_string_equal(full, again);
    assert_non_null(strstr(full, "\"recorded_at\":\"1970-01-01T00:00:00.000Z\",\"schema_version\":2}"));
    free(first);
    free(second);
    free(full);
    free(again);
}

static void test_avro_values(void **state) {
    fixture *f = *state;
    expectOk(f, example());
    avro_value_t field, item, branch;
    int64_t ms;
    const char *s;
    size_t len;
    assert_int_equal(avro_value_get_by_name(&f->val, "decided_at", &field, NULL), 0);
    assert_int_equal(avro_value_get_long(&field, &ms), 0);
    assert_int_equal(ms, 1795514400250LL);
    assert_int_equal(avro_value_get_by_name(&f->val, "decision_id", &field, NULL), 0);
    assert_int_equal(avro_value_get_string(&field, &s, &len), 0);
    assert_int_equal(len, 37); /* avro-c counts the NUL */
    assert_int_equal(avro_value_get_by_name(&f->val, "checks", &field, NULL), 0);
    assert_int_equal(avro_value_get_by_index(&field, 0, &item, NULL), 0);
    assert_int_equal(avro_value_get_by_name(&item, "score", &field, NULL), 0);
    int d;
    double score;
    assert_int_equal(avro_value_get_discriminant(&field, &d), 0);
    assert_int_equal(d, 1);
    assert_int_equal(avro_value_get_current_branch(&field, &branch), 0);
    assert_int_equal(avro_value_get_double(&branch, &score), 0);
    assert_true(score == 0.12);
}

static void test_avro_binary_round_trip(void **state) {
    fixture *f = *state;
    expectOk(f, example());
    char *before = render(f, 0);
    char buf[4096];
    avro_writer_t w = avro_writer_memory(buf, sizeof buf);
    assert_int_equal(avro_value_write(w, &f->val), 0);
    int64_t n = avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_t copy;
    assert_true(dsCodecNewValue(f->codec, &copy));
    avro_reader_t r = avro_reader_memory(buf, n);
    assert_int_equal(avro_value_read(r, &copy), 0);
    avro_reader_free(r);
    json_t *j = dsCodecToJson(f->codec, &copy, 0);
    char *after = json_dumps(j, JSON_COMPACT);
    assert_string_equal(before, after);
    json_decref(j);
    avro_value_decref(&copy);
    free(before);
    free(after);
}

static void test_each_required_field_missing(void **state) {
    fixture *f = *state;
    static const char *const required[] = {
        "decision_id", "purchase_id", "customer_id", "merchant_id", "country", "amount", "outcome",
        "policy", "decided_at", "producer", "amount.value", "amount.currency", "policy.name",
        "policy.version", "checks[0].kind", "checks[0].provider", "checks[0].outcome",
        "checks[1].performed_at",
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        json_t *doc = example();
        delPath(doc, required[i]);
        const char *msg = expectErr(f, doc, "missing_field", required[i]);
        assert_non_null(strstr(msg, "is required"));
    }
}

static void test_unknown_fields(void **state) {
    fixture *f = *state;
    static const char *const unknown[] = {"customer", "amount.cents", "policy.owner", "checks[1].note"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        json_t *doc = example();
        setPath(doc, unknown[i], json_string("x"));
        expectErr(f, doc, "unknown_field", unknown[i]);
    }
    /* A typo is reported as the unknown field, not as the missing one. */
    json_t *doc = example();
    delPath(doc, "customer_id");
    setPath(doc, "customer_idd", json_string("cust-42"));
    expectErr(f, doc, "unknown_field", "customer_idd");
}

static void test_wrong_types(void **state) {
    fixture *f = *state;
    static const struct {
        const char *path, *value;
    } cases[] = {
        {"customer_id", "42"},           {"amount", "\"12999 SEK\""},   {"amount.value", "1.5"},
        {"amount.value", "12999.0"},     {"amount.value", "\"12999\""}, {"reasons", "\"LOW_RISK\""},
        {"reasons[0]", "7"},             {"outcome", "1"},              {"checks", "{}"},
        {"checks[0].score", "\"high\""}, {"checks[0].latency_ms", "1.5"}, {"checks[0].performed_at", "1795514400123"},
        {"decided_at", "null"},          {"attributes", "[]"},          {"attributes.channel", "3"},
        {"policy", "\"bnpl-checkout\""}, {"customer_id", "null"},       {"checks[0]", "\"CREDIT\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = example();
        setPath(doc, cases[i].path, json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        expectErr(f, doc, "wrong_type", cases[i].path);
    }
    expectErr(f, parse("[1, 2]"), "wrong_type", "");
    expectErr(f, json_string("x"), "wrong_type", "");
    /* A double field takes integers too; they come back as reals. */
    json_t *doc = example();
    setPath(doc, "checks[0].score", json_integer(1));
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"score\":1.0,"));
    free(out);
}

static void test_uuid(void **state) {
    fixture *f = *state;
    static const char *const bad[] = {
        "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d1",   "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d111", "7d3f0c1e5b7a4c2e9a510e4a1c9b2d11",
        "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d1g",  "{7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d1}", "7d3f0c1e_5b7a_4c2e_9a51_0e4a1c9b2d11",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = example();
        setPath(doc, "decision_id", json_string(bad[i]));
        expectErr(f, doc, "invalid_value", "decision_id");
    }
    json_t *doc = example();
    setPath(doc, "decision_id", json_string("7D3F0C1E-5B7A-4C2E-9A51-0E4A1C9B2D11"));
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"decision_id\":\"7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d11\""));
    free(out);
}

static void test_bad_timestamps(void **state) {
    fixture *f = *state;
    static const struct {
        const char *value, *why;
    } bad[] = {
        {"2026-11-24T10:00:00.250", "missing UTC offset"},
        {"2026-13-24T10:00:00.250Z", "month 13"},
        {"2026-02-30T10:00:00.250Z", "day 30"},
        {"2026-12-31T23:59:60Z", "leap second"},
        {"2026-11-24", "'T'"},
        {"yesterday", "year"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = example();
        setPath(doc, "decided_at", json_string(bad[i].value));
        const char *msg = expectErr(f, doc, "invalid_value", "decided_at");
        if (!strstr(msg, bad[i].why)) fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].value, msg, bad[i].why);
        doc = example();
        setPath(doc, "checks[1].performed_at", json_string(bad[i].value));
        expectErr(f, doc, "invalid_value", "checks[1].performed_at");
    }
}

static void test_offsets_normalized(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    setPath(doc, "decided_at", json_string("2026-11-24T11:00:00.250+01:00"));
    setPath(doc, "checks[0].performed_at", json_string("2026-11-24T04:30:00.123456-05:30"));
    expectOk(f, doc);
    avro_value_t field;
    int64_t ms;
    assert_int_equal(avro_value_get_by_name(&f->val, "decided_at", &field, NULL), 0);
    assert_int_equal(avro_value_get_long(&field, &ms), 0);
    assert_int_equal(ms, 1795514400250LL);
    char *out = render(f, DS_CODEC_OMIT_SERVER_FIELDS);
    assert_non_null(strstr(out, "\"decided_at\":\"2026-11-24T10:00:00.250Z\""));
    assert_non_null(strstr(out, "\"performed_at\":\"2026-11-24T10:00:00.123Z\""));
    free(out);
}

static void test_country_and_currency(void **state) {
    fixture *f = *state;
    static const char *const countries[] = {"se", "Se", "SWE", "S", "", "S1", "SE\n", "ÅÄ"};
    for (size_t i = 0; i < sizeof countries / sizeof countries[0]; i++) {
        json_t *doc = example();
        setPath(doc, "country", json_string(countries[i]));
        expectErr(f, doc, "invalid_value", "country");
    }
    static const char *const currencies[] = {"sek", "SE", "SEKK", "S3K", ""};
    for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++) {
        json_t *doc = example();
        setPath(doc, "amount.currency", json_string(currencies[i]));
        expectErr(f, doc, "invalid_value", "amount.currency");
    }
}

static void test_amount_bounds(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    setPath(doc, "amount.value", json_integer(-1));
    expectErr(f, doc, "invalid_value", "amount.value");
    doc = example();
    setPath(doc, "amount.value", json_integer(1000000000000001LL));
    expectErr(f, doc, "invalid_value", "amount.value");
    doc = example();
    setPath(doc, "amount.value", json_integer(1000000000000000LL));
    expectOk(f, doc);
    doc = example();
    setPath(doc, "amount.value", json_integer(0));
    expectOk(f, doc);
    doc = example();
    setPath(doc, "checks[0].latency_ms", json_integer(-1));
    expectErr(f, doc, "invalid_value", "checks[0].latency_ms");
}

static void test_too_many_items(void **state) {
    fixture *f = *state;
    json_t *doc = example(), *reasons = json_array();
    for (int i = 0; i < 33; i++) json_array_append_new(reasons, json_string("R"));
    setPath(doc, "reasons", json_deep_copy(reasons));
    expectErr(f, doc, "too_many_items", "reasons");
    json_array_remove(reasons, 0);
    doc = example();
    setPath(doc, "reasons", reasons);
    expectOk(f, doc);

    doc = example();
    json_t *checks = json_array(), *one = json_array_get(getPath(doc, "checks"), 0);
    for (int i = 0; i < 65; i++) json_array_append(checks, one);
    setPath(doc, "checks", json_deep_copy(checks));
    expectErr(f, doc, "too_many_items", "checks");
    json_array_remove(checks, 0);
    doc = example();
    setPath(doc, "checks", checks);
    expectOk(f, doc);

    doc = example();
    json_t *attrs = json_object();
    for (int i = 0; i < 65; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        json_object_set_new(attrs, key, json_string("v"));
    }
    setPath(doc, "attributes", json_deep_copy(attrs));
    expectErr(f, doc, "too_many_items", "attributes");
    json_object_del(attrs, "k00");
    doc = example();
    setPath(doc, "attributes", attrs);
    expectOk(f, doc);
}

static void test_control_characters(void **state) {
    fixture *f = *state;
    static const char *const bad[] = {"cust\n42", "cust\t42", "cust\x7f" "42", "cust\xc2\x85" "42", "\x1b[31m",
                                      "cust\xc2\x9f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = example();
        setPath(doc, "customer_id", json_string(bad[i]));
        const char *msg = expectErr(f, doc, "invalid_value", "customer_id");
        assert_non_null(strstr(msg, "control characters"));
    }
    json_t *doc = example();
    setPath(doc, "merchant_id", json_string("m\r"));
    expectErr(f, doc, "invalid_value", "merchant_id");
    /* Printable non-ASCII is fine, U+00A0 included. */
    doc = example();
    setPath(doc, "customer_id", json_string("kund-\xc3\xa5\xc3\xa4\xc3\xb6-\xc2\xa0-\xe2\x82\xac"));
    expectOk(f, doc);
    /* NUL is refused everywhere, even where control characters are allowed. */
    doc = example();
    setPath(doc, "producer", json_stringn("a\0b", 3));
    expectErr(f, doc, "invalid_value", "producer");
    /* Strings built without jansson's check still get validated. */
    doc = example();
    setPath(doc, "producer", json_stringn_nocheck("a\xff", 2));
    expectErr(f, doc, "invalid_value", "producer");
}

static void test_string_lengths(void **state) {
    fixture *f = *state;
    static const char *const min1[] = {"purchase_id", "customer_id", "merchant_id", "policy.name", "policy.version",
                                       "producer", "reasons[0]", "checks[0].kind", "checks[1].provider"};
    for (size_t i = 0; i < sizeof min1 / sizeof min1[0]; i++) {
        json_t *doc = example();
        setPath(doc, min1[i], json_string(""));
        const char *msg = expectErr(f, doc, "invalid_value", min1[i]);
        assert_non_null(strstr(msg, "must not be empty"));
    }
    static const char *const max128[] = {"purchase_id", "customer_id", "merchant_id", "policy.name",
                                         "policy.version", "producer", "checks[0].kind", "checks[0].provider"};
    for (size_t i = 0; i < sizeof max128 / sizeof max128[0]; i++) {
        json_t *doc = example();
        setPath(doc, max128[i], stringOf("x", 129));
        expectErr(f, doc, "invalid_value", max128[i]);
        doc = example();
        setPath(doc, max128[i], stringOf("x", 128));
        expectOk(f, doc);
    }
    /* Limits count bytes, not characters: 64 x "å" is 128 bytes, 65 is 130. */
    json_t *doc = example();
    setPath(doc, "customer_id", stringOf("\xc3\xa5", 64));
    expectOk(f, doc);
    doc = example();
    setPath(doc, "customer_id", stringOf("\xc3\xa5", 65));
    expectErr(f, doc, "invalid_value", "customer_id");
    doc = example();
    setPath(doc, "reasons[0]", stringOf("R", 65));
    expectErr(f, doc, "invalid_value", "reasons[0]");
    doc = example();
    setPath(doc, "reasons[0]", stringOf("R", 64));
    expectOk(f, doc);
}

static void test_attribute_limits(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    json_object_set_new(getPath(doc, "attributes"), "", json_string("v"));
    expectErr(f, doc, "invalid_value", "attributes.");
    char *key = repeat("k", 65);
    doc = example();
    json_object_set_new(getPath(doc, "attributes"), key, json_string("v"));
    char field[300];
    snprintf(field, sizeof field, "attributes.%s", key);
    expectErr(f, doc, "invalid_value", field);
    key[64] = '\0';
    doc = example();
    json_object_set_new(getPath(doc, "attributes"), key, json_string(""));
    expectOk(f, doc);
    free(key);
    /* A key too long for the error's field is named cut at a character
     * boundary: 81 of its 3-byte characters fit after "attributes.". */
    key = repeat("\xe2\x82\xac", 100);
    doc = example();
    json_object_set_new(getPath(doc, "attributes"), key, json_string("v"));
    key[81 * 3] = '\0';
    snprintf(field, sizeof field, "attributes.%s", key);
    expectErr(f, doc, "invalid_value", field);
    free(key);
    doc = example();
    json_object_set_new(getPath(doc, "attributes"), "bad\nkey", json_string("v"));
    expectErr(f, doc, "invalid_value", "attributes.bad\nkey");
    doc = example();
    setPath(doc, "attributes.channel", stringOf("v", 1025));
    expectErr(f, doc, "invalid_value", "attributes.channel");
    doc = example();
    setPath(doc, "attributes.channel", stringOf("v", 1024));
    expectOk(f, doc);
}

static void test_enums(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    setPath(doc, "outcome", json_string("APPROVE"));
    const char *msg = expectErr(f, doc, "invalid_value", "outcome");
    assert_non_null(strstr(msg, "APPROVED, REJECTED, REFERRED"));
    doc = example();
    setPath(doc, "checks[1].outcome", json_string("pass"));
    expectErr(f, doc, "invalid_value", "checks[1].outcome");
    static const char *const ok[] = {"REJECTED", "REFERRED"};
    for (size_t i = 0; i < 2; i++) {
        doc = example();
        setPath(doc, "outcome", json_string(ok[i]));
        setPath(doc, "checks[0].outcome", json_string(i ? "SKIPPED" : "ERROR"));
        expectOk(f, doc);
    }
}

static void test_defaults_filled(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    delPath(doc, "reasons");
    delPath(doc, "attributes");
    delPath(doc, "checks");
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"reasons\":[],"));
    assert_non_null(strstr(out, "\"checks\":[],"));
    const char *tail = "\"attributes\":{},\"model\":null,\"risk_score\":null}";
    assert_true(strstr(out, tail) == out + strlen(out) - strlen(tail));
    free(out);

    doc = example();
    delPath(doc, "checks[0].score");
    delPath(doc, "checks[0].latency_ms");
    setPath(doc, "checks[1].score", json_null());
    out = canonical(f, doc);
    assert_non_null(strstr(out, "\"outcome\":\"PASS\",\"score\":null,\"latency_ms\":null,"));
    assert_non_null(strstr(out, "\"score\":null,\"latency_ms\":4,"));
    free(out);
}

/* Version 2's fields: optional, and held to their rules when present. */
static void test_model_and_risk_score(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    setPath(doc, "model", parse("{\"version\": \"7.1\", \"name\": \"gbm-risk\"}"));
    setPath(doc, "risk_score", json_real(0.25));
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"model\":{\"name\":\"gbm-risk\",\"version\":\"7.1\"},\"risk_score\":0.25}"));
    free(out);
    doc = example();
    setPath(doc, "risk_score", json_integer(1));
    expectOk(f, doc);

    static const struct {
        const char *path, *value, *code, *field;
    } bad[] = {
        {"risk_score", "1.5", "invalid_value", "risk_score"},
        {"risk_score", "-0.1", "invalid_value", "risk_score"},
        {"risk_score", "\"0.5\"", "wrong_type", "risk_score"},
        {"model", "\"gbm\"", "wrong_type", "model"},
        {"model", "{\"name\": \"\", \"version\": \"1\"}", "invalid_value", "model.name"},
        {"model", "{\"name\": \"gbm\"}", "missing_field", "model.version"},
        {"model", "{\"name\": \"gbm\", \"version\": \"1\", \"owner\": \"x\"}", "unknown_field", "model.owner"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc = example();
        setPath(doc, bad[i].path, parse(bad[i].value));
        expectErr(f, doc, bad[i].code, bad[i].field);
    }
}

static void test_value_reuse(void **state) {
    fixture *f = *state;
    /* A rejected document leaves nothing behind for the next one. */
    json_t *doc = example();
    setPath(doc, "checks[1].kind", json_string(""));
    expectErr(f, doc, "invalid_value", "checks[1].kind");
    doc = example();
    delPath(doc, "checks");
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"checks\":[]"));
    free(out);
    char *a = canonical(f, example());
    char *b = canonical(f, example());
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_server_fields(void **state) {
    fixture *f = *state;
    json_t *doc = example();
    setPath(doc, "recorded_at", json_string("not even a timestamp"));
    setPath(doc, "schema_version", json_integer(99));
    expectOk(f, doc);
    char *out = render(f, 0);
    assert_non_null(strstr(out, "\"recorded_at\":\"1970-01-01T00:00:00.000Z\",\"schema_version\":2}"));
    free(out);
    out = render(f, DS_CODEC_OMIT_SERVER_FIELDS);
    assert_null(strstr(out, "recorded_at"));
    assert_null(strstr(out, "schema_version"));
    free(out);
    assert_true(dsCodecSetServerFields(f->codec, &f->val, 1795514401000LL, 1));
    out = render(f, 0);
    assert_non_null(strstr(out, "\"recorded_at\":\"2026-11-24T10:00:01.000Z\",\"schema_version\":1}"));
    free(out);
    assert_false(dsCodecSetServerFields(f->codec, &f->val, INT64_MAX, 1));
}

static void test_canonical_form(void **state) {
    fixture *f = *state;
    char *a = canonical(f, example());
    /* Same decision: keys in another order, upper-case UUID, other offsets,
     * attributes posted in another order, an explicit null score. */
    json_t *doc = example();
    json_t *shuffled = json_object();
    static const char *const order[] = {"attributes", "producer", "decided_at", "checks", "policy", "reasons",
                                        "outcome", "amount", "country", "merchant_id", "customer_id",
                                        "purchase_id", "decision_id"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        json_object_set(shuffled, order[i], json_object_get(doc, order[i]));
    json_decref(doc);
    setPath(shuffled, "amount", parse("{\"currency\": \"SEK\", \"value\": 12999}"));
    setPath(shuffled, "decision_id", json_string("7D3F0C1E-5B7A-4C2E-9A51-0E4A1C9B2D11"));
    setPath(shuffled, "decided_at", json_string("2026-11-24T12:00:00.250000+02:00"));
    setPath(shuffled, "checks[0].performed_at", json_string("2026-11-24t09:00:00.123-01:00"));
    char *b = canonical(f, shuffled);
    assert_string_equal(a, b);
    free(b);

    /* Posting a default explicitly is the same as leaving it out. */
    json_t *omitted = example(), *explicit = example();
    delPath(omitted, "reasons");
    delPath(omitted, "checks[1].score");
    setPath(explicit, "reasons", json_array());
    setPath(explicit, "checks[1].score", json_null());
    char *co = canonical(f, omitted), *ce = canonical(f, explicit);
    assert_string_equal(co, ce);
    free(co);
    free(ce);

    json_t *x = example(), *y = example();
    setPath(x, "attributes", parse("{\"b\": \"2\", \"a\": \"1\", \"channel\": \"web\"}"));
    setPath(y, "attributes", parse("{\"channel\": \"web\", \"a\": \"1\", \"b\": \"2\"}"));
    char *cx = canonical(f, x), *cy = canonical(f, y);
    assert_string_equal(cx, cy);
    assert_non_null(strstr(cx, "\"attributes\":{\"a\":\"1\",\"b\":\"2\",\"channel\":\"web\"}"));
    free(cx);
    free(cy);
    free(a);
}

static void test_error_text_stays_utf8(void **state) {
    fixture *f = *state;
    /* An unknown key long enough to be cut inside a multi-byte character. */
    json_t *doc = example();
    char *key = repeat("\xe2\x82\xac", 120);
    json_object_set_new(doc, key, json_true());
    bool ok = dsCodecFromJson(f->codec, doc, &f->val, &f->err);
    json_decref(doc);
    free(key);
    assert_false(ok);
    assert_string_equal(f->err.code, "unknown_field");
    json_t *check = json_pack("{ssss}", "field", f->err.field, "message", f->err.message);
    assert_non_null(check);
    json_decref(check);
}

/* ---- the schema compiler ---- */

static bool compileText(const char *text, char *errbuf, size_t errlen) {
    json_t *js = parse(text);
    avro_schema_t as;
    if (avro_schema_from_json_length(text, strlen(text), &as) != 0) fail_msg("avro-c rejects: %s", avro_strerror());
    dsRuleSet rs;
    bool ok = dsRulesCompile(js, as, "test.avsc", &rs, errbuf, errlen);
    if (ok) dsRulesFree(&rs);
    avro_schema_decref(as);
    json_decref(js);
    return ok;
}

static void compileBad(const char *fields, const char *why) {
    char text[2048], err[512] = "";
    snprintf(text, sizeof text, "{\"type\":\"record\",\"name\":\"T\",\"fields\":[%s]}", fields);
    if (compileText(text, err, sizeof err)) fail_msg("accepted: %s", fields);
    if (!strstr(err, why)) fail_msg("%s: \"%s\" lacks \"%s\"", fields, err, why);
}

static void test_schema_vocabulary(void **state) {
    char err[512] = "";
    /* Named references, namespaces, a recursive type, every rule. */
    const char *good =
        "{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"t\",\"fields\":["
        "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}},"
        "{\"name\":\"k2\",\"type\":\"K\",\"default\":\"B\"},"
        "{\"name\":\"k3\",\"type\":\"t.K\",\"default\":\"A\"},"
        "{\"name\":\"n\",\"type\":{\"type\":\"int\",\"minimum\":-5,\"maximum\":5},\"default\":0},"
        "{\"name\":\"d\",\"type\":{\"type\":\"double\",\"minimum\":0.5},\"default\":1},"
        "{\"name\":\"b\",\"type\":\"boolean\",\"default\":false},"
        "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null}]}";
    if (!compileText(good, err, sizeof err)) fail_msg("rejected: %s", err);

    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"string\",\"minLenght\":1}}", "\"minLenght\" is not supported");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}}", "logicalType");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"string\",\"format\":\"email\"}}", "unsupported format");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"string\",\"pattern\":\"([\"}}", "pattern does not compile");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"string\",\"maxLength\":-1}}", "non-negative integer");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"long\",\"minimum\":0},\"default\":-1}", "at least 0");
    compileBad("{\"name\":\"a\",\"type\":\"long\",\"default\":\"0\"}", "must be an integer");
    /* A timestamp default is held to the range a parsed one is. */
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"},"
               "\"default\":253402300800000}", "out of range for a timestamp");
    compileBad("{\"name\":\"a\",\"type\":[\"null\",\"long\"],\"default\":0}", "first branch");
    compileBad("{\"name\":\"a\",\"type\":[\"null\",\"long\",\"string\"]}", "null and one other type");
    compileBad("{\"name\":\"a\",\"type\":\"bytes\"}", "not supported");
    compileBad("{\"name\":\"a\",\"type\":\"long\",\"serverSet\":true}", "needs a default");
    compileBad("{\"name\":\"a\",\"type\":\"long\",\"required\":true}", "\"required\" is not supported");
    compileBad("{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"a\",\"type\":\"long\"}", "duplicate field");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"map\",\"values\":\"string\",\"keys\":{\"type\":\"string\",\"format\":\"uuid\"}}}",
               "map keys");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"string\",\"maxItems\":1},\"default\":[\"x\",\"y\"]}",
               "at most 1");
    compileBad("{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}}",
               "must be one of its symbols");
}
/* Posted with the API's bound: decided_at at most skew_ms after now_ms. */
static bool posted(fixture *f, json_t *doc, int64_t now_ms, int64_t skew_ms) {
    bool ok = dsCodecFromJsonPosted(f->codec, doc, &f->val, now_ms, skew_ms, &f->err);
    json_decref(doc);
    return ok;
}

static json_t *decidedAt(int64_t ms) {
    char ts[DS_TIME_BUFLEN];
    assert_true(dsTimeFormat(ms, ts));
    json_t *doc = example();
    setPath(doc, "decided_at", json_string(ts));
    return doc;
}

static void test_decided_at_lower_bound(void **state) {
    fixture *f = *state;
    static const char *const early[] = {"1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                                        "1999-12-31T23:59:59.999Z", "2000-01-01T00:30:00+01:00"};
    for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
        json_t *doc = example();
        setPath(doc, "decided_at", json_string(early[i]));
        const char *msg = expectErr(f, doc, "invalid_value", "decided_at");
        if (!strstr(msg, "2000-01-01")) fail_msg("%s: \"%s\" does not name the bound", early[i], msg);
        /* The lower bound holds on every path, the posted one too. */
        doc = example();
        setPath(doc, "decided_at", json_string(early[i]));
        assert_false(posted(f, doc, DS_CODEC_DECIDED_AT_MIN_MS + 1000, DS_CODEC_MAX_CLOCK_SKEW_MS));
        assert_string_equal(f->err.field, "decided_at");
    }
    json_t *doc = example();
    setPath(doc, "decided_at", json_string("2000-01-01T00:00:00Z"));
    expectOk(f, doc);
    /* Other timestamps keep the plain range: a check may predate 2000. */
    doc = example();
    setPath(doc, "checks[0].performed_at", json_string("1969-07-20T20:17:40Z"));
    expectOk(f, doc);
}

static void test_decided_at_upper_bound(void **state) {
    fixture *f = *state;
    const int64_t now = 1795514400250LL, skew = DS_CODEC_MAX_CLOCK_SKEW_MS;
    assert_true(posted(f, decidedAt(now), now, skew));
    assert_true(posted(f, decidedAt(now + skew), now, skew));
    assert_false(posted(f, decidedAt(now + skew + 1), now, skew));
    assert_string_equal(f->err.code, "invalid_value");
    assert_string_equal(f->err.field, "decided_at");
    if (!strstr(f->err.message, "future")) fail_msg("\"%s\" does not say why", f->err.message);
    assert_false(posted(f, decidedAt(now + 1), now, 0));
    assert_true(posted(f, decidedAt(now + 3600000), now, 3600000));
    json_t *doc = example();
    setPath(doc, "decided_at", json_string("9999-12-31T23:59:59.999Z"));
    assert_true(posted(f, doc, now, INT64_MAX)); /* now + skew saturates rather than wraps */
    /* A document validated again later (a stored row, an archived record)
     * has no upper bound: it was accepted when it was posted. */
    expectOk(f, decidedAt(now + 365LL * 86400000));
}

/* Timestamps that an offset pushes out of what can be rendered back. */
static void test_timestamps_render_back(void **state) {
    fixture *f = *state;
    static const char *const bad[] = {"0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-06-01T00:00:00Z",
                                      "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = example();
        setPath(doc, "checks[0].performed_at", json_string(bad[i]));
        expectErr(f, doc, "invalid_value", "checks[0].performed_at");
    }
    json_t *doc = example();
    setPath(doc, "checks[0].performed_at", json_string("9999-12-31T23:59:59.999Z"));
    char *out = canonical(f, doc);
    assert_non_null(strstr(out, "\"performed_at\":\"9999-12-31T23:59:59.999Z\""));
    free(out);
}

/* Every finite double is served back as posted: from 2^63 up (which jsonb
 * would print back as an integer jansson cannot read), the smallest
 * subnormal, and the sign of zero. The canonical text parses back to the
 * same text. */
static void test_numbers_round_trip(void **state) {
    fixture *f = *state;
    static const struct {
        double in;
        const char *out;
    } cases[] = {
        {9223372036854775808.0, "\"score\":9.2233720368547758e18"},
        {-9223372036854775808.0, "\"score\":-9.2233720368547758e18"},
        {1.7976931348623157e308, "\"score\":1.7976931348623157e308"},
        {-1e308, "\"score\":-1e308"},
        {5e-324, "\"score\":4.9406564584124654e-324"},
        {-0.0, "\"score\":-0.0"},
        {1e17, "\"score\":1e17"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = example();
        setPath(doc, "checks[0].score", json_real(cases[i].in));
        char *out = canonical(f, doc);
        if (!strstr(out, cases[i].out)) fail_msg("%g: %s lacks %s", cases[i].in, out, cases[i].out);
        char *again = canonical(f, parse(out));
        assert_string_equal(out, again);
        free(again);
        free(out);
    }
}

/* ---- the value path: dsCodecValidate() ---- */

static uint64_t rngState;

static uint64_t rng(void) {
    rngState ^= rngState << 13;
    rngState ^= rngState >> 7;
    rngState ^= rngState << 17;
    return rngState;
}

static size_t pick(size_t n) { return (size_t)(rng() % n); }

/* A pool value of a kind: 's' string, 'i' integer, 't' timestamp, 'e' enum
 * symbol, 'd' number; anything else a value of any kind. */
static json_t *poolValue(char kind) {
    static const char *const strings[] = {"", "x", "SE", "sE", "SEK", "sek", "S3K", "a\nb", "a\x7f", "a\xc2\x85",
                                          "\xc3\xa5\xc3\xa4", "7D3F0C1E-5B7A-4C2E-9A51-0E4A1C9B2D11",
                                          "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d1g", "web"};
    static const char *const stamps[] = {"2026-11-24T10:00:00.250Z", "1999-12-31T23:59:59.999Z", "2000-01-01T00:00:00Z",
                                         "1969-07-20T20:17:40Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999Z",
                                         "2026-11-24T11:00:00.250+01:00", "2026-13-01T00:00:00Z"};
    static const char *const symbols[] = {"APPROVED", "REJECTED", "REFERRED", "PASS", "FAIL", "SKIPPED", "pass", ""};
    static const long long ints[] = {0, -1, 1, 85, 1000000000000000LL, 1000000000000001LL, INT64_MAX, INT64_MIN,
                                     2147483648LL};
    static const double reals[] = {0.5, 1.5, -0.1, 1e308, -1e308, 1.0, 0.0, 5e-324};
    switch (kind) {
    case 's':
        switch (pick(6)) {
        case 0: return stringOf("x", (int)(pick(3) ? 128 + pick(3) : 1024 + pick(3)));
        case 1: return stringOf("R", 63 + (int)pick(3));
        case 2: return json_stringn("a\0b", 3);
        case 3: return json_stringn_nocheck("a\xff", 2);
        default: return json_string(strings[pick(sizeof strings / sizeof strings[0])]);
        }
    case 't': return json_string(stamps[pick(sizeof stamps / sizeof stamps[0])]);
    case 'e': return json_string(symbols[pick(sizeof symbols / sizeof symbols[0])]);
    case 'i': return json_integer(ints[pick(sizeof ints / sizeof ints[0])]);
    case 'd': return pick(3) ? json_real(reals[pick(sizeof reals / sizeof reals[0])]) : json_integer((json_int_t)pick(3));
    default: break;
    }
    switch (pick(7)) {
    case 0: return json_null();
    case 1: return json_true();
    case 2: return json_object();
    case 3: return json_array();
    default: return poolValue("stied"[pick(5)]);
    }
}

/* Sets path in doc when its parent is there (earlier mutations may have
 * removed or retyped it); takes v. */
static void trySet(json_t *doc, const char *path, json_t *v) {
    char last[128];
    long idx;
    json_t *parent = walkTo(doc, path, last, sizeof last, &idx);
    if (parent && last[0] && json_is_object(parent))
        json_object_set_new(parent, last, v);
    else if (parent && !last[0] && json_is_array(parent) && (size_t)idx < json_array_size(parent))
        json_array_set_new(parent, (size_t)idx, v);
    else
        json_decref(v);
}

static void tryDel(json_t *doc, const char *path) {
    char last[128];
    long idx;
    json_t *parent = walkTo(doc, path, last, sizeof last, &idx);
    if (parent && last[0] && json_is_object(parent)) json_object_del(parent, last);
}

static void mutate(json_t *doc) {
    static const struct {
        const char *path;
        char kind;
    } leaves[] = {
        {"decision_id", 's'},      {"purchase_id", 's'},         {"customer_id", 's'},         {"merchant_id", 's'},
        {"country", 's'},          {"amount.value", 'i'},        {"amount.currency", 's'},     {"outcome", 'e'},
        {"reasons[0]", 's'},       {"policy.name", 's'},         {"policy.version", 's'},      {"checks[0].kind", 's'},
        {"checks[0].provider", 's'}, {"checks[0].outcome", 'e'}, {"checks[0].score", 'd'},     {"checks[0].latency_ms", 'i'},
        {"checks[0].performed_at", 't'}, {"checks[1].outcome", 'e'}, {"checks[1].score", 'd'}, {"checks[1].performed_at", 't'},
        {"decided_at", 't'},       {"producer", 's'},            {"attributes.channel", 's'},  {"risk_score", 'd'},
        {"model.name", 's'},       {"recorded_at", 't'},         {"schema_version", 'i'},
    };
    size_t n = sizeof leaves / sizeof leaves[0], i = pick(n);
    switch (pick(10)) {
    case 0: tryDel(doc, leaves[i].path); break;
    case 1: { /* an attribute with a key from the string pool */
        json_t *k = poolValue('s');
        if (strlen(json_string_value(k)) == json_string_length(k))
            json_object_set_new(json_object_get(doc, "attributes"), json_string_value(k), poolValue('s'));
        json_decref(k);
        break;
    }
    case 2: { /* reasons or checks of about their maxItems */
        bool checks = pick(2);
        json_t *arr = json_array(), *one = json_array_get(json_object_get(doc, "checks"), 0);
        size_t items = checks ? 62 + pick(4) : 30 + pick(4);
        for (size_t k = 0; k < items; k++)
            json_array_append_new(arr, checks ? (one ? json_deep_copy(one) : json_object()) : json_string("R"));
        json_object_set_new(doc, checks ? "checks" : "reasons", arr);
        break;
    }
    case 3: { /* attributes of about their maxItems */
        json_t *attrs = json_object();
        for (size_t k = 0, m = 62 + pick(4); k < m; k++) {
            char key[16];
            snprintf(key, sizeof key, "k%02zu", k);
            json_object_set_new(attrs, key, json_string("v"));
        }
        json_object_set_new(doc, "attributes", attrs);
        break;
    }
    case 4:
        json_object_set_new(doc, "model", pick(3) ? json_pack("{soso}", "name", poolValue('s'), "version", poolValue('s'))
                                                  : json_null());
        break;
    default: trySet(doc, leaves[i].path, poolValue(pick(5) ? leaves[i].kind : '?')); break;
    }
}

/* Random documents, each the example with one to three mutations: the
 * value path accepts and refuses exactly as the JSON path does (same
 * code, field and message) for every one that has a value, and an
 * accepted one's value renders as the converted one does. */
static void test_value_path_agrees_with_json_path(void **state) {
    fixture *f = *state;
    int accepted = 0, refused = 0, skipped = 0, too_many = 0;
    char fields[64][sizeof f->err.field];
    int nfields = 0;
    rngState = 0x9E3779B97F4A7C15ULL;
    for (int d = 0; d < 3000; d++) {
        json_t *doc = example();
        for (size_t m = 1 + pick(3); m > 0; m--) mutate(doc);
        bool ok = dsCodecFromJson(f->codec, doc, &f->val, &f->err);
        if (!valueAgrees(f, doc, ok, &f->err)) {
            skipped++;
        } else if (ok) {
            accepted++;
            avro_value_t raw;
            assert_true(rawBuild(f, doc, &raw));
            json_t *a = dsCodecToJson(f->codec, &raw, 0), *b = dsCodecToJson(f->codec, &f->val, 0);
            assert_true(a && b && json_equal(a, b));
            json_decref(a);
            json_decref(b);
            avro_value_decref(&raw);
        } else {
            refused++;
            too_many += strcmp(f->err.code, "too_many_items") == 0;
            int k = 0;
            while (k < nfields && strcmp(fields[k], f->err.field) != 0) k++;
            if (k == nfields && nfields < 64) snprintf(fields[nfields++], sizeof fields[0], "%s", f->err.field);
        }
        json_decref(doc);
    }
    /* The mix must exercise both verdicts and most fields, or the property
     * says little. */
    if (accepted < 300 || refused < 1000 || too_many < 50 || nfields < 20)
        fail_msg("accepted %d, refused %d (%d too many items, %d fields), skipped %d", accepted, refused, too_many,
                 nfields, skipped);
}

/* Sets *out to the node at path ("checks[0].score") of a value, through
 * records and arrays (a union is returned as the union). */
static void valueAt(avro_value_t *root, const char *path, avro_value_t *out) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    avro_value_t cur = *root;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br) *br = '\0';
        assert_int_equal(avro_value_get_by_name(&cur, tok, &cur, NULL), 0);
        if (br) assert_int_equal(avro_value_get_by_index(&cur, (size_t)atoi(br + 1), &cur, NULL), 0);
    }
    *out = cur;
}

/* The union at path set to its non-null branch, returned in *out. */
static void branchAt(avro_value_t *root, const char *path, avro_value_t *out) {
    avro_value_t u;
    valueAt(root, path, &u);
    assert_int_equal(avro_value_set_branch(&u, 1, out), 0);
}

/* f->val (broken by the caller) is refused with code at field, the message
 * holding want; then f->val is the example again. */
static void expectValueRefused(fixture *f, const char *code, const char *field, const char *want) {
    dsCodecError e;
    if (dsCodecValidate(f->codec, &f->val, &e)) fail_msg("accepted; expected %s at %s", code, field);
    if (strcmp(e.code, code) != 0 || strcmp(e.field, field) != 0 || !strstr(e.message, want))
        fail_msg("got %s at \"%s\" (%s); expected %s at \"%s\" (... %s ...)", e.code, e.field, e.message, code, field, want);
    json_t *check = json_pack("{ssss}", "field", e.field, "message", e.message);
    assert_non_null(check); /* valid UTF-8 whatever the value held */
    json_decref(check);
    expectOk(f, example());
}

static void setString(fixture *f, const char *path, const char *s, size_t size) {
    avro_value_t v;
    valueAt(&f->val, path, &v);
    assert_int_equal(avro_value_set_string_len(&v, s, size), 0);
}

static void setLong(fixture *f, const char *path, int64_t n) {
    avro_value_t v;
    valueAt(&f->val, path, &v);
    assert_int_equal(avro_value_set_long(&v, n), 0);
}

/* Values built in Avro, past the JSON path, that break each rule: each is
 * refused at the field from_json.c would name. */
static void test_value_breaking_each_rule(void **state) {
    fixture *f = *state;
    avro_value_t v, item;
    expectOk(f, example());

    setString(f, "country", "sE", 3);
    expectValueRefused(f, "invalid_value", "country", "must match the pattern ^[A-Z]{2}$");
    setString(f, "decision_id", "7D3F0C1E-5B7A-4C2E-9A51-0E4A1C9B2D11", 37);
    expectValueRefused(f, "invalid_value", "decision_id", "lower case");
    setString(f, "decision_id", "7d3f0c1e-5b7a-4c2e-9a51-0e4a1c9b2d1", 36);
    expectValueRefused(f, "invalid_value", "decision_id", "must be a UUID");
    setString(f, "customer_id", "", 1);
    expectValueRefused(f, "invalid_value", "customer_id", "must not be empty");
    setString(f, "customer_id", "cust\n42", 8);
    expectValueRefused(f, "invalid_value", "customer_id", "control characters");
    setString(f, "producer", "a\0b", 4);
    expectValueRefused(f, "invalid_value", "producer", "NUL");
    setString(f, "producer", "a\xff", 3);
    expectValueRefused(f, "invalid_value", "producer", "not valid UTF-8");
    setString(f, "producer", "abc", 3); /* no NUL terminator: a caller's bug */
    expectValueRefused(f, "internal", "producer", "NUL terminator");
    char *big = repeat("x", 129);
    setString(f, "checks[1].provider", big, 130);
    expectValueRefused(f, "invalid_value", "checks[1].provider", "at most 128 bytes");
    free(big);

    static const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        branchAt(&f->val, "checks[0].score", &v);
        assert_int_equal(avro_value_set_double(&v, nonfinite[i]), 0);
        expectValueRefused(f, "invalid_value", "checks[0].score", i ? "out of range for a double" : "not NaN");
    }
    branchAt(&f->val, "risk_score", &v);
    assert_int_equal(avro_value_set_double(&v, 1.5), 0);
    expectValueRefused(f, "invalid_value", "risk_score", "must be at most 1");
    branchAt(&f->val, "checks[1].latency_ms", &v);
    assert_int_equal(avro_value_set_long(&v, -1), 0);
    expectValueRefused(f, "invalid_value", "checks[1].latency_ms", "at least 0");
    setLong(f, "amount.value", 1000000000000001LL);
    expectValueRefused(f, "invalid_value", "amount.value", "at most 1000000000000000");

    static const int badEnum[] = {3, -1, 1000};
    for (size_t i = 0; i < 3; i++) {
        valueAt(&f->val, "outcome", &v);
        assert_int_equal(avro_value_set_enum(&v, badEnum[i]), 0);
        expectValueRefused(f, "invalid_value", "outcome", "must be one of APPROVED, REJECTED, REFERRED");
    }
    /* A union never set (avro-c's reset keeps the branch; a new element
     * has none). */
    valueAt(&f->val, "checks", &v);
    assert_int_equal(avro_value_append(&v, &item, NULL), 0);
    setString(f, "checks[2].kind", "CREDIT", 7);
    setString(f, "checks[2].provider", "bureau-x", 9);
    expectValueRefused(f, "invalid_value", "checks[2].score", "no branch");

    setLong(f, "decided_at", DS_CODEC_DECIDED_AT_MIN_MS - 1);
    expectValueRefused(f, "invalid_value", "decided_at", "before 2000-01-01");
    setLong(f, "decided_at", INT64_MAX);
    expectValueRefused(f, "invalid_value", "decided_at", "out of range for a timestamp");
    /* The renderable range is dsTimeFormat's, to the millisecond. */
    const int64_t lo = -62135596800000LL, hi = 253402300799999LL;
    char ts[DS_TIME_BUFLEN];
    assert_true(dsTimeFormat(lo, ts) && dsTimeFormat(hi, ts));
    assert_false(dsTimeFormat(lo - 1, ts) || dsTimeFormat(hi + 1, ts));
    setLong(f, "checks[0].performed_at", lo);
    setLong(f, "checks[1].performed_at", hi);
    assert_true(dsCodecValidate(f->codec, &f->val, &f->err));
    setLong(f, "checks[0].performed_at", lo - 1);
    expectValueRefused(f, "invalid_value", "checks[0].performed_at", "years 0001-9999");
    setLong(f, "checks[1].performed_at", hi + 1);
    expectValueRefused(f, "invalid_value", "checks[1].performed_at", "years 0001-9999");
    /* A stored value's server-set fields are held to their types' rules. */
    setLong(f, "recorded_at", hi + 1);
    expectValueRefused(f, "invalid_value", "recorded_at", "years 0001-9999");

    valueAt(&f->val, "reasons", &v);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(avro_value_append(&v, &item, NULL), 0);
        assert_int_equal(avro_value_set_string(&item, "R"), 0);
    }
    expectValueRefused(f, "too_many_items", "reasons", "has 33 items; at most 32");
    setString(f, "reasons[0]", "", 1);
    expectValueRefused(f, "invalid_value", "reasons[0]", "must not be empty");

    valueAt(&f->val, "attributes", &v);
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        assert_int_equal(avro_value_add(&v, key, &item, NULL, NULL), 0);
        assert_int_equal(avro_value_set_string(&item, "v"), 0);
    }
    expectValueRefused(f, "too_many_items", "attributes", "has 65 entries; at most 64");
    /* A key that is not UTF-8 is named repaired, so the error stays UTF-8. */
    valueAt(&f->val, "attributes", &v);
    assert_int_equal(avro_value_add(&v, "k\xff", &item, NULL, NULL), 0);
    assert_int_equal(avro_value_set_string(&item, "v"), 0);
    expectValueRefused(f, "invalid_value", "attributes.k\xef\xbf\xbd", "attributes key \"k\xef\xbf\xbd\" is not valid UTF-8");
    /* Entries out of key order: the first bad one in key order is named,
     * as the JSON path (which sorts) names it. */
    valueAt(&f->val, "attributes", &v);
    assert_int_equal(avro_value_add(&v, "zz\n", &item, NULL, NULL), 0);
    assert_int_equal(avro_value_set_string(&item, "v"), 0);
    assert_int_equal(avro_value_add(&v, "a\n", &item, NULL, NULL), 0);
    assert_int_equal(avro_value_set_string(&item, "v"), 0);
    expectValueRefused(f, "invalid_value", "attributes.a\n", "control characters");
    valueAt(&f->val, "attributes.channel", &v);
    char *long_value = repeat("v", 1025);
    assert_int_equal(avro_value_set_string(&v, long_value), 0);
    free(long_value);
    expectValueRefused(f, "invalid_value", "attributes.channel", "at most 1024 bytes");

    /* The first broken rule in field order, as the JSON path finds it. */
    setString(f, "producer", "", 1);
    setString(f, "country", "se", 3);
    expectValueRefused(f, "invalid_value", "country", "pattern");
}

/* Every version's own rules; a value of no known version is the caller's
 * error. */
static void test_value_versions(void **state) {
    fixture *f = *state;
    avro_value_t v1, field;
    assert_true(dsCodecNewVersionValue(f->codec, 1, &v1));
    json_t *doc = example();
    assert_true(dsCodecFromJson(f->codec, doc, &v1, &f->err));
    json_decref(doc);
    assert_true(dsCodecValidate(f->codec, &v1, &f->err));
    assert_int_equal(avro_value_get_by_name(&v1, "country", &field, NULL), 0);
    assert_int_equal(avro_value_set_string(&field, "sE"), 0);
    assert_false(dsCodecValidate(f->codec, &v1, &f->err));
    assert_string_equal(f->err.field, "country");
    avro_value_decref(&v1);

    avro_schema_t other = avro_schema_string();
    avro_value_iface_t *iface = avro_generic_class_from_schema(other);
    avro_value_t s;
    assert_int_equal(avro_generic_value_new(iface, &s), 0);
    assert_false(dsCodecValidate(f->codec, &s, &f->err));
    assert_string_equal(f->err.code, "internal");
    assert_string_equal(f->err.field, "");
    assert_non_null(strstr(f->err.message, "no known schema version"));
    avro_value_decref(&s);
    avro_value_iface_decref(iface);
    avro_schema_decref(other);
}

/* ---- lengths the wire decoder reads ---- */

/* avro-c's allocations while counting: the largest request, and anything
 * over 64 MiB refused so a decoder that trusts a length fails here rather
 * than taking the machine's memory. Frees with free(), as avro-c's default
 * allocator does, so blocks of either allocator may be freed by the other. */
static size_t biggestAlloc;

static void *countingAlloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > biggestAlloc) biggestAlloc = nsize;
    return nsize > ((size_t)64 << 20) ? NULL : realloc(ptr, nsize);
}

typedef struct {
    unsigned char b[512];
    size_t n;
} wireBuf;

static void putByte(wireBuf *w, unsigned char c) {
    assert_true(w->n < sizeof w->b);
    w->b[w->n++] = c;
}

/* A zig-zag varint, as Avro encodes int and long. */
static void putLong(wireBuf *w, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    do {
        putByte(w, (unsigned char)((z & 0x7F) | (z > 0x7F ? 0x80 : 0)));
        z >>= 7;
    } while (z);
}

static void putHeader(wireBuf *w, int id) {
    putByte(w, 0);
    for (int shift = 24; shift >= 0; shift -= 8) putByte(w, (unsigned char)(id >> shift));
}

static void padTo(wireBuf *w, size_t n) {
    while (w->n < n) putByte(w, 0);
}

#define TEST_WIRE_ID 99
static const char TEST_WIRE_SCHEMA[] =
    "{\"type\": \"record\", \"name\": \"T\", \"namespace\": \"t\", \"fields\": ["
    " {\"name\": \"s\", \"type\": \"string\"},"
    " {\"name\": \"a\", \"type\": {\"type\": \"array\", \"items\": \"long\"}},"
    " {\"name\": \"m\", \"type\": {\"type\": \"map\", \"values\": \"string\"}},"
    " {\"name\": \"n\", \"type\": {\"type\": \"array\", \"items\": \"null\"}},"
    " {\"name\": \"u\", \"type\": [\"null\", \"string\"]}]}";

/* Decodes w under the test schema; returns the error ("" when decoded). */
static const char *decodeTest(dsCodec *c, avro_value_t *v, const wireBuf *w) {
    static char err[512];
    err[0] = '\0';
    biggestAlloc = 0;
    avro_set_allocator(countingAlloc, NULL);
    bool ok = dsCodecDecodeWire(c, w->b, w->n, v, NULL, err, sizeof err);
    if (ok) err[0] = '\0';
    else if (!err[0]) fail_msg("refused without a reason");
    return err;
}

static void expectRefused(dsCodec *c, avro_value_t *v, const wireBuf *w, const char *what) {
    const char *err = decodeTest(c, v, w);
    if (!*err) fail_msg("%s: decoded", what);
    if (!strstr(err, what)) fail_msg("\"%s\" does not name %s", err, what);
    /* Nothing near the declared length was asked of the allocator. */
    if (biggestAlloc > 4096) fail_msg("%s: avro-c asked for %zu bytes for a %zu-byte record", what, biggestAlloc, w->n);
}

static void test_wire_lengths_checked(void **state) {
    fixture *f = *state;
    char errbuf[512];
    if (!dsCodecAddVersion(f->codec, TEST_WIRE_ID, TEST_WIRE_ID, TEST_WIRE_SCHEMA, strlen(TEST_WIRE_SCHEMA), errbuf,
                           sizeof errbuf))
        fail_msg("%s", errbuf);
    avro_value_t v;
    assert_true(dsCodecNewVersionValue(f->codec, TEST_WIRE_ID, &v));

    wireBuf w = {0}; /* a good record: "ab", [1], {"k": "v"}, [null, null], null */
    putHeader(&w, TEST_WIRE_ID);
    static const unsigned char good[] = {4, 'a', 'b', 2, 2, 0, 2, 2, 'k', 2, 'v', 0, 4, 0, 0};
    for (size_t i = 0; i < sizeof good; i++) putByte(&w, good[i]);
    if (*decodeTest(f->codec, &v, &w)) fail_msg("good record: %s", decodeTest(f->codec, &v, &w));

    w.n = 0; /* a 14 GB string in 236 bytes */
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, 14000000000LL);
    padTo(&w, 236);
    expectRefused(f->codec, &v, &w, "string length 14000000000");

    w.n = 0;
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, -5);
    padTo(&w, 64);
    expectRefused(f->codec, &v, &w, "string length -5");

    static const int64_t counts[] = {1LL << 40, -(1LL << 40), INT64_MIN, INT64_MAX, 300};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        w.n = 0;
        putHeader(&w, TEST_WIRE_ID);
        putLong(&w, 0); /* s */
        putLong(&w, counts[i]);
        if (counts[i] < 0 && counts[i] != INT64_MIN) putLong(&w, 8);
        padTo(&w, 236);
        expectRefused(f->codec, &v, &w, "array block count");
    }
    w.n = 0; /* a block size past the end */
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, 0);
    putLong(&w, -1);
    putLong(&w, 1LL << 50);
    padTo(&w, 64);
    expectRefused(f->codec, &v, &w, "block size");

    w.n = 0;
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, 0);
    putLong(&w, 0);
    putLong(&w, 1000000000000LL);
    padTo(&w, 236);
    expectRefused(f->codec, &v, &w, "map block count");

    w.n = 0;
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, 0);
    putLong(&w, 0);
    putLong(&w, 1);
    putLong(&w, 10000000000LL);
    padTo(&w, 236);
    expectRefused(f->codec, &v, &w, "map key length 10000000000");

    /* Nulls take no bytes: blocks of 100 of them, 10,000 in 200 bytes. */
    w.n = 0;
    putHeader(&w, TEST_WIRE_ID);
    putLong(&w, 0);
    putLong(&w, 0);
    putLong(&w, 0);
    for (int i = 0; i < 100; i++) putLong(&w, 100);
    putLong(&w, 0);
    putLong(&w, 0);
    expectRefused(f->codec, &v, &w, "array block count");

    w.n = 0;
    putHeader(&w, TEST_WIRE_ID);
    for (int i = 0; i < 4; i++) putLong(&w, 0);
    putLong(&w, 5);
    expectRefused(f->codec, &v, &w, "union branch 5");
    avro_value_decref(&v);

    /* The decision record itself, its decision_id declaring 14 GB. */
    expectOk(f, example());
    unsigned char enc[4096];
    size_t n = dsCodecEncodeWire(f->codec, &f->val, enc, sizeof enc, errbuf, sizeof errbuf);
    assert_true(n > DS_WIRE_HEADER_LEN && n < sizeof enc);
    assert_int_equal(enc[DS_WIRE_HEADER_LEN], 72); /* 36, zig-zag */
    w.n = 0;
    for (size_t i = 0; i < DS_WIRE_HEADER_LEN; i++) putByte(&w, enc[i]);
    putLong(&w, 14000000000LL);
    for (size_t i = DS_WIRE_HEADER_LEN + 1; i < n && w.n < 236; i++) putByte(&w, enc[i]);
    expectRefused(f->codec, &f->val, &w, "string length 14000000000");

    /* The same check over a run of records, as a container block holds. */
    unsigned char two[8192];
    size_t body = n - DS_WIRE_HEADER_LEN;
    memcpy(two, enc + DS_WIRE_HEADER_LEN, body);
    memcpy(two + body, enc + DS_WIRE_HEADER_LEN, body);
    avro_schema_t s = dsCodecSchema(f->codec, dsCodecCurrentVersion(f->codec));
    assert_true(dsCodecCheckBinary(s, two, 2 * body, 2, errbuf, sizeof errbuf));
    assert_false(dsCodecCheckBinary(s, two, 2 * body, 1, errbuf, sizeof errbuf));
    assert_non_null(strstr(errbuf, "trailing bytes"));
    assert_false(dsCodecCheckBinary(s, two, 2 * body, 3, errbuf, sizeof errbuf));
    assert_non_null(strstr(errbuf, "record 2 of 3"));
    memcpy(two + body, w.b + DS_WIRE_HEADER_LEN, w.n - DS_WIRE_HEADER_LEN); /* the second one declares 14 GB */
    assert_false(dsCodecCheckBinary(s, two, body + w.n - DS_WIRE_HEADER_LEN, 2, errbuf, sizeof errbuf));
    assert_non_null(strstr(errbuf, "record 1 of 2"));
    assert_non_null(strstr(errbuf, "string length 14000000000"));
    /* countingAlloc stays: it frees what avro-c's default one allocated. */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_facts),
        cmocka_unit_test(test_example_accepted_and_round_trips),
        cmocka_unit_test(test_avro_values),
        cmocka_unit_test(test_avro_binary_round_trip),
        cmocka_unit_test(test_each_required_field_missing),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_bad_timestamps),
        cmocka_unit_test(test_offsets_normalized),
        cmocka_unit_test(test_decided_at_lower_bound),
        cmocka_unit_test(test_decided_at_upper_bound),
        cmocka_unit_test(test_timestamps_render_back),
        cmocka_unit_test(test_numbers_round_trip),
        cmocka_unit_test(test_country_and_currency),
        cmocka_unit_test(test_amount_bounds),
        cmocka_unit_test(test_too_many_items),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_string_lengths),
        cmocka_unit_test(test_attribute_limits),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_defaults_filled),
        cmocka_unit_test(test_model_and_risk_score),
        cmocka_unit_test(test_value_reuse),
        cmocka_unit_test(test_server_fields),
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_error_text_stays_utf8),
        cmocka_unit_test(test_schema_vocabulary),
        cmocka_unit_test(test_value_path_agrees_with_json_path),
        cmocka_unit_test(test_value_breaking_each_rule),
        cmocka_unit_test(test_value_versions),
        cmocka_unit_test(test_wire_lengths_checked), /* last: adds a version to the codec */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
