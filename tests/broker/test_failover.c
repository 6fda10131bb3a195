/* test_failover.c - the stream processor on a 3-node Apache Kafka cluster
 * (replication factor 3, min.insync.replicas=2, acks=all) while nodes fail
 * under a steady load of decisions posted through the API: a partition
 * leader killed with SIGKILL (the processor as configured by default), then
 * two of the three nodes stopped together.
 *
 * What is checked is read from outside the processor. The topic is read
 * back by a consumer of the test's own; it stamps every record with the
 * broker's append time (message.timestamp.type=LogAppendTime, set before
 * the first record). PostgreSQL tells each decision's commit position (a
 * second slot, decoded with test_decoding) and, sampled every 50 ms, where
 * the processor's slot is confirmed. The slot may be confirmed past a
 * commit only once the cluster holds that decision: for every sample, each
 * decision committed at or before the confirmed position has a surviving
 * record appended no later than the sample. A record the cluster lost (a
 * leader killed before the followers had it) and the processor sent again
 * later fails that check; one never sent again is missing. Every decision
 * the API acknowledged must be on the topic. The processor runs in the
 * mode of STREAM_DELIVERY (default auto: exactly-once on this cluster); the
 * test's consumer reads read_committed, so in exactly-once each decision
 * must be there once (an aborted transaction's records are not read), in
 * at-least-once re-sends from the slot after a failure are counted only.
 *
 * The measured figures (resume after the kill, stall and recovery) are
 * printed as "failover: ..." lines. In the two-node outage the processor's
 * message timeout is 5 s, shorter than the outage, so its deliveries fail
 * and it must go back to its slot rather than past what failed (exactly-
 * once: abort its transaction, which waits for the transaction coordinator,
 * and stream it again). The stall is the slot held while a second of
 * decisions is committed: exactly-once pauses reading while a transaction
 * waits for its commit or abort, so little is ever in flight there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "broker.h"
#include "harness.h"
#include "load.h"

#define TOPIC "decisions"
#define PARTITIONS 6
#define SLOT "decisions_stream"
#define CHECK_SLOT "failover_check"
/* 3 threads posting every 20 ms: about 150 decisions/s. */
#define LOADERS 3
#define LOAD_INTERVAL_MS 20
#define CUSTOMERS 60
/* Generous: measured values are printed, these only catch a hang. */
#define RESUME_BOUND_MS 30000
/* The processor's message timeout in the two-node outage, which lasts
 * longer (its default is 5 minutes). */
#define MESSAGE_TIMEOUT "5s"

static dtBroker broker;
static dtPg pg;
static dtApi api;
static dtStream proc;
static rd_kafka_t *admin; /* metadata and topic configuration */

static bool exactlyOnce(void) {
    const char *d = getenv("STREAM_DELIVERY");
    return d == NULL || strcmp(d, "at-least-once") != 0;
}

static long long nowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the brokers' clock for append times */
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t pgLsn(const char *sql) {
    return dtPgLsn(&pg, sql);
}

static uint64_t slotLsn(void) {
    return pgLsn("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" SLOT "'");
}

static uint64_t walLsn(void) {
    return pgLsn("SELECT pg_current_wal_lsn()");
}

static bool slotReached(void *arg) {
    return slotLsn() >= *(uint64_t *)arg;
}

/* ---- the cluster seen by the test's own client ----------------------------- */

static rd_kafka_conf_t *clientConf(void) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fprintf(stderr, "bootstrap.servers: %s\n", errstr);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)); /* nodes go down on purpose */
    return conf;
}

/* The result event of an admin request on q, or NULL (printed). */
static rd_kafka_event_t *adminResult(rd_kafka_queue_t *q, const char *what) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL) fprintf(stderr, "%s: no answer within 30 s\n", what);
    else if (rd_kafka_event_error(ev)) fprintf(stderr, "%s: %s\n", what, rd_kafka_event_error_string(ev));
    else return ev;
    if (ev) rd_kafka_event_destroy(ev);
    return NULL;
}

