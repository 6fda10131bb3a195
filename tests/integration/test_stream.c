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

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static dtPg pg;
static dtApi api;
static pid_t kafka = -1, proc = -1;
static int kafka_port;
static dtApi procHttp; /* only its url: the processor's metrics endpoint */
static char env_db[400], env_brokers[64], env_metrics[64];

static bool procReady(void *arg) {
    dtResponse r;
    bool ok = dtHttp(&procHttp, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

static bool kafkaUp(void *arg) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "timeout 5 kcat -L -b 127.0.0.1:%d -t decisions 2>/dev/null", kafka_port);
    char *out = dtCapture(cmd);
    bool up = strstr(out, "6 partitions") != NULL;
    free(out);
    return up;
}

static int setup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL)) return -1;
    kafka_port = dtFreePort();
    char kp[16], cp[16];
    snprintf(kp, sizeof(kp), "%d", kafka_port);
    snprintf(cp, sizeof(cp), "%d", dtFreePort());
    const char *kargs[] = {"--listen-port", kp, "--control-port", cp, "--log-level", "warn", NULL};
    kafka = dtSpawn("dev-kafka", kargs, NULL);
    if (!dtWaitFor(kafkaUp, NULL, 20000)) return -1;
    int mport = dtFreePort();
    snprintf(procHttp.url, sizeof(procHttp.url), "http://127.0.0.1:%d", mport);
    snprintf(env_db, sizeof(env_db), "STREAM_DATABASE_URL=%s", pg.conninfo);
    snprintf(env_brokers, sizeof(env_brokers), "STREAM_BROKERS=127.0.0.1:%d", kafka_port);
    snprintf(env_metrics, sizeof(env_metrics), "STREAM_METRICS_PORT=%d", mport);
    const char *env[] = {env_db, env_brokers, env_metrics, "STREAM_LOG_LEVEL=warn", "STREAM_STATUS_INTERVAL=100ms",
                         NULL};
    proc = dtSpawn("stream-processor", NULL, env);
    return dtWaitFor(procReady, NULL, 20000) ? 0 : -1;
}

static int teardown(void **state) {
    int rc = dtStop(proc, SIGTERM);
    dtApiStop(&api);
    dtStop(kafka, SIGTERM);
    dtPgDestroy(&pg);
    return rc == 0 ? 0 : -1;
}

/* Value of an unlabelled metric on the processor's /metrics, -1 if absent. */
static double procMetric(const char *name) {
    dtResponse r;
    double v = -1;
    if (dtHttp(&procHttp, "GET", "/metrics", NULL, NULL, NULL, 0, &r)) {
        char key[128];
        snprintf(key, sizeof(key), "\n%s ", name);
        const char *at = strstr(r.body, key);
        if (at) v = atof(at + strlen(key));
    }
    dtResponseFree(&r);
    return v;
}

typedef struct drained {
    double events;
} drained;

/* The processor has read `events` decisions and Kafka acknowledged them all. */
static bool procDrained(void *arg) {
    drained *d = arg;
    return procMetric("stream_events_total") >= d->events && procMetric("stream_in_flight") == 0;
}

static void test_posted_decisions_reach_the_topic(void **state) {
    enum { N = 200 };
    static char ids[N][37];
    static char customers[N][16];
    drained d = {procMetric("stream_events_total") + N};
    for (int i = 0; i < N; i++) {
        json_t *doc = dtFixture("decision.json");
        dtUuid(ids[i]);
        snprintf(customers[i], sizeof(customers[i]), "cust-%d", i % 13);
        json_object_set_new(doc, "decision_id", json_string(ids[i]));
        json_object_set_new(doc, "customer_id", json_string(customers[i]));
        char *body = json_dumps(doc, JSON_COMPACT);
        dtResponse r;
        assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
        assert_int_equal(r.status, 201);
        dtResponseFree(&r);
        free(body);
        json_decref(doc);
    }
    assert_true(dtWaitFor(procDrained, &d, 30000));

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/consume_decisions.py 127.0.0.1:%d decisions; echo rc=$?",
             kafka_port);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "rc=0")); /* every record decoded with the shipped schema */
    for (int i = 0; i < N; i++) {
        /* "<partition> <offset> <key> <header id> <record id> <schema id>" */
        char needle[128];
        snprintf(needle, sizeof(needle), " %.15s %.36s %.36s 1\n", customers[i], ids[i], ids[i]);
        if (strstr(out, needle) == NULL) fprintf(stderr, "missing on the topic: %s", needle);
        assert_non_null(strstr(out, needle));
    }
    free(out);
}

static void test_poison_row_goes_to_dlq_and_stream_continues(void **state) {
    char poison[37], after[37];
    dtUuid(poison);
    dtUuid(after);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome, decided_at,"
             " schema_version, doc_sha256, doc) VALUES ('%s', 'p', 'poison', 'm', 'APPROVED', now(), 1, '\\x00',"
             " '{\"decision_id\": \"%s\", \"colour\": \"red\"}')",
             poison, poison);
    drained d = {procMetric("stream_events_total") + 2};
    assert_true(dtPgExec(&pg, sql));
    json_t *doc = dtFixture("decision.json");
    json_object_set_new(doc, "decision_id", json_string(after));
    char *body = json_dumps(doc, JSON_COMPACT);
    dtResponse r;
    assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
    assert_int_equal(r.status, 201);
    dtResponseFree(&r);
    free(body);
    json_decref(doc);
    assert_true(dtWaitFor(procDrained, &d, 30000));

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 20 kcat -C -b 127.0.0.1:%d -t decisions.dlq -e -q -f '%%h|%%s\\n'", kafka_port);
    char *dlq = dtCapture(cmd);
    assert_non_null(strstr(dlq, poison));
    assert_non_null(strstr(dlq, "error=doc: "));
    free(dlq);
    snprintf(cmd, sizeof(cmd), "timeout 20 kcat -C -b 127.0.0.1:%d -t decisions -e -q -f '%%h\\n'", kafka_port);
    char *topic = dtCapture(cmd);
    assert_non_null(strstr(topic, after));
    assert_null(strstr(topic, poison));
    free(topic);
}

static bool slotCaughtUp(void *lsn) {
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT confirmed_flush_lsn >= '%s'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'decisions_stream'",
             (const char *)lsn);
    char *v = dtPgScalar(&pg, sql);
    bool ok = v && strcmp(v, "t") == 0;
    free(v);
    return ok;
}

static void test_foreign_traffic_advances_the_slot(void **state) {
    assert_true(dtPgExec(&pg, "CREATE TABLE IF NOT EXISTS unrelated (id serial PRIMARY KEY, note text)"));
    for (int i = 0; i < 20; i++) assert_true(dtPgExec(&pg, "INSERT INTO unrelated (note) VALUES (repeat('x', 500))"));
    char *lsn = dtPgScalar(&pg, "SELECT pg_current_wal_lsn()");
    assert_non_null(lsn);
    assert_true(dtWaitFor(slotCaughtUp, lsn, 20000));
    free(lsn);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posted_decisions_reach_the_topic),
        cmocka_unit_test(test_poison_row_goes_to_dlq_and_stream_continues),
        cmocka_unit_test(test_foreign_traffic_advances_the_slot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
