/* test_membership.c - decision-archivers as static members of their group
 * (group.instance.id) reading read_committed, on Apache Kafka. A
 * transactional producer in the test writes decisions in Kafka
 * transactions, a quarter of them aborted, onto the six partitions of
 * decisions, so every partition's offsets have gaps (markers, aborted
 * records). Two archivers share the group, with a session timeout of 30 s.
 * One is killed with SIGKILL under load and started again: it gets its
 * partitions back without a rebalance, long before the session timeout
 * (the pause is measured and printed), and the other's assignment never
 * changes (it receives no assignment). At the end every committed decision
 * is in the archive exactly once, no aborted one is, and both archivers'
 * commit lag is 0: the partition ends are committed past the last
 * transaction markers. Then a third archiver started with the second one's
 * instance id fences it: it joins once more (the fencer may have been
 * itself, after a coordinator outage), fencing the third, which does the
 * same; fenced a second time, it exits 1 saying to give each member its
 * own --group-instance-id. Last, a variable store (a group of its own) killed
 * and restarted consumes again at once rather than after the session
 * timeout its old self would have held the group for (with
 * --group-instance-id none it takes longer than the deadline: checked by
 * hand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "archive_gen.h"
#include "broker.h"
#include "harness.h"
#include "varexpect.h"

#define PARTITIONS 6 /* of decisions, as dtBrokerStart makes it */
#define PER_TXN 6
#define SESSION_MS 30000

static dtBroker broker;
static char dir[] = "/tmp/ds-membership-XXXXXX";
static char archive[300];

typedef struct member {
    pid_t pid;
    dtApi http;
    char own[14][400];
    const char *env[16];
} member;
static member archivers[2], intruder, store;

/* The producer thread: transactions of PER_TXN decisions, every fourth
 * aborted; the ids of each kind kept under mu. A transaction whose commit
 * or abort met a fatal error (Kafka 4.1 answered librdkafka 2.8's EndTxn
 * INVALID_TXN_STATE now and then) has an unknown outcome: its ids are
 * uncertain (archived at most once), and a new producer takes over. */
static struct {
    rd_kafka_t *rk;
    pthread_t thread;
    pthread_mutex_t mu;
    atomic_bool stop;
    bool running;
    json_t *committed, *aborted, *uncertain; /* decision_id -> true */
    json_t *doc;
    int next, txns;
    char why[512];
} load = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void memberInit(member *m, int i, const char *instance) {
    dtBrokerEnv be;
    const char *const *kafka = dtBrokerClientEnv(&broker, "ARCHIVER_", &be);
    int n = 0, port = m->http.port ? m->http.port : dtFreePort();
    memset(m, 0, sizeof(*m));
    m->http.port = port;
    snprintf(m->http.url, sizeof(m->http.url), "http://127.0.0.1:%d", port);
    for (int k = 0; kafka[k] && n < 6; k++) snprintf(m->own[n++], sizeof(m->own[0]), "%s", kafka[k]);
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_GROUP_ID=archivers");
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_GROUP_INSTANCE_ID=%s", instance);
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_ARCHIVE=%s", archive);
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_METRICS_PORT=%d", port);
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_SESSION_TIMEOUT=%d", SESSION_MS);
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_MAX_AGE=500ms");
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_REGISTRY_URL=");
    snprintf(m->own[n++], sizeof(m->own[0]), "ARCHIVER_CLIENT_ID=archiver-%d", i);
    for (int k = 0; k < n; k++) m->env[k] = m->own[k];
    m->env[n] = NULL;
}

static bool memberStart(member *m) {
    m->pid = dtSpawn("decision-archiver", NULL, m->env);
    return m->pid > 0 && dtWaitReady(&m->http, 30000);
}

/* The transactional producer (init_transactions aborts what an earlier one
 * left open); NULL with why filled. */