/* The value of the topic's setting name as the cluster describes it
 * (malloc'd), or NULL. */
static char *topicSetting(const char *name) {
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, TOPIC);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_DescribeConfigs(admin, &res, 1, NULL, q);
    rd_kafka_event_t *ev = adminResult(q, "DescribeConfigs");
    char *value = NULL;
    size_t nres = 0, nent = 0;
    const rd_kafka_ConfigResource_t **rs =
        ev ? rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres) : NULL;
    const rd_kafka_ConfigEntry_t **es = nres == 1 ? rd_kafka_ConfigResource_configs(rs[0], &nent) : NULL;
    for (size_t i = 0; i < nent && value == NULL; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(es[i]), name) == 0 && rd_kafka_ConfigEntry_value(es[i]))
            value = strdup(rd_kafka_ConfigEntry_value(es[i]));
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return value;
}

static bool setTopicSetting(const char *name, const char *value) {
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, TOPIC);
    rd_kafka_error_t *err = rd_kafka_ConfigResource_add_incremental_config(res, name, RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                                                                          value);
    bool ok = err == NULL;
    if (err) rd_kafka_error_destroy(err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_IncrementalAlterConfigs(admin, &res, 1, NULL, q);
    rd_kafka_event_t *ev = adminResult(q, "IncrementalAlterConfigs");
    size_t n = 0;
    const rd_kafka_ConfigResource_t **rs =
        ev ? rd_kafka_IncrementalAlterConfigs_result_resources(rd_kafka_event_IncrementalAlterConfigs_result(ev), &n)
           : NULL;
    ok = ok && n == 1 && rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return ok;
}

/* Replicas and in-sync replicas of every partition of the topic, as a
 * metadata request sees them now; false if there is no answer. */
