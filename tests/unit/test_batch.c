/* test_batch.c - the exactly-once bookkeeping: what is skipped after a
 * restart, where a Kafka transaction closes, what its checkpoint says, and
 * when a slot is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"

static const spBatchConfig cfg = {.max_messages = 3, .interval_ms = 100, .idle_ms = 1000};

/* A PostgreSQL transaction committed at [commit, end) with n messages. */
static bool pgTxn(spBatch *b, uint64_t commit, uint64_t end, int n, uint64_t now) {
    if (spBatchPgBegin(b, commit)) return spBatchPgCommit(b, end, now);
    if (!b->open) spBatchOpen(b, now);
    for (int i = 0; i < n; i++) spBatchAdd(b);
    return spBatchPgCommit(b, end, now);
}

static void test_skip_at_or_below_checkpoint(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 1000, 0);
    assert_true(spBatchPgBegin(&b, 900)); /* ends at or below 1000 */
    assert_false(spBatchPgCommit(&b, 1000, 0));
    assert_false(b.open); /* a skipped transaction opens nothing */
    assert_false(spBatchPgBegin(&b, 1000)); /* its commit record starts where the checkpoint ends */
    spBatchOpen(&b, 0);
    spBatchAdd(&b);
    assert_false(spBatchPgCommit(&b, 1040, 10));
    assert_int_equal(spBatchCloseLsn(&b), 1040);
}

static void test_no_checkpoint_skips_nothing(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 0, 0);
    assert_false(spBatchPgBegin(&b, 0));
    assert_false(spBatchPgBegin(&b, 16));
}

static void test_closes_on_count_at_boundary(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 0, 0);
    assert_false(pgTxn(&b, 100, 140, 2, 1));
    /* 2 + 2 messages: over the bound, but only at the Commit */
    assert_false(spBatchPgBegin(&b, 200));
    spBatchAdd(&b);
    spBatchAdd(&b);
    assert_false(spBatchDue(&b, 1000)); /* inside a PostgreSQL transaction: never */
    assert_true(spBatchPgCommit(&b, 240, 2));
    assert_int_equal(spBatchCloseLsn(&b), 240);
    assert_int_equal(b.pg_txns, 2);
    assert_int_equal(b.messages, 4);
    spBatchCommitted(&b, 240, 3);
    assert_int_equal(b.checkpoint, 240);
    assert_false(b.open);
    /* what was committed is skipped when streamed again */
    assert_true(spBatchPgBegin(&b, 200));
}

static void test_closes_on_time(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 0, 0);
    assert_false(pgTxn(&b, 100, 140, 1, 10));
    assert_false(spBatchDue(&b, 50));
    assert_true(spBatchDue(&b, 110));
    /* a transaction committing after the interval closes the batch */
    assert_true(pgTxn(&b, 200, 240, 1, 120));
}

static void test_idle_checkpoint(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 500, 0);
    assert_int_equal(spBatchIdleTarget(&b, 500, 5000), 0);  /* nothing new */
    assert_int_equal(spBatchIdleTarget(&b, 800, 500), 0);   /* too soon after the last commit */
    assert_int_equal(spBatchIdleTarget(&b, 800, 1500), 800);
    spBatchOpen(&b, 1500);
    assert_int_equal(spBatchIdleTarget(&b, 900, 9000), 0);  /* a batch is open: it carries the position */
    spBatchCommitted(&b, spBatchCloseLsn(&b), 1600);
    assert_int_equal(b.checkpoint, 500); /* an empty batch keeps the checkpoint */
}

static void test_abort_forgets_batch(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 100, 0);
    assert_false(pgTxn(&b, 200, 240, 1, 1));
    spBatchAborted(&b);
    assert_false(b.open);
    assert_int_equal(b.checkpoint, 100);
    assert_false(spBatchPgBegin(&b, 200)); /* streamed again, not skipped */
}

static void test_checkpoint_never_moves_back(void **state) {
    spBatch b;
    spBatchInit(&b, &cfg, 1000, 0);
    spBatchCommitted(&b, 900, 1);
    assert_int_equal(b.checkpoint, 1000);
}

static void test_start_check(void **state) {
    char err[600];
    assert_true(spBatchStartCheck("s", 0x500, false, 0, "t", err, sizeof(err))); /* no checkpoint */
    assert_true(spBatchStartCheck("s", 0x500, true, 0x500, "t", err, sizeof(err)));
    assert_true(spBatchStartCheck("s", 0x400, true, 0x500, "t", err, sizeof(err))); /* behind: skip */
    assert_false(spBatchStartCheck("slotname", 0x100000600, true, 0x500, "ckpts", err, sizeof(err)));
    assert_non_null(strstr(err, "1/600"));
    assert_non_null(strstr(err, "0/500"));
    assert_non_null(strstr(err, "slotname"));
    assert_non_null(strstr(err, "ckpts"));
}

static void test_checkpoint_record(void **state) {
    char *json = spCheckpointJson(0x1000000abULL, 3, 7, "tid");
    assert_non_null(json);
    assert_non_null(strstr(json, "\"lsn\":\"1/AB\""));
    uint64_t lsn = 0;
    char err[200];
    assert_true(spCheckpointParse(json, strlen(json), &lsn, err, sizeof(err)));
    assert_int_equal(lsn, 0x1000000abULL);
    free(json);
    assert_false(spCheckpointParse("{}", 2, &lsn, err, sizeof(err)));
    assert_false(spCheckpointParse("nope", 4, &lsn, err, sizeof(err)));
    assert_false(spCheckpointParse("{\"lsn\":\"zz\"}", 12, &lsn, err, sizeof(err)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip_at_or_below_checkpoint),
        cmocka_unit_test(test_no_checkpoint_skips_nothing),
        cmocka_unit_test(test_closes_on_count_at_boundary),
        cmocka_unit_test(test_closes_on_time),
        cmocka_unit_test(test_idle_checkpoint),
        cmocka_unit_test(test_abort_forgets_batch),
        cmocka_unit_test(test_checkpoint_never_moves_back),
        cmocka_unit_test(test_start_check),
        cmocka_unit_test(test_checkpoint_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
