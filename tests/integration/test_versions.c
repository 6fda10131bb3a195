/* test_versions.c - a schema rollout seen by consumers older than it
 * (issue 6): decision-archiver and variable-store run with a schema set
 * that knows only version 1 (--schemas-dir, written here), while records
 * arrive under schema id 2 (the shipped version 2, each with a model;
 * tests/support/schemadir.h), produced here onto dev-kafka by a codec of a
 * two-version set, whose version 2 a stand-in registry (fakehttp.h) serves
 * as the decision API does (GET /schemas/ids/{id}[/versions]).
 *
 * - With the registry up: the archiver writes each record under its
 *   writer's schema (python3-avro reads the model name back from the
 *   version 2 files), starts a new file at the record where the version
 *   changes within a partition, and leaves out a record that is not in the
 *   wire format; the store counts every decodable record and rejects that
 *   one.
 * - With the registry answering 503, then answering 404 as an older
 *   registry would (an old decision API during a handover): nothing of
 *   version 2 is skipped, counted or archived, records before it are, and
 *   both consumers keep asking (with back-off); SIGTERM still stops them at
 *   once, and after a restart they wait at the same record; once the
 *   registry answers, everything lands, in the same files.
 * Real processes, conditions with deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "ds/codec.h"
#include "fakehttp.h"
#include "harness.h"
#include "schemadir.h"

/* ---- a registry serving schema id 2, which can be told to fail -------- */

typedef struct registry {
    dtFakeHttp http;
    char url[64];
    atomic_int mode;  /* REG_UP, or failing as REG_DOWN or REG_OLDER */
    atomic_int hits;  /* requests received */
} registry;

enum { REG_UP, REG_DOWN /* 503 to everything */, REG_OLDER /* 404: knows no id 2 */ };

static char *v2text; /* version 2's schema (tests/support/schemadir.h) */

/* Answers as the decision API's registry would, knowing id 2 only. */
static int regAnswer(void *arg, const dtFakeRequest *req, char *body, size_t cap) {
    registry *r = arg;
    atomic_fetch_add(&r->hits, 1);
    json_t *a = NULL;
    int status = 200;
    int mode = atomic_load(&r->mode);
    if (mode == REG_DOWN)
        status = 503, a = json_pack("{s:i,s:s}", "error_code", 50003, "message", "down for the test");
    else if (mode == REG_OLDER)
        status = 404, a = json_pack("{s:i,s:s}", "error_code", 40403, "message", "Schema not found");
    else if (strcmp(req->path, "/schemas/ids/2") == 0)
        a = json_pack("{s:s}", "schema", v2text);
    else if (strcmp(req->path, "/schemas/ids/2/versions") == 0)
        a = json_pack("[{s:s,s:i}]", "subject", "decisions-value", "version", 2);
    else
        status = 404, a = json_pack("{s:i,s:s}", "error_code", 40403, "message", "Schema not found");
    char *text = json_dumps(a, JSON_COMPACT);
    snprintf(body, cap, "%s", text);
    free(text);
    json_decref(a);
    return status;
}

static bool regStart(registry *r, bool down) {
    atomic_store(&r->mode, down ? REG_DOWN : REG_UP);
    atomic_store(&r->hits, 0);
    if (!dtFakeHttpStart(&r->http, regAnswer, r)) return false;
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", r->http.port);
    return true;
}

/* ---- the schema sets and the producer ---------------------------------- */

static dtKafka kafka;
static char tmp[64], v1dir[128];
static dsCodec *codec2; /* versions 1 and 2, the producers' */
static rd_kafka_t *producer;
static atomic_int undelivered;
static int64_t decided_ms; /* every record's decided_at: in one past hour, inside every window */

/* A version 1 set for the consumers, a version 1 + 2 set for the producer. */
static bool makeSchemas(void) {
    char v2dir[128], err[512];
    snprintf(v1dir, sizeof(v1dir), "%s/v1-only", tmp);
    snprintf(v2dir, sizeof(v2dir), "%s/v1-v2", tmp);
    if (!dtSchemaDirWrite(v1dir, 1) || !dtSchemaDirWrite(v2dir, 2) || (v2text = dtSchemaV2Text()) == NULL)
        return false;
    if ((codec2 = dsCodecNewFromDir(v2dir, err, sizeof(err))) == NULL) print_error("codec: %s\n", err);
    return codec2 != NULL;
}

