/* test_stream.c - the stream processor end to end: decisions posted through
 * the API reach the topic (read back with an independent client and decoded
 * with the shipped schema), a row that breaks the schema goes to the DLQ
 * without stopping the stream, and traffic on other tables keeps the slot
 * advancing. Real PostgreSQL, dev-kafka over TCP, real processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"
#include "schemadir.h"

static dtPg pg;
static dtApi api;
static dtKafka kafka;
static pid_t proc = -1, archiver = -1;
static char env_abrokers[64], env_aroot[300];
static const char *archEnv[] = {env_abrokers, env_aroot, "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_LOG_LEVEL=error",
                                "ARCHIVER_SESSION_TIMEOUT=3s", "ARCHIVER_GROUP_INSTANCE_ID=none", NULL};
static dtApi procHttp; /* only its url: the processor's metrics endpoint */
static char env_db[400], env_brokers[64], env_metrics[64];
static const char *procEnv[] = {env_db, env_brokers, env_metrics, "STREAM_LOG_LEVEL=warn", "STREAM_STATUS_INTERVAL=100ms",
                                NULL};

static int setup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL)) return -1;
    if (!dtKafkaStart(&kafka)) return -1;
    int mport = dtFreePort();
    snprintf(procHttp.url, sizeof(procHttp.url), "http://127.0.0.1:%d", mport);
    snprintf(env_db, sizeof(env_db), "STREAM_DSN=%s", pg.conninfo);
    snprintf(env_brokers, sizeof(env_brokers), "STREAM_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(env_metrics, sizeof(env_metrics), "STREAM_METRICS_PORT=%d", mport);
    proc = dtSpawn("stream-processor", NULL, procEnv);
    snprintf(env_abrokers, sizeof(env_abrokers), "ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(env_aroot, sizeof(env_aroot), "ARCHIVER_ARCHIVE=%s/archive", pg.dir);
    archiver = dtSpawn("decision-archiver", NULL, archEnv);
    return dtWaitReady(&procHttp, 20000) ? 0 : -1;
}

static int teardown(void **state) {
    int rc = dtStop(proc, SIGTERM);
    if (dtStop(archiver, SIGTERM) != 0) rc = -1;
    dtApiStop(&api);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    return rc == 0 ? 0 : -1;
}

typedef struct drained {
    double events;
} drained;

/* The processor has read `events` decisions and Kafka acknowledged them all.
 * stream_in_flight alone cannot say so: it is a gauge sampled at each status
 * update, still 0 just after a send; every event is one message, so the
 * delivery reports (counted in the callback, read after the events) must
 * have caught up with the events. */
static bool procDrained(void *arg) {
    drained *d = arg;
    double events = dtMetric(&procHttp, "stream_events_total");
    double reported = dtMetric(&procHttp, "kafka_delivered_total") + dtMetric(&procHttp, "kafka_delivery_failed_total");
    return events >= d->events && reported >= events && dtMetric(&procHttp, "stream_in_flight") == 0;
}

/* Posts the fixture decision with a fresh decision_id (written into id) and,
 * when not NULL, another customer_id or decided_at; true on 201. */
/* Posts the fixture decision under a fresh id; *posted (if given) receives
 * the document as posted (new reference). */
static bool postDecision(char id[37], const char *customer, const char *decided_at, json_t **posted) {
    json_t *doc = dtFixture("decision.json");
    dtUuid(id);
    json_object_set_new(doc, "decision_id", json_string(id));
    if (customer) json_object_set_new(doc, "customer_id", json_string(customer));
    if (decided_at) json_object_set_new(doc, "decided_at", json_string(decided_at));
    char *body = json_dumps(doc, JSON_COMPACT);
    dtResponse r;
    bool ok = dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r) &&
              r.status == 201;
    dtResponseFree(&r);
    free(body);
    if (posted) *posted = json_incref(doc);
    json_decref(doc);
    return ok;
}

/* The commit-to-ack histogram observed the transactions, in buckets fine
 * enough to tell 2, 5 and 10 ms apart (cumulative, so never decreasing). */
