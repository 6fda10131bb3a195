/* test_watermark.c - the slot checkpoint never passes an unacknowledged
 * message, whatever the order of acknowledgements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "watermark.h"

static int setup(void **state) {
    *state = spWatermarkNew();
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    spWatermarkFree(*state);
    return 0;
}

/* Begins a transaction with n messages and commits it at lsn. */
static uint64_t txn(spWatermark *w, int n, uint64_t lsn) {
    uint64_t seq;
    assert_true(spWatermarkBegin(w, &seq));
    for (int i = 0; i < n; i++) assert_true(spWatermarkAddPending(w, seq));
    assert_true(spWatermarkCommit(w, seq, lsn, (int64_t)lsn));
    return seq;
}

static void test_in_order(void **state) {
    spWatermark *w = *state;
    assert_int_equal(spWatermarkConfirmable(w), 0);
    uint64_t a = txn(w, 2, 100);
    assert_int_equal(spWatermarkConfirmable(w), 0);
    assert_true(spWatermarkAck(w, a));
    assert_int_equal(spWatermarkConfirmable(w), 0); /* one message still out */
    assert_true(spWatermarkAck(w, a));
    assert_int_equal(spWatermarkConfirmable(w), 100);
    assert_int_equal(spWatermarkTransactions(w), 0);
}

static void test_out_of_order_acks_hold_back(void **state) {
    spWatermark *w = *state;
    uint64_t a = txn(w, 1, 100), b = txn(w, 1, 200), c = txn(w, 1, 300);
    assert_true(spWatermarkAck(w, c));
    assert_true(spWatermarkAck(w, b));
    assert_int_equal(spWatermarkConfirmable(w), 0); /* a is still in flight */
    assert_int_equal(spWatermarkPendingMessages(w), 1);
    assert_true(spWatermarkAck(w, a));
    assert_int_equal(spWatermarkConfirmable(w), 300); /* all three at once */
    assert_int_equal(spWatermarkPendingMessages(w), 0);
}

static void test_uncommitted_transaction_blocks(void **state) {
    spWatermark *w = *state;
    uint64_t a;
    assert_true(spWatermarkBegin(w, &a));
    assert_true(spWatermarkAddPending(w, a));
    assert_true(spWatermarkAck(w, a)); /* acknowledged before its Commit arrived */
    assert_int_equal(spWatermarkConfirmable(w), 0);
    assert_true(spWatermarkCommit(w, a, 500, 0));
    assert_int_equal(spWatermarkConfirmable(w), 500);
}

static void test_foreign_transactions_advance(void **state) {
    spWatermark *w = *state;
    txn(w, 0, 100); /* writes to another table only */
    assert_int_equal(spWatermarkConfirmable(w), 100);
    uint64_t b = txn(w, 1, 200);
    txn(w, 0, 300);
    assert_int_equal(spWatermarkConfirmable(w), 100); /* behind b */
    assert_true(spWatermarkAck(w, b));
    assert_int_equal(spWatermarkConfirmable(w), 300);
}

static void test_misuse_is_refused(void **state) {
    spWatermark *w = *state;
    uint64_t a = txn(w, 1, 100);
    assert_false(spWatermarkAddPending(w, a)); /* committed already */
    assert_false(spWatermarkCommit(w, a, 200, 0));
    assert_false(spWatermarkAck(w, a + 7)); /* never begun */
    assert_true(spWatermarkAck(w, a));
    assert_false(spWatermarkAck(w, a)); /* more acks than messages */
    assert_int_equal(spWatermarkConfirmable(w), 100);
}

/* Many transactions in flight (the ring grows) acknowledged in a shuffled
 * order: after every acknowledgement the confirmable LSN must equal the end
 * LSN of the longest fully acknowledged prefix. */
static void test_random_order_matches_model(void **state) {
    spWatermark *w = *state;
    enum { N = 1000 };
    static uint64_t seqs[N];
    static int left[N];
    static int order[2 * N];
    int norder = 0;
    srand(42);
    for (int i = 0; i < N; i++) {
        left[i] = rand() % 3; /* 0, 1 or 2 messages */
        seqs[i] = txn(w, left[i], (uint64_t)(i + 1) * 16);
        for (int k = 0; k < left[i]; k++) order[norder++] = i;
    }
    for (int i = norder - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int prefix = 0;
    while (prefix < N && left[prefix] == 0) prefix++;
    assert_int_equal(spWatermarkConfirmable(w), (uint64_t)prefix * 16);
    for (int k = 0; k < norder; k++) {
        assert_true(spWatermarkAck(w, seqs[order[k]]));
        left[order[k]]--;
        while (prefix < N && left[prefix] == 0) prefix++;
        assert_int_equal(spWatermarkConfirmable(w), (uint64_t)prefix * 16);
    }
    assert_int_equal(spWatermarkConfirmable(w), (uint64_t)N * 16);
    assert_int_equal(spWatermarkTransactions(w), 0);
}

typedef struct observed {
    int calls;
    size_t messages;
    int64_t last_time;
} observed;

static void observe(int64_t commit_time, size_t messages, void *arg) {
    observed *o = arg;
    o->calls++;
    o->messages += messages;
    o->last_time = commit_time;
}

/* The observer hears each transaction once, when it becomes confirmable. */
static void test_observer_sees_confirmable_transactions(void **state) {
    spWatermark *w = *state;
    observed o = {0};
    spWatermarkSetObserver(w, observe, &o);
    uint64_t a = txn(w, 2, 100);
    txn(w, 0, 200);
    assert_int_equal(o.calls, 0); /* both wait for a */
    assert_true(spWatermarkAck(w, a));
    assert_true(spWatermarkAck(w, a));
    assert_int_equal(o.calls, 2);
    assert_int_equal(o.messages, 2);
    assert_int_equal(o.last_time, 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acks_hold_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_transaction_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_transactions_advance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_order_matches_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_sees_confirmable_transactions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
