/* test_groups.c - consumer groups on Apache Kafka: two decision-archivers
 * in one group writing one archive directory, and two variable stores, each
 * in a group of its own as the design wants (a store needs every partition:
 * a merchant's decisions are spread over all of them). Decisions are posted
 * through the API and go through PostgreSQL and the stream processor onto a
 * single-node cluster. Under load, one archiver and one store are killed
 * with SIGKILL: the group hands the archiver's partitions to the other one,
 * which archives everything while it is alone; then both come back under
 * load (a supervisor's restart) and the group splits again. In the end the
 * archive holds every decision exactly once (read by python3-avro, no file
 * name twice, no temporary file left), the surviving archiver never stopped,
 * and both stores answer exactly what the posted decisions imply. A third
 * store started with one store's group id makes both unready, saying the
 * group is shared, until it leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "harness.h"
#include "varexpect.h"

#define PARTITIONS 6 /* of decisions, as dtBrokerStart makes it */
#define LOAD_BATCH 10
#define LOAD_PAUSE_MS 40

static dtBroker broker;
static dtPg pg;
static dtApi api;
static dtStream proc;
static char archive[300];
static rd_kafka_t *admin; /* describes the archivers' group */

/* A member the test kills and starts again with the same environment (and
 * the same port, so its url stays valid). */
typedef struct member {
    const char *program;
    pid_t pid;
    dtApi http; /* url of its /metrics, /readyz */
    char own[12][400]; /* its environment: the cluster's, then its own */
    const char *env[24];
} member;
static member archivers[2], stores[2];

/* 48 customers spread their decisions over every partition; one age keeps
 * an archive file per partition and hour, as in production. */
static dtVarSet vset = {NULL, 48, 10, 2 * 60000};

/* The load: a thread posting batches until told to stop; what was accepted
 * (201) joins vset.posted under mu. */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    atomic_bool stop;
    bool running;
    atomic_long posted;
    int next; /* k of the next decision */
    long failed;
    char why[300];
} load = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool memberStart(member *d) {
    d->pid = dtSpawn(d->program, NULL, d->env);
    return d->pid > 0 && dtWaitReady(&d->http, 30000);
}

/* dir: the archive (an archiver) or the store's data directory. */
static void memberInit(member *d, const char *program, const char *prefix, const char *group, const char *dir,
                       const char *const *extra) {
    dtBrokerEnv be;
    const char *const *kafka = dtBrokerClientEnv(&broker, prefix, &be);
    bool archiver = strcmp(program, "decision-archiver") == 0;
    memset(d, 0, sizeof(*d));
    d->program = program;
    int port = dtFreePort(), n = 0;
    snprintf(d->http.url, sizeof(d->http.url), "http://127.0.0.1:%d", port);
    for (int i = 0; kafka[i] && n < 7; i++) snprintf(d->own[n++], sizeof(d->own[0]), "%s", kafka[i]);
    snprintf(d->own[n++], sizeof(d->own[0]), "%sGROUP_ID=%s", prefix, group);
    snprintf(d->own[n++], sizeof(d->own[0]), "%s%s=%s", prefix, archiver ? "ARCHIVE" : "DATA_DIR", dir);
    snprintf(d->own[n++], sizeof(d->own[0]), "%s%s=%d", prefix, archiver ? "METRICS_PORT" : "LISTEN_PORT", port);
    snprintf(d->own[n++], sizeof(d->own[0]), "%sREGISTRY_URL=%s", prefix, api.url);
    snprintf(d->own[n++], sizeof(d->own[0]), "%sSESSION_TIMEOUT=6s", prefix); /* the broker's least */
    for (int i = 0; i < n; i++) d->env[i] = d->own[i];
    for (int i = 0; extra[i] && n < 23; i++) d->env[n++] = extra[i];
    d->env[n] = NULL;
}

/* Two members of one group on one host: each its own instance id (static
 * membership), or the second would fence the first. */
