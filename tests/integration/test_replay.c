/* test_replay.c - decision-replay as a data team runs it (CONTRACT §5): an
 * archive of known decisions replayed into a fresh topic (read back with an
 * independent client), into an emptied decision store (then checked
 * through the API), with each filter, interrupted and resumed without a
 * duplicate, and over damaged files. Real PostgreSQL, dev-kafka over TCP,
 * the real binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive_gen.h"
#include "ds/codec.h"
#include "harness.h"

enum { N = 240 };
#define FIRST_MS 1795165200000LL /* 2026-11-20T09:00:00Z */
#define STEP_MS 45000LL          /* N decisions over three hours */

static dtPg pg;
static dtApi api;
static dtKafka kafka;
static json_t *docs;
static char root[300];

static int setup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL) || !dtKafkaStart(&kafka)) return -1;
    snprintf(root, sizeof(root), "%s/archive", pg.dir);
    dtGenBlockSize = 4096; /* several blocks per file, so damage can hit the middle of one */
    return dtArchiveGenerate(root, N, FIRST_MS, STEP_MS, &docs) ? 0 : -1;
}

static int teardown(void **state) {
    json_decref(docs);
    dtApiStop(&api);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    return 0;
}

/* Runs decision-replay over the archive (or another root) with args; returns
 * its whole output (stdout then stderr) followed by "rc=<status>". */
static char *replay(const char *archive, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "${BUILD:-build}/bin/decision-replay --archive %s --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z"
             " --brokers 127.0.0.1:%d --log-level warn %s 2>/tmp/replay-stderr.$$; rc=$?; cat /tmp/replay-stderr.$$;"
             " rm -f /tmp/replay-stderr.$$; echo rc=$rc",
             archive ? archive : root, kafka.port, args);
    return dtCapture(cmd);
}

/* The "summary" object of a run's output (new reference). */
static json_t *summaryOf(const char *out) {
    const char *s = strstr(out, "{\"summary\":");
    json_t *j = s ? json_loadb(s, strcspn(s, "\n"), 0, NULL) : NULL;
    json_t *sum = json_incref(json_object_get(j, "summary"));
    json_decref(j);
    if (sum == NULL) fprintf(stderr, "no summary in:\n%s\n", out);
    return sum;
}

static long long count(json_t *sum, const char *name) {
    return json_integer_value(json_object_get(sum, name));
}

/* Records of a topic as "<key> <decision_id header> <decision_id>" lines. */
static char *topic(const char *name) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/consume_decisions.py 127.0.0.1:%d %s; echo rc=$?",
             kafka.port, name);
    return dtCapture(cmd);
}

static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* Every decision i with want(i) is on the topic exactly once, keyed by its
 * customer; no other one is. */
static void assertTopicHolds(const char *out, bool (*want)(int)) {
    assert_non_null(strstr(out, "rc=0"));
    for (int i = 0; i < N; i++) {
        char id[37], line[128];
        dtGenId(i, id);
        snprintf(line, sizeof(line), " cust-%d %s %s 2\n", i % 7, id, id);
        if (occurrences(out, id) != (want(i) ? 2 : 0)) fprintf(stderr, "decision %d: %s\n", i, id);
        assert_int_equal(occurrences(out, line), want(i) ? 1 : 0);
        assert_int_equal(occurrences(out, id), want(i) ? 2 : 0);
    }
}

static bool all(int i) {
    return true;
}

static void test_replay_to_a_fresh_topic(void **state) {
    char *out = replay(NULL, "--target kafka --topic replayed");
    json_t *sum = summaryOf(out);
    assert_non_null(strstr(out, "rc=0"));
    assert_int_equal(count(sum, "read"), N);
    assert_int_equal(count(sum, "written"), N);
    assert_int_equal(count(sum, "failed"), 0);
    char *t = topic("replayed");
    assertTopicHolds(t, all);
    free(t);
    json_decref(sum);
    free(out);
}

