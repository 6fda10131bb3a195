/* test_learn.c - the registry learner (schemas/src/learn.c) against a
 * stand-in registry inside the test (tests/support/fakehttp.h): a codec
 * loaded from a version-1-only directory learns version 2 by id and by
 * version, then decodes a version 2 record; an id already known asks
 * nothing; 404 (40403, 40402), a schema under another subject and a schema
 * the codec refuses are permanent; a registry that is down, answers 503 or
 * 429 is transient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ds/learn.h"
#include "fakehttp.h"
#include "schemadir.h"

typedef struct registry {
    dtFakeHttp http;
    char url[64];
    char *v2;      /* version 2's text */
    char *bad;     /* a schema the codec refuses: an unknown rule attribute */
    atomic_int served;   /* requests answered */
    atomic_int overload; /* the status every request gets when not 0 (503, 429) */
} registry;

typedef struct fixture {
    registry reg;
    char dir[64];
    dsCodec *c;    /* loaded from a directory with version 1 only */
    dsLearner *l;
} fixture;

/* {"schema": text} as the registry answers /schemas/ids/{id}. */
static void schemaAnswer(const char *text, char *body, size_t cap, int id) {
    json_t *j = id ? json_pack("{s:s, s:i, s:i, s:s}", "subject", "decisions-value", "version", 2, "id", id, "schema",
                               text)
                   : json_pack("{s:s}", "schema", text);
    char *s = json_dumps(j, JSON_COMPACT);
    snprintf(body, cap, "%s", s);
    free(s);
    json_decref(j);
}

