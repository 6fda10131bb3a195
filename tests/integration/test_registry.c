/* test_registry.c - the read-only Confluent Schema Registry endpoints of the
 * decision API (CONTRACT §3), over real HTTP and without a token. What is
 * served is compared with the files in schemas/decision/ read here directly
 * (the manifest and the .avsc texts), not with the codec the server uses, and
 * the current schema is handed to python3-avro, an Avro implementation that
 * shares no code with this project, which must accept it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ds/codec.h"
#include "harness.h"
#include "schemadir.h"

#define REG_CTYPE "application/vnd.schemaregistry.v1+json"
#define SUBJECT "decisions-value"
#define MANIFEST "schemas/decision/manifest.json"

static dtPg pg;
static dtApi api;
static json_t *manifest; /* schemas/decision/manifest.json as shipped */

static int suiteSetup(void **state) {
    json_error_t err;
    if ((manifest = json_load_file(MANIFEST, 0, &err)) == NULL) {
        fprintf(stderr, "%s: %s\n", MANIFEST, err.text);
        return -1;
    }
    if (!dtPgStart(&pg)) return -1;
    return dtApiStart(&api, &pg, NULL) ? 0 : -1;
}

static int suiteTeardown(void **state) {
    int rc = dtApiStop(&api);
    dtPgDestroy(&pg);
    json_decref(manifest);
    return rc == 0 ? 0 : -1;
}

static int currentVersion(void) {
    return (int)json_integer_value(json_object_get(manifest, "current"));
}

/* The manifest entry of a version; NULL if none. */
static json_t *entryOf(int version) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(manifest, "versions"), i, e) {
        if (json_integer_value(json_object_get(e, "version")) == version) return e;
    }
    return NULL;
}

static int idOf(int version) {
    return (int)json_integer_value(json_object_get(entryOf(version), "id"));
}

