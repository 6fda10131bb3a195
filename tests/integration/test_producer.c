/* test_producer.c - the stream processor's Kafka producer against a real
 * dev-kafka: every message is reported exactly once on the loop thread,
 * lands with its headers (read back with kcat, an independent client), DLQ
 * records carry their error, and a full outage delays deliveries without
 * losing or failing them. */
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
#include <unistd.h>

#include "harness.h"

#include "producer.h"

static dtKafka kafka;

static int setup(void **state) {
    return dtKafkaStart(&kafka) ? 0 : -1;
}

static int teardown(void **state) {
    return dtKafkaStop(&kafka) == 0 ? 0 : -1;
}

static void setBrokers(const char *action) {
    assert_true(dtKafkaBrokers(&kafka, action));
}

/* ---- the producer under test, on its own loop ---------------------------- */

#define MAX_TAGS 1024

typedef struct tCtx {
    uv_loop_t loop;
    spProducer *p;
    dsMetrics *metrics;
    int calls[MAX_TAGS]; /* delivery callbacks per tag */
    int ok, failed, stray;
} tCtx;

static void onDelivered(uint64_t tag, bool ok, const char *error, void *arg) {
    tCtx *c = arg;
    if (tag >= MAX_TAGS) {
        c->stray++;
        return;
    }
    c->calls[tag]++;
    if (ok) {
        c->ok++;
    } else {
        c->failed++;
        fprintf(stderr, "delivery of tag %llu failed: %s\n", (unsigned long long)tag, error ? error : "(null)");
    }
}

static tCtx *ctxNew(int queue_max) {
    tCtx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    c->metrics = dsMetricsNew();
    char bootstrap[64], err[512] = "";
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", kafka.port);
    dsKafkaOptions ko = {.brokers = bootstrap, .client_id = "test_producer"};
    spProducerConfig cfg = {
        .kafka = &ko,
        /* long enough that an outage in a test never fails a message */
        .message_timeout_ms = 120000,
        .queue_max_messages = queue_max,
        .metrics = c->metrics,
    };
    c->p = spProducerNew(&c->loop, &cfg, onDelivered, c, err, sizeof(err));
    if (c->p == NULL) fail_msg("spProducerNew: %s", err);
    return c;
}

static void ctxFree(tCtx *c) {
    spProducerFree(c->p);
    /* the close callbacks release the producer's memory */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    dsMetricsFree(c->metrics);
    free(c);
}

/* Runs the loop until cond(c) holds or timeout_ms passed; the producer's
 * safety timer guarantees the loop turns at least every 100 ms. */
static bool runUntil(tCtx *c, bool (*cond)(tCtx *, int), int want, int timeout_ms) {
    uv_update_time(&c->loop);
    uint64_t deadline = uv_now(&c->loop) + (uint64_t)timeout_ms;
    while (!cond(c, want)) {
        uv_run(&c->loop, UV_RUN_ONCE);
        if (uv_now(&c->loop) >= deadline) return cond(c, want);
    }
    return true;
}

static bool reported(tCtx *c, int n) {
    return c->ok + c->failed >= n;
}

static bool never(tCtx *c, int n) {
    return false;
}

/* Every tag below n was reported exactly once and ok; nothing else. */
static void assertEachOnceOk(tCtx *c, int n) {
    assert_int_equal(c->failed, 0);
    assert_int_equal(c->stray, 0);
    assert_int_equal(c->ok, n);
    for (int i = 0; i < n; i++)
        if (c->calls[i] != 1) fail_msg("tag %d reported %d times", i, c->calls[i]);
    for (int i = n; i < MAX_TAGS; i++) assert_int_equal(c->calls[i], 0);
}

static void sendDecision(tCtx *c, const char *prefix, int i) {
    char key[64], value[64], did[64], lsn[32], err[256];
    snprintf(key, sizeof(key), "%s-key-%d", prefix, i);
    snprintf(value, sizeof(value), "value-%d", i);
    snprintf(did, sizeof(did), "%s-did-%d", prefix, i);
    snprintf(lsn, sizeof(lsn), "0/%X", 0x1000 + i);
    if (!spProducerSend(c->p, key, strlen(key), value, strlen(value), did, 7, lsn, (uint64_t)i, err, sizeof(err)))
        fail_msg("send %d: %s", i, err);
}

/* Consumes the topic with kcat and checks each of the n keys with this
 * prefix appears exactly once, with its three headers. */
static void assertConsumed(const char *prefix, int n) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 60 kcat -C -b 127.0.0.1:%d -t decisions -e -q -f '%%k %%h\\n'",
             kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(out);
    int *seen = calloc((size_t)n, sizeof(int));
    size_t plen = strlen(prefix);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, prefix, plen) != 0 || strncmp(line + plen, "-key-", 5) != 0) continue;
        int i = atoi(line + plen + 5);
        assert_in_range(i, 0, n - 1);
        seen[i]++;
        char want[128];
        snprintf(want, sizeof(want), "decision_id=%s-did-%d", prefix, i);
        if (strstr(line, want) == NULL) fail_msg("no %s in \"%s\"", want, line);
        assert_non_null(strstr(line, "schema_id=7"));
        snprintf(want, sizeof(want), "source_lsn=0/%X", 0x1000 + i);
        if (strstr(line, want) == NULL) fail_msg("no %s in \"%s\"", want, line);
    }
    for (int i = 0; i < n; i++)
        if (seen[i] != 1) fail_msg("key %s-key-%d consumed %d times", prefix, i, seen[i]);
    free(seen);
    free(out);
}

/* ---- tests --------------------------------------------------------------- */