static bool topicReplicas(int replicas[PARTITIONS], int isr[PARTITIONS]) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(admin, TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    bool ok = rd_kafka_metadata(admin, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
              md->topics[0].partition_cnt == PARTITIONS;
    for (int i = 0; ok && i < PARTITIONS; i++) {
        const rd_kafka_metadata_partition_t *p = &md->topics[0].partitions[i];
        replicas[p->id] = p->leader > 0 ? p->replica_cnt : 0;
        isr[p->id] = p->leader > 0 ? p->isr_cnt : 0;
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return ok;
}

static bool isrComplete(void *arg) {
    int replicas[PARTITIONS], isr[PARTITIONS];
    if (!topicReplicas(replicas, isr)) return false;
    for (int i = 0; i < PARTITIONS; i++)
        if (isr[i] != 3) return false;
    return true;
}

/* ---- the topic read back ----------------------------------------------------- */

typedef struct rec {
    char id[37];
    long long append_ms; /* the earliest copy's */
    int partition, copies;
} rec;

static int recById(const void *a, const void *b) {
    return strcmp(((const rec *)a)->id, ((const rec *)b)->id);
}

typedef struct topicRead {
    rec *recs; /* sorted by id, one per decision */
    size_t n;
    long records, not_append_time;
} topicRead;

/* Every record of the topic, from the beginning to the end of each
 * partition, merged by decision_id header. */
static bool readTopic(topicRead *out) {
    char errstr[256];
    rd_kafka_conf_t *conf = clientConf();
    rd_kafka_conf_set(conf, "group.id", "failover-check", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c == NULL) return fprintf(stderr, "consumer: %s\n", errstr), false;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int i = 0; i < PARTITIONS; i++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    bool eof[PARTITIONS] = {false};
    int eofs = 0;
    long long deadline = nowMs() + 60000;
    while (eofs < PARTITIONS && nowMs() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!eof[m->partition]) eofs++;
            eof[m->partition] = true;
        } else if (m->err) {
            fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
        } else {
            rd_kafka_timestamp_type_t tstype;
            long long ts = rd_kafka_message_timestamp(m, &tstype);
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t len = 0;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                rd_kafka_header_get_last(h, "decision_id", &v, &len);
            if (out->n == cap) out->recs = realloc(out->recs, (cap = cap ? cap * 2 : 4096) * sizeof(rec));
            rec *r = &out->recs[out->n++];
            snprintf(r->id, sizeof(r->id), "%.*s", (int)(v ? len : 0), v ? (const char *)v : "");
            r->append_ms = ts;
            r->partition = m->partition;
            r->copies = 1;
            out->records++;
            if (tstype != RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) out->not_append_time++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    if (eofs < PARTITIONS) fprintf(stderr, "consumer: only %d of %d partitions read to the end\n", eofs, PARTITIONS);
    qsort(out->recs, out->n, sizeof(rec), recById);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (w > 0 && strcmp(out->recs[w - 1].id, out->recs[i].id) == 0) {
            rec *k = &out->recs[w - 1];
            k->copies++;
            if (out->recs[i].append_ms < k->append_ms) k->append_ms = out->recs[i].append_ms;
        } else {
            out->recs[w++] = out->recs[i];
        }
    }
    out->n = w;
    return eofs == PARTITIONS;
}

static const rec *findRec(const topicRead *t, const char *id) {
    rec key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return bsearch(&key, t->recs, t->n, sizeof(rec), recById);
}

/* ---- PostgreSQL: commit positions and the sampled slot --------------------- */

typedef dtCommit commit; /* lsn: just past its commit record, as pgoutput says */

static int commitByLsn(const void *a, const void *b) {
    uint64_t x = ((const commit *)a)->lsn, y = ((const commit *)b)->lsn;
    return x < y ? -1 : x > y;
}

/* The decisions committed since the last call, with their transactions'
 * end positions (test_decoding reports a COMMIT at the transaction's end
 * LSN), sorted by position. Consumes the check slot. */
static commit *takeCommits(size_t *n) {
    commit *out = dtPgTakeCommits(&pg, CHECK_SLOT, n);
    if (out) qsort(out, *n, sizeof(*out), commitByLsn);
    return out;
}

typedef struct sample {
    long long at_ms; /* after the answer: the slot was confirmed there by then */
    uint64_t confirmed;
} sample;

typedef struct sampler {
    pthread_t thread;
    atomic_bool stop;
    sample *s;
    size_t n, cap;
} sampler;

static void *samplerRun(void *arg) {
    sampler *sm = arg;
    PGconn *c = PQconnectdb(pg.conninfo);
    while (!atomic_load(&sm->stop)) {
        PGresult *r = PQexec(c, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" SLOT "'");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            if (sm->n == sm->cap) sm->s = realloc(sm->s, (sm->cap = sm->cap ? sm->cap * 2 : 1024) * sizeof(sample));
            sm->s[sm->n++] = (sample){nowMs(), dtLsnParse(PQgetvalue(r, 0, 0))};
        }
        PQclear(r);
        struct timespec ts = {0, 50 * 1000 * 1000}; /* the sampling period, not a wait */
        nanosleep(&ts, NULL);
    }
    PQfinish(c);
    return NULL;
}

static void samplerStart(sampler *sm) {
    memset(sm, 0, sizeof(*sm));
    assert_int_equal(pthread_create(&sm->thread, NULL, samplerRun, sm), 0);
}

static void samplerStop(sampler *sm) {
    atomic_store(&sm->stop, true);
    pthread_join(sm->thread, NULL);
}

/* ---- the checks both cases share ------------------------------------------- */

/* Every decision the API acknowledged is on the topic (those there more
 * than once are counted), every record stamped with its append time. */
static void assertAllOnTopic(const char *name, dtLoad *load, const topicRead *t) {
    size_t n;
    const dtLoadPost *posts = dtLoadPosts(load, &n);
    char why[128];
    long failed = dtLoadFailed(load, why, sizeof(why));
    if (failed) fprintf(stderr, "%s: %ld posts not acknowledged, first %s\n", name, failed, why);
    assert_int_equal(failed, 0); /* Kafka's failures never reach the API */
    size_t missing = 0, doubled = 0;
    for (size_t i = 0; i < n; i++) {
        const rec *r = findRec(t, posts[i].id);
        if (r == NULL && missing++ < 5) fprintf(stderr, "%s: %s acknowledged by the API, not on the topic\n", name, posts[i].id);
        if (r && r->copies > 1) doubled++;
    }
    fprintf(stderr, "failover: %s: %zu decisions acknowledged by the API, %zu missing on the topic, %zu there more "
            "than once (%s)\n", name, n, missing, doubled, exactlyOnce() ? "exactly-once" : "at-least-once");
    assert_true(n > 0);
    assert_int_equal(missing, 0);
    if (exactlyOnce()) {
        assert_int_equal(doubled, 0);
        assert_true(dtMetric(&proc.http, "kafka_transactions_committed_total") > 0); /* not fallen back */
    }
    assert_int_equal(t->not_append_time, 0);
}

/* For every sample, each decision committed at or before the slot's
 * confirmed position was already appended (its earliest surviving copy).
 * commits is sorted by position. */
static void assertSlotBehindCluster(const char *name, const commit *commits, size_t nc, const topicRead *t,
                                   const sampler *sm) {
    long long *prefix = malloc((nc + 1) * sizeof(*prefix)); /* latest append among commits[0..i] */
    long long latest = 0;
    size_t unknown = 0;
    for (size_t i = 0; i < nc; i++) {
        const rec *r = findRec(t, commits[i].id);
        if (r == NULL) unknown++;
        long long at = r ? r->append_ms : INT64_MAX; /* missing: never appended */
        if (at > latest) latest = at;
        prefix[i] = latest;
    }
    size_t checked = 0, violations = 0;
    long long min_margin = INT64_MAX;
    for (size_t s = 0; s < sm->n; s++) {
        size_t lo = 0, hi = nc; /* commits with lsn <= confirmed: [0, lo) */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (commits[mid].lsn <= sm->s[s].confirmed) lo = mid + 1;
            else hi = mid;
        }
        if (lo == 0) continue;
        checked++;
        long long margin = sm->s[s].at_ms - prefix[lo - 1];
        if (margin < min_margin) min_margin = margin;
        if (margin < 0 && violations++ < 5)
            fprintf(stderr, "%s: slot confirmed %llX at %lld ms, past a decision the cluster appended %lld ms later\n",
                    name, (unsigned long long)sm->s[s].confirmed, sm->s[s].at_ms, -margin);
    }
    fprintf(stderr, "failover: %s: %zu commits, %zu slot samples checked against append times, %zu violations\n", name,
            nc, checked, violations);
    free(prefix);
    assert_int_equal(unknown, 0);
    assert_true(checked > 0);
    assert_int_equal(violations, 0);
}

