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
#include <sys/stat.h>

#include "archive.h"
#include "archive_gen.h"
#include "container.h"
#include "ds/codec.h"
#include "ds/timefmt.h"
#include "filereader.h"
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


/* ---- hand-made files: what the archiver never writes, a reader must refuse ---- */

/* Three records of decision i = 0, 1, 2 (decided at FIRST + i) back to back. */
typedef struct threeRecords {
    char *bytes;
    size_t len, ends[3]; /* where each record ends */
} threeRecords;

static void threeMake(threeRecords *t) {
    t->bytes = NULL, t->len = 0;
    for (int i = 0; i < 3; i++) {
        size_t n;
        char *rec = dtGenRecord(i, FIRST + i, &n);
        assert_non_null(rec);
        t->bytes = realloc(t->bytes, t->len + n);
        memcpy(t->bytes + t->len, rec, n);
        t->len += n;
        t->ends[i] = t->len;
        free(rec);
    }
}

/* A root of its own holding one hand-made file (dtGenContainer) in the hour
 * of FIRST; its path into path. */
static void craftedRoot(fixture *f, const char *name, const char *codec, const dtGenBlock *blocks, size_t n,
                        char root[128], char path[256]) {
    char cmd[300];
    snprintf(root, 128, "%s/%s", f->root, name);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/decisions/dt=2026-11-24/hour=10", root);
    assert_int_equal(system(cmd), 0);
    snprintf(path, 256, "%s/decisions/dt=2026-11-24/hour=10/decisions+0+00000000000000000000.avro", root);
    assert_true(dtGenContainer(path, codec, blocks, n));
}

/* Reads path to its end with max_block; the records read, or -1 with the
 * reader's error in err. */
static int readAll(fixture *f, const char *path, size_t max_block, char *err, size_t errlen) {
    avro_value_t v;
    assert_true(dsCodecNewValue(f->shipped, &v));
    rpFileReader *r = rpFileReaderOpen(f->shipped, path, err, errlen);
    assert_non_null(r);
    rpFileReaderSetMaxBlock(r, max_block);
    int n = 0, rc;
    while ((rc = rpFileReaderNext(r, &v, err, errlen)) == 1) n++;
    rpFileReaderClose(r);
    avro_value_decref(&v);
    return rc < 0 ? -1 : n;
}

/* Replays root into memory with checkpoint (may be NULL): the result,
 * *handed the decisions handed. */
static int replayRootAt(fixture *f, const char *root, const char *checkpoint, rpReplayStats *st, size_t *handed) {
    volatile sig_atomic_t stop = 0;
    memTarget t = {{&memOps, {0}, 0}, f->shipped, json_array(), 0, &stop};
    rpReplaySpec spec = specOf(f, checkpoint);
    spec.root = root;
    spec.stop_on_error = false;
    char err[512];
    int rc = rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, st, err, sizeof(err));
    *handed = json_array_size(t.docs);
    json_decref(t.docs);
    return rc;
}

static int replayRoot(fixture *f, const char *root, rpReplayStats *st, size_t *handed) {
    return replayRootAt(f, root, NULL, st, handed);
}

/* A block's declared count must match its bytes exactly: a lowered count
 * would silently drop the records past it, a raised one read beyond. */
