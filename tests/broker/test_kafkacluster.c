/* test_kafkacluster.c - deploy/kafka-cluster.sh: a single-node Apache Kafka
 * (KRaft) with a SASL_SSL client listener, started in a temporary directory.
 * Ordinary clients reach it with the settings the tool writes: kcat (the
 * machine's librdkafka, PLAIN) produces and consumes, the Java console
 * consumer logs in with the SCRAM-SHA-512 user made at format time; a wrong
 * password and a CA the broker's certificate does not chain to are refused;
 * a node killed with SIGKILL comes back with its records. The first run
 * fetches Kafka from Maven Central (minutes); later runs take seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char dir[64];
static char bootstrap[256];

/* Copies DIR/<from> to DIR/<to>, the line starting with key replaced by
 * key=value. */
static void write_variant(const char *from, const char *to, const char *key, const char *value) {
    char cmd[1024], *out;
    snprintf(cmd, sizeof(cmd), "grep -v '^%s=' %s/%s > %s/%s && echo '%s=%s' >> %s/%s", key, dir, from, dir, to, key,
             value, dir, to);
    int rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
}

static int teardown(void **state);

static int setup(void **state) {
    snprintf(dir, sizeof(dir), "/tmp/ds-kafka-XXXXXX");
    if (mkdtemp(dir) == NULL) return -1;
    char cmd[512];
    /* A node restarted after SIGKILL registers once its old session has
     * expired: a 3 s session instead of 9 s keeps the test short. */
    snprintf(cmd, sizeof(cmd),
             "bash deploy/kafka-cluster.sh start %s --sasl --tls --set broker.session.timeout.ms=3000 "
             "--set broker.heartbeat.interval.ms=500",
             dir);
    /* stdout only: the bootstrap line; the tool's messages go to our stderr */
    FILE *p = popen(cmd, "r");
    if (p == NULL) return -1;
    if (fgets(bootstrap, sizeof(bootstrap), p) == NULL) bootstrap[0] = '\0';
    bootstrap[strcspn(bootstrap, "\n")] = '\0';
    char extra[64];
    bool more = fgets(extra, sizeof(extra), p) != NULL;
    int st = pclose(p);
    if (st != 0 || more || bootstrap[0] == '\0') {
        fprintf(stderr, "kafka-cluster.sh start failed (status %d, stdout '%s')\n", st, bootstrap);
        teardown(state); /* cmocka runs no group teardown after a failed setup */
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    char cmd[256], *out;
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh destroy %s", dir);
    int rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    free(out);
    struct stat st;
    return rc == 0 && stat(dir, &st) != 0 ? 0 : -1;
}

static void test_bootstrap_and_topics(void **state) {
    unsigned port;
    char rest[8];
    /* one node: one host:port, loopback, no trailing text */
    assert_int_equal(sscanf(bootstrap, "127.0.0.1:%u%7s", &port, rest), 1);
    char cmd[512], *out;
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh bootstrap %s", dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    out[strcspn(out, "\n")] = '\0';
    assert_string_equal(out, bootstrap);
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/client-plain.properties -L", dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, " 1 brokers:"));
    assert_non_null(strstr(out, "topic \"decisions\" with 6 partitions"));
    assert_non_null(strstr(out, "topic \"decisions.dlq\" with 1 partitions"));
    free(out);
    /* the client listener is SASL_SSL only: plaintext gets no metadata */
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -b %s -L -m 3", bootstrap);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    free(out);
}

static void test_produce_consume_sasl_ssl(void **state) {
    char cmd[1024], *out, id[37];
    dtUuid(id);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh topic %s smoke 2", dir);
    int rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(cmd, sizeof(cmd),
             "printf 'c1:one-%s\\nc2:two-%s\\nc1:three-%s\\n' | timeout 30 kcat -F %s/client-plain.properties "
             "-X acks=all -P -t smoke -K:",
             id, id, id, dir);
    rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/client-plain.properties -C -t smoke -e -q -f '%%k=%%s\\n'",
             dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    char want[128];
    snprintf(want, sizeof(want), "c1=one-%s", id);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "c2=two-%s", id);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "c1=three-%s", id);
    assert_non_null(strstr(out, want));
    free(out);
    /* the same records through SCRAM-SHA-512, the user made at format time */
    snprintf(cmd, sizeof(cmd),
             "timeout 60 bash deploy/kafka-cluster.sh run %s org.apache.kafka.tools.consumer.ConsoleConsumer "
             "--bootstrap-server %s --consumer.config %s/client-java.properties --topic smoke --from-beginning "
             "--max-messages 3 --timeout-ms 20000",
             dir, bootstrap, dir);
    rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof(want), "two-%s", id);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "Processed a total of 3 messages"));
    free(out);
}