static const char *const archiverEnv[][5] = {
    {"ARCHIVER_CLIENT_ID=archiver-0", "ARCHIVER_GROUP_INSTANCE_ID=archiver-0", "ARCHIVER_MAX_AGE=500ms",
     "ARCHIVER_LOG_LEVEL=info", NULL},
    {"ARCHIVER_CLIENT_ID=archiver-1", "ARCHIVER_GROUP_INSTANCE_ID=archiver-1", "ARCHIVER_MAX_AGE=500ms",
     "ARCHIVER_LOG_LEVEL=info", NULL},
};
static char storeTokens[360];
static const char *const storeEnv[] = {storeTokens, "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_LOG_LEVEL=warn", NULL};
/* The intruder shares a store's group, not its instance id (that would
 * fence the store instead of sharing the group). */
static const char *const intruderEnv[] = {storeTokens, "VARSTORE_GROUP_INSTANCE_ID=store-intruder",
                                          "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_LOG_LEVEL=warn", NULL};

static int setup(void **state) {
    curl_global_init(CURL_GLOBAL_ALL); /* before the load's thread */
    if (!dtBrokerStart(&broker, 1, false, false, NULL)) return -1;
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL)) return -1;
    dtBrokerEnv be;
    if (!dtStreamStartOn(&proc, &pg, NULL, dtBrokerClientEnv(&broker, "STREAM_", &be))) return -1;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        (admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL)
        return fprintf(stderr, "admin client: %s\n", err), -1;
    vset.posted = json_array();
    snprintf(archive, sizeof(archive), "%s/archive", pg.dir);
    snprintf(storeTokens, sizeof(storeTokens), "VARSTORE_TOKENS_FILE=%s", api.tokens_file);
    for (int i = 0; i < 2; i++) {
        char group[32], dir[330];
        memberInit(&archivers[i], "decision-archiver", "ARCHIVER_", "archivers", archive, archiverEnv[i]);
        snprintf(group, sizeof(group), "variable-store-%d", i);
        snprintf(dir, sizeof(dir), "%s/store-%d", pg.dir, i);
        memberInit(&stores[i], "variable-store", "VARSTORE_", group, dir, storeEnv);
        if (!memberStart(&archivers[i]) || !memberStart(&stores[i])) return -1;
    }
    return 0;
}

static int teardown(void **state) {
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (archivers[i].pid > 0 && dtStop(archivers[i].pid, SIGTERM) != 0) rc = -1;
        if (stores[i].pid > 0 && dtStop(stores[i].pid, SIGTERM) != 0) rc = -1;
    }
    if (proc.pid > 0 && dtStreamStop(&proc) != 0) rc = -1;
    dtApiStop(&api);
    dtPgDestroy(&pg);
    if (admin) rd_kafka_destroy(admin);
    if (!dtBrokerDestroy(&broker)) rc = -1;
    json_decref(vset.posted);
    curl_global_cleanup();
    return rc;
}

/* --- the load ---- */

/* Posts one batch; the decisions the API accepted join vset.posted. */
static void loadBatch(void) {
    json_t *batch = json_array();
    int64_t now = dtNowMs();
    for (int i = 0; i < LOAD_BATCH; i++) json_array_append_new(batch, dtVarDecision(&vset, load.next + i, now));
    load.next += LOAD_BATCH;
    json_t *req = json_pack("{s:O}", "decisions", batch);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    dtResponse r;
    bool answered = dtHttp(&api, "POST", "/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", body,
                           strlen(body), &r);
    json_t *results = answered && r.status == 200 ? json_object_get(r.json, "results") : NULL;
    pthread_mutex_lock(&load.mu);
    for (int i = 0; i < LOAD_BATCH; i++) {
        long st = (long)json_integer_value(json_object_get(json_array_get(results, (size_t)i), "status"));
        if (st == 201) {
            json_array_append(vset.posted, json_array_get(batch, (size_t)i));
            atomic_fetch_add(&load.posted, 1);
        } else if (load.failed++ == 0) {
            snprintf(load.why, sizeof(load.why), "a batch item got %ld (request status %ld): %.200s", st,
                     answered ? r.status : 0, answered && r.body ? r.body : "no answer");
        }
    }
    pthread_mutex_unlock(&load.mu);
    if (answered) dtResponseFree(&r);
    free(body);
    json_decref(batch);
}

