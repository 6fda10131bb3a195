/* test_scram.c - the librdkafka the programs link logs in to Apache Kafka 4
 * with SCRAM-SHA-512 over SASL_SSL. Kafka 4 enforces RFC 5802 and refuses
 * the client-final-message of librdkafka < 2.6.1 (the client nonce sent
 * twice, librdkafka#4895), so Debian 12's 2.0.2 fails here with an
 * authentication error exactly like a wrong password; the Makefile links the
 * 2.8.0 that deploy/librdkafka.sh builds. The settings are the cluster's
 * DIR/client.properties, read as librdkafka properties, as an operator
 * would pass them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "harness.h"

static dtBroker broker;
static const char *dir = broker.dir;

static int teardown(void **state) { return dtBrokerDestroy(&broker) ? 0 : -1; }

/* A single-node cluster, SASL_SSL only, with the SCRAM-SHA-512 user the tool
 * creates at format time. */
static int setup(void **state) { return dtBrokerStart(&broker, 1, true, true, NULL) ? 0 : -1; }

typedef struct client {
    rd_kafka_t *rk;
    bool auth_failed;              /* error_cb said _AUTHENTICATION */
    rd_kafka_resp_err_t delivered; /* delivery report; -1 until it comes */
} client;

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    client *c = opaque;
    fprintf(stderr, "librdkafka error: %s: %s\n", rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) c->auth_failed = true;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    client *c = opaque;
    c->delivered = m->err;
}

/* A producer configured from DIR/client.properties, password replaced when
 * password is not NULL. */
static void client_open(client *c, const char *password) {
    char path[128], line[512], errstr[512];
    memset(c, 0, sizeof(*c));
    c->delivered = (rd_kafka_resp_err_t)-1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(path, sizeof(path), "%s/client.properties", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool scram = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || eq == NULL) continue;
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(line, "sasl.password") == 0 && password != NULL) value = password;
        if (strcmp(line, "sasl.mechanism") == 0) scram = strcmp(value, "SCRAM-SHA-512") == 0;
        if (rd_kafka_conf_set(conf, line, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            fail_msg("%s: %s", line, errstr);
    }
    fclose(f);
    assert_true(scram);
    assert_int_equal(rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "message.timeout.ms", "30000", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) fail_msg("rd_kafka_new: %s", errstr);
}

/* The header compiled against and the library linked are the same release,
 * one that sends RFC 5802's client-final-message (2.6.1 or later). */
static void test_linked_version(void **state) {
    fprintf(stderr, "librdkafka %s (header 0x%08x, library 0x%08x)\n", rd_kafka_version_str(), RD_KAFKA_VERSION,
            rd_kafka_version());
    assert_int_equal(rd_kafka_version(), RD_KAFKA_VERSION);
    assert_true(rd_kafka_version() >= 0x020601ff);
}

/* SCRAM-SHA-512 over SASL_SSL: metadata lists the tool's topics, and an
 * acks=all idempotent produce is acknowledged. */
static void test_scram_sha512_produce(void **state) {
    client c;
    client_open(&c, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(c.rk, 1, NULL, &md, 30000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) fail_msg("metadata: %s", rd_kafka_err2str(err));
    int partitions = -1;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, "decisions") == 0) partitions = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    assert_int_equal(partitions, 6);

    char id[37];
    dtUuid(id);
    err = rd_kafka_producev(c.rk, RD_KAFKA_V_TOPIC("decisions"), RD_KAFKA_V_KEY(id, strlen(id)),
                            RD_KAFKA_V_VALUE(id, strlen(id)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(c.rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(c.delivered, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_false(c.auth_failed);
    rd_kafka_destroy(c.rk);
}

static bool auth_failed(void *arg) {
    client *c = arg;
    rd_kafka_poll(c->rk, 0);
    return c->auth_failed;
}

/* The same settings with a wrong password: the client is told it is an
 * authentication failure, and metadata never comes. (What 2.0.2 gets with
 * the right one.) */
static void test_scram_wrong_password(void **state) {
    client c;
    client_open(&c, "not-the-password");
    assert_true(dtWaitFor(auth_failed, &c, 30000));
    const struct rd_kafka_metadata *md = NULL;
    assert_int_not_equal(rd_kafka_metadata(c.rk, 1, NULL, &md, 2000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c.rk);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linked_version),
        cmocka_unit_test(test_scram_sha512_produce),
        cmocka_unit_test(test_scram_wrong_password),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