static void test_replay_into_an_emptied_decision_store(void **state) {
    char args[600];
    snprintf(args, sizeof(args), "--target postgres --dsn '%s' --batch 50", pg.conninfo);
    char *out = replay(NULL, args);
    json_t *sum = summaryOf(out);
    assert_non_null(strstr(out, "rc=0"));
    assert_int_equal(count(sum, "written"), N);
    char *rows = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    assert_string_equal(rows, "240");
    /* Served by the API as generated, with the archived server fields. */
    for (int i = 0; i < N; i += 37) {
        char id[37], path[64];
        dtGenId(i, id);
        snprintf(path, sizeof(path), "/v1/decisions/%s", id);
        dtResponse r;
        assert_true(dtHttp(&api, "GET", path, DT_READER_TOKEN, NULL, NULL, 0, &r) && r.status == 200);
        const char *key;
        json_t *v, *doc = json_array_get(docs, i);
        json_object_foreach(doc, key, v) assert_true(json_equal(v, json_object_get(r.json, key)));
        assert_int_equal(json_integer_value(json_object_get(r.json, "schema_version")), 2); /* served as the current version */
        dtResponseFree(&r);
        /* The same document posted again is an idempotent retry (same hash). */
        char *body = json_dumps(doc, JSON_COMPACT);
        assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body),
                           &r));
        assert_int_equal(r.status, 200);
        dtResponseFree(&r);
        free(body);
    }
    /* Replayed again: everything is already present, nothing changes. */
    char *before = dtPgTableFingerprint(&pg);
    char *again = replay(NULL, args);
    json_t *sum2 = summaryOf(again);
    assert_non_null(strstr(again, "rc=0"));
    assert_int_equal(count(sum2, "written"), 0);
    assert_int_equal(count(sum2, "present"), N);
    char *after = dtPgTableFingerprint(&pg);
    assert_string_equal(before, after);

    /* A stored row with another document than the archive's, under the
     * same version, is not "present": it fails, named, as a post would get
     * 409, and the row stays as it is. */
    char id0[37], sql[200];
    dtGenId(0, id0);
    snprintf(sql, sizeof(sql), "UPDATE decisions SET doc_sha256 = '\\x00' WHERE decision_id = '%s'", id0);
    assert_true(dtPgExec(&pg, sql));
    char *changed = dtPgTableFingerprint(&pg);
    char *third = replay(NULL, args);
    json_t *sum3 = summaryOf(third);
    assert_null(strstr(third, "rc=0"));
    assert_int_equal(count(sum3, "failed"), 1);
    assert_non_null(strstr(third, "stored with another document than the archive's"));
    assert_non_null(strstr(third, id0));
    char *after3 = dtPgTableFingerprint(&pg);
    assert_string_equal(changed, after3);
    snprintf(sql, sizeof(sql),
             "UPDATE decisions SET doc_sha256 = sha256(convert_to(doc_text, 'UTF8')) WHERE decision_id = '%s'", id0);
    assert_true(dtPgExec(&pg, sql));
    char *restored = dtPgTableFingerprint(&pg);
    assert_string_equal(before, restored);
    free(restored);
    free(after3);
    json_decref(sum3);
    free(third);
    free(changed);
    free(before);
    free(after);
    json_decref(sum2);
    free(again);
    free(rows);
    json_decref(sum);
    free(out);
}

static bool cust3(int i) {
    return i % 7 == 3;
}

/* Each filter selects exactly the decisions it names (dry runs count), and a
 * filtered replay writes only those. */
static void test_filters(void **state) {
    static const struct {
        const char *args;
        int expect;
    } cases[] = {
        {"--customer-id cust-3", (N + 3) / 7},
        {"--merchant-id m-2", N / 5},
        {"--outcome REJECTED", N / 3},
        {"--customer-id cust-3 --outcome APPROVED", 12}, /* i%7==3 && i%3==0: i = 3 + 21k */
        /* decided_at in [10:00, 10:30): i in [80, 120) */
        {"--from 2026-11-20T10:00:00Z --to 2026-11-20T10:30:00Z", 40},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char args[300];
        snprintf(args, sizeof(args), "--dry-run %s", cases[c].args);
        char *out = replay(NULL, args);
        json_t *sum = summaryOf(out);
        if (count(sum, "selected") != cases[c].expect) fprintf(stderr, "%s:\n%s\n", args, out);
        assert_int_equal(count(sum, "selected"), cases[c].expect);
        assert_int_equal(count(sum, "written"), 0);
        assert_non_null(strstr(out, "rc=0"));
        json_decref(sum);
        free(out);
    }
    char *out = replay(NULL, "--target kafka --topic filtered --customer-id cust-3");
    assert_non_null(strstr(out, "rc=0"));
    char *t = topic("filtered");
    assertTopicHolds(t, cust3);
    free(t);
    free(out);
    /* An outcome the schema does not know is a usage error, not an empty run. */
    out = replay(NULL, "--dry-run --outcome MAYBE");
    assert_non_null(strstr(out, "--outcome MAYBE"));
    assert_non_null(strstr(out, "rc=2"));
    free(out);
}

