/* test_kafkaerrors.c - what each Kafka client of the project does when a
 * real SASL_SSL cluster refuses it: a wrong password, a CA the brokers'
 * certificate does not chain to, a topic the cluster lacks. For each fault
 * the three daemons (stream processor, archiver, variable store) run side by
 * side with it: each says so (/readyz 503 with the message, which names the
 * option to fix; kafka_problem{kind} 1; kafka_errors_total{kind} counted)
 * and keeps running; decision-replay --target kafka fails at once with the
 * message, exit 1, no checkpoint. Then the fault is fixed as an operator
 * would (the password file rewritten, the right CA given with a restart,
 * the topic created) and nothing the daemons accepted meanwhile is lost:
 * every decision committed while the processor could not deliver reaches
 * the topic, and the consumers read everything the topic holds. One
 * single-node cluster for the whole binary.
 *
 * The processor runs in the mode of STREAM_DELIVERY (default auto: on this
 * cluster, exactly-once). At-least-once reads the decisions while the
 * cluster refuses it and holds them for Kafka; exactly-once cannot read
 * before the cluster takes its transactional producer and tells it the
 * checkpoint (credentials, TLS), so there the decisions wait in the slot,
 * which it made at start, and nothing is read until the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_gen.h"
#include "broker.h"
#include "harness.h"

#define N 20                     /* decisions posted while a fault lasts */
#define M 10                     /* records produced for the consumers */
#define FIRST_MS 1795165200000LL /* 2026-11-20T09:00:00Z: the replay's archive */
#define WAIT_MS 60000

static dtBroker broker;
static dtPg pg;
static dtApi api;
static char tmp[64] = "/tmp/test_kafkaerrors.XXXXXX";
static char password[300], otherca[300], tokens[300], archive[300];

typedef enum { FAULT_AUTH, FAULT_TLS, FAULT_TOPIC } fault;

/* ---- a client of the cluster, for the test's own reading and writing ---- */