static void test_500_delivered_once_with_headers(void **state) {
    tCtx *c = ctxNew(0);
    for (int i = 0; i < 500; i++) sendDecision(c, "t1", i);
    assert_true(runUntil(c, reported, 500, 30000));
    assertEachOnceOk(c, 500);
    assert_true(spProducerFlush(c->p, 5000)); /* nothing further may come */
    assertEachOnceOk(c, 500);
    assert_int_equal(spProducerInFlight(c->p), 0);
    ctxFree(c);
    assertConsumed("t1", 500);
}

static void test_dlq_record_with_error_header(void **state) {
    tCtx *c = ctxNew(0);
    char err[256];
    const char *row = "{\"customer_id\":\"cust-9\",\"amount\":\"abc\"}";
    assert_true(spProducerSendDlq(c->p, "cust-9", row, "amount: not a number", "0/16B3748", 0, err, sizeof(err)));
    assert_true(runUntil(c, reported, 1, 30000));
    assertEachOnceOk(c, 1);
    size_t len;
    char *metrics = dsMetricsRender(c->metrics, &len);
    assert_non_null(strstr(metrics, "kafka_dlq_total 1"));
    assert_non_null(strstr(metrics, "kafka_delivered_total 1"));
    free(metrics);
    ctxFree(c);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 60 kcat -C -b 127.0.0.1:%d -t decisions.dlq -e -q -f '%%k|%%s|%%h\\n'",
             kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(out);
    if (strstr(out, "cust-9|{\"customer_id\":\"cust-9\",\"amount\":\"abc\"}|") == NULL) fail_msg("DLQ: %s", out);
    assert_non_null(strstr(out, "error=amount: not a number"));
    assert_non_null(strstr(out, "source_lsn=0/16B3748"));
    free(out);
}

static void test_outage_delays_but_never_loses(void **state) {
    tCtx *c = ctxNew(0);
    /* connected and with a producer id before the outage */
    sendDecision(c, "t3", 0);
    assert_true(runUntil(c, reported, 1, 30000));
    assertEachOnceOk(c, 1);

    setBrokers("down");
    for (int i = 1; i <= 50; i++) sendDecision(c, "t3", i);
    /* A negative claim needs an observation window: turn the loop for 2 s
     * while every broker is down; nothing may be reported either way. */
    runUntil(c, never, 0, 2000);
    assert_int_equal(c->ok, 1);
    assert_int_equal(c->failed, 0);
    /* outq_len also counts unserved error events, hence at least */
    assert_true(spProducerInFlight(c->p) >= 50);

    setBrokers("up");
    assert_true(runUntil(c, reported, 51, 60000));
    assert_true(spProducerFlush(c->p, 5000));
    assertEachOnceOk(c, 51);
    ctxFree(c);
    assertConsumed("t3", 51);
}

/* A full local queue refuses the send (the caller's window is meant to
 * keep it from filling) until deliveries drain it; the bytes in flight are
 * counted until each report. */
static void test_queue_full_refuses_until_drained(void **state) {
    tCtx *c = ctxNew(10);
    char err[256] = "";
    int accepted = 0;
    size_t bytes = 0;
    bool refused = false;
    /* The loop does not turn in between, so the queue cannot drain. */
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "t4-%d", i);
        if (spProducerSend(c->p, key, strlen(key), "v", 1, "d", 7, "0/1", (uint64_t)accepted, err, sizeof(err))) {
            assert_false(refused); /* once full, it stays full until served */
            accepted++;
            bytes += strlen(key) + 1;
        } else {
            assert_false(spProducerTooLarge(c->p));
            assert_non_null(strstr(err, "queue full"));
            refused = true;
        }
    }
    assert_true(refused);
    assert_int_equal(accepted, 10);
    assert_int_equal(spProducerInFlightBytes(c->p), bytes);
    assert_true(runUntil(c, reported, accepted, 30000));
    assert_int_equal(spProducerInFlightBytes(c->p), 0);
    assertEachOnceOk(c, accepted);
    /* drained: sending works again */
    assert_true(spProducerSend(c->p, "k", 1, "v", 1, "d", 7, "0/1", (uint64_t)accepted, err, sizeof(err)));
    assert_true(runUntil(c, reported, accepted + 1, 30000));
    assertEachOnceOk(c, accepted + 1);
    ctxFree(c);
}

/* A record above message.max.bytes is refused at once and said to be too
 * large (sending it again cannot help); the producer goes on. */
static void test_too_large_record_is_refused(void **state) {
    tCtx *c = ctxNew(0);
    char err[256] = "";
    size_t n = 2 * 1000 * 1000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_false(spProducerSend(c->p, "k", 1, big, n, "d", 7, "0/1", 0, err, sizeof(err)));
    assert_true(spProducerTooLarge(c->p));
    assert_non_null(strstr(err, "message.max.bytes"));
    assert_false(spProducerSendDlq(c->p, "k", big + n - 1100000, "e", "0/1", 0, err, sizeof(err)));
    assert_true(spProducerTooLarge(c->p));
    free(big);
    assert_int_equal(spProducerInFlightBytes(c->p), 0);
    assert_true(spProducerSend(c->p, "k", 1, "v", 1, "d", 7, "0/1", 0, err, sizeof(err)));
    assert_false(spProducerTooLarge(c->p));
    assert_true(runUntil(c, reported, 1, 30000));
    assertEachOnceOk(c, 1);
    ctxFree(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_500_delivered_once_with_headers),
        cmocka_unit_test(test_dlq_record_with_error_header),
        cmocka_unit_test(test_outage_delays_but_never_loses),
        cmocka_unit_test(test_queue_full_refuses_until_drained),
        cmocka_unit_test(test_too_large_record_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
