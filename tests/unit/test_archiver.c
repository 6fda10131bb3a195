/* test_archiver.c - the archiver's file keeping (replay/src/archiver.c) fed
 * messages by hand, as a read_committed consumer hands them: offsets with
 * gaps (transaction markers, aborted records) give files named by their
 * first record's offset, commits of the offset after a file's last record,
 * the partition's end committed past trailing gaps, and a re-read from any
 * committed offset writes the same files again. The committer is a list:
 * what is under test is the ordering, not a Kafka client (the archiver's
 * consumer runs for real in tests/integration and tests/broker). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "archive_gen.h"
#include "archiver.h"
#include "archiver_options.h"
#include "ds/codec.h"
#include "ds/kafkagroup.h"

static const int64_t HOUR0 = 1795514400000LL; /* 2026-11-24T10:00:00Z */

typedef struct fixture {
    char root[64];
    dsCodec *codec;
    json_t *doc;
    int64_t commits[64]; /* the offsets committed on partition 0, in order */
    int ncommits;
    bool lost;
} fixture;

static void commitOf(void *ctx, int32_t partition, int64_t next) {
    fixture *f = ctx;
    assert_int_equal(partition, 0);
    assert_true(f->ncommits < 64);
    f->commits[f->ncommits++] = next;
}

static bool lostOf(void *ctx) {
    return ((fixture *)ctx)->lost;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    char err[256];
    snprintf(f->root, sizeof(f->root), "/tmp/ds-archiver-XXXXXX");
    if (mkdtemp(f->root) == NULL || (f->codec = dsCodecNew(err, sizeof(err))) == NULL) return -1;
    if ((f->doc = json_load_file("tests/fixtures/decision.json", 0, NULL)) == NULL) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
    int rc = system(cmd);
    dsCodecFree(f->codec);
    json_decref(f->doc);
    free(f);
    return rc == 0 ? 0 : -1;
}

static arArchiver *newArchiver(fixture *f, long max_records) {
    char err[256];
    arFiles files = {f->root, max_records, 1 << 20, 60000, 1 << 20, f->codec, NULL};
    arCommitter c = {f, commitOf, lostOf};
    arArchiver *a = arArchiverNew(&files, &c, err, sizeof(err));
    assert_non_null(a);
    f->ncommits = 0;
    return a;
}

/* One message at offset, decided at ms (a record of the fixture's
 * document), handed at now. */
static arOutcome feed(arArchiver *a, fixture *f, int64_t offset, int64_t decided, int64_t now) {
    size_t len;
    char why[512];
    char *wire = dtGenWire(f->doc, decided, NULL, &len);
    assert_non_null(wire);
    arOutcome o = arArchiverMessage(a, 0, offset, wire, len, now, why, sizeof(why));
    free(wire);
    return o;
}

/* The records in the archive file of partition 0 starting at first, -1 if
 * there is none. */
static int recordsIn(fixture *f, int64_t decided, int64_t first) {
    char path[1200];
    assert_true(rpArchivePath(path, sizeof(path), f->root, decided, 0, first));
    return dtGenCountRecords(path);
}

