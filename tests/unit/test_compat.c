/* test_compat.c - schema-level compatibility (schemas/src/compat.c) and the
 * schema tool (schemas/tool/decision_schemas.c): the shipped v1 and the
 * fixture v2 pass both ways; each breaking change (a removed field without
 * default, a changed type, a renamed enum symbol, an added enum symbol) is
 * refused with a message naming the field and the rule; the modes and
 * their transitive forms pick the right pairs and directions; unions,
 * promotions and named types follow the specification. Then the built tool:
 * `check` passes on schemas/decision, fails on a broken directory, and
 * `register` talks to a fake Confluent registry (tests/support/fakehttp.h)
 * and records its ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ds/compat.h"
#include "fakehttp.h"
#include "fixture_schemas.h"

/* ---- helpers ---- */

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

/* A file of the fixture set (v1.avsc is the shipped file itself). */
static const dsEmbeddedFile *fixtureFile(const char *name) {
    for (size_t i = 0; i < dtFixtureSchemasCount; i++)
        if (strcmp(dtFixtureSchemas[i].name, name) == 0) return &dtFixtureSchemas[i];
    fail_msg("no fixture file %s", name);
    return NULL;
}

static json_t *fixtureSchema(const char *name) {
    const dsEmbeddedFile *f = fixtureFile(name);
    json_t *j = json_loadb((const char *)f->data, f->len, 0, NULL);
    assert_non_null(j);
    return j;
}

static json_t *fieldOf(json_t *record, const char *name) {
    json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), name) == 0)
            return json_array_get(fields, i);
    fail_msg("no field %s", name);
    return NULL;
}

static void removeField(json_t *record, const char *name) {
    json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), name) == 0) {
            json_array_remove(fields, i);
            return;
        }
    fail_msg("no field %s", name);
}

/* The record type of checks[] in a decision schema. */
static json_t *checkRecord(json_t *decision) {
    return json_object_get(json_object_get(fieldOf(decision, "checks"), "type"), "items");
}

static json_t *outcomeSymbols(json_t *decision) {
    return json_object_get(json_object_get(fieldOf(decision, "outcome"), "type"), "symbols");
}

static void expectOk(const json_t *reader, const json_t *writer) {
    char err[1024] = "";
    if (!dsCompatCheck(reader, writer, err, sizeof err)) fail_msg("refused: %s", err);
}

static void expectFail(const json_t *reader, const json_t *writer, const char *want) {
    char err[1024] = "";
    assert_false(dsCompatCheck(reader, writer, err, sizeof err));
    if (!strstr(err, want)) fail_msg("message \"%s\"\ndoes not contain \"%s\"", err, want);
}

/* versions[1] against versions[0] under mode: ok when want is NULL, else a
 * failure whose message contains want. */
static void expectPair(json_t *older, json_t *newer, dsCompatMode mode, const char *want) {
    dsCompatVersion v[2] = {{1, older}, {2, newer}};
    char err[1024] = "";
    bool ok = dsCompatCheckVersions(v, 1, mode, NULL, NULL, err, sizeof err);
    if (!want && !ok) fail_msg("%s refused: %s", dsCompatModeName(mode), err);
    if (want && ok) fail_msg("%s passed, expected \"%s\"", dsCompatModeName(mode), want);
    if (want && !strstr(err, want)) fail_msg("%s: message \"%s\"\ndoes not contain \"%s\"", dsCompatModeName(mode), err, want);
}

/* ---- the shipped and fixture versions ---- */

static void test_v1_v2_v3(void **state) {
    json_t *v[3] = {fixtureSchema("v1.avsc"), fixtureSchema("v2.avsc"), fixtureSchema("v3.avsc")};
    for (int older = 0; older < 3; older++)
        for (int newer = older; newer < 3; newer++) {
            expectOk(v[newer], v[older]); /* later versions add fields with defaults: they read older data */
            expectOk(v[older], v[newer]); /* and older readers drop them */
            for (dsCompatMode m = DS_COMPAT_BACKWARD; m <= DS_COMPAT_NONE; m++) expectPair(v[older], v[newer], m, NULL);
        }
    for (int i = 0; i < 3; i++) json_decref(v[i]);
}