static void *loadRun(void *arg) {
    const struct timespec pause = {0, LOAD_PAUSE_MS * 1000000L};
    while (!atomic_load(&load.stop)) {
        loadBatch();
        nanosleep(&pause, NULL); /* a pace, not a wait for anything */
    }
    return NULL;
}

static void loadStart(void) {
    atomic_store(&load.stop, false);
    assert_int_equal(pthread_create(&load.thread, NULL, loadRun, NULL), 0);
    load.running = true;
}

static void loadEnd(void) {
    if (!load.running) return;
    atomic_store(&load.stop, true);
    pthread_join(load.thread, NULL);
    load.running = false;
}

/* After each test, passed or not: a failed one leaves no load behind. */
static int loadTeardown(void **state) {
    loadEnd();
    return 0;
}

static void loadStop(void) {
    loadEnd();
    if (load.failed) fprintf(stderr, "%ld posts failed; the first: %s\n", load.failed, load.why);
    assert_int_equal(load.failed, 0);
}

static bool postedAtLeast(void *arg) {
    return atomic_load(&load.posted) >= *(long *)arg;
}

/* Lets the load post n more decisions. */
static void loadFor(long n) {
    long want = atomic_load(&load.posted) + n;
    assert_true(dtWaitFor(postedAtLeast, &want, 60000));
}

/* --- the archivers' group ---- */

/* Partitions of the member with client id "archiver-<i>" (-1: not in the
 * group) in the description of the group "archivers"; false unless it is
 * stable (no rebalance under way). */
static bool groupHeld(const rd_kafka_ConsumerGroupDescription_t *g, int held[2]) {
    if (rd_kafka_ConsumerGroupDescription_error(g) != NULL ||
        rd_kafka_ConsumerGroupDescription_state(g) != RD_KAFKA_CONSUMER_GROUP_STATE_STABLE)
        return false;
    held[0] = held[1] = -1;
    for (size_t m = 0; m < rd_kafka_ConsumerGroupDescription_member_count(g); m++) {
        const rd_kafka_MemberDescription_t *d = rd_kafka_ConsumerGroupDescription_member(g, m);
        const char *id = rd_kafka_MemberDescription_client_id(d);
        int i = strcmp(id, "archiver-0") == 0 ? 0 : strcmp(id, "archiver-1") == 0 ? 1 : -1;
        if (i < 0) return false;
        held[i] = rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(d))->cnt;
    }
    return true;
}

static bool describeArchivers(int held[2]) {
    const char *groups[] = {"archivers"};
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_DescribeConsumerGroups(admin, groups, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    const rd_kafka_DescribeConsumerGroups_result_t *res = ev ? rd_kafka_event_DescribeConsumerGroups_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **g =
        res && !rd_kafka_event_error(ev) ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
    bool ok = n == 1 && groupHeld(g[0], held);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return ok;
}

/* Whether the group is stable with archiver-<i> holding want[i]
 * partitions: -1 not a member, 0 at least one, else exactly that many. */
static bool groupIs(void *arg) {
    const int *want = arg;
    int held[2];
    if (!describeArchivers(held)) return false;
    for (int i = 0; i < 2; i++)
        if (want[i] < 0 ? held[i] != -1 : want[i] == 0 ? held[i] < 1 : held[i] != want[i]) return false;
    return true;
}

static void waitGroup(int want0, int want1) {
    int want[2] = {want0, want1}, held[2] = {-2, -2};
    if (dtWaitFor(groupIs, want, 45000)) return;
    describeArchivers(held);
    fail_msg("the group never became archiver-0: %d, archiver-1: %d partitions (now %d, %d)", want0, want1, held[0],
             held[1]);
}

/* --- what the archive holds ---- */

/* Records in the archive's finished files, as decision-replay's summary
 * counts them (its progress lines count too); -1 if it cannot tell. */
static long archivedCount(void) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "${BUILD:-build}/bin/decision-replay --archive %s --from 2020-01-01T00:00:00Z --to 2100-01-01T00:00:00Z"
             " --dry-run --log-level error 2>&1",
             archive);
    char *out = dtCapture(cmd), *sum = strstr(out, "{\"summary\":"), *s = sum ? strstr(sum, "\"read\":") : NULL;
    long n = s ? strtol(s + 7, NULL, 10) : -1;
    free(out);
    return n;
}

