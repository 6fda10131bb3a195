/* test_eossmoke.c - the stream processor's exactly-once mode, first
 * proof on a single-node Apache Kafka: decisions posted through the API
 * while the processor is killed with SIGKILL once and started again are
 * each on the topic exactly once for a read_committed reader (Apache
 * Kafka's own console consumer, sharing no code with the processor); its
 * transaction metrics count; the checkpoint topic holds the slot's
 * committed position; a slot moved past its checkpoint is refused with
 * both positions named. The long runs (20 kills, a fenced zombie, broker
 * and PostgreSQL restarts) are test_exactlyonce's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "broker.h"
#include "harness.h"

#define N 240

static dtBroker broker;
static dtPg pg;
static dtApi api;
static dtStream proc;
static char ids[N][37];

static int setup(void **state) {
    return dtBrokerStart(&broker, 1, false, false, NULL) && dtPgStart(&pg) && dtApiStart(&api, &pg, NULL) ? 0 : -1;
}

static int teardown(void **state) {
    if (proc.pid > 0) dtStreamStop(&proc);
    bool ok = dtBrokerDestroy(&broker);
    dtApiStop(&api);
    dtPgDestroy(&pg);
    return ok ? 0 : -1;
}

static bool startProc(const char *extra) {
    dtBrokerEnv e;
    const char *env[16];
    const char *const own[] = {"STREAM_DELIVERY=exactly-once", "STREAM_STATUS_INTERVAL=2s",
                               "STREAM_TRANSACTION_INTERVAL=50ms", extra, NULL};
    return dtStreamStartOn(&proc, &pg, NULL, dtEnvJoin(env, 16, dtBrokerClientEnv(&broker, "STREAM_", &e), own));
}

static bool postDecision(char id[37], int i) {
    char customer[32];
    snprintf(customer, sizeof(customer), "smoke-%d", i % 17);
    return dtPostFixture(&api, id, customer);
}

/* topic read from the start with read_committed, keys and headers. */
static char *readCommitted(const char *topic) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "bash deploy/kafka-cluster.sh run %s org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server %s"
             " --topic %s --from-beginning --isolation-level read_committed --timeout-ms 3000"
             " --property print.headers=true --property print.key=true --property print.value=%s 2>&1",
             broker.dir, broker.bootstrap, topic, strcmp(topic, "decisions") == 0 ? "false" : "true");
    char *out = NULL;
    dtRun(cmd, &out);
    return out;
}

static int countOf(const char *hay, const char *needle) {
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)) != NULL; s += strlen(needle)) n++;
    return n;
}

static void test_kill9_once_every_decision_once(void **state) {
    assert_true(startProc(NULL));
    for (int i = 0; i < N; i++) {
        assert_true(postDecision(ids[i], i));
        if (i == N / 2) {
            /* Kafka has most of them (at-least-once would have all those
             * since the last status update to send again), the last ones
             * are in flight or in an open transaction */
            assert_true(dtWaitMetric(&proc.http, "kafka_delivered_total", N / 3, 30000));
        } else if (i == N / 2 + 10) {
            dtStop(proc.pid, SIGKILL);
            proc.pid = -1;
            assert_true(startProc(NULL));
        }
    }
    /* exactly-once confirms only committed checkpoints: once the slot is
     * past the last post, everything is committed in Kafka */
    assert_true(dtPgWaitSlotCaughtUp(&pg, "decisions_stream", 60000));
    /* The console consumer ends 3 s after its last record, or after none:
     * on a fresh broker its group coordinator may still be loading then. */
    char *out = readCommitted("decisions");
    for (int i = 0; i < 5 && countOf(out, "decision_id:") < N; i++) {
        free(out);
        out = readCommitted("decisions");
    }
    int missing = 0, doubled = 0;
    for (int i = 0; i < N; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "decision_id:%.36s", ids[i]);
        int c = countOf(out, needle);
        if (c == 0 && missing++ < 3) fprintf(stderr, "missing: %s\n", ids[i]);
        if (c > 1 && doubled++ < 3) fprintf(stderr, "%d times: %s\n", c, ids[i]);
    }
    fprintf(stderr, "eossmoke: %d of %d missing, %d more than once\n", missing, N, doubled);
    free(out);
    assert_int_equal(missing, 0);
    assert_int_equal(doubled, 0);
    assert_true(dtMetric(&proc.http, "kafka_transactions_committed_total") >= 1);
    assert_true(dtMetric(&proc.http, "kafka_transaction_messages_count") >= 1);
    assert_true(dtMetric(&proc.http, "kafka_transaction_commit_seconds_count") >= 1);
    out = readCommitted("decisions.checkpoints");
    assert_non_null(strstr(out, "decisions_stream\t"));
    assert_non_null(strstr(out, "\"lsn\":"));
    free(out);
}

/* A slot moved past its checkpoint by hand: the processor refuses it,
 * naming both positions, and exits 1. */
static void test_slot_ahead_is_refused(void **state) {
    assert_int_equal(dtStreamStop(&proc), 0);
    proc.pid = -1;
    assert_true(dtPgExec(&pg, "CREATE TABLE IF NOT EXISTS smoke_other (x int)"));
    assert_true(dtPgExec(&pg, "INSERT INTO smoke_other SELECT generate_series(1, 1000)"));
    assert_true(dtPgExec(&pg, "SELECT pg_replication_slot_advance('decisions_stream', pg_current_wal_lsn())"));
    char *slot = dtPgScalar(&pg, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = "
                                 "'decisions_stream'");
    char logf[300], cmd[4000];
    snprintf(logf, sizeof(logf), "%s/refused.log", pg.dir);
    dtBrokerEnv e;
    const char *env[16];
    const char *const own[] = {"STREAM_DELIVERY=exactly-once", "STREAM_METRICS_PORT=0", NULL};
    const char *const *full = dtEnvJoin(env, 16, dtBrokerClientEnv(&broker, "STREAM_", &e), own);
    char envline[2000] = "";
    for (int i = 0; full[i]; i++) {
        strcat(envline, "'");
        strcat(envline, full[i]);
        strcat(envline, "' ");
    }
    snprintf(cmd, sizeof(cmd), "env %s 'STREAM_DSN=%s' timeout 60 %s/bin/stream-processor > %s 2>&1; echo rc=$?",
             envline, pg.conninfo, getenv("BUILD") ? getenv("BUILD") : "build", logf);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "rc=1"));
    free(out);
    snprintf(cmd, sizeof(cmd), "cat %s", logf);
    out = dtCapture(cmd);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "ahead of the last checkpoint"));
    assert_non_null(strstr(out, slot));
    free(out);
    free(slot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_once_every_decision_once),
        cmocka_unit_test(test_slot_ahead_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
