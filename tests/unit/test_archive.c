/* test_archive.c - archive file names, atomic and durable appearance, and
 * files any Avro reader can read (CONTRACT §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "archive_gen.h"
#include "ds/codec.h"

typedef struct fixture {
    char root[64];
    dsCodec *codec;
    avro_value_t rec;
} fixture;

static const int64_t DECIDED = 1795514400250LL; /* 2026-11-24T10:00:00.250Z */

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    char err[256];
    snprintf(f->root, sizeof(f->root), "/tmp/ds-archive-XXXXXX");
    if (mkdtemp(f->root) == NULL || (f->codec = dsCodecNew(err, sizeof(err))) == NULL ||
        !dsCodecNewValue(f->codec, &f->rec))
        return -1;
    json_t *doc = json_load_file("tests/fixtures/decision.json", 0, NULL);
    dsCodecError cerr;
    if (!doc || !dsCodecFromJson(f->codec, doc, &f->rec, &cerr) ||
        !dsCodecSetServerFields(f->codec, &f->rec, DECIDED + 1000, 1))
        return -1;
    json_decref(doc);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
    if (system(cmd) != 0) return -1;
    avro_value_decref(&f->rec);
    dsCodecFree(f->codec);
    free(f);
    return 0;
}

static avro_schema_t schema(fixture *f) {
    return dsCodecSchema(f->codec, dsCodecCurrentVersion(f->codec));
}

static void test_path_layout(void **state) {
    char p[512];
    assert_true(rpArchivePath(p, sizeof(p), "/a", DECIDED, 3, 42));
    assert_string_equal(p, "/a/decisions/dt=2026-11-24/hour=10/decisions+3+00000000000000000042.avro");
    assert_false(rpArchivePath(p, sizeof(p), "/a", -1, 3, 42));
    assert_false(rpArchivePath(p, 20, "/a", DECIDED, 3, 42));
}