/* The first append at or after since_ms on partition p (0: none). */
static long long firstAppendAfter(const topicRead *t, int p, long long since_ms) {
    long long first = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->recs[i].partition == p && t->recs[i].append_ms >= since_ms &&
            (first == 0 || t->recs[i].append_ms < first))
            first = t->recs[i].append_ms;
    return first;
}

static dtLoad *startLoad(void) {
    json_t *doc = dtFixture("decision.json");
    dtLoad *load = dtLoadStart(&api, LOADERS, LOAD_INTERVAL_MS, doc, 0);
    json_decref(doc);
    assert_non_null(load);
    dtLoadSetCustomers(load, CUSTOMERS);
    return load;
}

static bool procAlive(void) {
    return waitpid(proc.pid, NULL, WNOHANG) == 0;
}

typedef struct restart {
    pthread_t thread;
    int node;
    bool ok;
} restart;

static void *restartRun(void *arg) {
    restart *r = arg;
    r->ok = dtBrokerRestart(&broker, r->node);
    return NULL;
}

static void restartStart(restart *r, int node) {
    r->node = node;
    r->ok = false;
    assert_int_equal(pthread_create(&r->thread, NULL, restartRun, r), 0);
}

/* ---- setup ----------------------------------------------------------------- */

/* The stream processor on the cluster, its status every 100 ms (the slot
 * follows acknowledgements closely); message_timeout NULL: its default. */