/* The shipped text of a version's .avsc file (malloc'd). */
static char *schemaFile(int version) {
    char path[256];
    snprintf(path, sizeof(path), "schemas/decision/%s",
             json_string_value(json_object_get(entryOf(version), "file")));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = malloc((size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Every registry answer carries the registry's content type. */
static void request(const char *method, const char *path, const char *body, dtResponse *r) {
    assert_true(dtHttp(&api, method, path, NULL, body ? REG_CTYPE : NULL, body, body ? strlen(body) : 0, r));
    if (strcmp(r->content_type, REG_CTYPE) != 0)
        fprintf(stderr, "%s %s: content type %s\n", method, path, r->content_type);
    assert_string_equal(r->content_type, REG_CTYPE);
}

static void get(const char *path, dtResponse *r) {
    request("GET", path, NULL, r);
}

static void expectOk(const char *path, dtResponse *r) {
    get(path, r);
    if (r->status != 200) fprintf(stderr, "GET %s: %ld %s\n", path, r->status, r->body);
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
}

/* A Confluent error: {"error_code": code, "message": "..."} with the status
 * the code starts with. */
static void expectError(const char *method, const char *path, const char *body, long status, int code) {
    dtResponse r;
    request(method, path, body, &r);
    if (r.status != status)
        fprintf(stderr, "%s %s: expected %ld, got %ld %s\n", method, path, status, r.status, r.body);
    assert_int_equal(r.status, status);
    assert_non_null(r.json);
    assert_int_equal(json_integer_value(json_object_get(r.json, "error_code")), code);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    dtResponseFree(&r);
}

/* A version object: subject, version, id and the shipped text. */
static void assertVersionObject(const json_t *o, int version) {
    assert_string_equal(json_string_value(json_object_get(o, "subject")), SUBJECT);
    assert_int_equal(json_integer_value(json_object_get(o, "version")), version);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), idOf(version));
    char *text = schemaFile(version);
    assert_string_equal(json_string_value(json_object_get(o, "schema")), text);
    free(text);
}

static void test_schema_by_id(void **state) {
    for (int v = 1; v <= currentVersion(); v++) {
        char path[64];
        dtResponse r;
        snprintf(path, sizeof(path), "/schemas/ids/%d", idOf(v));
        expectOk(path, &r);
        /* the schema as a JSON string holding the file's exact bytes */
        char *text = schemaFile(v);
        assert_true(json_is_string(json_object_get(r.json, "schema")));
        assert_string_equal(json_string_value(json_object_get(r.json, "schema")), text);
        free(text);
        dtResponseFree(&r);

        snprintf(path, sizeof(path), "/schemas/ids/%d/versions", idOf(v));
        expectOk(path, &r);
        json_t *want = json_pack("[{s:s, s:i}]", "subject", SUBJECT, "version", v);
        assert_true(json_equal(r.json, want));
        json_decref(want);
        dtResponseFree(&r);
    }
}

static void test_schema_by_id_unknown(void **state) {
    expectError("GET", "/schemas/ids/999999", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/0", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/-1", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/abc", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/1%00", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/1%00junk", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/99999999999999999999", NULL, 404, 40403);
    expectError("GET", "/schemas/ids/999999/versions", NULL, 404, 40403);
}

static void test_subjects_and_versions(void **state) {
    dtResponse r;
    expectOk("/subjects", &r);
    json_t *want = json_pack("[s]", SUBJECT);
    assert_true(json_equal(r.json, want));
    json_decref(want);
    dtResponseFree(&r);

    expectOk("/subjects/" SUBJECT "/versions", &r);
    want = json_array();
    for (int v = 1; v <= currentVersion(); v++) json_array_append_new(want, json_integer(v));
    assert_true(json_equal(r.json, want));
    json_decref(want);
    dtResponseFree(&r);

    /* a client may percent-encode the subject */
    expectOk("/subjects/decisions%2Dvalue/versions", &r);
    dtResponseFree(&r);
    expectError("GET", "/subjects/nope-value/versions", NULL, 404, 40401);
}

static void test_subject_version(void **state) {
    char path[96];
    dtResponse r;
    for (int v = 1; v <= currentVersion(); v++) {
        snprintf(path, sizeof(path), "/subjects/" SUBJECT "/versions/%d", v);
        expectOk(path, &r);
        assertVersionObject(r.json, v);
        dtResponseFree(&r);
    }
    /* "latest" and Confluent's other spelling of it, -1 */
    const char *latest[] = {"/subjects/" SUBJECT "/versions/latest", "/subjects/" SUBJECT "/versions/-1"};
    for (size_t i = 0; i < 2; i++) {
        expectOk(latest[i], &r);
        assertVersionObject(r.json, currentVersion());
        dtResponseFree(&r);
    }
    snprintf(path, sizeof(path), "/subjects/" SUBJECT "/versions/%d", currentVersion() + 1);
    expectError("GET", path, NULL, 404, 40402);
    expectError("GET", "/subjects/" SUBJECT "/versions/2147483647", NULL, 404, 40402);
    expectError("GET", "/subjects/nope-value/versions/1", NULL, 404, 40401);
    expectError("GET", "/subjects/nope-value/versions/latest", NULL, 404, 40401);
}

static void test_subject_version_invalid(void **state) {
    const char *bad[] = {"abc", "0", "-2", "1.5", "2147483648", "99999999999999999999", "latest2", "%20", "1%00x",
                         "1%00", "latest%00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[96];
        snprintf(path, sizeof(path), "/subjects/" SUBJECT "/versions/%s", bad[i]);
        expectError("GET", path, NULL, 422, 42202);
        /* the version's form is checked before the subject, as Confluent does */
        snprintf(path, sizeof(path), "/subjects/nope-value/versions/%s", bad[i]);
        expectError("GET", path, NULL, 422, 42202);
    }
}

static void test_config(void **state) {
    dtResponse r;
    expectOk("/config", &r);
    const char *declared = json_string_value(json_object_get(manifest, "compatibility"));
    assert_string_equal(json_string_value(json_object_get(r.json, "compatibilityLevel")),
                        declared ? declared : "FULL_TRANSITIVE");
    dtResponseFree(&r);
}

/* Writes a schema directory of both versions whose manifest declares
 * compatibility (NULL: none). */
static void writeDir(const char *dir, const char *compatibility) {
    assert_true(dtSchemaDirWrite(dir, 2));
    char path[300];
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    json_t *m = json_load_file(path, 0, NULL);
    assert_non_null(m);
    if (compatibility) json_object_set_new(m, "compatibility", json_string(compatibility));
    else json_object_del(m, "compatibility");
    assert_int_equal(json_dump_file(m, path, 0), 0);
    json_decref(m);
}

/* /config serves the manifest's "compatibility" (what decision-schemas
 * checks new versions under), not a constant; a manifest without one means
 * FULL_TRANSITIVE; a value that is no mode stops the codec from loading. */
static void test_config_from_manifest(void **state) {
    char dir[] = "/tmp/ds-registry-XXXXXX";
    assert_non_null(mkdtemp(dir));
    writeDir(dir, "BACKWARD");
    static char env[300];
    snprintf(env, sizeof(env), "DECISIONS_SCHEMAS_DIR=%s", dir);
    const char *extra[] = {env, NULL};
    dtApi other;
    assert_true(dtApiStart(&other, &pg, extra));
    dtResponse r;
    bool answered = dtHttp(&other, "GET", "/config", NULL, NULL, NULL, 0, &r);
    int rc = dtApiStop(&other); /* before any assertion: it must not outlive the test */
    assert_true(answered);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "compatibilityLevel")), "BACKWARD");
    dtResponseFree(&r);
    assert_int_equal(rc, 0);

    char err[512];
    writeDir(dir, NULL);
    dsCodec *c = dsCodecNewFromDir(dir, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(dsCodecCompatibility(c), "FULL_TRANSITIVE");
    dsCodecFree(c);
    writeDir(dir, "forward_transitive");
    assert_non_null(c = dsCodecNewFromDir(dir, err, sizeof(err)));
    assert_string_equal(dsCodecCompatibility(c), "FORWARD_TRANSITIVE");
    dsCodecFree(c);
    writeDir(dir, "SIDEWAYS");
    assert_null(dsCodecNewFromDir(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "compatibility"));
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -r '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* POST /subjects/{subject} with {"schema": text}; caller frees r. */
static void lookup(const char *subject, const char *schema_text, dtResponse *r) {
    char path[96];
    snprintf(path, sizeof(path), "/subjects/%s", subject);
    json_t *body = json_pack("{s:s}", "schema", schema_text);
    char *text = json_dumps(body, JSON_COMPACT);
    request("POST", path, text, r);
    free(text);
    json_decref(body);
}

static void test_lookup(void **state) {
    for (int v = 1; v <= currentVersion(); v++) {
        char *text = schemaFile(v);
        dtResponse r;
        lookup(SUBJECT, text, &r);
        assert_int_equal(r.status, 200);
        assertVersionObject(r.json, v);
        dtResponseFree(&r);

        /* the same schema written differently (a serializer re-renders it) */
        json_t *parsed = json_loads(text, 0, NULL);
        char *compact = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
        lookup(SUBJECT, compact, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(json_integer_value(json_object_get(r.json, "version")), v);
        dtResponseFree(&r);

        lookup("nope-value", text, &r);
        assert_int_equal(r.status, 404);
        assert_int_equal(json_integer_value(json_object_get(r.json, "error_code")), 40401);
        dtResponseFree(&r);
        free(compact);
        json_decref(parsed);
        free(text);
    }
    dtResponse r;
    lookup(SUBJECT, "\"string\"", &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(json_integer_value(json_object_get(r.json, "error_code")), 40403);
    dtResponseFree(&r);
    lookup(SUBJECT, "{\"type\": \"record\", \"name\": \"Other\", \"fields\": []}", &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(json_integer_value(json_object_get(r.json, "error_code")), 40403);
    dtResponseFree(&r);
}


/* lookup() of a JSON schema built by the test; expects status and, for a
 * 200, version, else the error code. Steals schema. */
static void lookupBuilt(json_t *schema, long status, int version_or_code) {
    char *text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(schema);
    dtResponse r;
    lookup(SUBJECT, text, &r);
    if (r.status != status) fprintf(stderr, "lookup %.200s: %ld %s\n", text, r.status, r.body);
    assert_int_equal(r.status, status);
    const char *key = status == 200 ? "version" : "error_code";
    assert_int_equal(json_integer_value(json_object_get(r.json, key)), version_or_code);
    dtResponseFree(&r);
    free(text);
}

/* The field of a schema's record by name (borrowed). */
static json_t *fieldOf(json_t *record, const char *name) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(record, "fields"), i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) return f;
    }
    fail_msg("no field %s", name);
    return NULL;
}

/* The lookup compares schemas in Avro's Parsing Canonical Form without
 * handing the posted text to avro-c: what does not change the binary
 * encoding (docs, defaults, rule attributes, a fullname spelled through
 * the namespace) still finds the version; what does finds none; what is
 * not a valid schema (a named type defined twice, which made avro-c leak
 * on every lookup, a reference to an undefined name, a nesting without
 * end) is 42201. The ASan pass catches a leak in the API at exit. */
static void test_lookup_canonical_form(void **state) {
    int v = currentVersion();
    char *text = schemaFile(v);
    json_t *shipped = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(shipped);

    json_t *s = json_deep_copy(shipped);
    json_object_del(s, "doc");
    json_object_set_new(fieldOf(s, "customer_id"), "type", json_string("string"));
    json_object_set_new(fieldOf(s, "customer_id"), "doc", json_string("another doc"));
    json_object_set_new(fieldOf(s, "reasons"), "default", json_pack("[s]", "OTHER"));
    lookupBuilt(s, 200, v);

    s = json_deep_copy(shipped); /* the fullname in "name", no "namespace" */
    json_object_set_new(s, "name", json_string("com.bnpl.decisions.Decision"));
    json_object_del(s, "namespace");
    lookupBuilt(s, 200, v);

    s = json_deep_copy(shipped); /* another namespace: another schema */
    json_object_set_new(s, "namespace", json_string("com.other"));
    lookupBuilt(s, 404, 40403);

    s = json_deep_copy(shipped); /* one enum symbol fewer */
    json_array_remove(json_object_get(json_object_get(fieldOf(s, "outcome"), "type"), "symbols"), 2);
    lookupBuilt(s, 404, 40403);

    s = json_deep_copy(shipped); /* fields swapped */
    json_t *fields = json_object_get(s, "fields");
    json_t *first = json_incref(json_array_get(fields, 0));
    json_array_remove(fields, 0);
    json_array_append_new(fields, first);
    lookupBuilt(s, 404, 40403);

    for (int i = 0; i < 20; i++) {
        s = json_deep_copy(shipped); /* Outcome defined a second time */
        json_t *again = json_deep_copy(json_object_get(fieldOf(s, "outcome"), "type"));
        json_array_append_new(json_object_get(s, "fields"), json_pack("{s:s, s:o}", "name", "again", "type", again));
        lookupBuilt(s, 422, 42201);
    }
    lookupBuilt(json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "type", "record", "name", "R", "fields", "name", "a", "type",
                          "Undefined"),
                422, 42201);
    lookupBuilt(json_pack("{s:s, s:s, s:[s]}", "type", "enum", "name", "int", "symbols", "A"), 422, 42201);
    lookupBuilt(json_pack("{s:s, s:s, s:[s, s]}", "type", "enum", "name", "E", "symbols", "A", "1B"), 422, 42201);
    lookupBuilt(json_pack("{s:s, s:s}", "type", "record", "name", "R"), 422, 42201);
    json_t *deep = json_string("int");
    for (int i = 0; i < 200; i++) deep = json_pack("{s:s, s:o}", "type", "array", "items", deep);
    lookupBuilt(deep, 422, 42201);
    json_decref(shipped);
}

