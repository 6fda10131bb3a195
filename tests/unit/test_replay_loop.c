/* test_replay_loop.c - the replay loop (replay/src/replay.c) over archive files
 * written by the archiver's file module: a v1 file read under a newer
 * current schema (the fixture v3) comes out with its defaults, and a run
 * stopped mid-file resumes from its checkpoint handing every decision to
 * the target exactly once. The target here is an in-memory list: what is
 * under test is the loop, not a Kafka or PostgreSQL client (those are
 * exercised for real in tests/integration/test_replay.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "container.h"
#include "ds/codec.h"
#include "fixture_schemas.h"
#include "replay.h"

enum { N = 50 };
static const int64_t FIRST = 1795514400000LL; /* 2026-11-24T10:00:00Z */

typedef struct memTarget {
    rpTarget base;
    dsCodec *codec;
    json_t *docs;      /* every decision handed, as JSON */
    int stop_after;    /* sets *stop after this many writes (0: never) */
    volatile sig_atomic_t *stop;
} memTarget;

static bool memWrite(rpTarget *t, avro_value_t *v, char *errbuf, size_t errlen) {
    memTarget *m = (memTarget *)t;
    json_t *doc = dsCodecToJson(m->codec, v, 0);
    if (doc == NULL) return snprintf(errbuf, errlen, "not a decision"), false;
    json_array_append_new(m->docs, doc);
    m->base.settled.written++;
    if (m->stop_after && (int)json_array_size(m->docs) == m->stop_after) *m->stop = 1;
    return true;
}

static bool memFlush(rpTarget *t, char *errbuf, size_t errlen) {
    return true;
}

static void memDestroy(rpTarget *t) {}

static const rpTargetOps memOps = {"memory", memWrite, memFlush, memDestroy};

typedef struct fixture {
    char root[64], checkpoint[96];
    dsCodec *shipped, *fixture; /* the shipped set (versions 1 and 2), the fixture set (current 3) */
} fixture;

/* N decisions of the shipped v1 schema, in two files of one partition: each
 * validated as the current version, then resolved to version 1 as a v1
 * archiver would have written it. */
static bool writeArchive(fixture *f) {
    char err[256];
    avro_value_t cur, v;
    json_t *doc = json_load_file("tests/fixtures/decision.json", 0, NULL);
    if (!doc || !dsCodecNewValue(f->shipped, &cur) || !dsCodecNewVersionValue(f->shipped, 1, &v)) return false;
    rpArchiveFile *file = NULL;
    bool ok = true;
    for (int i = 0; ok && i < N; i++) {
        char id[40];
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        json_object_set_new(doc, "decision_id", json_string(id));
        dsCodecError cerr;
        ok = dsCodecFromJson(f->shipped, doc, &cur, &cerr) && dsCodecSetServerFields(f->shipped, &cur, FIRST + 1000, 1) &&
             dsCodecResolve(f->shipped, &cur, &v, err, sizeof(err));
        if (ok && (i == 0 || i == N / 2)) {
            if (file) ok = rpArchiveCommit(file, err, sizeof(err));
            file = rpArchiveOpen(f->root, FIRST, 0, i, dsCodecSchema(f->shipped, 1), 4096, err, sizeof(err));
            ok = ok && file != NULL;
        }
        ok = ok && rpArchiveAppend(file, &v, err, sizeof(err));
    }
    ok = ok && rpArchiveCommit(file, err, sizeof(err));
    avro_value_decref(&cur);
    avro_value_decref(&v);
    json_decref(doc);
    return ok;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    char err[256];
    snprintf(f->root, sizeof(f->root), "/tmp/ds-replay-XXXXXX");
    if (mkdtemp(f->root) == NULL) return -1;
    snprintf(f->checkpoint, sizeof(f->checkpoint), "%s/checkpoint", f->root);
    f->shipped = dsCodecNew(err, sizeof(err));
    f->fixture = dsCodecNewFrom(dtFixtureSchemas, dtFixtureSchemasCount, err, sizeof(err));
    if (!f->shipped || !f->fixture || !writeArchive(f)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
    int rc = system(cmd);
    dsCodecFree(f->shipped);
    dsCodecFree(f->fixture);
    free(f);
    return rc == 0 ? 0 : -1;
}

static rpReplaySpec specOf(fixture *f, const char *checkpoint) {
    return (rpReplaySpec){.root = f->root, .from_ms = FIRST - 3600000, .to_ms = FIRST + 3600000,
                          .target_desc = "memory", .checkpoint = checkpoint, .checkpoint_ms = 1000,
                          .stop_on_error = true, .progress_ms = 1000};
}

/* Archived v1 records replayed by a reader whose current schema is v3 take
 * v3's defaults, keep their own schema_version, and lose nothing else. */
static void test_v1_archive_under_a_newer_reader(void **state) {
    fixture *f = *state;
    volatile sig_atomic_t stop = 0;
    memTarget t = {{&memOps, {0}, 0}, f->fixture, json_array(), 0, &stop};
    rpReplaySpec spec = specOf(f, NULL);
    rpReplayStats st;
    char err[512];
    assert_int_equal(rpReplayRun(&spec, f->fixture, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)), RP_REPLAY_OK);
    assert_int_equal(json_array_size(t.docs), N);
    assert_int_equal(st.read, N);
    json_t *posted = json_load_file("tests/fixtures/decision.json", 0, NULL);
    for (int i = 0; i < N; i++) {
        json_t *doc = json_array_get(t.docs, i);
        assert_string_equal(json_string_value(json_object_get(doc, "channel")), "online");
        assert_true(json_is_null(json_object_get(doc, "model")));
        assert_true(json_is_null(json_object_get(doc, "risk_score")));
        assert_int_equal(json_integer_value(json_object_get(doc, "schema_version")), 1);
        json_t *check = json_array_get(json_object_get(doc, "checks"), 0);
        assert_int_equal(json_integer_value(json_object_get(check, "attempts")), 1);
        const char *key;
        json_t *v;
        json_object_foreach(posted, key, v) {
            if (strcmp(key, "decision_id") != 0 && strcmp(key, "checks") != 0)
                assert_true(json_equal(v, json_object_get(doc, key)));
        }
    }
    json_decref(posted);
    json_decref(t.docs);
}