static void test_wrong_password_refused(void **state) {
    char cmd[1024], *out;
    write_variant("client-plain.properties", "wrong-plain.properties", "sasl.password", "not-the-password");
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/wrong-plain.properties -L -m 3", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "Authentication failed"));
    assert_null(strstr(out, "brokers:"));
    free(out);
    /* and through SCRAM: the Java console consumer gives up on an
     * authentication error (it exits 0 all the same: read what it says) */
    write_variant("client-java.properties", "wrong-java.properties", "sasl.jaas.config",
                  "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"decisions\" "
                  "password=\"not-the-password\";");
    snprintf(cmd, sizeof(cmd),
             "timeout 60 bash deploy/kafka-cluster.sh run %s org.apache.kafka.tools.consumer.ConsoleConsumer "
             "--bootstrap-server %s --consumer.config %s/wrong-java.properties --topic decisions "
             "--from-beginning --max-messages 1 --timeout-ms 20000",
             dir, bootstrap, dir);
    dtRun(cmd, &out);
    assert_non_null(strstr(out, "SaslAuthenticationException: Authentication failed during authentication due to "
                                "invalid credentials with SASL mechanism SCRAM-SHA-512"));
    assert_non_null(strstr(out, "Processed a total of 0 messages"));
    free(out);
}

static void test_unknown_ca_refused(void **state) {
    char cmd[1024], *out, path[128];
    snprintf(path, sizeof(path), "%s/other-ca.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=another CA' "
             "-keyout %s/other-ca.key -out %s",
             dir, path);
    assert_int_equal(dtRun(cmd, &out), 0);
    free(out);
    write_variant("client-plain.properties", "other-ca.properties", "ssl.ca.location", path);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/other-ca.properties -L -m 3", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "certificate verify failed"));
    assert_null(strstr(out, "brokers:"));
    free(out);
}

static void test_kill_and_restart_keeps_records(void **state) {
    char cmd[1024], *out, id[37], want[64];
    dtUuid(id);
    snprintf(cmd, sizeof(cmd),
             "printf 'k:%s\\n' | timeout 30 kcat -F %s/client-plain.properties -X acks=all -P -t decisions.dlq -K:",
             id, dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh kill %s 1", dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/client-plain.properties -L -m 2", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    free(out);
    /* killing it again: it is not running, and the tool says so */
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh kill %s 1", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "node 1 is not running"));
    free(out);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh restart %s 1", dir);
    int rc = dtRun(cmd, &out);
    if (rc != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    free(out);
    snprintf(cmd, sizeof(cmd), "timeout 30 kcat -F %s/client-plain.properties -C -t decisions.dlq -e -q -f '%%s\\n'",
             dir);
    assert_int_equal(dtRun(cmd, &out), 0);
    snprintf(want, sizeof(want), "%s\n", id);
    assert_non_null(strstr(out, want));
    free(out);
}

static void test_bad_arguments_refused(void **state) {
    char cmd[512], *out;
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh start %s --nodes 3", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "holds a cluster of 1 node(s), not 3"));
    free(out);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh start /tmp/ds-kafka-unused --nodes 2");
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "--nodes must be 1 or 3"));
    free(out);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh topic %s smoke2 0", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "partitions must be a positive number"));
    free(out);
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh topic %s smoke2 1 3", dir);
    assert_int_not_equal(dtRun(cmd, &out), 0);
    assert_non_null(strstr(out, "replication factor must be 1..1"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_and_topics),
        cmocka_unit_test(test_produce_consume_sasl_ssl),
        cmocka_unit_test(test_wrong_password_refused),
        cmocka_unit_test(test_unknown_ca_refused),
        cmocka_unit_test(test_kill_and_restart_keeps_records),
        cmocka_unit_test(test_bad_arguments_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
