/* test_devkafka.c - the local broker for `make run` and the tests: an
 * ordinary Kafka client (kcat, from Debian) produces and consumes through
 * the fixed bootstrap port, and the control endpoint takes a broker down and
 * up. */
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

static dtKafka kafka;

static int setup(void **state) {
    return dtKafkaStart(&kafka) ? 0 : -1;
}

static int teardown(void **state) {
    return dtKafkaStop(&kafka) == 0 ? 0 : -1;
}

static void test_produce_consume_with_kcat(void **state) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "printf 'cust-1:first\\ncust-2:second\\ncust-1:third\\n' | "
             "timeout 30 kcat -P -b 127.0.0.1:%d -t decisions -K: 2>&1 && echo produced",
             kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "produced"));
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -C -b 127.0.0.1:%d -t decisions -e -q -f '%%k=%%s@%%p\\n'",
             kafka.port);
    out = dtCapture(cmd);
    assert_non_null(strstr(out, "cust-1=first@"));
    assert_non_null(strstr(out, "cust-2=second@"));
    assert_non_null(strstr(out, "cust-1=third@"));
    /* same key, same partition: one customer's decisions keep their order */
    char p1[8] = "", p3[8] = "";
    sscanf(strstr(out, "cust-1=first@") + strlen("cust-1=first@"), "%7s", p1);
    sscanf(strstr(out, "cust-1=third@") + strlen("cust-1=third@"), "%7s", p3);
    assert_string_equal(p1, p3);
    free(out);
}

static void test_topics_created_at_start(void **state) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -L -b 127.0.0.1:%d -t decisions.dlq", kafka.port);
    char *out = dtCapture(cmd);
    assert_non_null(strstr(out, "topic \"decisions.dlq\" with 1 partitions"));
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -L -b 127.0.0.1:%d -t decisions", kafka.port);
    out = dtCapture(cmd);
    assert_non_null(strstr(out, "topic \"decisions\" with 6 partitions"));
    free(out);
}

static void test_control_broker_down_up(void **state) {
    dtResponse r;
    assert_true(dtHttp(&kafka.control, "POST", "/brokers/2/down", NULL, NULL, "", 0, &r));
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    assert_true(dtHttp(&kafka.control, "POST", "/brokers/2/up", NULL, NULL, "", 0, &r));
    assert_int_equal(r.status, 200);
    dtResponseFree(&r);
    /* no broker but 1..N: not 4294967297 read as 1, not 01, +1 or 1/down/x */
    static const char *const bad[] = {"/brokers/9/down", "/brokers/4294967297/down", "/brokers/01/down",
                                      "/brokers/+1/down", "/brokers/0/down", "/brokers/1/down/x", "/brokers/1/downx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_true(dtHttp(&kafka.control, "POST", bad[i], NULL, NULL, "", 0, &r));
        if (r.status != 404) fail_msg("%s answered %ld", bad[i], r.status);
        dtResponseFree(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_consume_with_kcat),
        cmocka_unit_test(test_topics_created_at_start),
        cmocka_unit_test(test_control_broker_down_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