/* ---- breaking changes ---- */

/* The reader requires a field the writer does not have. */
static void test_removed_field_without_default(void **state) {
    json_t *v1 = fixtureSchema("v1.avsc"), *gone = fixtureSchema("v1.avsc");
    removeField(gone, "producer");
    expectFail(v1, gone, "producer: field \"producer\" has no default and is missing from the writer");
    expectOk(gone, v1); /* the reader without it drops the writer's */
    /* Removing a required field: the new version still reads old data, the
     * old version cannot read new data. */
    expectPair(v1, gone, DS_COMPAT_BACKWARD, NULL);
    expectPair(v1, gone, DS_COMPAT_FORWARD,
               "version 1 (reader) cannot read version 2 (writer): producer: field \"producer\" has no default and is "
               "missing from the writer");
    expectPair(v1, gone, DS_COMPAT_FULL_TRANSITIVE, "field \"producer\" has no default");
    /* Nested: the path names the array's items. */
    json_t *nested = fixtureSchema("v1.avsc");
    removeField(checkRecord(nested), "performed_at");
    expectFail(v1, nested, "checks[].performed_at: field \"performed_at\" has no default and is missing from the writer");
    /* A removed optional field is no break either way. */
    json_t *optional = fixtureSchema("v1.avsc");
    removeField(optional, "reasons");
    expectPair(v1, optional, DS_COMPAT_FULL_TRANSITIVE, NULL);
    json_decref(v1);
    json_decref(gone);
    json_decref(nested);
    json_decref(optional);
}

static void test_changed_type(void **state) {
    json_t *v1 = fixtureSchema("v1.avsc"), *v2 = fixtureSchema("v1.avsc");
    json_t *money = json_object_get(fieldOf(v2, "amount"), "type");
    json_object_set_new(fieldOf(money, "value"), "type", json_string("string"));
    expectFail(v2, v1, "amount.value: type changed from long to string");
    /* dsCompatCheck() tells a change from the writer's type to the reader's... */
    expectFail(v1, v2, "amount.value: type changed from string to long");
    /* ...the modes from the older version's to the newer's, both ways. */
    expectPair(v1, v2, DS_COMPAT_BACKWARD,
               "version 2 (reader) cannot read version 1 (writer): amount.value: type changed from long to string");
    expectPair(v1, v2, DS_COMPAT_FORWARD,
               "version 1 (reader) cannot read version 2 (writer): amount.value: type changed from long to string");
    /* A promotion is no change: long -> double reads old data. */
    json_object_set_new(fieldOf(money, "value"), "type", json_string("double"));
    expectPair(v1, v2, DS_COMPAT_BACKWARD, NULL);
    expectPair(v1, v2, DS_COMPAT_FORWARD, "amount.value: type changed from long to double");
    json_decref(v1);
    json_decref(v2);
}

static void test_renamed_enum_symbol(void **state) {
    json_t *v1 = fixtureSchema("v1.avsc"), *v2 = fixtureSchema("v1.avsc");
    json_array_set_new(outcomeSymbols(v2), 2, json_string("REVIEW")); /* REFERRED -> REVIEW */
    expectFail(v2, v1,
               "outcome: enum symbol \"REFERRED\" of the writer is not in the reader and the reader's enum has no "
               "default");
    expectFail(v1, v2, "outcome: enum symbol \"REVIEW\" of the writer is not in the reader");
    expectPair(v1, v2, DS_COMPAT_FULL, "version 2 (reader) cannot read version 1 (writer): outcome: enum symbol \"REFERRED\"");
    /* In checks[]: the path says where. */
    json_t *c2 = fixtureSchema("v1.avsc");
    json_t *syms = json_object_get(json_object_get(fieldOf(checkRecord(c2), "outcome"), "type"), "symbols");
    json_array_set_new(syms, 3, json_string("SKIP"));
    expectFail(c2, v1, "checks[].outcome: enum symbol \"SKIPPED\" of the writer is not in the reader");
    json_decref(v1);
    json_decref(v2);
    json_decref(c2);
}