static void test_block_count_must_match_its_bytes(void **state) {
    fixture *f = *state;
    threeRecords t;
    threeMake(&t);
    static const struct {
        const char *name, *codec;
        int64_t count;
        const char *want; /* NULL: read whole */
    } cases[] = {
        {"exact", "null", 3, NULL},
        {"exact-deflate", "deflate", 3, NULL},
        {"lowered", "null", 2, "declares 2 records: "},
        {"lowered-deflate", "deflate", 2, "declares 2 records: "},
        {"raised", "null", 4, "declares 4 records: "},
        {"raised-deflate", "deflate", 5, "declares 5 records: "},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char root[128], path[256], err[1024], want[512];
        /* a good block first, so the damaged one is not at the header's end */
        dtGenBlock b[2] = {{1, t.bytes, t.ends[0]}, {cases[c].count, t.bytes, t.len}};
        craftedRoot(f, cases[c].name, cases[c].codec, b, 2, root, path);
        rpReplayStats st;
        size_t handed;
        int rc = replayRoot(f, root, &st, &handed);
        if (cases[c].want == NULL) {
            assert_int_equal(readAll(f, path, 1 << 20, err, sizeof(err)), 4);
            assert_int_equal(rc, RP_REPLAY_OK);
            assert_int_equal(handed, 4);
            continue;
        }
        assert_int_equal(readAll(f, path, 1 << 20, err, sizeof(err)), -1);
        FILE *fp = fopen(path, "rb");
        rpContainerInfo info;
        assert_true(rpContainerCheck(fp, &info));
        fclose(fp);
        rpContainerBlock first;
        fp = fopen(path, "rb");
        assert_true(rpContainerBlockAt(fp, &info, info.header_bytes, info.file_bytes, &first, err, sizeof(err)));
        fclose(fp);
        snprintf(want, sizeof(want), "%s: block at byte %llu: %s", path, (unsigned long long)first.next, cases[c].want);
        if (strstr(err, want) == NULL) fprintf(stderr, "%s\nwanted %s\n", err, want);
        assert_non_null(strstr(err, want));
        assert_int_equal(rc, RP_REPLAY_FAILED);
        assert_int_equal(st.bad_files, 1);
        assert_int_equal(handed, 1); /* the good block's record */
    }
    free(t.bytes);
}

/* A block is refused, not read whole, when it holds or inflates to more
 * than the cap: a few kilobytes of deflate can expand to gigabytes. */
