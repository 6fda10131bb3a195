/* test_kafka.c - the shared Kafka client options (ds/kafka.h): every option
 * reaches its librdkafka property, read back from the configuration, and
 * every combination librdkafka would only fail on at connection time is
 * refused at once with the option named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ds/kafka.h"
#include "ds/kafkagroup.h"
#include "ds/log.h"

static char dir[] = "/tmp/test_kafka.XXXXXX";
static char ca[256], cert[256], key[256], pwfile[256], emptyfile[256];

static void writeFile(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    if (mkdtemp(dir) == NULL) return -1;
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(pwfile, sizeof pwfile, "%s/password", dir);
    snprintf(emptyfile, sizeof emptyfile, "%s/empty", dir);
    writeFile(ca, "-----BEGIN CERTIFICATE-----\n");
    writeFile(cert, "-----BEGIN CERTIFICATE-----\n");
    writeFile(key, "-----BEGIN PRIVATE KEY-----\n");
    writeFile(pwfile, "s3cret pw \t\nsecond line ignored\n");
    writeFile(emptyfile, "\n");
    return 0;
}

static int teardown(void **state) {
    const char *files[] = {ca, cert, key, pwfile, emptyfile};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
    rmdir(dir);
    return 0;
}

/* Options as a program's table leaves them with nothing given. */
static dsKafkaOptions defaults(void) {
    return (dsKafkaOptions){.brokers = "127.0.0.1:9092", .security_protocol = "", .sasl_mechanism = "",
                            .sasl_username = "", .sasl_password = "", .sasl_password_file = "", .ssl_ca = "",
                            .ssl_cert = "", .ssl_key = "", .client_id = "test-client"};
}