static void test_added_enum_symbol(void **state) {
    json_t *v1 = fixtureSchema("v1.avsc"), *v2 = fixtureSchema("v1.avsc");
    json_array_append_new(outcomeSymbols(v2), json_string("CANCELLED"));
    expectPair(v1, v2, DS_COMPAT_BACKWARD, NULL); /* the new reader knows every old symbol */
    expectPair(v1, v2, DS_COMPAT_FORWARD,
               "version 1 (reader) cannot read version 2 (writer): outcome: enum symbol \"CANCELLED\" of the writer is "
               "not in the reader and the reader's enum has no default");
    /* An old reader with an enum default takes it for the new symbol. */
    json_object_set_new(json_object_get(fieldOf(v1, "outcome"), "type"), "default", json_string("REFERRED"));
    expectPair(v1, v2, DS_COMPAT_FULL, NULL);
    json_decref(v1);
    json_decref(v2);
}

/* A new required field: old data lacks it (BACKWARD breaks), old readers
 * ignore it (FORWARD holds); with a default both hold. */
static void test_modes_new_field(void **state) {
    json_t *v1 = fixtureSchema("v1.avsc"), *v2 = fixtureSchema("v1.avsc");
    json_array_append_new(json_object_get(v2, "fields"), parse("{\"name\": \"risk_score\", \"type\": \"double\"}"));
    expectPair(v1, v2, DS_COMPAT_FORWARD, NULL);
    expectPair(v1, v2, DS_COMPAT_FORWARD_TRANSITIVE, NULL);
    expectPair(v1, v2, DS_COMPAT_NONE, NULL);
    const char *want = "version 2 (reader) cannot read version 1 (writer): risk_score: field \"risk_score\" has no "
                       "default and is missing from the writer";
    expectPair(v1, v2, DS_COMPAT_BACKWARD, want);
    expectPair(v1, v2, DS_COMPAT_BACKWARD_TRANSITIVE, want);
    expectPair(v1, v2, DS_COMPAT_FULL, want);
    expectPair(v1, v2, DS_COMPAT_FULL_TRANSITIVE, want);
    json_object_set_new(fieldOf(v2, "risk_score"), "default", json_real(0));
    expectPair(v1, v2, DS_COMPAT_FULL_TRANSITIVE, NULL);
    json_decref(v1);
    json_decref(v2);
}

typedef struct pairLog {
    char lines[8][256];
    size_t n;
} pairLog;

static void logPair(void *ctx, int newer, int older, const char *failure) {
    pairLog *l = ctx;
    if (l->n < 8) snprintf(l->lines[l->n++], sizeof l->lines[0], "%d-%d %s", newer, older, failure ? failure : "ok");
}

/* Each step passes BACKWARD, the history does not: a removes, then comes
 * back with another type. */
static void test_transitive(void **state) {
    json_t *s1 = parse("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"a\", \"type\": \"long\"}]}");
    json_t *s2 = parse("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"b\", \"type\": \"int\", "
                       "\"default\": 0}]}");
    json_t *s3 = parse("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"b\", \"type\": \"int\", "
                       "\"default\": 0}, {\"name\": \"a\", \"type\": \"string\", \"default\": \"\"}]}");
    dsCompatVersion v[3] = {{1, s1}, {2, s2}, {3, s3}};
    char err[1024] = "";
    pairLog log = {0};
    assert_true(dsCompatCheckVersions(v, 1, DS_COMPAT_BACKWARD, NULL, NULL, err, sizeof err));
    assert_true(dsCompatCheckVersions(v, 2, DS_COMPAT_BACKWARD, logPair, &log, err, sizeof err));
    assert_int_equal(log.n, 1);
    assert_string_equal(log.lines[0], "3-2 ok");
    log.n = 0;
    assert_false(dsCompatCheckVersions(v, 2, DS_COMPAT_BACKWARD_TRANSITIVE, logPair, &log, err, sizeof err));
    assert_int_equal(log.n, 2); /* every earlier version, the previous one first */
    assert_string_equal(log.lines[0], "3-2 ok");
    assert_string_equal(log.lines[1], "3-1 version 3 (reader) cannot read version 1 (writer): a: type changed from "
                                      "long to string");
    assert_string_equal(err, log.lines[1] + 4);
    assert_true(dsCompatCheckVersions(v, 0, DS_COMPAT_FULL_TRANSITIVE, NULL, NULL, err, sizeof err)); /* nothing earlier */
    json_decref(s1);
    json_decref(s2);
    json_decref(s3);
}