static void assertLatencyBuckets(void) {
    assert_true(dtWaitMetric(&procHttp, "stream_commit_to_ack_seconds_count", 1, 10000));
    static const char *const le[] = {"0.001", "0.002", "0.003", "0.005", "0.0075", "0.01", "0.015", "0.025", "+Inf"};
    double prev = 0;
    for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "stream_commit_to_ack_seconds_bucket{le=\"%s\"}", le[i]);
        double v = dtMetric(&procHttp, name);
        if (v < prev) fprintf(stderr, "%s = %g, below the bucket before it (%g)\n", name, v, prev);
        assert_true(v >= prev);
        prev = v;
    }
    assert_true(prev == dtMetric(&procHttp, "stream_commit_to_ack_seconds_count"));
}

static void test_posted_decisions_reach_the_topic(void **state) {
    enum { N = 200 };
    static char ids[N][37];
    static char customers[N][16];
    drained d = {dtMetric(&procHttp, "stream_events_total") + N};
    for (int i = 0; i < N; i++) {
        snprintf(customers[i], sizeof(customers[i]), "cust-%d", i % 13);
        assert_true(postDecision(ids[i], customers[i], NULL, NULL));
    }
    assert_true(dtWaitFor(procDrained, &d, 30000));

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/consume_decisions.py 127.0.0.1:%d decisions; echo rc=$?",
             kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "rc=0")); /* every record decoded with the shipped schema */
    for (int i = 0; i < N; i++) {
        /* "<partition> <offset> <key> <header id> <record id> <schema id>" */
        char needle[128];
        snprintf(needle, sizeof(needle), " %.15s %.36s %.36s 2\n", customers[i], ids[i], ids[i]);
        if (strstr(out, needle) == NULL) fprintf(stderr, "missing on the topic: %s", needle);
        assert_non_null(strstr(out, needle));
    }
    free(out);
    assertLatencyBuckets();
}

static void test_poison_row_goes_to_dlq_and_stream_continues(void **state) {
    char poison[37], after[37];
    dtUuid(poison);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) VALUES ('%s', 'p', 'poison', 'm', 'APPROVED', now(), 1, '\\x00',"
             " '{\"decision_id\": \"%s\", \"colour\": \"red\"}')",
             poison, poison);
    drained d = {dtMetric(&procHttp, "stream_events_total") + 2};
    assert_true(dtPgExec(&pg, sql));
    assert_true(postDecision(after, NULL, NULL, NULL));
    assert_true(dtWaitFor(procDrained, &d, 30000));

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 20 kcat -C -b 127.0.0.1:%d -t decisions.dlq -e -q -f '%%h|%%s\\n'", kafka.port);
    char *dlq = dtCapture(cmd);
    assert_non_null(strstr(dlq, poison));
    assert_non_null(strstr(dlq, "error=doc: "));
    free(dlq);
    snprintf(cmd, sizeof(cmd), "timeout 20 kcat -C -b 127.0.0.1:%d -t decisions -e -q -f '%%h\\n'", kafka.port);
    char *topic = dtCapture(cmd);
    assert_non_null(strstr(topic, after));
    assert_null(strstr(topic, poison));
    free(topic);
}

static void test_foreign_traffic_advances_the_slot(void **state) {
    assert_true(dtPgExec(&pg, "CREATE TABLE IF NOT EXISTS unrelated (id serial PRIMARY KEY, note text)"));
    for (int i = 0; i < 20; i++) assert_true(dtPgExec(&pg, "INSERT INTO unrelated (note) VALUES (repeat('x', 500))"));
    assert_true(dtPgWaitSlotCaughtUp(&pg, "decisions_stream", 20000));
}

/* Waits until the slot has confirmed everything written so far. */
static bool slotCaughtUpNow(int timeout_ms) {
    return dtPgWaitSlotCaughtUp(&pg, "decisions_stream", timeout_ms);
}

/* The decision_id headers of the whole topic (malloc'd text). */
static char *topicIds(void) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -C -b 127.0.0.1:%d -t decisions -e -q -f '%%h\\n'", kafka.port);
    return dtCapture(cmd);
}

typedef struct eventsAbove {
    double n;
} eventsAbove;

static bool procEventsAbove(void *arg) {
    return dtMetric(&procHttp, "stream_events_total") >= ((eventsAbove *)arg)->n;
}

/* kill -9 the processor at random points while decisions flow; after each
 * restart it resumes from the slot. Every decision must arrive (duplicates
 * are allowed, losses never). The poster goes on until the last crash is
 * done (at least MIN_POSTS), so that every crash meets a flowing stream. */