/* Stopped in the middle of the first file, then resumed: each decision
 * handed once, in archive order; the finished run leaves nothing to do. */
static void test_stop_and_resume_hands_each_decision_once(void **state) {
    fixture *f = *state;
    volatile sig_atomic_t stop = 0;
    memTarget t = {{&memOps, {0}, 0}, f->shipped, json_array(), 7, &stop};
    rpReplaySpec spec = specOf(f, f->checkpoint);
    rpReplayStats st;
    char err[512];
    assert_int_equal(rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)),
                     RP_REPLAY_INTERRUPTED);
    assert_int_equal(json_array_size(t.docs), 7);
    stop = 0;
    t.stop_after = 0;
    assert_int_equal(rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)), RP_REPLAY_OK);
    assert_true(st.resumed);
    assert_int_equal(json_array_size(t.docs), N);
    for (int i = 0; i < N; i++) {
        char id[40];
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(t.docs, i), "decision_id")), id);
    }
    assert_int_equal(rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)), RP_REPLAY_OK);
    assert_int_equal(json_array_size(t.docs), N);
    /* Another selection may not use this checkpoint. */
    spec.customer_id = "cust-1";
    assert_int_equal(rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "belongs to another replay"));
    json_decref(t.docs);
}

/* Every truncation of a file: the framing check counts the intact blocks
 * and never claims more than the file holds. */
static void test_container_check_on_every_truncation(void **state) {
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/decisions/dt=2026-11-24/hour=10/decisions+0+00000000000000000000.avro", f->root);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    rpContainerInfo whole;
    assert_true(rpContainerCheck(fp, &whole));
    assert_false(whole.damaged);
    assert_int_equal(whole.records, N / 2);
    assert_true(whole.blocks > 1);
    static char buf[1 << 20];
    rewind(fp);
    size_t len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    for (size_t cut = 0; cut < len; cut += 7) {
        FILE *c = fmemopen(buf, cut ? cut : 1, "rb");
        rpContainerInfo info;
        bool ok = rpContainerCheck(c, &info);
        fclose(c);
        if (!ok) continue; /* the header itself is cut */
        assert_true(info.damaged || cut == info.intact_bytes);
        assert_true(info.records < (uint64_t)N / 2 || cut == len);
        assert_true(info.intact_bytes <= cut);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_archive_under_a_newer_reader),
        cmocka_unit_test(test_stop_and_resume_hands_each_decision_once),
        cmocka_unit_test(test_container_check_on_every_truncation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