/* The registry's answers, by path (runs on the server thread). */
static int registryAnswer(void *arg, const dtFakeRequest *req, char *body, size_t cap) {
    registry *r = arg;
    r->served++;
    if (r->overload) return snprintf(body, cap, "{\"error_code\": 50001, \"message\": \"busy\"}"), r->overload;
    if (strcmp(req->path, "/schemas/ids/2") == 0 || strcmp(req->path, "/schemas/ids/3") == 0) {
        schemaAnswer(r->v2, body, cap, 0);
        return 200;
    }
    if (strcmp(req->path, "/schemas/ids/4") == 0) {
        schemaAnswer(r->bad, body, cap, 0);
        return 200;
    }
    if (strcmp(req->path, "/schemas/ids/2/versions") == 0 || strcmp(req->path, "/schemas/ids/4/versions") == 0)
        return snprintf(body, cap, "[{\"subject\": \"decisions-value\", \"version\": 2}]"), 200;
    if (strcmp(req->path, "/schemas/ids/3/versions") == 0) /* the same text under another subject */
        return snprintf(body, cap, "[{\"subject\": \"payments-value\", \"version\": 1}]"), 200;
    if (strcmp(req->path, "/subjects/decisions-value/versions/2") == 0) {
        schemaAnswer(r->v2, body, cap, 2);
        return 200;
    }
    if (strncmp(req->path, "/subjects/decisions-value/versions/", 35) == 0)
        return snprintf(body, cap, "{\"error_code\": 40402, \"message\": \"Version not found\"}"), 404;
    return snprintf(body, cap, "{\"error_code\": 40403, \"message\": \"Schema not found\"}"), 404;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char err[512];
    snprintf(f->dir, sizeof f->dir, "/tmp/test_learn.XXXXXX");
    json_t *bad = NULL;
    if (!mkdtemp(f->dir) || !dtSchemaDirWrite(f->dir, 1) || !(f->reg.v2 = dtSchemaV2Text())) return -1;
    /* version 2 with a misspelt rule the codec refuses */
    bad = json_loads(f->reg.v2, 0, NULL);
    json_t *field = json_array_get(json_object_get(bad, "fields"), 0);
    json_object_set_new(json_object_get(field, "type"), "minLenght", json_integer(1));
    f->reg.bad = json_dumps(bad, JSON_COMPACT);
    json_decref(bad);
    if (!(f->c = dsCodecNewFromDir(f->dir, err, sizeof err))) return fprintf(stderr, "%s\n", err), -1;
    if (!dtFakeHttpStart(&f->reg.http, registryAnswer, &f->reg)) return -1;
    snprintf(f->reg.url, sizeof f->reg.url, "http://127.0.0.1:%d/", f->reg.http.port);
    if (!(f->l = dsLearnerNew(f->reg.url, "--registry-url", err, sizeof err))) return fprintf(stderr, "%s\n", err), -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    dsLearnerFree(f->l);
    dtFakeHttpStop(&f->reg.http);
    dsCodecFree(f->c);
    free(f->reg.v2);
    free(f->reg.bad);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* A version 2 record in the wire format, made by a codec that has it. */
static void *v2Record(fixture *f, size_t *len) {
    char err[256], dir[80];
    snprintf(dir, sizeof dir, "%s/two", f->dir);
    assert_true(dtSchemaDirWrite(dir, 2));
    dsCodec *two = dsCodecNewFromDir(dir, err, sizeof err);
    assert_non_null(two);
    avro_value_t v;
    dsCodecError cerr;
    json_t *doc = json_load_file("tests/fixtures/decision.json", 0, NULL);
    dtSchemaV2Tag(doc, "learned");
    assert_true(dsCodecNewValue(two, &v));
    assert_true(dsCodecFromJson(two, doc, &v, &cerr));
    *len = dsCodecEncodeWire(two, &v, NULL, 0, err, sizeof err);
    void *buf = malloc(*len);
    assert_int_equal(dsCodecEncodeWire(two, &v, buf, *len, err, sizeof err), *len);
    avro_value_decref(&v);
    json_decref(doc);
    dsCodecFree(two);
    return buf;
}

static void test_learn_by_id(void **state) {
    fixture *f = *state;
    char err[512] = "";
    size_t len;
    void *rec = v2Record(f, &len);
    assert_int_equal(dsCodecWireId(rec, len), 2);
    assert_int_equal(dsCodecVersionOfId(f->c, 2), -1);
    dsLearnResult r = dsLearnId(f->l, f->c, 2, err, sizeof err);
    if (r != DS_LEARN_OK) fail_msg("%d: %s", r, err);
    assert_int_equal(dsCodecVersionOfId(f->c, 2), 2);
    assert_int_equal(dsCodecCurrentVersion(f->c), 1); /* learning does not move the current version */
    int served = f->reg.served;
    assert_int_equal(served, 2); /* the schema, then its versions */
    /* Already known: nothing is asked. */
    assert_int_equal(dsLearnId(f->l, f->c, 2, err, sizeof err), DS_LEARN_OK);
    assert_int_equal(dsLearnVersion(f->l, f->c, 2, err, sizeof err), DS_LEARN_OK);
    assert_int_equal(f->reg.served, served);
    /* The record decodes now, in its own version and resolved to version 1. */
    avro_value_t v;
    int version = 0;
    assert_true(dsCodecNewVersionValue(f->c, 2, &v));
    assert_true(dsCodecDecodeWire(f->c, rec, len, &v, &version, err, sizeof err));
    assert_int_equal(version, 2);
    json_t *j = dsCodecToJson(f->c, &v, 0);
    assert_string_equal(dtSchemaV2TagOf(j), "learned");
    json_decref(j);
    avro_value_decref(&v);
    assert_true(dsCodecNewValue(f->c, &v));
    assert_true(dsCodecDecodeWire(f->c, rec, len, &v, &version, err, sizeof err));
    avro_value_decref(&v);
    free(rec);
}

static void test_learn_by_version(void **state) {
    fixture *f = *state;
    char err[512] = "";
    dsLearnResult r = dsLearnVersion(f->l, f->c, 2, err, sizeof err);
    if (r != DS_LEARN_OK) fail_msg("%d: %s", r, err);
    assert_int_equal(dsCodecSchemaId(f->c, 2), 2);
    assert_int_equal(f->reg.served, 1);
    /* A version the registry does not have. */
    assert_int_equal(dsLearnVersion(f->l, f->c, 7, err, sizeof err), DS_LEARN_PERMANENT);
    assert_non_null(strstr(err, "/subjects/decisions-value/versions/7: not found (404, error 40402"));
}

static void expectLearn(fixture *f, int id, dsLearnResult want, const char *why) {
    char err[512] = "";
    dsLearnResult r = dsLearnId(f->l, f->c, id, err, sizeof err);
    if (r != want || !strstr(err, why)) fail_msg("id %d: result %d, want %d with \"%s\": %s", id, r, want, why, err);
    assert_int_equal(dsCodecVersionOfId(f->c, id), -1);
}

static void test_permanent(void **state) {
    fixture *f = *state;
    expectLearn(f, 9, DS_LEARN_PERMANENT, "GET /schemas/ids/9: not found (404, error 40403: Schema not found)");
    expectLearn(f, 3, DS_LEARN_PERMANENT, "schema id 3 is not registered under subject decisions-value");
    expectLearn(f, 4, DS_LEARN_PERMANENT, "the codec refuses it");
    expectLearn(f, 4, DS_LEARN_PERMANENT, "minLenght");
}

static void test_transient(void **state) {
    fixture *f = *state;
    f->reg.overload = 503;
    expectLearn(f, 2, DS_LEARN_TRANSIENT, "GET /schemas/ids/2 answered 503, error 50001: busy");
    f->reg.overload = 429;
    expectLearn(f, 2, DS_LEARN_TRANSIENT, "answered 429");
    f->reg.overload = 0;
    /* The registry goes away: its port refuses connections. */
    dtFakeHttpStop(&f->reg.http);
    expectLearn(f, 2, DS_LEARN_TRANSIENT, "registry not reachable: GET ");
    /* and comes back on another port: a new learner finds it */
    assert_true(dtFakeHttpStart(&f->reg.http, registryAnswer, &f->reg));
    char err[512], url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->reg.http.port);
    dsLearner *l = dsLearnerNew(url, "--registry-url", err, sizeof err);
    assert_non_null(l);
    assert_int_equal(dsLearnId(l, f->c, 2, err, sizeof err), DS_LEARN_OK);
    dsLearnerFree(l);
}

static void test_bad_urls(void **state) {
    char err[256];
    assert_null(dsLearnerNew("127.0.0.1:8080", "--registry-url", err, sizeof err));
    assert_non_null(strstr(err, "--registry-url 127.0.0.1:8080: must start with http:// or https://"));
    assert_null(dsLearnerNew("http://h:8080/?x=1", "--registry-url", err, sizeof err));
    assert_non_null(strstr(err, "no query or fragment"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_learn_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learn_by_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient, setup, teardown),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
