/* test_kafkahealth.c - ds/kafkahealth.h without a cluster: librdkafka's
 * errors (codes and the reasons 2.8 writes) classified into the three
 * problems with a message naming the option to fix; the health's state
 * moved by errors, successes and statistics as kafkahealth.h says; the
 * metrics it publishes. The real cluster's side is test_kafkaerrors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ds/kafkahealth.h"
#include "ds/log.h"

static dsKafkaOptions opts(void) {
    return (dsKafkaOptions){.brokers = "10.0.0.1:9093", .security_protocol = "sasl_ssl",
                            .sasl_mechanism = "SCRAM-SHA-512", .sasl_username = "decisions", .sasl_password = "",
                            .sasl_password_file = "/etc/ds/kafka-password", .ssl_ca = "/etc/ds/kafka-ca.pem",
                            .ssl_cert = "", .ssl_key = "", .client_id = "test"};
}

static const char *const authReason =
    "sasl_ssl://10.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed during authentication due "
    "to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 315ms in state AUTH_REQ)";
static const char *const tlsReason =
    "sasl_ssl://10.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
    "failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root "
    "CA certificates are installed (install ca-certificates package) (after 9ms in state SSL_HANDSHAKE)";

static void assertHas(const char *msg, const char *part) {
    if (strstr(msg, part) == NULL) fail_msg("\"%s\" not in: %s", part, msg);
}

static void test_classify(void **state) {
    dsKafkaOptions o = opts();
    char msg[1400];
    assert_int_equal(dsKafkaClassify(&o, "decisions", RD_KAFKA_RESP_ERR__AUTHENTICATION, authReason, msg, sizeof msg),
                     DS_KAFKA_AUTH);
    assertHas(msg, "authentication failed for user \"decisions\" (SASL SCRAM-SHA-512) at 10.0.0.1:9093");
    assertHas(msg, "--sasl-password-file /etc/ds/kafka-password");
    assertHas(msg, authReason);
    assert_int_equal(dsKafkaClassify(&o, "decisions", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, NULL, msg,
                                     sizeof msg),
                     DS_KAFKA_AUTH);
    assertHas(msg, "user \"decisions\" is not authorized (TOPIC_AUTHORIZATION_FAILED)");
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__SSL, tlsReason, msg, sizeof msg), DS_KAFKA_TLS);
    assertHas(msg, "not trusted by --ssl-ca-location /etc/ds/kafka-ca.pem");
    o.ssl_ca = "";
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__SSL, tlsReason, msg, sizeof msg), DS_KAFKA_TLS);
    assertHas(msg, "not trusted by the system's CA certificates (no --ssl-ca-location given)");
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__SSL, "SSL handshake failed: wrong version number",
                                     msg, sizeof msg),
                     DS_KAFKA_TLS);
    assertHas(msg, "TLS handshake with the Kafka brokers at 10.0.0.1:9093 failed: check --security-protocol");
    assert_int_equal(dsKafkaClassify(&o, "refill", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, msg, sizeof msg),
                     DS_KAFKA_TOPIC);
    assertHas(msg, "topic \"refill\" does not exist on the Kafka cluster at 10.0.0.1:9093");
    assert_int_equal(dsKafkaClassify(&o, "refill", RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, NULL, msg, sizeof msg),
                     DS_KAFKA_TOPIC);
    /* what librdkafka retries and an operator need not act on */
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__TRANSPORT, "Connection refused", msg, sizeof msg),
                     DS_KAFKA_OK);
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", msg,
                                     sizeof msg),
                     DS_KAFKA_OK);
    assert_int_equal(dsKafkaClassify(&o, NULL, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, NULL, msg, sizeof msg), DS_KAFKA_OK);
}