/* The archive files of partition 0 in the hour of decided, by name. */
static int filesIn(fixture *f, int64_t decided) {
    char path[1200], *slash;
    assert_true(rpArchivePath(path, sizeof(path), f->root, decided, 0, 0));
    slash = strrchr(path, '/');
    *slash = '\0';
    DIR *d = opendir(path);
    if (d == NULL) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The offsets a read_committed consumer hands on partition 0 when 3 is a
 * commit marker, 6 and 7 an aborted transaction and its marker, 10 a
 * marker: 0 1 2 4 5 8 9. */
static const int64_t handed[] = {0, 1, 2, 4, 5, 8, 9};
#define NHANDED (sizeof(handed) / sizeof(handed[0]))

/* Three records a file: files at 0 (0 1 2), 4 (4 5 8), 9 (9, by max-age);
 * commits 3, 9, then the end, 11, past the last marker. */
static void test_gaps_in_offsets(void **state) {
    fixture *f = *state;
    arArchiver *a = newArchiver(f, 3);
    for (size_t i = 0; i < NHANDED; i++) assert_int_equal(feed(a, f, handed[i], HOUR0 + 1000, HOUR0), AR_DONE);
    assert_int_equal(f->ncommits, 2);
    assert_int_equal(f->commits[0], 3); /* a marker's offset: the consumer steps over it */
    assert_int_equal(f->commits[1], 9);
    arArchiverEnd(a, 0, 11); /* a file is open: nothing to commit yet */
    assert_int_equal(f->ncommits, 2);
    arStats s = arArchiverStats(a, HOUR0 + 5000);
    assert_int_equal(s.open_files, 1);
    assert_int_equal(s.oldest_open_ms, 5000);
    assert_true(arArchiverTick(a, HOUR0 + 60000)); /* max-age */
    assert_int_equal(f->ncommits, 3);
    assert_int_equal(f->commits[2], 11); /* past the last marker: no lag left behind */
    arArchiverEnd(a, 0, 11);             /* said again: nothing new */
    assert_int_equal(f->ncommits, 3);
    s = arArchiverStats(a, HOUR0 + 60000);
    assert_int_equal(s.files, 3);
    assert_int_equal(s.records, 7);
    assert_true(s.bytes > 0);
    assert_int_equal(s.open_files, 0);
    arArchiverFree(a);
    assert_int_equal(recordsIn(f, HOUR0, 0), 3);
    assert_int_equal(recordsIn(f, HOUR0, 4), 3);
    assert_int_equal(recordsIn(f, HOUR0, 9), 1);
    assert_int_equal(filesIn(f, HOUR0), 3);
}

/* A crash after the first file: the group re-reads from the committed 3, a
 * marker, so the first record handed is 4: the same files, under the same
 * names, overwritten rather than doubled. */
static void test_reread_from_a_gap_writes_the_same_files(void **state) {
    fixture *f = *state;
    arArchiver *a = newArchiver(f, 3);
    for (size_t i = 0; i < 4; i++) assert_int_equal(feed(a, f, handed[i], HOUR0 + 1000, HOUR0), AR_DONE);
    arArchiverFree(a); /* the crash: file 4 unfinished, dropped */
    assert_int_equal(recordsIn(f, HOUR0, 4), -1);
    a = newArchiver(f, 3);
    for (size_t i = 3; i < NHANDED; i++) assert_int_equal(feed(a, f, handed[i], HOUR0 + 1000, HOUR0), AR_DONE);
    assert_true(arArchiverFinishAll(a));
    assert_int_equal(f->ncommits, 2);
    assert_int_equal(f->commits[0], 9);
    assert_int_equal(f->commits[1], 10);
    arArchiverEnd(a, 0, 11); /* no file open: the end at once */
    assert_int_equal(f->ncommits, 3);
    assert_int_equal(f->commits[2], 11);
    arArchiverFree(a);
    assert_int_equal(recordsIn(f, HOUR0, 0), 3);
    assert_int_equal(recordsIn(f, HOUR0, 4), 3);
    assert_int_equal(recordsIn(f, HOUR0, 9), 1);
    assert_int_equal(filesIn(f, HOUR0), 3);
}

/* An hour change finishes the file at the gap before it; a record with no
 * place (decided in 1969) right after a gap is quarantined and, with no
 * file open, its offset committed at once. */
static void test_hours_and_quarantine_across_gaps(void **state) {
    fixture *f = *state;
    arArchiver *a = newArchiver(f, 100);
    assert_int_equal(feed(a, f, 0, HOUR0 + 1000, HOUR0), AR_DONE);
    assert_int_equal(feed(a, f, 1, HOUR0 + 2000, HOUR0), AR_DONE);
    assert_int_equal(feed(a, f, 5, HOUR0 + 3600000, HOUR0), AR_DONE); /* next hour, after a gap */
    assert_int_equal(f->ncommits, 1);
    assert_int_equal(f->commits[0], 2);
    assert_true(arArchiverFinishAll(a));
    assert_int_equal(f->commits[1], 6);
    assert_int_equal(feed(a, f, 9, -1000, HOUR0), AR_DONE); /* quarantined */
    assert_int_equal(f->ncommits, 3);
    assert_int_equal(f->commits[2], 10);
    assert_int_equal(arArchiverStats(a, HOUR0).quarantined, 1);
    arArchiverFree(a);
    assert_int_equal(recordsIn(f, HOUR0, 0), 2);
    assert_int_equal(recordsIn(f, HOUR0 + 3600000, 5), 1);
}

/* Assignment lost (the group gave the partition away): nothing is renamed
 * or committed, the end is not committed either. */
static void test_lost_assignment_commits_nothing(void **state) {
    fixture *f = *state;
    arArchiver *a = newArchiver(f, 100);
    assert_int_equal(feed(a, f, 0, HOUR0 + 1000, HOUR0), AR_DONE);
    f->lost = true;
    assert_true(arArchiverFinishAll(a));
    arArchiverEnd(a, 0, 5);
    assert_int_equal(f->ncommits, 0);
    assert_int_equal(recordsIn(f, HOUR0, 0), -1);
    f->lost = false;
    arArchiverFree(a);
}

/* The option table loads like any program's: the instance id option and
 * its environment variable reach the consumer's group settings. */
static void test_options(void **state) {
    arOptions o;
    dsConfigOption rows[AR_NOPTIONS];
    memset(&o, 0, sizeof(o));
    assert_int_equal(arOptionsTable(&o, rows), AR_NOPTIONS);
    char err[512];
    char *argv[] = {"decision-archiver", "--group-id", "archivers", "--session-timeout", "6s", NULL};
    setenv("ARCHIVER_GROUP_INSTANCE_ID", "archiver-7", 1);
    assert_int_equal(dsConfigLoad(rows, AR_NOPTIONS, AR_ENV_PREFIX, 5, argv, NULL, NULL, err, sizeof(err)),
                     DS_CONFIG_OK);
    unsetenv("ARCHIVER_GROUP_INSTANCE_ID");
    arConsumerConfig cc = arOptionsConsumer(&o);
    assert_string_equal(cc.group.group_id, "archivers");
    assert_string_equal(cc.group.instance_id, "archiver-7");
    assert_string_equal(cc.group.program, "decision-archiver");
    assert_int_equal(cc.group.session_timeout_ms, 6000);
    assert_string_equal(cc.topic, "decisions");
    arFiles files = arOptionsFiles(&o, NULL, NULL);
    assert_int_equal(files.max_age_ms, 60000);
    assert_string_equal(files.root, "var/archive");
    dsConfigFree(rows, AR_NOPTIONS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gaps_in_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reread_from_a_gap_writes_the_same_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hours_and_quarantine_across_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_assignment_commits_nothing, setup, teardown),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