static void test_write_commit_read_back(void **state) {
    fixture *f = *state;
    char err[512], final[512], tmp[600];
    assert_true(rpArchivePath(final, sizeof(final), f->root, DECIDED, 0, 7));
    rpArchiveFile *a = rpArchiveOpen(f->root, DECIDED, 0, 7, schema(f), 256 * 1024, err, sizeof(err));
    assert_non_null(a);
    for (int i = 0; i < 3; i++) assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    assert_int_equal(rpArchiveRecords(a), 3);
    /* nothing under the final name before the commit */
    assert_int_not_equal(access(final, F_OK), 0);
    snprintf(tmp, sizeof(tmp), "%s/decisions/dt=2026-11-24/hour=10/.decisions+0+00000000000000000007.avro.tmp", f->root);
    assert_int_equal(access(tmp, F_OK), 0);
    assert_true(rpArchiveCommit(a, err, sizeof(err)));
    assert_int_equal(access(final, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(dtGenCountRecords(final), 3);

    /* an independent reader: python3-avro from Debian */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import sys, avro.datafile, avro.io; "
             "r = avro.datafile.DataFileReader(open(sys.argv[1], \"rb\"), avro.io.DatumReader()); "
             "recs = list(r); print(len(recs), r.get_meta(\"avro.codec\").decode(), recs[0][\"customer_id\"])' %s",
             final);
    FILE *p = popen(cmd, "r");
    char out[128] = "";
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    assert_string_equal(out, "3 deflate cust-42\n");
}

static void test_record_larger_than_avro_c_default_block(void **state) {
    fixture *f = *state;
    /* 64 attributes of 1,000 bytes: a ~66 KB record, over avro-c's 16 KiB default block */
    json_t *doc = json_load_file("tests/fixtures/decision.json", 0, NULL);
    json_t *attrs = json_object_get(doc, "attributes");
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    for (int i = 0; i < 63; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%02d", i);
        json_object_set_new(attrs, k, json_string(big));
    }
    dsCodecError cerr;
    assert_true(dsCodecFromJson(f->codec, doc, &f->rec, &cerr));
    assert_true(dsCodecSetServerFields(f->codec, &f->rec, DECIDED, 1));
    json_decref(doc);
    char err[512], final[512];
    rpArchiveFile *a = rpArchiveOpen(f->root, DECIDED, 1, 0, schema(f), 1024 * 1024, err, sizeof(err));
    assert_non_null(a);
    assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    assert_true(rpArchiveCommit(a, err, sizeof(err)));
    assert_true(rpArchivePath(final, sizeof(final), f->root, DECIDED, 1, 0));
    assert_int_equal(dtGenCountRecords(final), 1);
}

static void test_abort_rerun_and_sweep(void **state) {
    fixture *f = *state;
    char err[512], final[512];
    assert_true(rpArchivePath(final, sizeof(final), f->root, DECIDED, 2, 100));
    rpArchiveFile *a = rpArchiveOpen(f->root, DECIDED, 2, 100, schema(f), 65536, err, sizeof(err));
    assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    rpArchiveAbort(a);
    assert_int_not_equal(access(final, F_OK), 0);

    /* the same offsets twice: one name, the second run overwrites */
    for (int run = 1; run <= 2; run++) {
        a = rpArchiveOpen(f->root, DECIDED, 2, 100, schema(f), 65536, err, sizeof(err));
        for (int i = 0; i < run; i++) assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
        assert_true(rpArchiveCommit(a, err, sizeof(err)));
    }
    assert_int_equal(dtGenCountRecords(final), 2);

    /* a crash leaves a temporary file: swept, finals untouched */
    pid_t child = fork();
    if (child == 0) {
        a = rpArchiveOpen(f->root, DECIDED, 2, 200, schema(f), 65536, err, sizeof(err));
        _exit(a != NULL && rpArchiveAppend(a, &f->rec, err, sizeof(err)) ? 0 : 1); /* no commit, no abort */
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(status, 0);
    assert_int_equal(rpArchiveSweep(f->root, err, sizeof(err)), 1);
    assert_int_equal(dtGenCountRecords(final), 2);
}

/* Archivers share the directory: a file one of them is writing is neither
 * swept by another's start nor written by a second holder of its
 * partition, who can write it once the first has renamed it. */
static void test_a_file_being_written_is_left_alone(void **state) {
    fixture *f = *state;
    char err[512], final[512];
    assert_true(rpArchivePath(final, sizeof(final), f->root, DECIDED, 4, 300));
    rpArchiveFile *a = rpArchiveOpen(f->root, DECIDED, 4, 300, schema(f), 65536, err, sizeof(err));
    assert_non_null(a);
    assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    assert_int_equal(rpArchiveSweep(f->root, err, sizeof(err)), 0);
    errno = 0;
    assert_null(rpArchiveOpen(f->root, DECIDED, 4, 300, schema(f), 65536, err, sizeof(err)));
    assert_int_equal(errno, EWOULDBLOCK);
    assert_non_null(strstr(err, "being written by another process"));
    assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    assert_true(rpArchiveCommit(a, err, sizeof(err)));
    assert_int_equal(dtGenCountRecords(final), 2);
    /* the second holder writes it again under the same name */
    rpArchiveFile *b = rpArchiveOpen(f->root, DECIDED, 4, 300, schema(f), 65536, err, sizeof(err));
    assert_non_null(b);
    assert_true(rpArchiveAppend(b, &f->rec, err, sizeof(err)));
    assert_int_equal(dtGenCountRecords(final), 2); /* untouched until b is complete */
    assert_true(rpArchiveCommit(b, err, sizeof(err)));
    assert_int_equal(dtGenCountRecords(final), 1);
}

static void test_unwritable_root_is_a_clear_error(void **state) {
    fixture *f = *state;
    char err[512];
    assert_null(rpArchiveOpen("/proc/no-such-archive", DECIDED, 0, 0, schema(f), 65536, err, sizeof(err)));
    assert_non_null(strstr(err, "/proc/no-such-archive"));
}

/* A record of another version than the file's is refused, not written
 * under a header that cannot decode it; the file stays usable. */
static void test_record_of_another_schema_refused(void **state) {
    fixture *f = *state;
    char err[512], final[512];
    rpArchiveFile *a = rpArchiveOpen(f->root, DECIDED, 2, 0, dsCodecSchema(f->codec, 1), 65536, err, sizeof(err));
    assert_non_null(a);
    assert_int_not_equal(dsCodecCurrentVersion(f->codec), 1);
    assert_false(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
    assert_non_null(strstr(err, "another schema"));
    avro_value_t v1;
    assert_true(dsCodecNewVersionValue(f->codec, 1, &v1));
    assert_true(dsCodecResolve(f->codec, &f->rec, &v1, err, sizeof(err)));
    assert_true(rpArchiveAppend(a, &v1, err, sizeof(err)));
    avro_value_decref(&v1);
    assert_true(rpArchiveCommit(a, err, sizeof(err)));
    assert_true(rpArchivePath(final, sizeof(final), f->root, DECIDED, 2, 0));
    assert_int_equal(dtGenCountRecords(final), 1);
}


static mode_t modeOf(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Archive files hold customer data: 0640 files in 0750 directories, whether
 * the umask would allow more (0) or less (077); the root an operator made
 * keeps its own mode. */
static void test_modes_whatever_the_umask(void **state) {
    fixture *f = *state;
    static const mode_t masks[] = {0, 077};
    assert_int_equal(chmod(f->root, 0711), 0);
    for (size_t i = 0; i < 2; i++) {
        char err[512], final[512], tmp[600], dir[512];
        mode_t old = umask(masks[i]);
        int64_t at = DECIDED + (int64_t)i * 86400000; /* a new day: new directories */
        rpArchiveFile *a = rpArchiveOpen(f->root, at, 0, 7, schema(f), 65536, err, sizeof(err));
        umask(old);
        assert_non_null(a);
        assert_true(rpArchivePath(final, sizeof(final), f->root, at, 0, 7));
        snprintf(dir, sizeof(dir), "%s", final);
        *strrchr(dir, '/') = '\0';
        snprintf(tmp, sizeof(tmp), "%s/.decisions+0+00000000000000000007.avro.tmp", dir);
        assert_int_equal(modeOf(tmp), 0640);
        assert_true(rpArchiveAppend(a, &f->rec, err, sizeof(err)));
        assert_true(rpArchiveCommit(a, err, sizeof(err)));
        assert_int_equal(modeOf(final), 0640);
        for (int up = 0; up < 3; up++) { /* hour=, dt=, decisions */
            assert_int_equal(modeOf(dir), 0750);
            *strrchr(dir, '/') = '\0';
        }
        assert_int_equal(modeOf(f->root), 0711);

        char qpath[600];
        old = umask(masks[i]);
        assert_true(rpArchiveQuarantine(f->root, 1, 40 + (int64_t)i, "x", 1, "why", qpath, sizeof(qpath), err,
                                        sizeof(err)));
        umask(old);
        assert_int_equal(modeOf(qpath), 0640);
        *strrchr(qpath, '/') = '\0';
        assert_int_equal(modeOf(qpath), 0750);
    }
}

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[4096];
    *len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    return buf;
}

/* A record without a place in the layout is kept byte for byte, with its
 * reason, under quarantine/ (outside the layout): again the same record
 * overwrites, a crash's temporary file is swept. */
static void test_quarantine_keeps_the_record(void **state) {
    fixture *f = *state;
    char err[512], path[600], want[600];
    static const char value[] = "\x00\x00\x00\x00\x01 bytes \xff that do not decode";
    for (int run = 0; run < 2; run++)
        assert_true(rpArchiveQuarantine(f->root, 3, 1234, value, sizeof(value) - 1, "decided_at before 1970", path,
                                        sizeof(path), err, sizeof(err)));
    snprintf(want, sizeof(want), "%s/quarantine/decisions+3+00000000000000001234.value", f->root);
    assert_string_equal(path, want);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, sizeof(value) - 1);
    assert_memory_equal(got, value, len);
    snprintf(want, sizeof(want), "%s/quarantine/decisions+3+00000000000000001234.reason", f->root);
    got = slurp(want, &len);
    assert_int_equal(len, strlen("partition 3 offset 1234: decided_at before 1970\n"));
    assert_memory_equal(got, "partition 3 offset 1234: decided_at before 1970\n", len);
    snprintf(want, sizeof(want), "%s/quarantine/.decisions+3+00000000000000000001.value.tmp", f->root);
    FILE *fp = fopen(want, "w");
    fclose(fp);
    assert_int_equal(rpArchiveSweep(f->root, err, sizeof(err)), 1);
    assert_int_not_equal(access(want, F_OK), 0);
    assert_int_equal(access(path, F_OK), 0);
    /* an unwritable root is a storage failure, said so */
    assert_false(rpArchiveQuarantine("/proc/no-such-archive", 0, 0, "x", 1, "why", path, sizeof(path), err,
                                     sizeof(err)));
    assert_non_null(strstr(err, "/proc/no-such-archive"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_layout),
        cmocka_unit_test_setup_teardown(test_write_commit_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_larger_than_avro_c_default_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_rerun_and_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_being_written_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_root_is_a_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_of_another_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_whatever_the_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_keeps_the_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