static void test_crash_restart_loses_nothing(void **state) {
    enum { MIN_POSTS = 400, MAX_POSTS = 20000, CRASHES = 4 };
    char idsfile[300];
    snprintf(idsfile, sizeof(idsfile), "%s/posted-ids", pg.dir);
    int stop[2];
    assert_int_equal(pipe(stop), 0);
    pid_t poster = fork();
    if (poster == 0) { /* posts until told to stop, writes the ids of those accepted */
        close(stop[1]);
        fcntl(stop[0], F_SETFL, O_NONBLOCK);
        FILE *f = fopen(idsfile, "w");
        int ok = 0, n = 0;
        char c;
        for (; n < MAX_POSTS && (n < MIN_POSTS || read(stop[0], &c, 1) < 0); n++) {
            char id[37];
            if (postDecision(id, NULL, NULL, NULL)) {
                fprintf(f, "%s\n", id);
                ok++;
            }
        }
        fclose(f);
        _exit(ok == n && n < MAX_POSTS ? 0 : 1);
    }
    close(stop[0]);
    srand((unsigned)time(NULL));
    bool flowing = true, killed = true, ready = true;
    for (int c = 0; c < CRASHES && flowing && killed && ready; c++) {
        /* a random point: after 5..40 more decisions were read */
        eventsAbove e = {dtMetric(&procHttp, "stream_events_total") + 5 + rand() % 36};
        flowing = dtWaitFor(procEventsAbove, &e, 20000);
        killed = dtStop(proc, SIGKILL) == 128 + SIGKILL;
        proc = dtSpawn("stream-processor", NULL, procEnv);
        ready = dtWaitReady(&procHttp, 20000);
    }
    /* the poster stops before any assertion, so that none leaves it running */
    bool told = write(stop[1], "x", 1) == 1;
    close(stop[1]);
    int st;
    waitpid(poster, &st, 0);
    assert_true(flowing && killed && ready && told);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(slotCaughtUpNow(30000));
    char *topic = topicIds();
    FILE *f = fopen(idsfile, "r");
    char line[64];
    int checked = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char needle[80];
        snprintf(needle, sizeof(needle), "decision_id=%s,", line);
        if (!strstr(topic, needle)) fprintf(stderr, "lost: %s\n", line);
        assert_non_null(strstr(topic, needle));
        checked++;
    }
    fclose(f);
    free(topic);
    assert_true(checked >= MIN_POSTS);
}

static bool inFlightAtLeast(void *arg) {
    return dtMetric(&procHttp, "stream_in_flight") >= *(double *)arg;
}

/* Kafka unreachable: the decisions wait, the slot does not move past them,
 * and when the brokers return every decision arrives. */
static void test_broker_outage_holds_the_slot(void **state) {
    enum { N = 20 };
    assert_true(slotCaughtUpNow(20000));
    char *before = dtPgScalar(&pg, "SELECT pg_current_wal_lsn()");
    assert_true(dtKafkaBrokers(&kafka, "down"));
    char ids[N][37];
    for (int i = 0; i < N; i++) assert_true(postDecision(ids[i], NULL, NULL, NULL));
    double want = N;
    bool waiting = dtWaitFor(inFlightAtLeast, &want, 20000);
    /* A window of many status intervals in which the slot must NOT pass
     * the position before the undelivered decisions. */
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT confirmed_flush_lsn <= '%s'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'decisions_stream'",
             before);
    bool held = true;
    for (int i = 0; i < 15 && held; i++) {
        char *v = dtPgScalar(&pg, sql);
        held = v && strcmp(v, "t") == 0;
        free(v);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bool back = dtKafkaBrokers(&kafka, "up"); /* before asserting: later tests need the brokers */
    assert_true(back);
    assert_true(waiting);
    assert_true(held);
    assert_true(slotCaughtUpNow(60000));
    char *topic = topicIds();
    for (int i = 0; i < N; i++) assert_non_null(strstr(topic, ids[i]));
    free(topic);
    free(before);
}

/* The archive as an independent reader sees it. */
static char *readArchive(void) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py %s/archive; echo rc=$?", pg.dir);
    return dtCapture(cmd);
}

static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

typedef struct archived {
    char (*ids)[37];
    int n;
} archived;