static bool startProc(const char *message_timeout) {
    dtBrokerEnv e;
    char timeout[64];
    snprintf(timeout, sizeof(timeout), "STREAM_MESSAGE_TIMEOUT=%s", message_timeout ? message_timeout : "");
    const char *const own[] = {"STREAM_STATUS_INTERVAL=100ms", message_timeout ? timeout : NULL, NULL};
    const char *env[16];
    return dtStreamStartOn(&proc, &pg, NULL, dtEnvJoin(env, 16, dtBrokerClientEnv(&broker, "STREAM_", &e), own));
}

static int teardown(void **state) {
    int rc = 0;
    if (proc.pid > 0 && dtStreamStop(&proc) != 0) rc = -1;
    if (api.pid > 0) dtApiStop(&api);
    dtPgDestroy(&pg);
    if (admin) rd_kafka_destroy(admin);
    if (!dtBrokerDestroy(&broker)) rc = -1;
    curl_global_cleanup();
    return rc;
}

static int setup(void **state) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* A node killed or stopped is fenced, and its partitions move, once its
     * session expires: 3 s rather than 9. */
    static const char *const settings[] = {"broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", NULL};
    if (!dtBrokerStart(&broker, 3, false, false, settings)) return -1;
    char errstr[256];
    admin = rd_kafka_new(RD_KAFKA_PRODUCER, clientConf(), errstr, sizeof(errstr));
    /* Before the first record, so that every record carries it. */
    bool ok = admin && setTopicSetting("message.timestamp.type", "LogAppendTime");
    ok = ok && dtPgStart(&pg) && dtApiStart(&api, &pg, NULL) &&
         dtPgExec(&pg, "SELECT pg_create_logical_replication_slot('" CHECK_SLOT "', 'test_decoding')");
    ok = ok && startProc(NULL);
    if (!ok) teardown(state); /* cmocka runs no group teardown after a failed setup */
    return ok ? 0 : -1;
}

/* ---- the cases --------------------------------------------------------------- */

/* What the tool promises a 3-node cluster: replication factor 3 and
 * min.insync.replicas=2 for the decisions topic; with acks=all, a write is
 * acknowledged once two nodes have it. */
static void test_topic_settings(void **state) {
    int replicas[PARTITIONS], isr[PARTITIONS];
    assert_true(topicReplicas(replicas, isr));
    for (int i = 0; i < PARTITIONS; i++) {
        assert_int_equal(replicas[i], 3);
        assert_int_equal(isr[i], 3);
    }
    char *min_isr = topicSetting("min.insync.replicas");
    char *ts_type = topicSetting("message.timestamp.type");
    assert_non_null(min_isr);
    assert_string_equal(min_isr, "2");
    assert_non_null(ts_type);
    assert_string_equal(ts_type, "LogAppendTime");
    free(min_isr);
    free(ts_type);
}

/* The end of a case: the load stopped, everything committed acknowledged
 * (the slot past it), the sampler stopped, the topic read back and the
 * commits taken. false if any of it failed (printed). */
static bool drainAndRead(const char *name, dtLoad *load, sampler *sm, topicRead *t, commit **commits, size_t *nc) {
    dtLoadStop(load);
    long long t0 = nowMs();
    uint64_t end = walLsn();
    bool drained = dtWaitFor(slotReached, &end, 60000);
    if (!drained) fprintf(stderr, "the slot did not reach %llX within 60 s\n", (unsigned long long)end);
    samplerStop(sm);
    long long t1 = nowMs();
    bool readback = readTopic(t);
    long long t2 = nowMs();
    *commits = takeCommits(nc);
    fprintf(stderr, "failover: %s: load stopped, drained in %lld ms, topic read in %lld ms, commits in %lld ms\n", name,
            t1 - t0, t2 - t1, nowMs() - t2);
    return drained && readback && *commits != NULL;
}