/* Once the load has stopped: as many records as decisions posted. */
static bool allArchived(void *arg) {
    return archivedCount() == (long)json_array_size(vset.posted);
}

/* Waits until the archive holds as many records as decisions posted; says
 * where each stage stands if it does not come. */
static void waitAllArchived(void) {
    if (dtWaitFor(allArchived, NULL, 45000)) return;
    fprintf(stderr, "posted %zu, archived %ld, on the topic %g; archivers: %g, %g records\n",
            json_array_size(vset.posted), archivedCount(), dtMetric(&proc.http, "kafka_delivered_total"),
            dtMetric(&archivers[0].http, "archiver_records_total"), dtMetric(&archivers[1].http, "archiver_records_total"));
    fail_msg("the archive does not hold every decision posted");
}

static bool storeMatches(void *arg) {
    return dtVarMatches(arg, &vset, false);
}

/* Both stores answer exactly what the posted decisions imply. */
static void assertStoresExact(const member *only) {
    for (int i = 0; i < 2; i++) {
        const member *d = &stores[i];
        if (only != NULL && d != only) continue;
        if (!dtWaitFor(storeMatches, (void *)&d->http, 30000)) assert_true(dtVarMatches(&d->http, &vset, true));
    }
}

/* Waits until the counter metric of d has counted something. */
static void waitCounted(const member *d, const char *metric) {
    if (!dtWaitMetric(&d->http, metric, 1, 30000))
        fail_msg("%s: %s stayed at %g", d->http.url, metric, dtMetric(&d->http, metric));
}

/* Whether m never exited; if it did, it is reaped and says how. */
static bool running(member *m) {
    int status;
    if (waitpid(m->pid, &status, WNOHANG) == 0) return true;
    fprintf(stderr, "%s (%s) exited: status %d\n", m->program, m->http.url, status);
    m->pid = -1;
    return false;
}

/* Every posted decision once in the archive as an independent reader
 * (python3-avro) sees it, nothing else; no file name twice (one partition
 * and first offset, two hours, would be a file doubled); every partition
 * archived; no temporary file left. */
static void assertArchiveExact(void) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py %s; echo rc=$?", archive);
    char *out = dtCapture(cmd);
    json_t *seen = json_object(), *names = json_object(), *doc;
    int parts[PARTITIONS] = {0};
    size_t i;
    long records = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char id[64], path[512], name[512];
        long long ms;
        if (strncmp(line, "rc=", 3) == 0) {
            assert_string_equal(line, "rc=0");
            continue;
        }
        if (sscanf(line, "%63s %lld %*s %511s", id, &ms, path) != 3) fail_msg("read_archive.py: %s", line);
        json_object_set_new(seen, id, json_integer(json_integer_value(json_object_get(seen, id)) + 1));
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        snprintf(name, sizeof(name), "%s", base);
        const char *other = dtStr(names, name);
        if (other != NULL && strcmp(other, path) != 0) fail_msg("%s and %s: one file name twice", other, path);
        json_object_set_new(names, name, json_string(path));
        int p = -1;
        if (sscanf(name, "decisions+%d+", &p) == 1 && p >= 0 && p < PARTITIONS) parts[p]++;
        records++;
    }
    json_array_foreach(vset.posted, i, doc) {
        long long n = json_integer_value(json_object_get(seen, dtStr(doc, "decision_id")));
        if (n != 1) fail_msg("decision %s is %lld times in the archive", dtStr(doc, "decision_id"), n);
    }
    assert_int_equal(records, json_array_size(vset.posted));
    for (int p = 0; p < PARTITIONS; p++)
        if (parts[p] == 0) fail_msg("nothing archived from partition %d", p);
    fprintf(stderr, "archive: %ld decisions in %zu files\n", records, json_object_size(names));
    json_decref(seen), json_decref(names);
    free(out);
    snprintf(cmd, sizeof(cmd), "find %s -name '*.tmp' | head -3", archive);
    out = dtCapture(cmd);
    if (*out) fail_msg("temporary files left in the archive: %s", out);
    free(out);
}