static bool allArchived(void *arg) {
    archived *a = arg;
    char *out = readArchive();
    bool all = true;
    for (int i = 0; i < a->n && all; i++) all = strstr(out, a->ids[i]) != NULL;
    free(out);
    return all;
}

/* Each archived record, read through the shipped schema by python3-avro,
 * is the posted document plus the server-set fields, and equals what the
 * API serves for it. */
static void assertArchivedAsPosted(json_t **posted, int n) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py --json %s/archive", pg.dir);
    char *out = dtCapture(cmd);
    json_t *byId = json_object();
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *doc = json_loads(line, 0, NULL);
        assert_non_null(doc);
        json_object_set_new(byId, json_string_value(json_object_get(doc, "decision_id")), doc);
    }
    for (int i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(posted[i], "decision_id"));
        json_t *rec = json_object_get(byId, id);
        assert_non_null(rec);
        const char *key;
        json_t *v;
        json_object_foreach(posted[i], key, v) assert_true(json_equal(v, json_object_get(rec, key)));
        char path[64];
        dtResponse r;
        snprintf(path, sizeof(path), "/v1/decisions/%s", id);
        assert_true(dtHttp(&api, "GET", path, DT_READER_TOKEN, NULL, NULL, 0, &r) && r.status == 200);
        if (!json_equal(r.json, rec)) {
            char *a = json_dumps(rec, JSON_SORT_KEYS), *b = json_dumps(r.json, JSON_SORT_KEYS);
            fprintf(stderr, "archived %s\nserved   %s\n", a, b);
            free(a);
            free(b);
        }
        assert_true(json_equal(r.json, rec));
        dtResponseFree(&r);
        json_decref(posted[i]);
    }
    json_decref(byId);
    free(out);
}

/* Decisions in two hours of decided_at land in their dt/hour directories,
 * each exactly once, readable by python3-avro; a kill -9 of the archiver in
 * the middle changes nothing of that. */
static void test_archive_round_trip_and_crash(void **state) {
    enum { N = 60 };
    static char ids[N][37];
    json_t *posted[N];
    for (int i = 0; i < N; i++) {
        if (i == N / 2) { /* crash the archiver half way, restart it */
            assert_int_equal(dtStop(archiver, SIGKILL), 128 + SIGKILL);
            archiver = dtSpawn("decision-archiver", NULL, archEnv);
        }
        const char *decided = i % 2 ? "2026-11-20T09:59:59.999Z" : "2026-11-20T10:00:00.000Z";
        assert_true(postDecision(ids[i], NULL, decided, &posted[i]));
    }
    archived a = {ids, N};
    assert_true(dtWaitFor(allArchived, &a, 60000));
    char *out = readArchive();
    assert_non_null(strstr(out, "rc=0"));
    for (int i = 0; i < N; i++) {
        char line[160];
        snprintf(line, sizeof(line), "%.36s %s cust-42 decisions/dt=2026-11-20/hour=%s/decisions+", ids[i],
                 i % 2 ? "1795168799999" : "1795168800000", i % 2 ? "09" : "10");
        if (occurrences(out, ids[i]) != 1) fprintf(stderr, "%s archived %d times\n", ids[i], occurrences(out, ids[i]));
        assert_int_equal(occurrences(out, ids[i]), 1);
        assert_non_null(strstr(out, line));
    }
    free(out);
    assertArchivedAsPosted(posted, N);
}

/* ---- schema versions (issue 6) ---- */

static char v1dir[300], v2dir[300]; /* schema dirs: version 1 only; versions 1 and 2 (current 2) */
static dtApi api2;                  /* a decision API writing, and serving the registry of, the 2-version set */
static char env_api2[400], env_v1dir[400], env_v2dir[400], env_registry[100];

/* Replaces the running processor (if any: proc -1 is none) with one with
 * extra settings (NULL: the default one); waits for it to stream unless
 * wait is false. */
static bool procReplace(const char *const *extra, bool wait) {
    const char *env[16];
    size_t n = 0;
    for (size_t i = 0; procEnv[i]; i++) env[n++] = procEnv[i];
    for (size_t i = 0; extra && extra[i] && n < 15; i++) env[n++] = extra[i];
    env[n] = NULL;
    if (proc > 0 && dtStop(proc, SIGTERM) != 0) return false;
    proc = dtSpawn("stream-processor", NULL, env);
    return proc > 0 && (!wait || dtWaitReady(&procHttp, 20000));
}