static void onDelivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    if (m->err) {
        print_error("delivery failed: %s\n", rd_kafka_err2str(m->err));
        atomic_fetch_add(&undelivered, 1);
    }
}

static bool startProducer(void) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_dr_msg_cb(conf, onDelivery);
    return (producer = dtKafkaProducer(&kafka, conf)) != NULL;
}

/* One record in the wire format: version 1 or 2 ('1', '2'), or a version 1
 * record with a wrong magic byte, so not in the wire format ('x'). Version 2
 * records carry the model name "kiosk-<offset>". */
static size_t encode(char kind, int partition, int offset, unsigned char *out, size_t cap) {
    char uuid[37], customer[64], note[32], err[512];
    dtUuid(uuid);
    snprintf(customer, sizeof(customer), "vc-%d-%d-%s", partition, offset, uuid);
    snprintf(note, sizeof(note), "kiosk-%d", offset);
    time_t s = (time_t)(decided_ms / 1000);
    struct tm tm;
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&s, &tm));
    json_t *doc = dtFixture("decision.json");
    json_object_set_new(doc, "decision_id", json_string(uuid));
    json_object_set_new(doc, "customer_id", json_string(customer));
    json_object_set_new(doc, "decided_at", json_string(when));
    dtSchemaV2Tag(doc, note);
    avro_value_t v2, v1;
    dsCodecError e;
    size_t n = 0;
    dsCodecNewValue(codec2, &v2);
    dsCodecNewVersionValue(codec2, 1, &v1);
    if (!dsCodecFromJson(codec2, doc, &v2, &e) || !dsCodecSetServerFields(codec2, &v2, decided_ms, 2))
        print_error("document: %s\n", e.message);
    else if (kind == '2') n = dsCodecEncodeWire(codec2, &v2, out, cap, err, sizeof(err));
    else if (dsCodecResolve(codec2, &v2, &v1, err, sizeof(err))) n = dsCodecEncodeWire(codec2, &v1, out, cap, err, sizeof(err));
    if (n == 0 || n > cap) print_error("encode: %s\n", err), n = 0;
    if (n > 0 && kind == 'x') out[0] = 1;
    avro_value_decref(&v2);
    avro_value_decref(&v1);
    json_decref(doc);
    return n;
}