/* ---- the specification's other rules, on small schemas ---- */

static void expectText(const char *reader, const char *writer, const char *want) {
    json_t *r = parse(reader), *w = parse(writer);
    if (want) expectFail(r, w, want);
    else expectOk(r, w);
    json_decref(r);
    json_decref(w);
}

static void test_promotions(void **state) {
    static const char *const ok[][2] = {
        {"\"long\"", "\"int\""},     {"\"float\"", "\"int\""},   {"\"double\"", "\"int\""},
        {"\"float\"", "\"long\""},   {"\"double\"", "\"long\""}, {"\"double\"", "\"float\""},
        {"\"bytes\"", "\"string\""}, {"\"string\"", "\"bytes\""},
        {"{\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}", "\"long\""},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) expectText(ok[i][0], ok[i][1], NULL);
    expectText("\"int\"", "\"long\"", "the record: type changed from long to int");
    expectText("\"float\"", "\"double\"", "type changed from double to float");
    expectText("\"boolean\"", "\"int\"", "type changed from int to boolean");
}

static void test_unions(void **state) {
    expectText("[\"null\", \"long\"]", "[\"null\", \"int\"]", NULL);
    expectText("[\"null\", \"string\"]", "\"string\"", NULL);
    expectText("\"string\"", "[\"string\"]", NULL); /* every writer branch resolves */
    expectText("\"string\"", "[\"null\", \"string\"]",
               "type changed from union [null, string] to string (the writer's union branch null does not resolve)");
    expectText("[\"null\", \"string\"]", "\"long\"",
               "type changed from long to union [null, string] (no branch of the reader's union matches)");
    expectText("[\"null\", \"string\"]", "[\"null\", \"long\"]",
               "union branch long of the writer matches no branch of the reader's union [null, string]");
    /* The first matching branch is the one resolved, and must resolve deeply. */
    expectText("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"u\", \"type\": [\"null\","
               " {\"type\": \"record\", \"name\": \"M\", \"fields\": [{\"name\": \"x\", \"type\": \"int\"}]}]}]}",
               "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"u\", \"type\":"
               " {\"type\": \"record\", \"name\": \"M\", \"fields\": [{\"name\": \"y\", \"type\": \"int\"}]}}]}",
               "u.x: field \"x\" has no default and is missing from the writer");
}

static void test_named_and_containers(void **state) {
    const char *money = "{\"type\": \"record\", \"name\": \"a.Money\", \"fields\": [{\"name\": \"v\", \"type\": \"long\"}]}";
    /* Named types match by unqualified name: a namespace move is no break. */
    expectText(money, "{\"type\": \"record\", \"name\": \"b.Money\", \"fields\": [{\"name\": \"v\", \"type\": \"long\"}]}",
               NULL);
    expectText(money, "{\"type\": \"record\", \"name\": \"a.Cash\", \"fields\": [{\"name\": \"v\", \"type\": \"long\"}]}",
               "the record: type changed from record a.Cash to record a.Money (named types match by unqualified name)");
    expectText("{\"type\": \"fixed\", \"name\": \"F\", \"size\": 8}", "{\"type\": \"fixed\", \"name\": \"F\", \"size\": 16}",
               "fixed size changed from 16 to 8");
    /* Arrays and maps element by element; the path says where. */
    expectText("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"m\", \"type\": {\"type\": \"map\","
               " \"values\": {\"type\": \"array\", \"items\": \"string\"}}}]}",
               "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"m\", \"type\": {\"type\": \"map\","
               " \"values\": {\"type\": \"array\", \"items\": \"int\"}}}]}",
               "m{}[]: type changed from int to string");
    /* A reference by name resolves in the enclosing namespace; a recursive
     * record terminates. */
    const char *list = "{\"type\": \"record\", \"name\": \"Node\", \"namespace\": \"n\", \"fields\": ["
                       "{\"name\": \"money\", \"type\": {\"type\": \"record\", \"name\": \"Money\", \"fields\": "
                       "[{\"name\": \"v\", \"type\": \"long\"}]}}, {\"name\": \"also\", \"type\": \"Money\"},"
                       " {\"name\": \"next\", \"type\": [\"null\", \"n.Node\"]}]}";
    expectText(list, list, NULL);
    expectText(list, "{\"type\": \"record\", \"name\": \"Node\", \"fields\": [{\"name\": \"money\", \"type\": "
               "{\"type\": \"record\", \"name\": \"Money\", \"fields\": [{\"name\": \"v\", \"type\": \"int\"}]}},"
               " {\"name\": \"also\", \"type\": \"Money\"}, {\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}",
               NULL);
    expectText(list, "{\"type\": \"record\", \"name\": \"Node\", \"fields\": [{\"name\": \"money\", \"type\": "
               "{\"type\": \"record\", \"name\": \"Money\", \"fields\": [{\"name\": \"v\", \"type\": \"string\"}]}},"
               " {\"name\": \"also\", \"type\": \"Money\"}, {\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}",
               "money.v: type changed from string to long");
    expectText("{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"x\", \"type\": \"Nope\"}]}",
               "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"x\", \"type\": \"int\"}]}",
               "x: the reader's type \"Nope\" is unknown");
}