/* Posts the fixture decision through `at` under a fresh id; with a model
 * named note (version 2's field) when note is not NULL. */
static bool postTo(const dtApi *at, char id[37], const char *note) {
    json_t *doc = dtFixture("decision.json");
    dtUuid(id);
    json_object_set_new(doc, "decision_id", json_string(id));
    if (note) dtSchemaV2Tag(doc, note);
    char *body = json_dumps(doc, JSON_COMPACT);
    dtResponse r;
    bool ok = dtHttp(at, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r) &&
              r.status == 201;
    if (!ok) fprintf(stderr, "post: %ld %s\n", r.status, r.body ? r.body : "");
    dtResponseFree(&r);
    free(body);
    json_decref(doc);
    return ok;
}

/* Every id is on topic with schema id sid in the wire header and in the
 * schema_id header, decoded by python3-avro with schema_dir, and none is
 * on the dead-letter topic. */
static void assertPublished(const char *topic, const char *schema_dir, char (*ids)[37], int n, int sid) {
    char cmd[600], needle[160];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/tools/consume_decisions.py 127.0.0.1:%d %s %s; echo rc=$?",
             kafka.port, topic, schema_dir);
    char *out = dtCapture(cmd);
    snprintf(cmd, sizeof cmd, "timeout 30 kcat -C -b 127.0.0.1:%d -t %s -e -q -f '%%h\\n'", kafka.port, topic);
    char *headers = dtCapture(cmd);
    snprintf(cmd, sizeof cmd, "timeout 30 kcat -C -b 127.0.0.1:%d -t decisions.dlq -e -q -f '%%h\\n'", kafka.port);
    char *dlq = dtCapture(cmd);
    if (!strstr(out, "rc=0")) fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "rc=0"));
    for (int i = 0; i < n; i++) {
        snprintf(needle, sizeof needle, " %.36s %.36s %d\n", ids[i], ids[i], sid);
        if (!strstr(out, needle)) fprintf(stderr, "not on %s with id %d: %s\n", topic, sid, ids[i]);
        assert_non_null(strstr(out, needle));
        snprintf(needle, sizeof needle, "decision_id=%.36s,schema_id=%d,", ids[i], sid);
        assert_non_null(strstr(headers, needle));
        assert_null(strstr(dlq, ids[i]));
    }
    free(out);
    free(headers);
    free(dlq);
}

static void test_row_keeps_its_stored_version(void **state) {
    enum { N = 5 };
    char ids[N][37];
    snprintf(v1dir, sizeof v1dir, "%s/schemas-v1", pg.dir);
    snprintf(v2dir, sizeof v2dir, "%s/schemas-v2", pg.dir);
    assert_true(dtSchemaDirWrite(v1dir, 1) && dtSchemaDirWrite(v2dir, 2));
    snprintf(env_v1dir, sizeof env_v1dir, "STREAM_SCHEMAS_DIR=%s", v1dir);
    snprintf(env_v2dir, sizeof env_v2dir, "STREAM_SCHEMAS_DIR=%s", v2dir);
    /* The processor's current version is 2; an API of a build before
     * version 2 stores version 1 rows. */
    const char *extra[] = {env_v2dir, "STREAM_TOPIC=decisions.kept", NULL};
    assert_true(procReplace(extra, true));
    char env_api1[400];
    snprintf(env_api1, sizeof env_api1, "DECISIONS_SCHEMAS_DIR=%s", v1dir);
    const char *api1env[] = {env_api1, NULL};
    dtApi api1;
    assert_true(dtApiStart(&api1, &pg, api1env));
    drained d = {N};
    for (int i = 0; i < N; i++) assert_true(postTo(&api1, ids[i], NULL));
    assert_int_equal(dtApiStop(&api1), 0);
    assert_true(dtWaitFor(procDrained, &d, 30000));
    assertPublished("decisions.kept", v2dir, ids, N, 1);
}

/* A processor that knows version 1 only meets version 2 rows: it learns
 * version 2 from the registry (the decision API writing them) and publishes
 * them under id 2; none is dead-lettered. */