/* Produces kinds[i] at offset i of a partition of a new topic, and waits for every delivery. */
static void produce(const char *topic, int partition, const char *kinds) {
    for (int i = 0; kinds[i]; i++) {
        unsigned char buf[8192];
        size_t n = encode(kinds[i], partition, i, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                           RD_KAFKA_V_VALUE(buf, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(producer, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(atomic_load(&undelivered), 0);
}

/* ---- the old consumers ------------------------------------------------- */

/* An archiver and a variable store with the version 1 set, each with a
 * registry of its own (so the test sees that each one asks). */
typedef struct consumers {
    const char *topic;
    registry areg, sreg;
    pid_t archiver, store;
    dtApi vs, ar; /* the store's API, the archiver's metrics endpoint */
    char root[128], data[128];
    char aenv[11][300], senv[12][300];
    const char *aenvp[12], *senvp[13];
} consumers;

static bool alive(void *arg) {
    dtResponse r;
    bool ok = dtHttp(arg, "GET", "/healthz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

static bool consumersSpawn(consumers *c) {
    c->archiver = dtSpawn("decision-archiver", NULL, c->aenvp);
    c->store = dtSpawn("variable-store", NULL, c->senvp);
    return c->archiver > 0 && c->store > 0 && dtWaitFor(alive, &c->vs, 30000);
}

/* env[i] = prefix + names[i] + "=" + values[i]; envp the NULL-terminated list. */
static void envFill(char (*env)[300], const char **envp, const char *prefix, const char *const *names,
                    const char *const *values, size_t n) {
    for (size_t i = 0; i < n; i++) {
        snprintf(env[i], 300, "%s%s=%s", prefix, names[i], values[i]);
        envp[i] = env[i];
    }
    envp[n] = NULL;
}

static bool consumersStart(consumers *c, const char *topic, bool registry_down) {
    c->topic = topic;
    if (!regStart(&c->areg, registry_down) || !regStart(&c->sreg, registry_down)) return false;
    snprintf(c->root, sizeof(c->root), "%s/archive-%s", tmp, topic);
    snprintf(c->data, sizeof(c->data), "%s/store-%s", tmp, topic);
    c->vs.port = dtFreePort();
    snprintf(c->vs.url, sizeof(c->vs.url), "http://127.0.0.1:%d", c->vs.port);
    c->ar.port = dtFreePort();
    snprintf(c->ar.url, sizeof(c->ar.url), "http://127.0.0.1:%d", c->ar.port);
    char brokers[32], port[16], aport[16];
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka.port);
    snprintf(port, sizeof(port), "%d", c->vs.port);
    snprintf(aport, sizeof(aport), "%d", c->ar.port);
    /* dynamic members with a short session: dev-kafka's mock cluster would
     * make a restarted static member wait out its former self */
    const char *an[] = {"BROKERS", "TOPIC", "GROUP", "ROOT", "SCHEMAS_DIR", "REGISTRY_URL", "MAX_AGE",
                        "SESSION_TIMEOUT", "GROUP_INSTANCE_ID", "LOG_LEVEL", "METRICS_PORT"};
    const char *av[] = {brokers, topic, "archiver", c->root, v1dir, c->areg.url, "1500ms", "3s", "none", "warn", aport};
    envFill(c->aenv, c->aenvp, "ARCHIVER_", an, av, 11);
    char tokens[128];
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmp);
    if (!dtWriteTokens(tokens)) return false;
    const char *sn[] = {"BROKERS", "TOPIC", "GROUP_ID", "DATA_DIR", "SCHEMAS_DIR", "REGISTRY_URL", "LISTEN_PORT",
                        "BATCH_WAIT", "SESSION_TIMEOUT", "GROUP_INSTANCE_ID", "LOG_LEVEL", "TOKENS_FILE"};
    const char *sv[] = {brokers, topic, "store", c->data, v1dir, c->sreg.url, port, "5ms", "3s", "none", "warn", tokens};
    envFill(c->senv, c->senvp, "VARSTORE_", sn, sv, 12);
    return consumersSpawn(c);
}

/* SIGTERM to both; true if both exit 0. */
static bool consumersStop(consumers *c) {
    int a = dtStop(c->archiver, SIGTERM), s = dtStop(c->store, SIGTERM);
    c->archiver = c->store = -1;
    return a == 0 && s == 0;
}

/* The test's consumers, stopped by the teardown even when the test failed half way. */
static consumers cur;

static int consumersTeardown(void **state) {
    if (cur.archiver > 0 || cur.store > 0) consumersStop(&cur);
    if (cur.topic) dtFakeHttpStop(&cur.areg.http), dtFakeHttpStop(&cur.sreg.http);
    memset(&cur, 0, sizeof(cur));
    return 0;
}

/* ---- what the consumers did -------------------------------------------- */

/* The archive, one line per file (tests/tools/archive_versions.py). */
static char *archiveLines(const consumers *c) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/archive_versions.py %s 2>&1", c->root);
    return dtCapture(cmd);
}

typedef struct expect {
    const consumers *c;
    const char *archive; /* archiveLines(), exactly */
    double counted;      /* variable_store_counted_total */
    int min_hits;        /* requests each registry has had at least */
} expect;

static bool reached(void *arg) {
    expect *e = arg;
    if (atomic_load(&e->c->areg.hits) < e->min_hits || atomic_load(&e->c->sreg.hits) < e->min_hits) return false;
    if (dtMetric(&e->c->vs, "variable_store_counted_total") != e->counted) return false;
    char *lines = archiveLines(e->c);
    bool ok = strcmp(lines, e->archive) == 0;
    free(lines);
    return ok;
}

/* Waits for e, and on a timeout shows what there is instead. */
static void waitFor(expect *e) {
    if (dtWaitFor(reached, e, 30000)) return;
    char *lines = archiveLines(e->c);
    print_error("registry hits %d/%d (want %d), counted %g (want %g), archive:\n%s(want:\n%s)\n",
                atomic_load(&e->c->areg.hits), atomic_load(&e->c->sreg.hits), e->min_hits,
                dtMetric(&e->c->vs, "variable_store_counted_total"), e->counted, lines, e->archive);
    free(lines);
    fail();
}

/* ---- the tests ----------------------------------------------------------- */

static int setup(void **state) {
    snprintf(tmp, sizeof(tmp), "/tmp/ds-versions-XXXXXX");
    if (mkdtemp(tmp) == NULL || !makeSchemas() || !dtKafkaStart(&kafka) || !startProducer()) return -1;
    int64_t hour = 3600000, now = (int64_t)time(NULL) * 1000;
    decided_ms = (now - hour) / hour * hour + hour / 2;
    return 0;
}

static int teardown(void **state) {
    if (producer) rd_kafka_destroy(producer);
    dsCodecFree(codec2);
    free(v2text);
    int rc = dtKafkaStop(&kafka);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    free(dtCapture(cmd));
    return rc == 0 ? 0 : -1;
}

static void test_options_are_documented(void **state) {
    const char *progs[] = {"decision-archiver", "variable-store"};
    for (int i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "${BUILD:-build}/bin/%s --help", progs[i]);
        char *out = dtCapture(cmd);
        assert_non_null(strstr(out, "--schemas-dir"));
        assert_non_null(strstr(out, "--registry-url"));
        assert_non_null(strstr(out, "http://127.0.0.1:8080"));
        free(out);
    }
}

/* Registry up: each record archived under its writer's version, a file per
 * run of one version, the record not in the wire format left out; the
 * store counts the rest. */
static void test_old_consumers_learn_a_newer_version(void **state) {
    consumers *c = &cur;
    produce("vers.learn", 0, "111222x11");
    produce("vers.learn", 1, "22");
    assert_true(consumersStart(c, "vers.learn", false));
    expect e = {c,
                "0+0 3 -\n"
                "0+3 3 kiosk-3,kiosk-4,kiosk-5\n"
                "0+7 2 -\n"
                "1+0 2 kiosk-0,kiosk-1\n",
                10, 1};
    waitFor(&e);
    assert_int_equal(dtMetric(&c->vs, "variable_store_rejected_total"), 1); /* the record not in the wire format */
    assert_true(consumersStop(c));
}

/* Registry failing (503, then 404 as an older registry): the records of
 * version 2 wait, and nothing after them in their partition; other
 * partitions go on. Then they land. */
static void test_registry_down_holds_then_lands(void **state) {
    consumers *c = &cur;
    produce("vers.down", 0, "11221");
    produce("vers.down", 1, "11");
    assert_true(consumersStart(c, "vers.down", true));
    /* back-off retries: at least three requests each */
    expect held = {c, "0+0 2 -\n1+0 2 -\n", 4, 3};
    waitFor(&held);
    assert_int_equal(dtMetric(&c->vs, "variable_store_rejected_total"), 0);
    /* the archiver says which partition waits, and why */
    dtResponse r;
    assert_true(dtHttp(&c->ar, "GET", "/readyz", NULL, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 503);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "held");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "reason")), "partition 0 held at offset 2"));
    dtResponseFree(&r);
    assert_int_equal(dtMetric(&c->ar, "archiver_partitions_held"), 1);
    /* A held consumer stops at once on SIGTERM. Restarted, both wait at the
     * same record: the store recorded no offset past it (it counts nothing
     * again: counters start at 0, duplicates stay 0), the archiver committed none. */
    assert_true(consumersStop(c));
    atomic_store(&c->areg.hits, 0);
    atomic_store(&c->sreg.hits, 0);
    atomic_store(&c->areg.mode, REG_OLDER);
    atomic_store(&c->sreg.mode, REG_OLDER);
    assert_true(consumersSpawn(c));
    held.counted = 0, held.min_hits = 2;
    waitFor(&held);
    assert_int_equal(dtMetric(&c->vs, "variable_store_rejected_total"), 0);
    atomic_store(&c->areg.mode, REG_UP);
    atomic_store(&c->sreg.mode, REG_UP);
    expect landed = {c, "0+0 2 -\n0+2 2 kiosk-2,kiosk-3\n0+4 1 -\n1+0 2 -\n", 3, 0};
    waitFor(&landed);
    assert_true(dtWaitReady(&c->ar, 10000)); /* nothing held any more */
    assert_int_equal(dtMetric(&c->ar, "archiver_partitions_held"), 0);
    assert_int_equal(dtMetric(&c->vs, "variable_store_rejected_total"), 0);
    assert_int_equal(dtMetric(&c->vs, "variable_store_duplicates_total"), 0);
    assert_true(consumersStop(c));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_are_documented),
        cmocka_unit_test_teardown(test_old_consumers_learn_a_newer_version, consumersTeardown),
        cmocka_unit_test_teardown(test_registry_down_holds_then_lands, consumersTeardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