static void test_lookup_bad_bodies(void **state) {
    expectError("POST", "/subjects/" SUBJECT, "{\"schema\": \"{not json\"}", 422, 42201);
    expectError("POST", "/subjects/" SUBJECT, "{\"schema\": \"{\\\"type\\\": \\\"nosuchtype\\\"}\"}", 422, 42201);
    expectError("POST", "/subjects/" SUBJECT, "{}", 422, 42201);
    expectError("POST", "/subjects/" SUBJECT, "{\"schema\": ", 400, 400);
    expectError("POST", "/subjects/" SUBJECT, "[1]", 400, 400);
    expectError("POST", "/subjects/" SUBJECT, "{\"schema\": \"\\\"string\\\"\", \"schemaType\": \"PROTOBUF\"}", 404,
                40403);
}

static void test_other_methods_405(void **state) {
    const char *cases[][2] = {
        {"DELETE", "/subjects/" SUBJECT "/versions/1"},
        {"POST", "/subjects/" SUBJECT "/versions"}, /* registering is not offered: read-only */
        {"PUT", "/config"},
        {"DELETE", "/subjects/" SUBJECT},
        {"GET", "/subjects/" SUBJECT},
        {"POST", "/schemas/ids/1"},
        {"PUT", "/subjects"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool post = strcmp(cases[i][0], "POST") == 0 || strcmp(cases[i][0], "PUT") == 0;
        expectError(cases[i][0], cases[i][1], post ? "{}" : NULL, 405, 405);
    }
}

static void test_not_a_registry_path(void **state) {
    /* near misses fall through to the API's own 404 */
    const char *paths[] = {"/subjects/", "/schemas/ids", "/schemas/ids/1/versions/1", "/subjects//versions",
                           "/schemas/idz/1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        dtResponse r;
        assert_true(dtHttp(&api, "GET", paths[i], NULL, NULL, NULL, 0, &r));
        if (r.status != 404) fprintf(stderr, "GET %s: %ld %s\n", paths[i], r.status, r.body);
        assert_int_equal(r.status, 404);
        assert_string_equal(json_string_value(json_object_get(r.json, "error")), "not_found");
        dtResponseFree(&r);
    }
}

/* An independent Avro implementation must accept the served schema: pipes
 * the /schemas/ids/{id} answer into python3-avro's parser. */
static void test_python_avro_parses_current(void **state) {
    char path[64];
    dtResponse r;
    snprintf(path, sizeof(path), "/schemas/ids/%d", idOf(currentVersion()));
    expectOk(path, &r);
    FILE *py = popen("/usr/bin/python3 -c 'import avro.schema,sys,json; "
                     "avro.schema.parse(json.load(sys.stdin)[\"schema\"])'",
                     "w");
    assert_non_null(py);
    assert_int_equal(fwrite(r.body, 1, r.len, py), r.len);
    int status = pclose(py);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "python3-avro refused: %s\n", r.body);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    dtResponseFree(&r);
}