/* The checks of a case, then its memory released. */
static void checkCase(const char *name, dtLoad *load, sampler *sm, topicRead *t, commit *commits, size_t nc) {
    assertAllOnTopic(name, load, t);
    assertSlotBehindCluster(name, commits, nc, t, sm);
    free(commits);
    free(t->recs);
    free(sm->s);
    dtLoadFree(load);
}

/* kill -9 the leader of partition 0 under load: nothing is lost, the slot
 * never runs ahead of the cluster, and delivery resumes within seconds. */
static void test_leader_killed_under_load(void **state) {
    int leader = dtBrokerLeader(&broker, TOPIC, 0);
    assert_true(leader >= 1);
    sampler sm;
    samplerStart(&sm);
    dtLoad *load = startLoad();
    uint64_t steady = walLsn();
    bool flowing = dtLoadAdvance(load, 50) && dtWaitFor(slotReached, &steady, 30000);
    long long killed_ms = 0, caught_ms = 0;
    bool killed = flowing && dtBrokerKill(&broker, leader);
    if (killed) killed_ms = nowMs();
    uint64_t at_kill = walLsn();
    /* Everything committed before the kill acknowledged by the cluster. */
    bool resumed = killed && dtWaitFor(slotReached, &at_kill, RESUME_BOUND_MS);
    if (resumed) caught_ms = nowMs();
    bool more = resumed && dtLoadAdvance(load, 50);
    restart back;
    dtLoadStop(load);
    if (killed) restartStart(&back, leader); /* it takes seconds: meanwhile, the checks */
    topicRead t;
    commit *commits;
    size_t nc;
    bool read = drainAndRead("leader kill", load, &sm, &t, &commits, &nc);
    if (killed) pthread_join(back.thread, NULL);
    bool rejoined = killed && back.ok && dtWaitFor(isrComplete, NULL, 60000);
    assert_true(flowing && killed);
    assert_true(resumed);
    assert_true(more && read);
    long long worst = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        long long first = firstAppendAfter(&t, p, killed_ms);
        assert_true(first > 0); /* the load went on to every partition */
        if (first - killed_ms > worst) worst = first - killed_ms;
    }
    fprintf(stderr,
            "failover: leader kill (node %d of 3, leader of partition 0): every partition took records again within "
            "%lld ms; every decision committed before the kill was acknowledged %lld ms after it\n",
            leader, worst, caught_ms - killed_ms);
    checkCase("leader kill", load, &sm, &t, commits, nc);
    assert_true(worst <= RESUME_BOUND_MS);
    assert_true(procAlive());
    assert_true(rejoined);
}

static long decisionRows(void);

/* The slot held (not confirmed further) while decisions kept being
 * committed: since it last moved, at least want more rows. */
typedef struct stall {
    long want, rows;
    uint64_t slot;
} stall;

static bool stalled(void *arg) {
    stall *st = arg;
    uint64_t slot = slotLsn();
    long rows = decisionRows();
    if (slot != st->slot || st->rows < 0) st->slot = slot, st->rows = rows;
    return rows - st->rows >= st->want;
}

/* The two-node outage as the test sees it. */
typedef struct outage {
    int a, b; /* the nodes stopped */
    long long stop0_ms, stopped_ms, back0_ms, back_ms, caught_ms;
    uint64_t held, still, wal_held, wal_still; /* slot and WAL, as the stall shows and at its end */
    long committed;                            /* decisions committed meanwhile */
    double restarts, failed;                   /* the processor's, meanwhile */
    bool stopped, stall, posting, alive, restarted, caught;
} outage;