static void test_unknown_version_learned_from_registry(void **state) {
    enum { N = 5 };
    char ids[N][37];
    snprintf(env_api2, sizeof env_api2, "DECISIONS_SCHEMAS_DIR=%s", v2dir);
    const char *api2env[] = {env_api2, NULL};
    assert_true(dtApiStart(&api2, &pg, api2env));
    snprintf(env_registry, sizeof env_registry, "STREAM_REGISTRY_URL=%s", api2.url);
    const char *extra[] = {env_v1dir, env_registry, "STREAM_TOPIC=decisions.learned", NULL};
    assert_true(procReplace(extra, true));
    drained d = {N};
    for (int i = 0; i < N; i++) assert_true(postTo(&api2, ids[i], "v2"));
    assert_true(dtWaitFor(procDrained, &d, 30000));
    assert_int_equal(dtMetric(&procHttp, "stream_dlq_total"), 0);
    assertPublished("decisions.learned", v2dir, ids, N, 2);
}

/* The registry is down when a fresh version-1 processor meets version 2
 * rows: it retries from the slot with back-off, dead-letters nothing, and
 * publishes them once the registry is back. */
static void test_registry_down_rows_wait(void **state) {
    enum { N = 3 };
    char ids[N][37];
    assert_true(dtStop(proc, SIGTERM) == 0);
    proc = -1;
    for (int i = 0; i < N; i++) assert_true(postTo(&api2, ids[i], "waited"));
    assert_int_equal(dtApiStop(&api2), 0);
    /* It cannot stream for long, so only its metrics are waited for. */
    const char *extra[] = {env_v1dir, env_registry, "STREAM_TOPIC=decisions.learned", NULL};
    assert_true(procReplace(extra, false));
    assert_true(dtWaitMetric(&procHttp, "stream_restarts_total", 2, 30000));
    assert_int_equal(dtMetric(&procHttp, "stream_dlq_total"), 0);
    assert_int_equal(dtMetric(&procHttp, "stream_events_total"), 0);
    const char *api2env[] = {env_api2, NULL};
    assert_true(dtApiRestart(&api2, &pg, api2env));
    drained d = {N};
    assert_true(dtWaitFor(procDrained, &d, 30000));
    assert_int_equal(dtMetric(&procHttp, "stream_dlq_total"), 0);
    assertPublished("decisions.learned", v2dir, ids, N, 2);
    assert_int_equal(dtApiStop(&api2), 0);
    assert_true(procReplace(NULL, true)); /* the default processor, for what follows */
}

/* A database whose defaults print timestamps as "24/11/2026 13:35:35.655123
 * NST" streams its rows all the same, recorded_at the instant the row
 * holds: the archived record equals what the API serves. */
static void test_database_datestyle_does_not_matter(void **state) {
    enum { N = 3 };
    static char ids[N][37];
    json_t *posted[N];
    assert_true(dtPgSetDefault(&pg, "DateStyle", "SQL, DMY") && dtPgSetDefault(&pg, "TimeZone", "America/St_Johns"));
    bool replaced = procReplace(NULL, true); /* a new session meets the new defaults */
    double dlq = dtMetric(&procHttp, "stream_dlq_total");
    bool ok = replaced;
    for (int i = 0; i < N && ok; i++) ok = postDecision(ids[i], NULL, NULL, &posted[i]);
    drained d = {N};
    bool streamed = ok && dtWaitFor(procDrained, &d, 30000);
    double dlq_after = dtMetric(&procHttp, "stream_dlq_total");
    assert_true(dtPgSetDefault(&pg, "DateStyle", NULL) && dtPgSetDefault(&pg, "TimeZone", NULL));
    assert_true(ok);
    assert_true(streamed);
    assert_true(dlq == 0 && dlq_after == 0);
    archived a = {ids, N};
    assert_true(dtWaitFor(allArchived, &a, 60000));
    assertArchivedAsPosted(posted, N);
}

/* A hand-written row too big for a Kafka message, and breaking the schema:
 * its dead-letter record carries the row with long values cut, and the
 * stream goes on without a restart. (A valid record cannot be that big:
 * every string and list of the schema is bounded.) */