static void test_block_over_the_cap_is_refused(void **state) {
    fixture *f = *state;
    threeRecords t;
    threeMake(&t);
    size_t big = 8 << 20;
    char *bomb = calloc(1, big); /* one record, then 8 MiB of zeros: ~8 KiB deflated */
    memcpy(bomb, t.bytes, t.ends[0]);
    char root[128], path[256], err[1024], want[512];
    dtGenBlock b = {1, bomb, big};
    craftedRoot(f, "bomb", "deflate", &b, 1, root, path);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size < 64 * 1024);
    assert_int_equal(readAll(f, path, 1 << 20, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: block at byte ", path);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "inflates to more than the 1048576-byte cap on a block"));
    /* under a cap it fits, its count is checked as any other block's */
    assert_int_equal(readAll(f, path, 16 << 20, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "declares 1 records: "));

    /* stored (codec null) larger than the cap */
    craftedRoot(f, "big-null", "null", &b, 1, root, path);
    assert_int_equal(readAll(f, path, 1 << 20, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bytes, more than the 1048576-byte cap on a block"));
    free(bomb);
    free(t.bytes);
}

/* A record that decodes but breaks a rule of the schema ("SE" become "sE")
 * is refused with its file and record, counted as failed, and the rest is
 * replayed. */
static void test_record_breaking_a_rule_is_refused(void **state) {
    fixture *f = *state;
    threeRecords t;
    threeMake(&t);
    char *se = memmem(t.bytes + t.ends[0], t.ends[1] - t.ends[0], "\x04SE", 3);
    assert_non_null(se);
    se[1] = 's';
    char root[128], path[256];
    dtGenBlock b = {3, t.bytes, t.len};
    craftedRoot(f, "invalid", "null", &b, 1, root, path);
    rpReplayStats st;
    size_t handed;
    assert_int_equal(replayRoot(f, root, &st, &handed), RP_REPLAY_FAILED);
    assert_int_equal(handed, 2);
    assert_int_equal(st.read, 3);
    assert_int_equal(st.target.failed, 1);
    assert_int_equal(st.bad_files, 0);

    /* Run with a checkpoint, then again with the finished checkpoint: the
     * second run writes nothing and still says a decision failed. */
    char cp[200];
    snprintf(cp, sizeof(cp), "%s/invalid.checkpoint", f->root);
    for (int run = 0; run < 2; run++) {
        assert_int_equal(replayRootAt(f, root, cp, &st, &handed), RP_REPLAY_FAILED);
        assert_int_equal(handed, run == 0 ? 2 : 0);
        assert_int_equal(st.target.failed, 1);
    }
    free(t.bytes);
}

/* A record whose decision_id is in upper case: every stored one is lower
 * case, so this one was altered, and a target keyed by it would hold a row
 * the API never finds. Rendered to JSON and converted back it passed (the
 * conversion lower-cases a copy); checked on the value itself it is
 * refused. */
static void test_record_with_an_upper_case_uuid_is_refused(void **state) {
    fixture *f = *state;
    threeRecords t;
    threeMake(&t);
    char id[37];
    dtGenId(1, id);
    char *at = memmem(t.bytes + t.ends[0], t.ends[1] - t.ends[0], id, 36);
    assert_non_null(at);
    at[35] = 'A'; /* "...000000000001" -> "...00000000000A": still hexadecimal */
    char root[128], path[256];
    dtGenBlock b = {3, t.bytes, t.len};
    craftedRoot(f, "upper-uuid", "null", &b, 1, root, path);
    rpReplayStats st;
    size_t handed;
    assert_int_equal(replayRoot(f, root, &st, &handed), RP_REPLAY_FAILED);
    assert_int_equal(handed, 2);
    assert_int_equal(st.target.failed, 1);
    free(t.bytes);
}

/* A record dated in the future (written around the API, or altered) is
 * refused like any other rule break, not written: the variable store would
 * count it in every window until its date. The others are replayed. */
static void test_record_dated_in_the_future_is_refused(void **state) {
    fixture *f = *state;
    char *bytes = NULL;
    size_t len = 0;
    int64_t future = dsTimeNowMs() + 86400000LL;
    for (int i = 0; i < 3; i++) {
        size_t n;
        char *rec = dtGenRecord(i, i == 1 ? future : FIRST + i, &n);
        assert_non_null(rec);
        bytes = realloc(bytes, len + n);
        memcpy(bytes + len, rec, n);
        len += n;
        free(rec);
    }
    char root[128], path[256];
    dtGenBlock b = {3, bytes, len};
    craftedRoot(f, "future", "null", &b, 1, root, path);
    volatile sig_atomic_t stop = 0;
    memTarget t = {{&memOps, {0}, 0}, f->shipped, json_array(), 0, &stop};
    rpReplaySpec spec = specOf(f, NULL);
    spec.root = root;
    spec.to_ms = future + 1;
    spec.max_clock_skew_ms = 300000;
    rpReplayStats st;
    char err[512];
    assert_int_equal(rpReplayRun(&spec, f->shipped, &t.base, &stop, NULL, NULL, &st, err, sizeof(err)),
                     RP_REPLAY_FAILED);
    assert_int_equal(json_array_size(t.docs), 2);
    assert_int_equal(st.read, 3);
    assert_int_equal(st.target.failed, 1);
    json_decref(t.docs);
    free(bytes);
}

/* A header metadata map whose count is INT64_MIN (no magnitude to take) is
 * a damaged header, not undefined behaviour. */
static void test_metadata_count_int64_min(void **state) {
    static const char bytes[] = "Obj\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01rest of the header";
    FILE *fp = fmemopen((void *)bytes, sizeof(bytes) - 1, "rb");
    rpContainerInfo info;
    assert_false(rpContainerCheck(fp, &info));
    fclose(fp);
    assert_string_equal(info.error, "header metadata count out of range at byte 14");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_archive_under_a_newer_reader),
        cmocka_unit_test(test_stop_and_resume_hands_each_decision_once),
        cmocka_unit_test(test_container_check_on_every_truncation),
        cmocka_unit_test(test_block_count_must_match_its_bytes),
        cmocka_unit_test(test_block_over_the_cap_is_refused),
        cmocka_unit_test(test_record_breaking_a_rule_is_refused),
        cmocka_unit_test(test_record_with_an_upper_case_uuid_is_refused),
        cmocka_unit_test(test_record_dated_in_the_future_is_refused),
        cmocka_unit_test(test_metadata_count_int64_min),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