static void test_state(void **state) {
    dsKafkaOptions o = opts();
    dsKafkaHealth *h = dsKafkaHealthNew(&o, "decisions");
    char msg[1400];
    assert_int_equal(dsKafkaHealthProblem(h, msg, sizeof msg), DS_KAFKA_OK);
    assert_string_equal(msg, "");
    assert_int_equal(dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__TRANSPORT, "Connection refused", NULL), DS_KAFKA_OK);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    /* a connection up clears refused credentials */
    assert_int_equal(dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__AUTHENTICATION, authReason, NULL), DS_KAFKA_AUTH);
    assert_int_equal(dsKafkaHealthProblem(h, msg, sizeof msg), DS_KAFKA_AUTH);
    assertHas(msg, "authentication failed");
    dsKafkaHealthOk(h, NULL);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    /* but not a missing ACL, refused on connections that are up */
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, NULL, NULL);
    dsKafkaHealthOk(h, NULL);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_AUTH);
    dsKafkaHealthOk(h, "decisions");
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    /* a missing topic: only that topic working clears it */
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, NULL, "decisions.dlq");
    dsKafkaHealthOk(h, NULL);
    dsKafkaHealthOk(h, "decisions");
    assert_int_equal(dsKafkaHealthProblem(h, msg, sizeof msg), DS_KAFKA_TOPIC);
    assertHas(msg, "topic \"decisions.dlq\" does not exist");
    dsKafkaHealthOk(h, "decisions.dlq");
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    /* the error names no topic: the client's own */
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, NULL);
    assert_int_equal(dsKafkaHealthProblem(h, msg, sizeof msg), DS_KAFKA_TOPIC);
    assertHas(msg, "topic \"decisions\" does not exist");
    /* a later problem replaces the current one */
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__SSL, tlsReason, NULL);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_TLS);
    dsKafkaHealthTick(h); /* nothing to re-read outside an authentication problem, no client attached */
    dsKafkaHealthFree(h);
}

/* librdkafka's statistics, as much of them as the health reads. */
static void test_stats(void **state) {
    dsKafkaOptions o = opts();
    dsKafkaHealth *h = dsKafkaHealthNew(&o, "decisions");
    static const char down[] = "{\"brokers\":{\"sasl_ssl://10.0.0.1:9093/bootstrap\":{\"nodeid\":-1,\"state\":"
                               "\"AUTH_REQ\"}},\"topics\":{\"decisions\":{\"partitions\":{\"-1\":{}}}}}";
    static const char up[] = "{\"brokers\":{\"sasl_ssl://10.0.0.1:9093/1\":{\"nodeid\":1,\"state\":\"UP\"}},"
                             "\"topics\":{\"decisions\":{\"partitions\":{\"0\":{},\"-1\":{}}}}}";
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__AUTHENTICATION, authReason, NULL);
    dsKafkaHealthStats(h, down, sizeof down - 1);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_AUTH);
    dsKafkaHealthStats(h, up, sizeof up - 1);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, "decisions");
    dsKafkaHealthStats(h, down, sizeof down - 1);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_TOPIC);
    dsKafkaHealthStats(h, up, sizeof up - 1);
    assert_int_equal(dsKafkaHealthProblem(h, NULL, 0), DS_KAFKA_OK);
    dsKafkaHealthStats(h, "not json", 8); /* ignored */
    dsKafkaHealthFree(h);
}

static void test_metrics(void **state) {
    dsKafkaOptions o = opts();
    dsKafkaHealth *h = dsKafkaHealthNew(&o, "decisions");
    dsMetrics *m = dsMetricsNew();
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__AUTHENTICATION, authReason, NULL);
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__AUTHENTICATION, authReason, NULL);
    dsKafkaHealthPublish(h, m);
    size_t len;
    char *text = dsMetricsRender(m, &len);
    assertHas(text, "kafka_errors_total{kind=\"auth\"} 2\n");
    assertHas(text, "kafka_errors_total{kind=\"tls\"} 0\n");
    assertHas(text, "kafka_problem{kind=\"auth\"} 1\n");
    assertHas(text, "kafka_problem{kind=\"topic\"} 0\n");
    free(text);
    dsKafkaHealthOk(h, NULL);
    dsKafkaHealthError(h, RD_KAFKA_RESP_ERR__SSL, tlsReason, NULL);
    dsKafkaHealthPublish(h, m);
    text = dsMetricsRender(m, &len);
    assertHas(text, "kafka_errors_total{kind=\"auth\"} 2\n");
    assertHas(text, "kafka_errors_total{kind=\"tls\"} 1\n");
    assertHas(text, "kafka_problem{kind=\"auth\"} 0\n");
    assertHas(text, "kafka_problem{kind=\"tls\"} 1\n");
    free(text);
    dsMetricsFree(m);
    dsKafkaHealthFree(h);
}

int main(void) {
    dsLogInit("test_kafkahealth", DS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