static void test_oversized_rows_are_dead_lettered(void **state) {
    char poison[37], after[37];
    dtUuid(poison);
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) VALUES ('%s', 'p', 'poison', 'm', 'APPROVED', now(), 1, '\\x00',"
             " jsonb_build_object('decision_id', '%s', 'junk', repeat('x', 2000000)))",
             poison, poison);
    double base = dtMetric(&procHttp, "stream_events_total"), dlq = dtMetric(&procHttp, "stream_dlq_total");
    double restarts = dtMetric(&procHttp, "stream_restarts_total");
    assert_true(dtPgExec(&pg, sql));
    assert_true(postDecision(after, NULL, NULL, NULL));
    drained d = {base + 2};
    assert_true(dtWaitFor(procDrained, &d, 30000));
    assert_int_equal(dtMetric(&procHttp, "stream_dlq_total"), dlq + 1);
    assert_int_equal(dtMetric(&procHttp, "stream_restarts_total"), restarts);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 20 kcat -C -b 127.0.0.1:%d -t decisions.dlq -e -q -f '%%h|%%s\\n'", kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, poison));
    assert_non_null(strstr(out, "bytes in all)"));
    free(out);
    char *topic = topicIds();
    assert_non_null(strstr(topic, after));
    assert_null(strstr(topic, poison));
    free(topic);
}

/* Over polls status intervals, the processor never read more than max
 * events nor held more than max_bytes for Kafka. */
/* A table named decisions in another schema, added to the publication by
 * hand, holds no decisions: its rows are neither published nor
 * dead-lettered, while the real table's go on. */
static void test_same_named_table_elsewhere_is_not_streamed(void **state) {
    char shadow[37], after[37], sql[1024];
    dtUuid(shadow);
    assert_true(dtPgExec(&pg, "CREATE SCHEMA shadow"));
    assert_true(dtPgExec(&pg, "CREATE TABLE shadow.decisions (LIKE public.decisions INCLUDING DEFAULTS)"));
    assert_true(dtPgExec(&pg, "ALTER PUBLICATION decisions_pub ADD TABLE shadow.decisions"));
    double base = dtMetric(&procHttp, "stream_events_total"), dlq = dtMetric(&procHttp, "stream_dlq_total");
    snprintf(sql, sizeof(sql),
             "INSERT INTO shadow.decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) SELECT '%s', purchase_id, customer_id, merchant_id, outcome,"
             " decided_at, schema_version, doc_sha256, jsonb_set(doc, '{decision_id}', to_jsonb('%s'::text))"
             " FROM public.decisions WHERE schema_version = 1 LIMIT 1",
             shadow, shadow);
    bool inserted = dtPgExec(&pg, sql);
    bool posted = postDecision(after, NULL, NULL, NULL);
    drained d = {base + 1};
    bool streamed = dtWaitFor(procDrained, &d, 30000) && slotCaughtUpNow(30000);
    double events = dtMetric(&procHttp, "stream_events_total"), dlq_after = dtMetric(&procHttp, "stream_dlq_total");
    assert_true(dtPgExec(&pg, "ALTER PUBLICATION decisions_pub DROP TABLE shadow.decisions"));
    assert_true(inserted && posted && streamed);
    assert_int_equal(events, base + 1);
    assert_int_equal(dlq_after, dlq);
    char *topic = topicIds();
    assert_non_null(strstr(topic, after));
    assert_null(strstr(topic, shadow));
    free(topic);
}