typedef struct ckpt {
    const char *path;
} ckpt;

static bool checkpointAdvanced(void *arg) {
    json_t *j = json_load_file(((ckpt *)arg)->path, 0, NULL);
    long long written = json_integer_value(json_object_get(json_object_get(j, "counts"), "written"));
    json_decref(j);
    return written >= 20;
}

/* A rate-limited replay to a topic is interrupted (SIGINT, as Ctrl-C) and
 * resumed from its checkpoint: every decision on the topic exactly once;
 * a third run of the finished replay writes nothing. */
static void test_interrupt_and_resume(void **state) {
    char cp[400], brokers[64], args[1024];
    snprintf(cp, sizeof(cp), "%s/replay.checkpoint", pg.dir);
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka.port);
    const char *argv[] = {"--archive", root, "--from", "2026-11-20T00:00:00Z", "--to", "2026-11-21T00:00:00Z",
                          "--target", "kafka", "--brokers", brokers, "--topic", "resumed", "--checkpoint", cp,
                          "--checkpoint-interval", "50ms", "--rate", "200", "--log-level", "warn", NULL};
    pid_t pid = dtSpawn("decision-replay", argv, NULL);
    assert_true(pid > 0);
    ckpt c = {cp};
    assert_true(dtWaitFor(checkpointAdvanced, &c, 20000));
    assert_int_equal(dtStop(pid, SIGINT), 3);
    json_t *j = json_load_file(cp, 0, NULL);
    long long first = json_integer_value(json_object_get(json_object_get(j, "counts"), "written"));
    assert_true(first >= 20 && first < N);
    assert_false(json_is_true(json_object_get(j, "done")));
    json_decref(j);

    snprintf(args, sizeof(args), "--target kafka --topic resumed --checkpoint %s", cp);
    char *out = replay(NULL, args);
    json_t *sum = summaryOf(out);
    assert_non_null(strstr(out, "rc=0"));
    assert_true(json_is_true(json_object_get(sum, "resumed")));
    assert_int_equal(count(sum, "written"), N); /* the counts cover both runs */
    char *t = topic("resumed");
    assertTopicHolds(t, all);
    free(t);
    json_decref(sum);
    free(out);

    out = replay(NULL, args); /* finished: nothing is written again */
    assert_non_null(strstr(out, "already finished"));
    assert_non_null(strstr(out, "rc=0"));
    t = topic("resumed");
    assertTopicHolds(t, all);
    free(t);
    free(out);
    /* The checkpoint belongs to that selection only. */
    snprintf(args, sizeof(args), "--target kafka --topic other --checkpoint %s", cp);
    out = replay(NULL, args);
    assert_non_null(strstr(out, "belongs to another replay"));
    assert_non_null(strstr(out, "rc=1"));
    free(out);
}

/* The archive files in time order (path below root/decisions), as ls sees them. */
static char *firstFile(const char *dir, int nth) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "find %s/decisions -name '*.avro' | sort | sed -n %dp | tr -d '\\n'", dir, nth);
    return dtCapture(cmd);
}

/* A container file any Avro reader accepts, but of a schema that is no
 * decision version. */
