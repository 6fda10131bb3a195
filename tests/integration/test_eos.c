/* test_eos.c - the stream processor's exactly-once code path on dev-kafka
 * (librdkafka's mock cluster), as far as the mock goes: it runs the
 * transactional calls but shows aborted records to every reader, so what
 * is checked here is the processor's own part. auto keeps at-least-once on
 * the mock; exactly-once commits transactions with a checkpoint record per
 * slot, confirms the slot after them, skips at start what a checkpoint
 * covers, a stop and start doubles nothing, and a slot moved past its
 * checkpoint is refused. Kafka's own guarantees (read_committed readers,
 * kill -9, fencing) are test_exactlyonce's, on Apache Kafka. */
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
static dtKafka kafka;
static dtStream proc;
static char brokers[64];

static int setup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL) || !dtKafkaStart(&kafka)) return -1;
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka.port);
    return 0;
}

static int teardown(void **state) {
    if (proc.pid > 0) dtStreamStop(&proc);
    dtApiStop(&api);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    return 0;
}

static bool startProc(const char *delivery) {
    const char *const env[] = {delivery, "STREAM_STATUS_INTERVAL=100ms", "STREAM_TRANSACTION_INTERVAL=30ms", NULL};
    return dtStreamStartOn(&proc, &pg, brokers, env);
}

static bool postDecision(char id[37]) {
    return dtPostFixture(&api, id, NULL);
}

static void waitSlotAtWalEnd(void) {
    assert_true(dtPgWaitSlotCaughtUp(&pg, "decisions_stream", 30000));
}

/* The headers of every record on the topic (the mock shows everything). */
static char *readTopic(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "kcat -C -b %s -t decisions -e -q -f '%%h\\n' 2>&1", brokers);
    return dtCapture(cmd);
}

/* How often decision id is in topic (readTopic). */
static int countIn(const char *topic, const char *id) {
    char needle[64];
    snprintf(needle, sizeof(needle), "decision_id=%.36s", id);
    int n = 0;
    for (const char *s = topic; (s = strstr(s, needle)) != NULL; s += strlen(needle)) n++;
    return n;
}

static int onTopic(const char *id) {
    char *topic = readTopic();
    int n = countIn(topic, id);
    free(topic);
    return n;
}

static void test_auto_is_at_least_once_on_the_mock(void **state) {
    assert_true(startProc("STREAM_DELIVERY=auto"));
    char id[37];
    assert_true(postDecision(id));
    waitSlotAtWalEnd();
    assert_int_equal(onTopic(id), 1);
    /* no transactional producer: its metrics are not even registered */
    assert_true(dtMetric(&proc.http, "kafka_transactions_committed_total") < 0);
    assert_int_equal(dtStreamStop(&proc), 0);
}

static void test_exactly_once_commits_with_checkpoints(void **state) {
    enum { N = 60 };
    static char ids[N][37];
    assert_true(startProc("STREAM_DELIVERY=exactly-once"));
    for (int i = 0; i < N; i++) assert_true(postDecision(ids[i]));
    waitSlotAtWalEnd();
    assert_true(dtMetric(&proc.http, "kafka_transactions_committed_total") >= 1);
    assert_true(dtMetric(&proc.http, "kafka_transaction_messages_sum") >= N);
    assert_true(dtMetric(&proc.http, "kafka_transactions_aborted_total") == 0);
    /* commit-to-ack ends at the Kafka commit, once per PostgreSQL transaction */
    assert_true(dtMetric(&proc.http, "stream_commit_to_ack_seconds_count") >= N);
    /* a stop and a start: the last batch committed at the stop, nothing again */
    assert_int_equal(dtStreamStop(&proc), 0);
    assert_true(startProc("STREAM_DELIVERY=exactly-once"));
    char last[37];
    assert_true(postDecision(last));
    waitSlotAtWalEnd();
    char *topic = readTopic();
    assert_int_equal(countIn(topic, last), 1);
    for (int i = 0; i < N; i++) assert_int_equal(countIn(topic, ids[i]), 1);
    free(topic);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "kcat -C -b %s -t decisions.checkpoints -e -q -f '%%k %%s\\n' 2>&1", brokers);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "decisions_stream {\"lsn\":"));
    free(out);
    assert_int_equal(dtStreamStop(&proc), 0);
}

/* Decisions committed while no processor ran, covered by a checkpoint
 * written by hand: skipped; the next one is streamed. */
static void test_start_skips_what_the_checkpoint_covers(void **state) {
    enum { N = 5 };
    char skipped[N][37], after[37];
    for (int i = 0; i < N; i++) assert_true(postDecision(skipped[i]));
    char *lsn = dtPgScalar(&pg, "SELECT pg_current_wal_lsn()");
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "echo 'decisions_stream|{\"lsn\":\"%s\"}' | kcat -P -b %s -t decisions.checkpoints -K'|'"
             " && echo sent", lsn, brokers);
    free(lsn);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "sent"));
    free(out);
    assert_true(startProc("STREAM_DELIVERY=exactly-once"));
    assert_true(postDecision(after));
    waitSlotAtWalEnd();
    char *topic = readTopic();
    assert_int_equal(countIn(topic, after), 1);
    for (int i = 0; i < N; i++) assert_int_equal(countIn(topic, skipped[i]), 0);
    free(topic);
    assert_int_equal(dtStreamStop(&proc), 0);
}

/* A slot moved past its checkpoint by hand (what it skipped may never
 * have reached Kafka): the processor refuses to stream it, naming both
 * positions, and exits 1. */
static void test_slot_ahead_is_refused(void **state) {
    assert_true(dtPgExec(&pg, "CREATE TABLE IF NOT EXISTS eos_other (x int)"));
    assert_true(dtPgExec(&pg, "INSERT INTO eos_other SELECT generate_series(1, 1000)"));
    assert_true(dtPgExec(&pg, "SELECT pg_replication_slot_advance('decisions_stream', pg_current_wal_lsn())"));
    char *slot = dtPgScalar(&pg, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = "
                                 "'decisions_stream'");
    assert_non_null(slot);
    char cmd[2000];
    snprintf(cmd, sizeof(cmd),
             "env 'STREAM_DSN=%s' 'STREAM_BROKERS=%s' STREAM_DELIVERY=exactly-once STREAM_METRICS_PORT=0"
             " timeout 60 %s/bin/stream-processor 2>&1; echo rc=$?",
             pg.conninfo, brokers, getenv("BUILD") ? getenv("BUILD") : "build");
    char *out = dtCapture(cmd);
    fprintf(stderr, "%s", out);
    assert_non_null(strstr(out, "rc=1"));
    assert_non_null(strstr(out, "ahead of the last checkpoint"));
    assert_non_null(strstr(out, slot));
    free(out);
    free(slot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_is_at_least_once_on_the_mock),
        cmocka_unit_test(test_exactly_once_commits_with_checkpoints),
        cmocka_unit_test(test_start_skips_what_the_checkpoint_covers),
        cmocka_unit_test(test_slot_ahead_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