/* The cluster's librdkafka settings (DIR/client.properties, SCRAM-SHA-512). */
static rd_kafka_conf_t *clientConf(void) {
    char path[128], line[512], errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(path, sizeof(path), "%s/client.properties", broker.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || eq == NULL) continue;
        *eq = '\0';
        if (rd_kafka_conf_set(conf, line, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            fail_msg("%s: %s", line, errstr);
    }
    fclose(f);
    return conf;
}

static void createTopics(const char *const *names, int n) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, clientConf(), errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_NewTopic_t *topics[8];
    for (int i = 0; i < n; i++) assert_non_null(topics[i] = rd_kafka_NewTopic_new(names[i], 3, 1, errstr, sizeof(errstr)));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    assert_non_null(res);
    size_t cnt;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++)
        if (rd_kafka_topic_result_error(tr[i])) fail_msg("%s: %s", rd_kafka_topic_result_name(tr[i]),
                                                         rd_kafka_topic_result_error_string(tr[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(topics, (size_t)n);
    rd_kafka_destroy(rk);
}

/* Produces M valid decisions (the wire format) to topic, acknowledged. */
static void produce(const char *topic) {
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, clientConf(), errstr, sizeof(errstr));
    assert_non_null(rk);
    json_t *doc = dtFixture("decision.json");
    for (int i = 0; i < M; i++) {
        char id[37];
        size_t len;
        dtUuid(id);
        json_object_set_new(doc, "decision_id", json_string(id));
        char *wire = dtGenWire(doc, (int64_t)time(NULL) * 1000 - 60000, NULL, &len);
        assert_non_null(wire);
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("cust-42", 7),
                                           RD_KAFKA_V_VALUE(wire, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        free(wire);
    }
    json_decref(doc);
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* The decision_id headers of every record of topic, one a line (malloc'd),
 * and how many records it holds, as consumers read it (read_committed,
 * librdkafka's default: a transactional producer's commit markers take
 * offsets, not records). */
static char *topicIds(const char *topic, long long *records) {
    char errstr[512];
    rd_kafka_conf_t *conf = clientConf();
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-verify", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int parts = md->topics[0].partition_cnt, eof = 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    size_t cap = 4096, len = 0;
    char *ids = calloc(1, cap);
    *records = 0;
    for (time_t end = time(NULL) + 30; eof < parts && time(NULL) < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL) continue;
        const void *v;
        size_t vlen;
        rd_kafka_headers_t *h = NULL;
        if (!m->err) (*records)++;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eof++;
        else if (!m->err && rd_kafka_message_headers(m, &h) == 0 &&
                 rd_kafka_header_get_last(h, "decision_id", &v, &vlen) == 0 && vlen < 64) {
            if (len + vlen + 2 > cap) ids = realloc(ids, cap *= 2);
            memcpy(ids + len, v, vlen);
            len += vlen;
            ids[len++] = '\n';
            ids[len] = '\0';
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eof, parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ids;
}

/* ---- the programs ------------------------------------------------------------ */

typedef struct program {
    pid_t pid;
    dtApi http;      /* its /readyz and /metrics (only the url is used) */
    char env[10][400];
} program;

/* The programs running, so that a failed test leaves none behind. */
static pid_t running[8];

static void track(pid_t pid, pid_t was) {
    for (int i = 0; i < 8; i++)
        if (running[i] == was) {
            running[i] = pid;
            return;
        }
}

static int killRunning(void **state) {
    for (int i = 0; i < 8; i++)
        if (running[i] > 0) dtStop(running[i], SIGKILL), running[i] = 0;
    return 0;
}

/* The variable that brings the fault into a program whose options have
 * prefix; topic is the missing one. */
static void faultEnv(fault f, const char *prefix, const char *topic, char *out, size_t len) {
    if (f == FAULT_AUTH) snprintf(out, len, "%sSASL_PASSWORD_FILE=%s", prefix, password);
    else if (f == FAULT_TLS) snprintf(out, len, "%sSSL_CA_LOCATION=%s", prefix, otherca);
    else snprintf(out, len, "%sTOPIC=%s", prefix, topic);
}

/* Starts a daemon against the cluster with its own settings, the fault's
 * variable last (when f >= 0) so that it wins. */
static void start(program *p, const char *name, const char *prefix, const char *const *own, int f, const char *topic) {
    dtBrokerEnv be;
    const char *env[32];
    int n = 0;
    const char *const *client = dtBrokerClientEnv(&broker, prefix, &be);
    for (int i = 0; client[i]; i++) env[n++] = client[i];
    for (int i = 0; own[i]; i++) env[n++] = own[i];
    if (f >= 0) faultEnv((fault)f, prefix, topic, p->env[9], sizeof(p->env[9])), env[n++] = p->env[9];
    env[n] = NULL;
    assert_true((p->pid = dtSpawn(name, NULL, env)) > 0);
    track(p->pid, 0);
}

/* The processor, its own slot; the decisions topic unless the fault says. */
static void startProcessor(program *p, const char *slot, int f, const char *topic) {
    int port = dtFreePort();
    snprintf(p->http.url, sizeof(p->http.url), "http://127.0.0.1:%d", port);
    snprintf(p->env[0], sizeof(p->env[0]), "STREAM_DSN=%s", pg.conninfo);
    snprintf(p->env[1], sizeof(p->env[1]), "STREAM_SLOT=%s", slot);
    snprintf(p->env[2], sizeof(p->env[2]), "STREAM_METRICS_PORT=%d", port);
    snprintf(p->env[3], sizeof(p->env[3]), "STREAM_REGISTRY_URL=%s", api.url);
    const char *own[] = {p->env[0], p->env[1], p->env[2], p->env[3], "STREAM_LOG_LEVEL=warn",
                         "STREAM_SHUTDOWN_TIMEOUT=1s", "STREAM_STATUS_INTERVAL=100ms", NULL};
    start(p, "stream-processor", "STREAM_", own, f, topic);
}

static void startArchiver(program *p, const char *group, int f, const char *topic) {
    int port = dtFreePort();
    snprintf(p->http.url, sizeof(p->http.url), "http://127.0.0.1:%d", port);
    snprintf(p->env[0], sizeof(p->env[0]), "ARCHIVER_GROUP_ID=%s", group);
    snprintf(p->env[1], sizeof(p->env[1]), "ARCHIVER_ARCHIVE=%s/%s", tmp, group);
    snprintf(p->env[2], sizeof(p->env[2]), "ARCHIVER_METRICS_PORT=%d", port);
    snprintf(p->env[3], sizeof(p->env[3]), "ARCHIVER_REGISTRY_URL=%s", api.url);
    const char *own[] = {p->env[0], p->env[1], p->env[2], p->env[3], "ARCHIVER_LOG_LEVEL=warn",
                         "ARCHIVER_MAX_AGE=200ms", NULL};
    start(p, "decision-archiver", "ARCHIVER_", own, f, topic);
}

static void startVarstore(program *p, const char *group, int f, const char *topic) {
    int port = dtFreePort();
    snprintf(p->http.url, sizeof(p->http.url), "http://127.0.0.1:%d", port);
    snprintf(p->env[0], sizeof(p->env[0]), "VARSTORE_GROUP_ID=%s", group);
    snprintf(p->env[1], sizeof(p->env[1]), "VARSTORE_DATA_DIR=%s/%s", tmp, group);
    snprintf(p->env[2], sizeof(p->env[2]), "VARSTORE_LISTEN_PORT=%d", port);
    snprintf(p->env[3], sizeof(p->env[3]), "VARSTORE_REGISTRY_URL=%s", api.url);
    snprintf(p->env[4], sizeof(p->env[4]), "VARSTORE_TOKENS_FILE=%s", tokens);
    const char *own[] = {p->env[0], p->env[1], p->env[2], p->env[3], p->env[4], "VARSTORE_LOG_LEVEL=warn",
                         "VARSTORE_MAP_SIZE=64MiB", NULL};
    start(p, "variable-store", "VARSTORE_", own, f, topic);
}

static void stop(program *p) {
    pid_t pid = p->pid;
    track(0, pid);
    p->pid = -1;
    assert_int_equal(dtStop(pid, SIGTERM), 0);
}

typedef struct readyz {
    const program *p;
    int status;         /* wanted */
    const char *needle; /* in the body */
    char body[2048];    /* the last one seen */
} readyz;

/* The body with JSON's \" as ", so that a needle reads as the log does. */
static void unescape(char *s) {
    char *o = s;
    for (; *s; s++)
        if (!(s[0] == '\\' && s[1] == '"')) *o++ = *s;
    *o = '\0';
}

static bool readyzIs(void *arg) {
    readyz *r = arg;
    dtResponse res;
    bool ok = dtHttp(&r->p->http, "GET", "/readyz", NULL, NULL, NULL, 0, &res);
    if (ok) snprintf(r->body, sizeof(r->body), "%s", res.body ? res.body : "");
    unescape(r->body);
    ok = ok && res.status == r->status && (r->needle == NULL || strstr(r->body, r->needle) != NULL);
    dtResponseFree(&res);
    return ok;
}

static void assertReadyz(const program *p, int status, const char *needle) {
    readyz r = {p, status, needle, ""};
    if (!dtWaitFor(readyzIs, &r, WAIT_MS))
        fail_msg("%s /readyz: wanted %d with \"%s\", last body: %s", p->http.url, status, needle ? needle : "", r.body);
    fprintf(stderr, "%s /readyz %d: %.300s\n", p->http.url, status, r.body);
}

/* /readyz says the problem, and its metrics count and show it. */
static void assertSaysSo(const program *p, const char *kind, const char *needle) {
    char name[64];
    assertReadyz(p, 503, needle);
    snprintf(name, sizeof(name), "kafka_problem{kind=\"%s\"}", kind);
    assert_true(dtWaitMetric(&p->http, name, 1, WAIT_MS));
    snprintf(name, sizeof(name), "kafka_errors_total{kind=\"%s\"}", kind);
    assert_true(dtMetric(&p->http, name) >= 1);
}

static void assertCleared(const program *p, const char *kind) {
    char name[64];
    assertReadyz(p, 200, NULL);
    snprintf(name, sizeof(name), "kafka_problem{kind=\"%s\"}", kind);
    assert_true(dtMetric(&p->http, name) == 0);
}

static bool exactlyOnce(void) {
    const char *d = getenv("STREAM_DELIVERY");
    return d == NULL || strcmp(d, "at-least-once") != 0;
}

/* While the cluster refuses the processor's credentials or handshake:
 * at-least-once reads the N decisions posted and holds them for Kafka;
 * exactly-once reads nothing (they wait in the slot). */
static void assertHeldWhileRefused(const program *sp) {
    if (!exactlyOnce()) {
        assert_true(dtWaitMetric(&sp->http, "stream_events_total", N, WAIT_MS));
        return;
    }
    assert_true(dtMetric(&sp->http, "kafka_transactions_committed_total") == 0);
    assert_true(dtMetric(&sp->http, "stream_events_total") == 0);
}

/* Posts N decisions; their ids go into ids. */
static void post(char ids[N][37]) {
    json_t *doc = dtFixture("decision.json");
    for (int i = 0; i < N; i++) {
        dtUuid(ids[i]);
        json_object_set_new(doc, "decision_id", json_string(ids[i]));
        char *body = json_dumps(doc, JSON_COMPACT);
        dtResponse r;
        assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
        assert_int_equal(r.status, 201);
        dtResponseFree(&r);
        free(body);
    }
    json_decref(doc);
}

typedef struct onTopic {
    const char *topic;
    char (*ids)[37];
    long long records; /* on the topic at the last read */
    char missing[37];  /* the first decision missing then */
} onTopic;

static bool allOnTopic(void *arg) {
    onTopic *o = arg;
    char *on = topicIds(o->topic, &o->records);
    o->missing[0] = '\0';
    for (int i = 0; i < N && !o->missing[0]; i++)
        if (strstr(on, o->ids[i]) == NULL) snprintf(o->missing, sizeof(o->missing), "%s", o->ids[i]);
    free(on);
    return o->missing[0] == '\0';
}

/* Every decision of ids is on topic (exactly-once: once its transaction is
 * committed, which may follow the delivery reports); returns the records
 * the topic then holds. */
static long long assertOnTopic(const char *topic, char ids[N][37]) {
    onTopic o = {topic, ids, 0, ""};
    if (!dtWaitFor(allOnTopic, &o, WAIT_MS)) fail_msg("decision %s is not on %s", o.missing, topic);
    return o.records;
}

/* decision-replay --target kafka with the fault: exit 1 within a few
 * seconds, saying what the daemons said, and no checkpoint. */
static void assertReplayFails(fault f, const char *topic, const char *needle) {
    dtBrokerEnv be;
    const char *const *client = dtBrokerClientEnv(&broker, "REPLAY_", &be);
    char cmd[4096], fenv[400], cp[400];
    int n = snprintf(cmd, sizeof(cmd), "env");
    for (int i = 0; client[i]; i++) n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", client[i]);
    faultEnv(f, "REPLAY_", topic, fenv, sizeof(fenv));
    snprintf(cp, sizeof(cp), "%s/checkpoint-%d", tmp, (int)f);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n,
             " '%s' ${BUILD:-build}/bin/decision-replay --archive %s --from 2026-11-20T00:00:00Z"
             " --to 2026-11-21T00:00:00Z --target kafka --checkpoint %s --log-level warn 2>&1; echo rc=$?",
             fenv, archive, cp);
    time_t t0 = time(NULL);
    char *out = dtCapture(cmd);
    long secs = (long)(time(NULL) - t0);
    fprintf(stderr, "decision-replay (%ld s): %s", secs, out);
    assert_non_null(strstr(out, "rc=1"));
    assert_non_null(strstr(out, needle));
    assert_true(secs < 20);
    assert_int_not_equal(access(cp, F_OK), 0);
    free(out);
}

/* ---- the faults ------------------------------------------------------------ */

static void writePassword(const char *pw) {
    FILE *f = fopen(password, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", pw);
    fclose(f);
}

/* A wrong password: fixed by writing the right one into the same file,
 * which the daemons read again while authentication fails. */
static void test_wrong_password(void **state) {
    program sp, ar, vs;
    char ids[N][37];
    const char *needle = "authentication failed for user \"decisions\"";
    writePassword("not-the-password");
    startProcessor(&sp, "err_auth", FAULT_AUTH, NULL);
    startArchiver(&ar, "ar-auth", FAULT_AUTH, NULL);
    startVarstore(&vs, "vs-auth", FAULT_AUTH, NULL);
    assertReplayFails(FAULT_AUTH, NULL, needle);
    assertSaysSo(&sp, "auth", needle);
    assertSaysSo(&ar, "auth", needle);
    assertSaysSo(&vs, "auth", needle);
    post(ids);
    assertHeldWhileRefused(&sp);
    produce("decisions");

    char path[512];
    snprintf(path, sizeof(path), "cp %s/sasl-password %s", broker.dir, password);
    assert_int_equal(system(path), 0);
    assert_true(dtWaitMetric(&sp.http, "kafka_delivered_total", N, WAIT_MS));
    long long size = assertOnTopic("decisions", ids);
    assert_true(dtWaitMetric(&ar.http, "archiver_records_total", (double)size, WAIT_MS));
    assert_true(dtWaitMetric(&vs.http, "variable_store_kafka_messages_total", (double)size, WAIT_MS));
    assertCleared(&sp, "auth");
    assertCleared(&ar, "auth");
    assertCleared(&vs, "auth");
    stop(&sp), stop(&ar), stop(&vs);
}

/* A CA that did not sign the brokers' certificate: fixed by a restart with
 * the right one; the processor's slot still holds what was not delivered. */
static void test_unknown_ca(void **state) {
    program sp, ar, vs;
    char ids[N][37];
    const char *needle = "is not trusted by --ssl-ca-location";
    startProcessor(&sp, "err_tls", FAULT_TLS, NULL);
    startArchiver(&ar, "ar-tls", FAULT_TLS, NULL);
    startVarstore(&vs, "vs-tls", FAULT_TLS, NULL);
    assertReplayFails(FAULT_TLS, NULL, needle);
    assertSaysSo(&sp, "tls", needle);
    assertSaysSo(&ar, "tls", needle);
    assertSaysSo(&vs, "tls", needle);
    post(ids);
    assertHeldWhileRefused(&sp);
    produce("decisions");

    stop(&sp), stop(&ar), stop(&vs);
    startProcessor(&sp, "err_tls", -1, NULL);
    startArchiver(&ar, "ar-tls", -1, NULL);
    startVarstore(&vs, "vs-tls", -1, NULL);
    assert_true(dtWaitMetric(&sp.http, "kafka_delivered_total", N, WAIT_MS));
    long long size = assertOnTopic("decisions", ids);
    assert_true(dtWaitMetric(&ar.http, "archiver_records_total", (double)size, WAIT_MS));
    assert_true(dtWaitMetric(&vs.http, "variable_store_kafka_messages_total", (double)size, WAIT_MS));
    assertReadyz(&sp, 200, NULL), assertReadyz(&ar, 200, NULL), assertReadyz(&vs, 200, NULL);
    stop(&sp), stop(&ar), stop(&vs);
}

/* Topics the cluster lacks (it creates none): fixed by creating them, which
 * the running daemons notice by themselves. */
static void test_missing_topic(void **state) {
    program sp, ar, vs;
    char ids[N][37];
    startProcessor(&sp, "err_topic", FAULT_TOPIC, "absent-sp");
    startArchiver(&ar, "ar-topic", FAULT_TOPIC, "absent-ar");
    startVarstore(&vs, "vs-topic", FAULT_TOPIC, "absent-vs");
    assertReplayFails(FAULT_TOPIC, "absent-rp", "topic \"absent-rp\" does not exist");
    assertSaysSo(&sp, "topic", "topic \"absent-sp\" does not exist");
    assertSaysSo(&ar, "topic", "topic \"absent-ar\" does not exist");
    assertSaysSo(&vs, "topic", "topic \"absent-vs\" does not exist");
    post(ids);
    assert_true(dtWaitMetric(&sp.http, "stream_events_total", N, WAIT_MS));

    const char *topics[] = {"absent-sp", "absent-ar", "absent-vs"};
    createTopics(topics, 3);
    produce("absent-ar");
    produce("absent-vs");
    assert_true(dtWaitMetric(&sp.http, "kafka_delivered_total", N, WAIT_MS));
    assertOnTopic("absent-sp", ids);
    assert_true(dtWaitMetric(&ar.http, "archiver_records_total", M, WAIT_MS));
    assert_true(dtWaitMetric(&vs.http, "variable_store_kafka_messages_total", M, WAIT_MS));
    assertCleared(&sp, "topic");
    assertCleared(&ar, "topic");
    assertCleared(&vs, "topic");
    stop(&sp), stop(&ar), stop(&vs);
}

/* ---- setup ----------------------------------------------------------------- */

static int setup(void **state) {
    if (mkdtemp(tmp) == NULL) return -1;
    snprintf(password, sizeof(password), "%s/password", tmp);
    snprintf(otherca, sizeof(otherca), "%s/other-ca.pem", tmp);
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmp);
    snprintf(archive, sizeof(archive), "%s/archive", tmp);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/other-ca.key -out %s "
             "-subj /CN=not-the-brokers-ca -days 1 2>/dev/null && echo made",
             tmp, otherca);
    char *out = dtCapture(cmd);
    bool made = strstr(out, "made") != NULL;
    free(out);
    return made && dtWriteTokens(tokens) && dtArchiveGenerate(archive, 20, FIRST_MS, 60000, NULL) &&
                   dtBrokerStart(&broker, 1, true, true, NULL) && dtPgStart(&pg) && dtApiStart(&api, &pg, NULL)
               ? 0
               : -1;
}

static int teardown(void **state) {
    bool ok = dtBrokerDestroy(&broker);
    if (api.pid > 0) dtApiStop(&api);
    dtPgDestroy(&pg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    return system(cmd) == 0 && ok ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_wrong_password, killRunning),
        cmocka_unit_test_teardown(test_unknown_ca, killRunning),
        cmocka_unit_test_teardown(test_missing_topic, killRunning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