static void writeForeignFile(const char *path) {
    avro_schema_t s;
    assert_int_equal(avro_schema_from_json_literal("{\"type\":\"record\",\"name\":\"Other\",\"fields\":"
                                                   "[{\"name\":\"x\",\"type\":\"long\"}]}", &s), 0);
    avro_file_writer_t w;
    assert_int_equal(avro_file_writer_create(path, s, &w), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    avro_value_t v, f;
    avro_generic_value_new(iface, &v);
    avro_value_get_by_index(&v, 0, &f, NULL);
    avro_value_set_long(&f, 7);
    assert_int_equal(avro_file_writer_append_value(w, &v), 0);
    avro_file_writer_close(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
}

/* Damaged files (truncated, a corrupt block size, not Avro at all, a
 * foreign schema) are each named with what is wrong; --on-error decides
 * whether the run stops at the first or replays everything else. */
static void test_damaged_files(void **state) {
    char bad[400], cmd[1200];
    snprintf(bad, sizeof(bad), "%s/damaged", pg.dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s && cp -r %s %s", bad, root, bad);
    assert_int_equal(system(cmd), 0);
    char *f1 = firstFile(bad, 1), *f2 = firstFile(bad, 2), *f3 = firstFile(bad, 3);
    struct stat st;
    assert_int_equal(stat(f1, &st), 0);
    assert_int_equal(truncate(f1, st.st_size - 40), 0); /* the last block loses its tail, the others are read */
    /* The first block's size becomes huge. The file ends with the sync
     * marker, whose first appearance ends the header. */
    FILE *fp = fopen(f2, "r+b");
    assert_non_null(fp);
    static char whole[1 << 20];
    size_t n = fread(whole, 1, sizeof(whole), fp);
    assert_true(n > 16 && n < sizeof(whole));
    const char *sync = memmem(whole, n, whole + n - 16, 16);
    assert_non_null(sync);
    fseek(fp, (long)(sync - whole) + 16 + 1, SEEK_SET); /* past the object count (1 byte for < 64) */
    fwrite("\xfe\xff\xff\xff\x0f", 1, 5, fp);
    fclose(fp);
    fp = fopen(f3, "wb");
    fputs("this is not an Avro file\n", fp);
    fclose(fp);
    char foreign[600];
    snprintf(foreign, sizeof(foreign), "%s/decisions/dt=2026-11-20/hour=09/decisions+9+00000000000000000000.avro", bad);
    writeForeignFile(foreign);

    char *out = replay(bad, "--dry-run");
    assert_non_null(strstr(out, "rc=1"));
    assert_non_null(strstr(out, "--on-error=stop"));
    json_t *sum = summaryOf(out);
    assert_int_equal(count(sum, "bad_files"), 1);
    json_decref(sum);
    free(out);

    out = replay(bad, "--dry-run --on-error continue");
    assert_non_null(strstr(out, "rc=1"));
    snprintf(cmd, sizeof(cmd), "%s: damaged after record ", f1);
    const char *at = strstr(out, cmd);
    assert_non_null(at);
    assert_true(atoi(at + strlen(cmd)) > 0);
    snprintf(cmd, sizeof(cmd), "%s: damaged after record 0: block runs past the end of the file", f2);
    assert_non_null(strstr(out, cmd));
    snprintf(cmd, sizeof(cmd), "%s: not an Avro container file", f3);
    assert_non_null(strstr(out, cmd));
    snprintf(cmd, sizeof(cmd), "%s: written with a schema that is none of the known decision schema versions", foreign);
    assert_non_null(strstr(out, cmd));
    sum = summaryOf(out);
    assert_int_equal(count(sum, "bad_files"), 4);
    assert_true(count(sum, "read") > N / 2 && count(sum, "read") < N); /* all but the damaged parts */
    json_decref(sum);
    free(out);
    out = replay("/nonexistent", "--dry-run");
    assert_non_null(strstr(out, "/nonexistent/decisions"));
    assert_non_null(strstr(out, "rc=1"));
    free(out);
    free(f1);
    free(f2);
    free(f3);
}


/* Files no archiver writes, made by hand: a record that decodes but breaks
 * a rule ("SE" become "sE"), a block whose count was lowered, a block that
 * inflates past the cap. Each is refused with the file and where in it;
 * the run replays the rest and exits 1; PostgreSQL gets no row the API
 * could not serve. */
static void test_refused_records_and_blocks(void **state) {
    char dir[400], cmd[1200], path[3][600];
    snprintf(dir, sizeof(dir), "%s/crafted", pg.dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s/decisions/dt=2026-11-20/hour=09", dir, dir);
    assert_int_equal(system(cmd), 0);
    for (int p = 0; p < 3; p++)
        snprintf(path[p], sizeof(path[p]), "%s/decisions/dt=2026-11-20/hour=09/decisions+%d+00000000000000000000.avro",
                 dir, p);
    /* decisions 1000.. (ids the generated archive does not use), three per file */
    char *rec[9];
    size_t len[9];
    for (int i = 0; i < 9; i++) assert_non_null(rec[i] = dtGenRecord(1000 + i, FIRST_MS + i, &len[i]));
    char *se = memmem(rec[1], len[1], "\x04SE", 3);
    assert_non_null(se);
    se[1] = 's';
    static char buf[3][1 << 16];
    size_t n[3] = {0};
    for (int i = 0; i < 9; i++) {
        memcpy(buf[i / 3] + n[i / 3], rec[i], len[i]);
        n[i / 3] += len[i];
        free(rec[i]);
    }
    dtGenBlock invalid = {3, buf[0], n[0]}, lowered = {2, buf[1], n[1]};
    assert_true(dtGenContainer(path[0], "null", &invalid, 1));
    assert_true(dtGenContainer(path[1], "deflate", &lowered, 1));
    size_t big = 80u << 20; /* decision 1006, then zeros: 80 MiB inflated, ~80 KiB stored */
    char *bomb = calloc(1, big);
    memcpy(bomb, buf[2], n[2] - 0);
    dtGenBlock b = {1, bomb, big};
    assert_true(dtGenContainer(path[2], "deflate", &b, 1));
    free(bomb);

    char args[700];
    snprintf(args, sizeof(args), "--target postgres --dsn '%s' --on-error continue", pg.conninfo);
    char *out = replay(dir, args);
    assert_non_null(strstr(out, "rc=1"));
    snprintf(cmd, sizeof(cmd), "%s: record 1 (block at byte ", path[0]);
    assert_non_null(strstr(out, cmd));
    assert_non_null(strstr(out, "refused: country must match the pattern"));
    snprintf(cmd, sizeof(cmd), "%s: block at byte ", path[1]);
    const char *at = strstr(out, cmd);
    assert_non_null(at);
    assert_non_null(strstr(at, "declares 2 records: "));
    snprintf(cmd, sizeof(cmd), "%s: block at byte ", path[2]);
    at = strstr(out, cmd);
    assert_non_null(at);
    assert_non_null(strstr(at, "inflates to more than the 67108864-byte cap on a block"));
    json_t *sum = summaryOf(out);
    assert_int_equal(count(sum, "written"), 2);
    assert_int_equal(count(sum, "failed"), 3); /* the record, and each file's read that failed */
    assert_int_equal(count(sum, "bad_files"), 2);
    json_decref(sum);
    free(out);
    /* decisions 1000 and 1002 written and served, 1001 nowhere */
    for (int i = 1000; i < 1003; i++) {
        char id[37], p[64];
        dtGenId(i, id);
        snprintf(p, sizeof(p), "/v1/decisions/%s", id);
        dtResponse r;
        assert_true(dtHttp(&api, "GET", p, DT_READER_TOKEN, NULL, NULL, 0, &r));
        assert_int_equal(r.status, i == 1001 ? 404 : 200);
        dtResponseFree(&r);
    }
    /* the cap is configurable: under a larger one the block's count is checked as any other's */
    out = replay(dir, "--dry-run --on-error continue --max-block-size 128MiB");
    snprintf(cmd, sizeof(cmd), "%s: block at byte ", path[2]);
    at = strstr(out, cmd);
    assert_non_null(at);
    assert_non_null(strstr(at, "declares 1 records: "));
    assert_non_null(strstr(out, "rc=1"));
    free(out);
}


/* ---- the archiver and records it cannot place ---- */

/* Produces values to partition 0 of topic, in order; waits for the acks. */
static void produce(const char *topic_name, char **values, const size_t *lens, int n) {
    rd_kafka_t *rk = dtKafkaProducer(&kafka, NULL);
    assert_non_null(rk);
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic_name), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE(values[i], lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* Decision i in the wire format, decided at decided_ms (set on the Avro
 * value, past any rule a post has on it). malloc'd. */
static char *wireRecord(int i, int64_t decided_ms, const char *country, size_t *len) {
    char id[37];
    json_t *doc = dtFixture("decision.json");
    dtGenId(i, id);
    json_object_set_new(doc, "decision_id", json_string(id));
    char *wire = dtGenWire(doc, decided_ms, country, len);
    assert_non_null(wire);
    json_decref(doc);
    return wire;
}

typedef struct archiverProc {
    pid_t pid;
    dtApi http; /* only its url: the metrics endpoint */
    char env[5][400];
} archiverProc;

static void archiverStart(archiverProc *a, const char *aroot, const char *topic_name) {
    int port = dtFreePort();
    snprintf(a->http.url, sizeof(a->http.url), "http://127.0.0.1:%d", port);
    snprintf(a->env[0], sizeof(a->env[0]), "ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(a->env[1], sizeof(a->env[1]), "ARCHIVER_ARCHIVE=%s", aroot);
    snprintf(a->env[2], sizeof(a->env[2]), "ARCHIVER_TOPIC=%s", topic_name);
    snprintf(a->env[3], sizeof(a->env[3]), "ARCHIVER_METRICS_PORT=%d", port);
    snprintf(a->env[4], sizeof(a->env[4]), "ARCHIVER_GROUP_ID=archiver-%s", topic_name);
    const char *env[] = {a->env[0], a->env[1], a->env[2], a->env[3], a->env[4], "ARCHIVER_MAX_AGE=300ms",
                         "ARCHIVER_SESSION_TIMEOUT=3s",
                         "ARCHIVER_GROUP_INSTANCE_ID=none", "ARCHIVER_REGISTRY_URL=", "ARCHIVER_LOG_LEVEL=error", NULL};
    a->pid = dtSpawn("decision-archiver", NULL, env);
    assert_true(a->pid > 0);
    assert_true(dtWaitReady(&a->http, 20000));
}

static bool running(pid_t pid) {
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* A decision dated 1969 (no dt= directory for it), a value that is not in
 * the wire format and a decision breaking a rule (every replay of its file
 * would refuse it) do not stop the archiver: each is quarantined byte for
 * byte with its reason and counted, the decisions after them are archived
 * (and replayed), and a restart does not read them again. */
static void test_archiver_quarantines_what_it_cannot_place(void **state) {
    char aroot[400], path[600], cmd[800];
    snprintf(aroot, sizeof(aroot), "%s/quarantine-archive", pg.dir);
    char *values[9];
    size_t lens[9];
    values[0] = wireRecord(3000, -86400000LL * 365, NULL, &lens[0]); /* 1969-01-01 */
    values[1] = strdup("not a decision");
    lens[1] = strlen(values[1]);
    values[2] = wireRecord(3002, FIRST_MS + 2000, "sE", &lens[2]);
    for (int i = 3; i < 8; i++) values[i] = wireRecord(3000 + i, FIRST_MS + i * 1000, NULL, &lens[i]);
    values[8] = wireRecord(3008, FIRST_MS + 8000, NULL, &lens[8]);
    produce("quarantined", values, lens, 8);

    archiverProc a;
    archiverStart(&a, aroot, "quarantined");
    assert_true(dtWaitMetric(&a.http, "archiver_records_total", 5, 30000));
    assert_int_equal(dtMetric(&a.http, "archiver_quarantined_total"), 3);
    assert_true(running(a.pid));
    /* each kept byte for byte, with why */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/quarantine/decisions+0+%020d.value", aroot, i);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static char got[65536];
        size_t n = fread(got, 1, sizeof(got), fp);
        fclose(fp);
        assert_int_equal(n, lens[i]);
        assert_memory_equal(got, values[i], n);
    }
    snprintf(cmd, sizeof(cmd), "cat %s/quarantine/decisions+0+%020d.reason", aroot, 0);
    char *why = dtCapture(cmd);
    assert_non_null(strstr(why, "partition 0 offset 0: decided_at must not be before 2000-01-01"));
    free(why);
    snprintf(cmd, sizeof(cmd), "cat %s/quarantine/decisions+0+%020d.reason", aroot, 2);
    why = dtCapture(cmd);
    assert_non_null(strstr(why, "partition 0 offset 2: country must match the pattern"));
    free(why);
    /* the decisions after them are archived, and replay reads only those */
    char *out = replay(aroot, "--dry-run");
    json_t *sum = summaryOf(out);
    assert_non_null(strstr(out, "rc=0"));
    assert_int_equal(count(sum, "selected"), 5);
    json_decref(sum);
    free(out);

    /* a restart goes on after them: nothing quarantined again */
    assert_int_equal(dtStop(a.pid, SIGTERM), 0);
    produce("quarantined", &values[8], &lens[8], 1);
    archiverStart(&a, aroot, "quarantined");
    assert_true(dtWaitMetric(&a.http, "archiver_records_total", 1, 30000));
    assert_int_equal(dtMetric(&a.http, "archiver_records_total"), 1);
    assert_int_equal(dtMetric(&a.http, "archiver_quarantined_total"), 0);
    assert_true(running(a.pid));
    assert_int_equal(dtStop(a.pid, SIGTERM), 0);
    for (int i = 0; i < 9; i++) free(values[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_to_a_fresh_topic),
        cmocka_unit_test(test_replay_into_an_emptied_decision_store),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_interrupt_and_resume),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_refused_records_and_blocks),
        cmocka_unit_test(test_archiver_quarantines_what_it_cannot_place),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