static void assertProp(rd_kafka_conf_t *conf, const char *name, const char *want) {
    char got[512];
    size_t size = sizeof got;
    assert_int_equal(rd_kafka_conf_get(conf, name, got, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(got, want);
}

static void test_plaintext(void **state) {
    char err[512];
    dsKafkaOptions o = defaults();
    rd_kafka_conf_t *conf = dsKafkaConfNew(&o, err, sizeof err);
    assert_non_null(conf);
    assertProp(conf, "bootstrap.servers", "127.0.0.1:9092");
    assertProp(conf, "security.protocol", "plaintext");
    assertProp(conf, "client.id", "test-client");
    rd_kafka_conf_destroy(conf);
}

static void test_sasl_ssl_every_option(void **state) {
    char err[512];
    dsKafkaOptions o = defaults();
    o.brokers = "b1:9093,b2:9093";
    o.security_protocol = "SASL_SSL";
    o.sasl_mechanism = "scram-sha-512";
    o.sasl_username = "archiver";
    o.sasl_password_file = pwfile;
    o.ssl_ca = ca;
    o.ssl_cert = cert;
    o.ssl_key = key;
    o.client_id = "decision-archiver-1";
    rd_kafka_conf_t *conf = dsKafkaConfNew(&o, err, sizeof err);
    assert_non_null(conf);
    assertProp(conf, "bootstrap.servers", "b1:9093,b2:9093");
    assertProp(conf, "security.protocol", "sasl_ssl");
    assertProp(conf, "sasl.mechanisms", "SCRAM-SHA-512");
    assertProp(conf, "sasl.username", "archiver");
    assertProp(conf, "sasl.password", "s3cret pw"); /* first line, trailing blanks dropped */
    assertProp(conf, "ssl.ca.location", ca);
    assertProp(conf, "ssl.certificate.location", cert);
    assertProp(conf, "ssl.key.location", key);
    assertProp(conf, "client.id", "decision-archiver-1");
    assert_true(dsKafkaConfSetPartitioner(conf, err, sizeof err));
    assertProp(conf, "partitioner", "murmur2_random");
    rd_kafka_conf_destroy(conf);

    /* the password itself, over plain SASL */
    o = defaults();
    o.security_protocol = "sasl_plaintext";
    o.sasl_mechanism = "PLAIN";
    o.sasl_username = "u";
    o.sasl_password = "p";
    conf = dsKafkaConfNew(&o, err, sizeof err);
    assert_non_null(conf);
    assertProp(conf, "security.protocol", "sasl_plaintext");
    assertProp(conf, "sasl.mechanisms", "PLAIN");
    assertProp(conf, "sasl.password", "p");
    rd_kafka_conf_destroy(conf);
}

/* Expects dsKafkaConfNew(o) to fail with an error containing want. */
static void assertRefused(const dsKafkaOptions *o, const char *want) {
    char err[512] = "";
    rd_kafka_conf_t *conf = dsKafkaConfNew(o, err, sizeof err);
    if (conf) rd_kafka_conf_destroy(conf);
    assert_null(conf);
    if (strstr(err, want) == NULL) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_refused(void **state) {
    dsKafkaOptions o = defaults();
    o.brokers = "";
    assertRefused(&o, "--brokers is empty");

    o = defaults();
    o.security_protocol = "tls";
    assertRefused(&o, "--security-protocol: \"tls\" is not plaintext, ssl, sasl_plaintext or sasl_ssl");

    o = defaults();
    o.sasl_mechanism = "PLAIN";
    assertRefused(&o, "--sasl-mechanism is set but --security-protocol is plaintext");
    o = defaults();
    o.security_protocol = "ssl";
    o.sasl_password_file = pwfile;
    assertRefused(&o, "--sasl-password-file is set but --security-protocol is ssl");

    o = defaults();
    o.security_protocol = "sasl_plaintext";
    o.ssl_ca = ca;
    o.sasl_mechanism = "PLAIN", o.sasl_username = "u", o.sasl_password = "p";
    assertRefused(&o, "--ssl-ca-location is set but --security-protocol is sasl_plaintext");

    o = defaults();
    o.security_protocol = "sasl_ssl";
    assertRefused(&o, "--security-protocol sasl_ssl needs --sasl-mechanism");
    o.sasl_mechanism = "GSSAPI";
    assertRefused(&o, "--sasl-mechanism: \"GSSAPI\" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    o.sasl_mechanism = "SCRAM-SHA-256";
    assertRefused(&o, "--sasl-mechanism SCRAM-SHA-256 needs --sasl-username");
    o.sasl_username = "u";
    assertRefused(&o, "--sasl-mechanism SCRAM-SHA-256 needs --sasl-password-file or --sasl-password");
    o.sasl_password = "p", o.sasl_password_file = pwfile;
    assertRefused(&o, "--sasl-password or --sasl-password-file, not both");
    o.sasl_password = "", o.sasl_password_file = "/nonexistent/pw";
    assertRefused(&o, "--sasl-password-file: ");
    o.sasl_password_file = emptyfile;
    assertRefused(&o, "the first line is empty");

    o.sasl_password_file = pwfile;
    o.ssl_ca = "/nonexistent/ca.pem";
    assertRefused(&o, "--ssl-ca-location /nonexistent/ca.pem: No such file or directory");
    o.ssl_ca = ca, o.ssl_cert = cert;
    assertRefused(&o, "--ssl-certificate-location needs --ssl-key-location");
    o.ssl_cert = "", o.ssl_key = key;
    assertRefused(&o, "--ssl-key-location needs --ssl-certificate-location");
    o.ssl_cert = "/nonexistent/cert.pem";
    assertRefused(&o, "--ssl-certificate-location /nonexistent/cert.pem");
}

static void test_conf_set(void **state) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_true(dsKafkaConfSet(conf, "acks", NULL, err, sizeof err));
    assert_true(dsKafkaConfSet(conf, "linger.ms", "7", err, sizeof err));
    assertProp(conf, "linger.ms", "7");
    assert_false(dsKafkaConfSet(conf, "linger.ms", "soon", err, sizeof err));
    assert_non_null(strstr(err, "kafka config linger.ms: "));
    rd_kafka_conf_destroy(conf);
}

/* librdkafka's syslog levels land at the project's: warnings and worse as
 * WARN, notice as INFO, the rest as DEBUG (not shown at INFO). */
static void test_log_levels(void **state) {
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dsLogInit("test", DS_LOG_INFO);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    dsKafkaLog(NULL, 3, "FAIL", "broker down");
    dsKafkaLog(NULL, 4, "WARN", "slow");
    dsKafkaLog(NULL, 5, "NOTE", "leader moved");
    dsKafkaLog(NULL, 7, "DBG", "chatter");
    dup2(saved, 2);
    close(saved);
    char text[2048] = "";
    rewind(tmp);
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
    assert_non_null(strstr(text, "WARN test: kafka: FAIL: broker down"));
    assert_non_null(strstr(text, "WARN test: kafka: WARN: slow"));
    assert_non_null(strstr(text, "INFO test: kafka: NOTE: leader moved"));
    assert_null(strstr(text, "chatter"));
}

/* The header compiled against and the library linked are the same release,
 * one that sends RFC 5802's client-final-message (2.6.1 or later): older
 * ones cannot log in to Kafka 4 with SCRAM (deploy/librdkafka.sh says why),
 * which test_pipeline and test_kafkaerrors do on the real broker. */
static void test_linked_version(void **state) {
    fprintf(stderr, "librdkafka %s (header 0x%08x, library 0x%08x)\n", rd_kafka_version_str(), RD_KAFKA_VERSION,
            rd_kafka_version());
    assert_int_equal(rd_kafka_version(), RD_KAFKA_VERSION);
    assert_true(rd_kafka_version() >= 0x020601ff);
}

/* A consumer group member: static membership under the id the option
 * stands for, read_committed, offsets committed by the program only. */
static void test_group_membership(void **state) {
    char err[512], id[512], host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    dsKafkaGroup g = {"archivers", DS_KAFKA_INSTANCE_AUTO, "decision-archiver", 6000};
    assert_true(dsKafkaInstanceId(&g, id, sizeof id, err, sizeof err));
    char want[512];
    snprintf(want, sizeof want, "decision-archiver@%s", host);
    assert_string_equal(id, want);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_true(dsKafkaGroupConf(conf, &g, err, sizeof err));
    assertProp(conf, "group.id", "archivers");
    assertProp(conf, "group.instance.id", want);
    assertProp(conf, "session.timeout.ms", "6000");
    assertProp(conf, "heartbeat.interval.ms", "2000"); /* a third of the session */
    assertProp(conf, "isolation.level", "read_committed");
    assertProp(conf, "enable.auto.commit", "false");
    rd_kafka_conf_destroy(conf);

    g.instance_id = "archiver-2";
    g.session_timeout_ms = 45000;
    conf = rd_kafka_conf_new();
    assert_true(dsKafkaGroupConf(conf, &g, err, sizeof err));
    assertProp(conf, "group.instance.id", "archiver-2");
    assertProp(conf, "heartbeat.interval.ms", "3000"); /* librdkafka's default, below a third */
    rd_kafka_conf_destroy(conf);

    /* none: a dynamic member, as before static membership */
    g.instance_id = DS_KAFKA_INSTANCE_NONE;
    assert_true(dsKafkaInstanceId(&g, id, sizeof id, err, sizeof err));
    assert_string_equal(id, "");
    conf = rd_kafka_conf_new();
    assert_true(dsKafkaGroupConf(conf, &g, err, sizeof err));
    char got[64] = "";
    size_t size = sizeof got;
    /* unset: librdkafka answers "unknown" for a string never set */
    if (rd_kafka_conf_get(conf, "group.instance.id", got, &size) == RD_KAFKA_CONF_OK) assert_string_equal(got, "");
    rd_kafka_conf_destroy(conf);

    /* an id that does not fit is refused, naming the option */
    char small[8];
    g.instance_id = "a-much-longer-instance-id";
    assert_false(dsKafkaInstanceId(&g, small, sizeof small, err, sizeof err));
    assert_non_null(strstr(err, "--group-instance-id"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext),
        cmocka_unit_test(test_sasl_ssl_every_option),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_conf_set),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_linked_version),
        cmocka_unit_test(test_group_membership),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