static bool windowHeld(double max, double max_bytes, int polls) {
    for (int i = 0; i < polls; i++) {
        double n = dtMetric(&procHttp, "stream_events_total"), b = dtMetric(&procHttp, "stream_in_flight_bytes");
        if (n > max || b > max_bytes) {
            fprintf(stderr, "%g read, %g bytes in flight: expected at most %g and %g\n", n, b, max, max_bytes);
            return false;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* max-in-flight-bytes bounds what waits for Kafka: with brokers down the
 * stream pauses after a kilobyte of records (one record past it at most)
 * instead of handing every decision over, and nothing restarts; when they
 * return all arrive. */
static void test_in_flight_bytes_bound_the_window(void **state) {
    enum { N = 20 };
    char ids[N][37];
    const char *extra[] = {"STREAM_MAX_IN_FLIGHT_BYTES=1KiB", NULL};
    assert_true(procReplace(extra, true));
    assert_true(dtKafkaBrokers(&kafka, "down"));
    bool posted = true;
    for (int i = 0; i < N; i++) posted = posted && postDecision(ids[i], NULL, NULL, NULL);
    double one = 1;
    bool waiting = dtWaitFor(inFlightAtLeast, &one, 20000);
    bool bounded = waiting && windowHeld(N / 2, 2048, 15);
    bool back = dtKafkaBrokers(&kafka, "up"); /* before asserting: later tests need the brokers */
    assert_true(back && posted && waiting);
    assert_true(bounded);
    drained d = {N};
    assert_true(dtWaitFor(procDrained, &d, 60000));
    assert_int_equal(dtMetric(&procHttp, "stream_restarts_total"), 0);
    char *topic = topicIds();
    for (int i = 0; i < N; i++) assert_non_null(strstr(topic, ids[i]));
    free(topic);
    assert_true(procReplace(NULL, true));
}

static bool restartsAtLeast(void *arg) {
    return dtMetric(&procHttp, "stream_restarts_total") >= *(double *)arg;
}

/* A session restarted after a failed delivery confirms only what Kafka
 * acknowledged, never the position the dropped session had reached. A big
 * transaction left open before the decision holds the slot's restart point
 * back, so each new session decodes for a while before its first message:
 * status updates in that time must not confirm the decision the previous
 * session had read and Kafka never took. */
static void test_restart_confirms_nothing_of_the_dropped_session(void **state) {
    const char *extra[] = {"STREAM_MESSAGE_TIMEOUT=1s", NULL};
    assert_true(procReplace(extra, true));
    assert_true(dtPgExec(&pg, "CREATE TABLE IF NOT EXISTS unrelated (id serial PRIMARY KEY, note text)"));
    assert_true(slotCaughtUpNow(20000));
    PGconn *holder = PQconnectdb(pg.conninfo);
    PGresult *r = PQexec(holder, "BEGIN; INSERT INTO unrelated (note) SELECT 'x' FROM generate_series(1, 100000)");
    bool began = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    double base = dtMetric(&procHttp, "stream_restarts_total"), two = base + 2;
    bool down = began && dtKafkaBrokers(&kafka, "down");
    char id[37];
    bool posted = down && postDecision(id, NULL, NULL, NULL);
    /* At or past the end of the decision's commit record. The slot may move
     * before that record by itself (an idle processor confirms what the
     * server sent, and WAL such as running-transactions records keeps
     * coming), so only a confirmation at or past this point, which would
     * cover the decision, is wrong. */
    char *after = dtPgScalar(&pg, "SELECT pg_current_wal_lsn()");
    /* Two failed deliveries: the second session decoded and confirmed
     * whatever it was going to before it failed too. */
    bool restarted = posted && dtWaitFor(restartsAtLeast, &two, 30000);
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT confirmed_flush_lsn < '%s'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'decisions_stream'",
             after ? after : "0/0");
    char *held = dtPgScalar(&pg, sql);
    bool back = dtKafkaBrokers(&kafka, "up"); /* before asserting: later tests need the brokers */
    r = PQexec(holder, "ROLLBACK");
    PQclear(r);
    PQfinish(holder);
    /* The default processor (the decision is still unconfirmed in the slot):
     * with a 1 s timeout, librdkafka's reconnect back-off alone could fail it
     * again. */
    bool replaced = procReplace(NULL, true);
    assert_true(back && began && down && posted);
    assert_true(restarted);
    assert_non_null(held);
    assert_string_equal(held, "t");
    assert_true(replaced);
    assert_true(slotCaughtUpNow(60000));
    char *topic = topicIds();
    assert_non_null(strstr(topic, id));
    free(topic);
    free(held);
    free(after);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posted_decisions_reach_the_topic),
        cmocka_unit_test(test_poison_row_goes_to_dlq_and_stream_continues),
        cmocka_unit_test(test_foreign_traffic_advances_the_slot),
        cmocka_unit_test(test_crash_restart_loses_nothing),
        cmocka_unit_test(test_broker_outage_holds_the_slot),
        cmocka_unit_test(test_archive_round_trip_and_crash),
        cmocka_unit_test(test_row_keeps_its_stored_version),
        cmocka_unit_test(test_unknown_version_learned_from_registry),
        cmocka_unit_test(test_registry_down_rows_wait),
        cmocka_unit_test(test_database_datestyle_does_not_matter),
        cmocka_unit_test(test_oversized_rows_are_dead_lettered),
        cmocka_unit_test(test_same_named_table_elsewhere_is_not_streamed),
        cmocka_unit_test(test_in_flight_bytes_bound_the_window),
        cmocka_unit_test(test_restart_confirms_nothing_of_the_dropped_session),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