static void test_mode_names(void **state) {
    dsCompatMode m;
    for (dsCompatMode i = DS_COMPAT_BACKWARD; i <= DS_COMPAT_NONE; i++) {
        assert_true(dsCompatParseMode(dsCompatModeName(i), &m));
        assert_int_equal(m, i);
    }
    assert_true(dsCompatParseMode("full_transitive", &m));
    assert_int_equal(m, DS_COMPAT_FULL_TRANSITIVE);
    assert_string_equal(dsCompatModeName(DS_COMPAT_BACKWARD_TRANSITIVE), "BACKWARD_TRANSITIVE");
    assert_false(dsCompatParseMode("FULLY", &m));
    assert_false(dsCompatParseMode(NULL, &m));
}

/* ---- the tool ---- */

static const char *toolPath(void) {
    static char path[512];
    const char *build = getenv("BUILD");
    snprintf(path, sizeof path, "%s/bin/decision-schemas", build && *build ? build : "build");
    if (access(path, X_OK) != 0) fail_msg("%s is not built (make check builds it)", path);
    return path;
}

/* Runs the tool with args; its stdout and stderr into out; the exit status. */
static int runTool(const char *args, char *out, size_t outlen) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", toolPath(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void writeFile(const char *dir, const char *name, const void *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void writeJson(const char *dir, const char *name, const json_t *j) {
    char *text = json_dumps(j, JSON_INDENT(2));
    writeFile(dir, name, text, strlen(text));
    free(text);
}