/* One archiver and one store are killed under load: the group hands every
 * partition to the other archiver, which archives everything alone, and
 * the other store is exact alone; both come back under load, the group
 * splits again and the store catches up; nothing lost, nothing twice, the
 * survivor never stopped. */
static void test_kill_one_of_each_under_load(void **state) {
    member *victim = &archivers[0], *survivor = &archivers[1], *store = &stores[0];
    loadStart();
    waitGroup(0, 0); /* the group split the partitions: both archive */
    waitCounted(victim, "archiver_records_total");
    waitCounted(survivor, "archiver_records_total");
    waitCounted(store, "variable_store_kafka_messages_total");
    waitCounted(&stores[1], "variable_store_kafka_messages_total");

    assert_int_equal(dtStop(victim->pid, SIGKILL), 128 + SIGKILL);
    assert_int_equal(dtStop(store->pid, SIGKILL), 128 + SIGKILL);
    victim->pid = store->pid = -1;
    loadFor(300); /* on every partition, the victim's too */
    waitGroup(-1, PARTITIONS);
    loadStop();
    waitAllArchived(); /* by the survivor alone */
    assertStoresExact(&stores[1]);

    /* back under load: the group splits again, the store resumes where its state ends */
    loadStart();
    loadFor(100); /* the survivor has files open */
    assert_true(memberStart(victim));
    assert_true(memberStart(store));
    waitGroup(0, 0);
    waitCounted(victim, "archiver_records_total");
    loadFor(300);
    loadStop();
    waitAllArchived();
    assertStoresExact(NULL);
    assert_true(running(survivor));
}

/* An archiver stalled past its session timeout (SIGSTOP) with files open:
 * the group gives its partitions to the other one, which waits for the
 * files the stalled one still holds rather than write them at the same
 * time; the stalled one comes back, finishes them (the group refuses its
 * offsets), learns it lost its partitions and rejoins; the other writes
 * those files again under the same names. Then both stop, and the archive
 * holds every decision once. */
static void test_a_stalled_archiver_comes_back(void **state) {
    member *stalled = &archivers[1];
    loadStart();
    loadFor(100); /* files open on every partition */
    assert_int_equal(kill(stalled->pid, SIGSTOP), 0);
    waitGroup(PARTITIONS, -1);
    loadFor(200);
    assert_int_equal(kill(stalled->pid, SIGCONT), 0);
    waitGroup(0, 0);
    loadFor(200);
    loadStop();
    waitAllArchived();
    for (int i = 0; i < 2; i++) {
        assert_true(running(&archivers[i]));
        assert_int_equal(dtStop(archivers[i].pid, SIGTERM), 0);
        archivers[i].pid = -1;
    }
    assertArchiveExact();
}

static bool saysShared(void *arg) {
    dtResponse r;
    bool yes = dtHttp(arg, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == 503 && r.body &&
               strstr(r.body, "is shared") && strstr(r.body, "own --group-id");
    dtResponseFree(&r);
    return yes;
}

/* Stores must not share a group (each needs every partition): one started
 * with another's group id makes both unready, saying why, until it goes. */
static void test_a_store_sharing_its_group_says_so(void **state) {
    member intruder;
    char dir[330];
    snprintf(dir, sizeof(dir), "%s/store-intruder", pg.dir);
    memberInit(&intruder, "variable-store", "VARSTORE_", "variable-store-1", dir, intruderEnv);
    intruder.pid = dtSpawn(intruder.program, NULL, intruder.env);
    assert_true(intruder.pid > 0);
    bool shared = dtWaitFor(saysShared, &intruder.http, 30000) && dtWaitFor(saysShared, &stores[1].http, 30000);
    assert_int_equal(dtStop(intruder.pid, SIGTERM), 0);
    assert_true(shared);
    assert_true(dtWaitReady(&stores[1].http, 30000));
    assertStoresExact(&stores[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_one_of_each_under_load, loadTeardown),
        cmocka_unit_test_teardown(test_a_stalled_archiver_comes_back, loadTeardown),
        cmocka_unit_test_teardown(test_a_store_sharing_its_group_says_so, loadTeardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