static long decisionRows(void) {
    char *v = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

/* Stops nodes a and b, waits until the stall shows, then lets the load go
 * on for longer than the processor's message timeout. */
static void twoNodesDown(outage *o, dtLoad *load) {
    double restarts0 = dtMetric(&proc.http, "stream_restarts_total");
    o->stop0_ms = nowMs();
    o->stopped = dtBrokerStop(&broker, o->a) && dtBrokerStop(&broker, o->b);
    o->stopped_ms = nowMs();
    /* A second of decisions committed past the held slot: the stall is visible. */
    stall st = {150, -1, 0};
    o->stall = o->stopped && dtWaitFor(stalled, &st, 20000);
    o->held = slotLsn();
    o->wal_held = walLsn();
    long rows0 = decisionRows();
    o->posting = o->stall && dtLoadAdvance(load, 300);
    o->still = slotLsn();
    o->wal_still = walLsn();
    o->committed = decisionRows() - rows0;
    o->alive = procAlive();
    o->restarts = dtMetric(&proc.http, "stream_restarts_total") - restarts0;
    o->failed = dtMetric(&proc.http, "kafka_delivery_failed_total");
}

/* Restarts both nodes at once and waits until the backlog is acknowledged. */
static void twoNodesBack(outage *o) {
    o->back0_ms = nowMs();
    restart ra, rb;
    restartStart(&ra, o->a);
    restartStart(&rb, o->b);
    pthread_join(ra.thread, NULL);
    pthread_join(rb.thread, NULL);
    o->back_ms = nowMs();
    o->restarted = ra.ok && rb.ok;
    uint64_t backlog = walLsn();
    o->caught = o->restarted && dtWaitFor(slotReached, &backlog, 60000);
    o->caught_ms = nowMs();
}

/* Two of three nodes stopped: with min.insync.replicas=2 nothing is
 * acknowledged, so the slot holds while decisions keep being committed;
 * the processor neither exits nor drops what failed; the nodes back,
 * everything arrives and the slot moves on. */
static void test_two_nodes_stopped(void **state) {
    assert_true(dtWaitFor(isrComplete, NULL, 60000));
    /* Deliveries will fail: the outage outlasts this. */
    assert_int_equal(dtStreamStop(&proc), 0);
    assert_true(startProc(MESSAGE_TIMEOUT));
    outage o = {.a = dtBrokerLeader(&broker, TOPIC, 0)};
    assert_true(o.a >= 1);
    o.b = o.a % 3 + 1;
    sampler sm;
    samplerStart(&sm);
    dtLoad *load = startLoad();
    bool flowing = dtLoadAdvance(load, 25);
    if (flowing) twoNodesDown(&o, load);
    if (o.stopped) twoNodesBack(&o);
    bool after = o.caught && dtLoadAdvance(load, 25);
    topicRead t;
    commit *commits;
    size_t nc;
    bool read = drainAndRead("two nodes down", load, &sm, &t, &commits, &nc);
    fprintf(stderr,
            "failover: two nodes down (%d and %d): %ld decisions committed while the slot went from %llX to %llX "
            "(WAL %llX -> %llX); %.0f processor restarts from the slot, %.0f deliveries failed\n",
            o.a, o.b, o.committed, (unsigned long long)o.held, (unsigned long long)o.still,
            (unsigned long long)o.wal_held, (unsigned long long)o.wal_still, o.restarts, o.failed);
    assert_true(flowing && o.stopped && o.stall && o.posting);
    assert_true(o.committed >= 300 && o.wal_still > o.wal_held);
    assert_true(o.still == o.held);
    assert_true(o.alive);
    assert_true(o.restarted && o.caught && after && read);
    long long first = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        long long f = firstAppendAfter(&t, p, o.stopped_ms);
        if (f > 0 && (first == 0 || f < first)) first = f;
    }
    fprintf(stderr,
            "failover: two nodes down: stopping them took %lld ms; for %lld ms after, no record was appended while "
            "decisions kept being committed (the outage: %lld ms, restarting the nodes: %lld ms); the backlog was "
            "acknowledged %lld ms after both nodes were back\n",
            o.stopped_ms - o.stop0_ms, first - o.stopped_ms, o.back0_ms - o.stopped_ms, o.back_ms - o.back0_ms,
            o.caught_ms - o.back_ms);
    checkCase("two nodes down", load, &sm, &t, commits, nc);
    assert_true(procAlive());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_settings),
        cmocka_unit_test(test_leader_killed_under_load),
        cmocka_unit_test(test_two_nodes_stopped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