/* A temporary schema directory holding the fixture set (v1, v2, v3). */
static char *fixtureDir(void) {
    char *dir = strdup("/tmp/test_compat.XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *names[] = {"manifest.json", "v1.avsc", "v2.avsc", "v3.avsc"};
    for (size_t i = 0; i < 4; i++) writeFile(dir, names[i], fixtureFile(names[i])->data, fixtureFile(names[i])->len);
    return dir;
}

static void removeDir(char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static void test_tool_check(void **state) {
    char out[8192];
    int rc = runTool("check --dir schemas/decision", out, sizeof out);
    if (rc != 0) fail_msg("decision-schemas check exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "mode FULL_TRANSITIVE")); /* the manifest's "compatibility" */
    char *dir = fixtureDir(), args[600];
    snprintf(args, sizeof args, "check --dir %s", dir);
    assert_int_equal(runTool(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "version 2 against version 1 (FULL_TRANSITIVE): ok"));
    /* A breaking v2 fails, naming versions, field and rule. */
    json_t *v2 = fixtureSchema("v2.avsc");
    json_array_set_new(outcomeSymbols(v2), 2, json_string("REVIEW"));
    writeJson(dir, "v2.avsc", v2);
    assert_int_equal(runTool(args, out, sizeof out), 1);
    if (!strstr(out, "version 2 against version 1 (FULL_TRANSITIVE): incompatible: version 2 (reader) cannot read "
                     "version 1 (writer): outcome: enum symbol \"REFERRED\" of the writer is not in the reader"))
        fail_msg("unexpected output:\n%s", out);
    /* Under NONE the same directory passes; a bad mode is a usage error. */
    snprintf(args, sizeof args, "check --dir %s --mode NONE", dir);
    assert_int_equal(runTool(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "check --dir %s --mode SIDEWAYS", dir);
    assert_int_equal(runTool(args, out, sizeof out), 2);
    json_decref(v2);
    removeDir(dir);
}

/* Manifest mistakes and schemas the codec refuses fail check (status 1). */
static void test_tool_check_manifest(void **state) {
    static const char *const bad[][2] = {
        {"{\"subject\": \"s\", \"current\": 2, \"versions\": [{\"version\": 2, \"id\": 2, \"file\": \"v2.avsc\"},"
         " {\"version\": 1, \"id\": 3, \"file\": \"v1.avsc\"}]}", "version 1 follows version 2"},
        {"{\"subject\": \"s\", \"current\": 2, \"versions\": [{\"version\": 1, \"id\": 2, \"file\": \"v1.avsc\"},"
         " {\"version\": 2, \"id\": 2, \"file\": \"v2.avsc\"}]}", "id 2 follows id 2"},
        {"{\"subject\": \"s\", \"current\": 3, \"versions\": [{\"version\": 1, \"id\": 1, \"file\": \"v1.avsc\"}]}",
         "the current version 3 is not listed"},
        {"{\"subject\": \"s\", \"current\": 1, \"compatibility\": \"SOME\", \"versions\": [{\"version\": 1, \"id\": 1,"
         " \"file\": \"v1.avsc\"}]}", "\"compatibility\" must be"},
        {"{\"subject\": \"s\", \"current\": 1, \"versions\": [{\"version\": 1, \"id\": 1, \"file\": \"v9.avsc\"}]}",
         "v9.avsc: No such file"},
        /* v3 has a rule the codec does not know */
        {"{\"subject\": \"s\", \"current\": 1, \"versions\": [{\"version\": 1, \"id\": 1, \"file\": \"v3.avsc\"}]}",
         "minLenght"},
    };
    char *dir = fixtureDir(), args[600], out[8192];
    json_t *v3 = fixtureSchema("v1.avsc");
    json_object_set_new(json_object_get(fieldOf(v3, "producer"), "type"), "minLenght", json_integer(1));
    writeJson(dir, "v3.avsc", v3);
    snprintf(args, sizeof args, "check --dir %s", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        writeFile(dir, "manifest.json", bad[i][0], strlen(bad[i][0]));
        int rc = runTool(args, out, sizeof out);
        if (rc != 1 || !strstr(out, bad[i][1])) fail_msg("case %zu: status %d, output:\n%s", i, rc, out);
    }
    json_decref(v3);
    removeDir(dir);
}

/* ---- a fake Confluent schema registry ---- */

typedef struct fakeRegistry {
    dtFakeHttp http;
    int port;
    int status;         /* what it answers */
    const char *answer; /* the body; "%d" receives the next id */
    int next_id;
    size_t served;
    char path[8][256], ctype[8][128];
    json_t *bodies; /* the request bodies, parsed */
} fakeRegistry;

/* On the server thread: records the request, answers from the template. */
static int fakeAnswer(void *arg, const dtFakeRequest *req, char *body, size_t cap) {
    fakeRegistry *r = arg;
    size_t i = r->served++;
    if (i < 8) {
        snprintf(r->path[i], sizeof r->path[i], "%s", req->path);
        snprintf(r->ctype[i], sizeof r->ctype[i], "%s", req->content_type);
    }
    json_t *parsed = json_loadb(req->body, req->len, 0, NULL);
    json_array_append_new(r->bodies, parsed ? parsed : json_null());
    snprintf(body, cap, r->answer, r->next_id++);
    return r->status;
}

static void fakeStart(fakeRegistry *r, int status, const char *answer) {
    *r = (fakeRegistry){.status = status, .answer = answer, .next_id = 101, .bodies = json_array()};
    assert_true(dtFakeHttpStart(&r->http, fakeAnswer, r));
    r->port = r->http.port;
}

/* Waits for the server thread; r->bodies stays for the test to release. */
static void fakeStop(fakeRegistry *r) {
    dtFakeHttpStop(&r->http);
}

static void test_tool_register(void **state) {
    char *dir = fixtureDir(), args[700], out[8192], url[64], path[600];
    fakeRegistry r;
    fakeStart(&r, 200, "{\"id\": %d}");
    snprintf(url, sizeof url, "http://127.0.0.1:%d", r.port);
    snprintf(args, sizeof args, "register --dir %s --registry %s/", dir, url);
    int rc = runTool(args, out, sizeof out);
    fakeStop(&r);
    if (rc != 0) fail_msg("register exited %d:\n%s", rc, out);
    assert_int_equal(r.served, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(r.path[i], "/subjects/decisions-value/versions");
        assert_string_equal(r.ctype[i], "application/vnd.schemaregistry.v1+json");
    }
    /* The body carries each file's text, in version order. */
    const dsEmbeddedFile *v1 = fixtureFile("v1.avsc");
    const char *sent = json_string_value(json_object_get(json_array_get(r.bodies, 0), "schema"));
    assert_non_null(sent);
    assert_memory_equal(sent, v1->data, v1->len);
    json_decref(r.bodies);
    /* The ids are recorded under the registry URL; the manifest still checks. */
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_t *m = json_load_file(path, 0, NULL);
    assert_non_null(m);
    /* The layout people edit by hand survives: one version a line. */
    char text[4096] = "";
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "\n    {\"version\": 1, \"id\": 1, \"file\": \"v1.avsc\"},\n"));
    json_t *ids = json_object_get(json_object_get(m, "registry_ids"), url);
    assert_int_equal(json_integer_value(json_object_get(ids, "1")), 101);
    assert_int_equal(json_integer_value(json_object_get(ids, "2")), 102);
    assert_int_equal(json_integer_value(json_object_get(ids, "3")), 103);
    assert_int_equal(json_integer_value(json_object_get(m, "current")), 3);
    json_decref(m);
    snprintf(args, sizeof args, "check --dir %s", dir);
    assert_int_equal(runTool(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "show --dir %s", dir);
    assert_int_equal(runTool(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"1\": 101"));
    removeDir(dir);
}

static void test_tool_register_refused(void **state) {
    char *dir = fixtureDir(), args[700], out[8192];
    fakeRegistry r;
    fakeStart(&r, 409, "{\"error_code\": 409, \"message\": \"Schema being registered is incompatible (%d)\"}");
    snprintf(args, sizeof args, "register --dir %s --registry http://127.0.0.1:%d", dir, r.port);
    int rc = runTool(args, out, sizeof out);
    fakeStop(&r);
    assert_int_equal(rc, 1);
    if (!strstr(out, "version 1: the registry answered 409: Schema being registered is incompatible (101)"))
        fail_msg("unexpected output:\n%s", out);
    assert_int_equal(r.served, 1); /* it stops at the first refusal */
    json_decref(r.bodies);
    /* Nothing was registered, so the manifest is untouched. */
    char path[600], text[4096] = "";
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    assert_int_equal(n, fixtureFile("manifest.json")->len);
    assert_memory_equal(text, fixtureFile("manifest.json")->data, n);
    assert_int_equal(runTool("register --dir schemas/decision", out, sizeof out), 2); /* no --registry */
    removeDir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_v2_v3),
        cmocka_unit_test(test_removed_field_without_default),
        cmocka_unit_test(test_changed_type),
        cmocka_unit_test(test_renamed_enum_symbol),
        cmocka_unit_test(test_added_enum_symbol),
        cmocka_unit_test(test_modes_new_field),
        cmocka_unit_test(test_transitive),
        cmocka_unit_test(test_promotions),
        cmocka_unit_test(test_unions),
        cmocka_unit_test(test_named_and_containers),
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_tool_check),
        cmocka_unit_test(test_tool_check_manifest),
        cmocka_unit_test(test_tool_register),
        cmocka_unit_test(test_tool_register_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