static rd_kafka_t *loadProducer(char *why, size_t len) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, why, len) ||
        rd_kafka_conf_set(conf, "transactional.id", "test-membership", why, len) ||
        rd_kafka_conf_set(conf, "partitioner", "murmur2_random", why, len) ||
        (rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, len)) == NULL) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 60000);
    if (e) {
        snprintf(why, len, "init_transactions: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* One transaction; false (load.why) when the producer fails. */
static bool produceTxn(bool abort) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(load.rk);
    json_t *ids = json_array();
    for (int i = 0; e == NULL && i < PER_TXN; i++) {
        char id[37], customer[32];
        dtGenId(100000 + load.next, id);
        snprintf(customer, sizeof(customer), "cust-%d", load.next % 48);
        load.next++;
        json_object_set_new(load.doc, "decision_id", json_string(id));
        json_object_set_new(load.doc, "customer_id", json_string(customer));
        size_t len;
        char *wire = dtGenWire(load.doc, dtNowMs(), NULL, &len);
        rd_kafka_resp_err_t err = wire ? rd_kafka_producev(load.rk, RD_KAFKA_V_TOPIC("decisions"),
                                                           RD_KAFKA_V_KEY(customer, strlen(customer)),
                                                           RD_KAFKA_V_VALUE(wire, len),
                                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END)
                                       : RD_KAFKA_RESP_ERR__FAIL;
        if (err) {
            free(wire);
            snprintf(load.why, sizeof(load.why), "produce: %s", rd_kafka_err2str(err));
            json_decref(ids);
            return false;
        }
        json_array_append_new(ids, json_string(id));
    }
    /* Flushed first, the aborted records are surely in the log (an abort
     * purges what is not sent yet): the gaps this test wants. */
    if (e == NULL && abort && rd_kafka_flush(load.rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "flush before the abort timed out");
    if (e == NULL) e = abort ? rd_kafka_abort_transaction(load.rk, 30000) : rd_kafka_commit_transaction(load.rk, 30000);
    if (e && rd_kafka_error_is_fatal(e)) {
        fprintf(stderr, "producer: %s; a new producer takes over\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_destroy(load.rk);
        if ((load.rk = loadProducer(load.why, sizeof(load.why))) == NULL) {
            json_decref(ids);
            return false;
        }
        e = NULL;
        pthread_mutex_lock(&load.mu);
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) json_object_set_new(load.uncertain, json_string_value(id), json_true());
        pthread_mutex_unlock(&load.mu);
        json_array_clear(ids);
    }
    if (e) {
        snprintf(load.why, sizeof(load.why), "transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        json_decref(ids);
        return false;
    }
    size_t i;
    json_t *id;
    pthread_mutex_lock(&load.mu);
    json_array_foreach(ids, i, id) json_object_set_new(abort ? load.aborted : load.committed, json_string_value(id),
                                                       json_true());
    load.txns++;
    pthread_mutex_unlock(&load.mu);
    json_decref(ids);
    return true;
}

static void *loadMain(void *arg) {
    for (int k = 0; !atomic_load(&load.stop); k++) {
        if (!produceTxn(k % 4 == 3)) return NULL;
        usleep(30000); /* pacing: a steady load, not a wait for a condition */
    }
    return NULL;
}

static void loadStart(void) {
    atomic_store(&load.stop, false);
    assert_int_equal(pthread_create(&load.thread, NULL, loadMain, NULL), 0);
    load.running = true;
}

static void loadStop(void) {
    if (!load.running) return;
    atomic_store(&load.stop, true);
    pthread_join(load.thread, NULL);
    load.running = false;
    if (load.why[0]) fail_msg("producer: %s", load.why);
}

static bool txnsReached(void *arg) {
    pthread_mutex_lock(&load.mu);
    bool yes = load.txns >= *(int *)arg;
    pthread_mutex_unlock(&load.mu);
    return yes || load.why[0];
}

/* Waits until the load has committed or aborted n more transactions. */
static bool loadFor(int n) {
    pthread_mutex_lock(&load.mu);
    int want = load.txns + n;
    pthread_mutex_unlock(&load.mu);
    return dtWaitFor(txnsReached, &want, 30000) && !load.why[0];
}

static int setup(void **state) {
    if (mkdtemp(dir) == NULL) return -1;
    snprintf(archive, sizeof(archive), "%s/archive", dir);
    if (!dtBrokerStart(&broker, 1, false, false, NULL)) return -1;
    char err[512];
    if ((load.rk = loadProducer(err, sizeof(err))) == NULL) return fprintf(stderr, "producer: %s\n", err), -1;
    load.committed = json_object(), load.aborted = json_object(), load.uncertain = json_object();
    load.doc = dtFixture("decision.json");
    for (int i = 0; i < 2; i++) {
        char instance[32];
        snprintf(instance, sizeof(instance), "archiver-%d", i);
        memberInit(&archivers[i], i, instance);
        if (!memberStart(&archivers[i])) return -1;
    }
    return 0;
}

static int teardown(void **state) {
    loadStop();
    for (int i = 0; i < 2; i++)
        if (archivers[i].pid > 0) dtStop(archivers[i].pid, SIGTERM);
    if (intruder.pid > 0) dtStop(intruder.pid, SIGTERM);
    if (store.pid > 0) dtStop(store.pid, SIGTERM);
    if (load.rk) rd_kafka_destroy(load.rk);
    json_decref(load.committed), json_decref(load.aborted), json_decref(load.uncertain), json_decref(load.doc);
    bool gone = dtBrokerDestroy(&broker);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return gone && system(cmd) == 0 ? 0 : -1;
}

typedef struct metricIs {
    const member *m;
    const char *name;
    double want;
} metricIs;

static bool metricEquals(void *arg) {
    metricIs *w = arg;
    return dtMetric(&w->m->http, w->name) == w->want;
}

static bool splitBoth(void *arg) {
    double a = dtMetric(&archivers[0].http, "archiver_partitions_assigned");
    double b = dtMetric(&archivers[1].http, "archiver_partitions_assigned");
    return a > 0 && b > 0 && a + b == PARTITIONS;
}

static bool lagZero(void *arg) {
    return dtMetric(&archivers[0].http, "archiver_commit_lag_records") == 0 &&
           dtMetric(&archivers[1].http, "archiver_commit_lag_records") == 0 &&
           dtMetric(&archivers[0].http, "archiver_open_files") == 0 &&
           dtMetric(&archivers[1].http, "archiver_open_files") == 0;
}

/* Every committed decision once in the archive (read by python3-avro),
 * none of the aborted ones. */
static void assertArchiveExact(void) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py %s; echo rc=$?", archive);
    char *out = dtCapture(cmd), *save = NULL;
    json_t *seen = json_object();
    long records = 0, uncertain = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char id[64];
        if (strncmp(line, "rc=", 3) == 0) {
            assert_string_equal(line, "rc=0");
            continue;
        }
        if (sscanf(line, "%63s", id) != 1) fail_msg("read_archive.py: %s", line);
        if (json_object_get(load.aborted, id)) fail_msg("decision %s of an aborted transaction is archived", id);
        if (json_object_get(seen, id)) fail_msg("decision %s is twice in the archive", id);
        json_object_set_new(seen, id, json_true());
        if (json_object_get(load.uncertain, id)) {
            uncertain++;
            continue;
        }
        if (!json_object_get(load.committed, id)) fail_msg("decision %s was never produced", id);
        records++;
    }
    assert_int_equal(records, json_object_size(load.committed));
    fprintf(stderr, "archive: %ld decisions, every committed one once; %zu aborted, none archived; %ld of %zu of "
            "unknown outcome archived once\n", records, json_object_size(load.aborted), uncertain,
            json_object_size(load.uncertain));
    json_decref(seen);
    free(out);
}

/* kill -9 one archiver under load and start it again at once. */
static void test_restart_rejoins_without_rebalance(void **state) {
    member *victim = &archivers[0], *other = &archivers[1];
    assert_true(dtWaitFor(splitBoth, NULL, 60000));
    loadStart();
    assert_true(dtWaitMetric(&victim->http, "archiver_records_total", 1, 30000));
    assert_true(dtWaitMetric(&other->http, "archiver_records_total", 1, 30000));
    double held = dtMetric(&victim->http, "archiver_partitions_assigned");
    double otherAssignments = dtMetric(&other->http, "archiver_assignments_total");
    double otherRecords = dtMetric(&other->http, "archiver_records_total");

    long long t0 = dtNowMs();
    assert_int_equal(dtStop(victim->pid, SIGKILL), 128 + SIGKILL);
    assert_true(memberStart(victim));
    metricIs back = {victim, "archiver_partitions_assigned", held};
    assert_true(dtWaitFor(metricEquals, &back, SESSION_MS / 2));
    long long t1 = dtNowMs();
    assert_true(dtWaitMetric(&victim->http, "archiver_records_total", 1, 30000));
    long long t2 = dtNowMs();
    fprintf(stderr, "restarted archiver: its %.0f partitions back %lld ms after the kill (session timeout %d ms), "
            "archiving again after %lld ms\n", held, t1 - t0, SESSION_MS, t2 - t0);
    assert_true(loadFor(20));
    loadStop();

    /* no rebalance: the other member received no assignment, the restarted one exactly one */
    assert_int_equal(dtMetric(&other->http, "archiver_assignments_total"), otherAssignments);
    assert_int_equal(dtMetric(&victim->http, "archiver_assignments_total"), 1);
    assert_true(dtMetric(&other->http, "archiver_records_total") > otherRecords); /* it never paused */
    if (!dtWaitFor(lagZero, NULL, 30000))
        fail_msg("commit lag %.0f and %.0f, open files %.0f and %.0f", dtMetric(&victim->http, "archiver_commit_lag_records"),
                 dtMetric(&other->http, "archiver_commit_lag_records"), dtMetric(&victim->http, "archiver_open_files"),
                 dtMetric(&other->http, "archiver_open_files"));
    assertArchiveExact();
}

/* Starts the archiver with its stderr in path (the fenced one's message). */
static pid_t spawnLogged(const member *m, const char *path) {
    char bin[300];
    snprintf(bin, sizeof(bin), "%s/bin/decision-archiver", getenv("BUILD") ? getenv("BUILD") : "build");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2);
        for (int i = 0; m->env[i]; i++) putenv((char *)m->env[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Two members with one instance id: the newer one fences the older, which
 * joins once more and, fenced again, exits 1 naming the option. */
static void test_duplicate_instance_id_is_fenced(void **state) {
    member *fenced = &archivers[1];
    char log[400], cmd[500];
    snprintf(log, sizeof(log), "%s/fenced.log", dir);
    assert_int_equal(dtStop(fenced->pid, SIGTERM), 0);
    fenced->pid = spawnLogged(fenced, log);
    assert_true(fenced->pid > 0 && dtWaitReady(&fenced->http, 30000));
    metricIs has = {fenced, "archiver_assignments_total", 1};
    assert_true(dtWaitFor(metricEquals, &has, 30000));
    intruder.http.port = 0;
    memberInit(&intruder, 2, "archiver-1");
    assert_true(memberStart(&intruder));
    assert_int_equal(dtWaitExit(fenced->pid, 30000), 1);
    fenced->pid = -1;
    snprintf(cmd, sizeof(cmd), "grep -c 'own --group-instance-id (ARCHIVER_GROUP_INSTANCE_ID)' %s", log);
    char *out = dtCapture(cmd);
    if (atoi(out) < 1) fail_msg("the fenced archiver did not name the option; its log:\n%s", dtCapture(cmd));
    free(out);
    assert_int_equal(dtStop(intruder.pid, SIGTERM), 0);
    intruder.pid = -1;
}

static bool storeReady(void *arg) {
    dtResponse r;
    bool ok = dtHttp(&store.http, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

static bool storeLagZero(void *arg) {
    return dtMetric(&store.http, "variable_store_consumer_lag") == 0;
}

/* The store, alone in its group with a 30 s session timeout: restarted
 * after kill -9 it is consuming again within seconds (a dynamic member
 * would wait for the coordinator to give up on its old self). */
static void test_store_restart_rejoins_at_once(void **state) {
    dtBrokerEnv be;
    const char *const *kafka = dtBrokerClientEnv(&broker, "VARSTORE_", &be);
    int n = 0;
    store.http.port = dtFreePort();
    snprintf(store.http.url, sizeof(store.http.url), "http://127.0.0.1:%d", store.http.port);
    for (int k = 0; kafka[k] && n < 6; k++) snprintf(store.own[n++], sizeof(store.own[0]), "%s", kafka[k]);
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_TOKENS_FILE=%s/tokens", dir);
    assert_true(dtWriteTokens(store.own[n - 1] + strlen("VARSTORE_TOKENS_FILE=")));
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_DATA_DIR=%s/store", dir);
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_LISTEN_PORT=%d", store.http.port);
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_GROUP_INSTANCE_ID=store-0");
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_SESSION_TIMEOUT=%d", SESSION_MS);
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_REGISTRY_URL=");
    snprintf(store.own[n++], sizeof(store.own[0]), "VARSTORE_BATCH_WAIT=5ms");
    for (int k = 0; k < n; k++) store.env[k] = store.own[k];
    store.env[n] = NULL;
    store.pid = dtSpawn("variable-store", NULL, store.env);
    assert_true(store.pid > 0 && dtWaitFor(storeReady, NULL, 60000));
    loadStart();
    assert_true(dtWaitMetric(&store.http, "variable_store_kafka_messages_total", 1, 30000));
    long long t0 = dtNowMs();
    assert_int_equal(dtStop(store.pid, SIGKILL), 128 + SIGKILL);
    store.pid = dtSpawn("variable-store", NULL, store.env);
    assert_true(store.pid > 0);
    assert_true(dtWaitMetric(&store.http, "variable_store_kafka_messages_total", 1, SESSION_MS / 2));
    long long t1 = dtNowMs();
    fprintf(stderr, "restarted store: consuming again %lld ms after the kill (session timeout %d ms)\n", t1 - t0,
            SESSION_MS);
    loadStop();
    /* read_committed: its position moves past the last transaction marker */
    assert_true(dtWaitFor(storeLagZero, NULL, 30000));
    assert_int_equal(dtStop(store.pid, SIGTERM), 0);
    store.pid = -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_rejoins_without_rebalance),
        cmocka_unit_test(test_duplicate_instance_id_is_fenced),
        cmocka_unit_test(test_store_restart_rejoins_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