static void test_metrics_route_labels(void **state) {
    dtResponse r;
    assert_true(dtHttp(&api, "GET", "/metrics", NULL, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 200);
    const char *labels[] = {
        "route=\"GET /schemas/ids/{id}\",status=\"200\"",
        "route=\"GET /schemas/ids/{id}\",status=\"404\"",
        "route=\"GET /schemas/ids/{id}/versions\",status=\"200\"",
        "route=\"GET /subjects\",status=\"200\"",
        "route=\"GET /subjects/{subject}/versions\",status=\"200\"",
        "route=\"GET /subjects/{subject}/versions/{version}\",status=\"200\"",
        "route=\"GET /subjects/{subject}/versions/{version}\",status=\"422\"",
        "route=\"POST /subjects/{subject}\",status=\"200\"",
        "route=\"GET /config\",status=\"200\"",
    };
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        if (strstr(r.body, labels[i]) == NULL) fprintf(stderr, "missing in /metrics: %s\n", labels[i]);
        assert_non_null(strstr(r.body, labels[i]));
    }
    dtResponseFree(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_by_id),
        cmocka_unit_test(test_schema_by_id_unknown),
        cmocka_unit_test(test_subjects_and_versions),
        cmocka_unit_test(test_subject_version),
        cmocka_unit_test(test_subject_version_invalid),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_from_manifest),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_lookup_bad_bodies),
        cmocka_unit_test(test_lookup_canonical_form),
        cmocka_unit_test(test_other_methods_405),
        cmocka_unit_test(test_not_a_registry_path),
        cmocka_unit_test(test_python_avro_parses_current),
        /* last: counts the requests of the tests above */
        cmocka_unit_test(test_metrics_route_labels),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
