/* test_rollout.c - the schema v1 -> v2 rollout of docs/runbook-schema-change.md,
 * done as an operator would, under a steady load of posted decisions.
 *
 * "Old binaries" are this build run with --schemas-dir pointing at a schema
 * set that has only version 1 (what a build before version 2 embedded);
 * "new binaries" run with the embedded set (versions 1 and 2). The whole
 * pipeline starts old: decision API (on a socket the test holds, as systemd
 * would), stream processor, archiver and variable store. Then: the new API's
 * migrations run; a new API takes over the socket and the old one drains;
 * policy engines start posting v2 decisions beside the v1 ones; the old
 * stream processor, archiver and store meet version 2 rows and records,
 * learn the schema from the registry endpoints and keep going; then each is
 * restarted on the new binary, one by one, under load.
 *
 * It shows: no request failed; every decision is stored, on the topic, in
 * the archive (v2 ones with their v2 fields, even those the old archiver
 * wrote) and counted once by the store; the old consumers read v2 records
 * before their restart; a new store started empty reads the whole topic,
 * v1 records included, to the same counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"
#include "schemadir.h"

enum { LOADERS = 4, LOAD_INTERVAL_MS = 25 }; /* per load: 4 x 40/s */
enum { KIND_V1 = 1, KIND_V2 = 2 };

static dtPg pg;
static dtKafka kafka;
static int lsock = -1;         /* the supervisor's listening socket */
static dtApi apiOld, apiNew;   /* both on lsock */
static dtApi sock;             /* lsock's address, for the clients (url only) */
static dtStream proc;
static pid_t archiver = -1, store = -1;
static dtApi vs;               /* the store's address (url only) */
static char v1dir[300], archive[300], vsdir[300], tokens[300], registry[96];
static char merchantV1[40], merchantV2[40];

/* ---- set-up ---- */

/* 127.0.0.1 on a free port; close-on-exec: the harness hands it to each
 * decision-api as fd 3 and no other child should hold it. */
static int listenSocket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "listen socket: %s\n", strerror(errno));
        return -1;
    }
    sock.port = ntohs(a.sin_port);
    snprintf(sock.url, sizeof(sock.url), "http://127.0.0.1:%d", sock.port);
    snprintf(registry, sizeof(registry), "%s", sock.url);
    return fd;
}

static int suiteSetup(void **state) {
    curl_global_init(CURL_GLOBAL_ALL); /* before any load thread: it is not thread-safe */
    if (!dtPgStart(&pg) || !dtKafkaStart(&kafka) || (lsock = listenSocket()) < 0) return -1;
    snprintf(v1dir, sizeof(v1dir), "%s/schemas-v1", pg.dir); /* a build before version 2 */
    if (!dtSchemaDirWrite(v1dir, 1)) return -1;
    snprintf(archive, sizeof(archive), "%s/archive", pg.dir);
    snprintf(vsdir, sizeof(vsdir), "%s/variable-store", pg.dir);
    snprintf(tokens, sizeof(tokens), "%s/vs-tokens", pg.dir);
    if (!dtWriteTokens(tokens)) return -1;
    vs.port = dtFreePort();
    snprintf(vs.url, sizeof(vs.url), "http://127.0.0.1:%d", vs.port);
    unsigned tag = (unsigned)time(NULL) ^ (unsigned)getpid();
    snprintf(merchantV1, sizeof(merchantV1), "m-rollout-v1-%x", tag);
    snprintf(merchantV2, sizeof(merchantV2), "m-rollout-v2-%x", tag);
    return 0;
}

static int suiteTeardown(void **state) {
    if (store > 0) dtStop(store, SIGTERM);
    if (archiver > 0) dtStop(archiver, SIGTERM);
    if (proc.pid > 0) dtStreamStop(&proc);
    if (apiOld.pid > 0) dtApiStop(&apiOld);
    if (apiNew.pid > 0) dtApiStop(&apiNew);
    if (lsock >= 0) close(lsock);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    curl_global_cleanup();
    return 0;
}

/* ---- the programs, old (v1 schema set) or new (embedded) ---- */

/* "NAME=value" strings for the next spawn, in a ring: a child takes its
 * environment when it starts, so a string may be reused afterwards. */
static char envbuf[64][400];
static int envused;

static const char *envf(const char *fmt, ...) {
    char *e = envbuf[envused++ % 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e, sizeof(envbuf[0]), fmt, ap);
    va_end(ap);
    return e;
}

static bool startApi(dtApi *api, bool old) {
    const char *env[] = {"DECISIONS_LISTEN_FD=3", old ? envf("DECISIONS_SCHEMAS_DIR=%s", v1dir) : NULL, NULL};
    return dtApiStartOnFd(api, &pg, lsock, env);
}

static bool startStream(bool old) {
    const char *env[] = {envf("STREAM_REGISTRY_URL=%s", registry),
                         old ? envf("STREAM_SCHEMAS_DIR=%s", v1dir) : NULL, NULL};
    return dtStreamStart(&proc, &pg, &kafka, env);
}

/* The old archiver is given its archive under the variable it was deployed
 * with, ARCHIVER_ROOT, deprecated since: the archive check proves it still
 * works. */
static bool startArchiver(bool old) {
    const char *env[] = {envf("ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port),
                         envf(old ? "ARCHIVER_ROOT=%s" : "ARCHIVER_ARCHIVE=%s", archive),
                         "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_LOG_LEVEL=warn", "ARCHIVER_SESSION_TIMEOUT=3s",
                         "ARCHIVER_GROUP_INSTANCE_ID=none",
                         envf("ARCHIVER_REGISTRY_URL=%s", registry),
                         old ? envf("ARCHIVER_SCHEMAS_DIR=%s", v1dir) : NULL, NULL};
    return (archiver = dtSpawn("decision-archiver", NULL, env)) > 0;
}

/* A store on dir answering at at; group: its consumer group. */
static pid_t startStoreOn(const char *dir, const dtApi *at, const char *group, bool old) {
    const char *env[] = {envf("VARSTORE_BROKERS=127.0.0.1:%d", kafka.port), envf("VARSTORE_DATA_DIR=%s", dir),
                         envf("VARSTORE_LISTEN_PORT=%d", at->port), envf("VARSTORE_GROUP_ID=%s", group),
                         "VARSTORE_LOG_LEVEL=warn", "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_SESSION_TIMEOUT=3s",
                         "VARSTORE_GROUP_INSTANCE_ID=none",
                         envf("VARSTORE_REGISTRY_URL=%s", registry), envf("VARSTORE_TOKENS_FILE=%s", tokens),
                         old ? envf("VARSTORE_SCHEMAS_DIR=%s", v1dir) : NULL, NULL};
    pid_t pid = dtSpawn("variable-store", NULL, env);
    return pid > 0 && dtWaitReady(at, 30000) ? pid : -1;
}

/* ---- what the pipeline holds ---- */

/* A merchant's decision_count_24h in the store at at; -1 if unknown. */
static long storeCount(const dtApi *at, const char *merchant) {
    char path[128];
    snprintf(path, sizeof(path), "/v1/variables/merchant/%s", merchant);
    dtResponse r;
    long n = -1;
    if (dtHttp(at, "GET", path, DT_LOOKUP_TOKEN, NULL, NULL, 0, &r) && r.status == 200)
        n = (long)json_integer_value(json_object_get(json_object_get(r.json, "variables"), "decision_count_24h"));
    dtResponseFree(&r);
    return n;
}

typedef struct atLeast {
    const dtApi *at;
    const char *merchant;
    long n;
} atLeast;

static bool storeReached(void *arg) {
    atLeast *a = arg;
    return storeCount(a->at, a->merchant) >= a->n;
}

/* The archiver has committed a file holding a v2 record with its model. */
static bool archivedV2(void *arg) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/archive_versions.py --records %s 2>/dev/null", archive);
    char *out = dtCapture(cmd);
    bool found = out && strstr(out, " 1 gbm-risk\n") != NULL;
    free(out);
    return found;
}

/* A decision dated now for merchant; with model and risk score for v2. */
static json_t *decision(const char *merchant, bool v2) {
    json_t *d = dtFixture("decision.json");
    char now[32];
    time_t t = time(NULL);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&t));
    json_object_set_new(d, "decided_at", json_string(now));
    json_object_set_new(d, "merchant_id", json_string(merchant));
    if (v2) {
        json_object_set_new(d, "model", json_pack("{s:s, s:s}", "name", "gbm-risk", "version", "7.1"));
        json_object_set_new(d, "risk_score", json_real(0.31));
    }
    return d;
}

/* ---- the checks at the end ---- */

/* How often each posted id occurs in out as "<id> <suffix>", with want()
 * checked per post; prints the first miss. */
static bool everyPostIn(const char *what, const char *out, const dtLoadPost *p, size_t n,
                        bool (*want)(const dtLoadPost *, const char *line)) {
    for (size_t i = 0; i < n; i++) {
        const char *line = strstr(out, p[i].id);
        if (line == NULL || !want(&p[i], line)) {
            fprintf(stderr, "%s: decision %s (kind %d) %s\n", what, p[i].id, p[i].kind,
                    line ? "is not as expected" : "is missing");
            return false;
        }
    }
    return true;
}

/* consume_decisions.py line: "<p> <offset> <key> <header id> <record id> <schema id>";
 * line points at the header id. A v2 decision went out under id 2. */
static bool onTopic(const dtLoadPost *p, const char *line) {
    int sid = 0;
    return sscanf(line + 2 * 37, "%d", &sid) == 1 && (p->kind == KIND_V1 || sid == 2);
}

/* archive_decisions.py line: "<id> <v2 schema> <model>". A v2 decision kept
 * its model in a v2 file, whichever archiver wrote it. */
static bool inArchive(const dtLoadPost *p, const char *line) {
    return p->kind == KIND_V1 || strncmp(line + 37, "1 gbm-risk\n", 11) == 0;
}

typedef struct archiveWait {
    const dtLoadPost *posts;
    size_t n;
} archiveWait;

/* Every posted decision is in a committed archive file. */
static bool archiveComplete(void *arg) {
    archiveWait *w = arg;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/archive_versions.py --records %s 2>/dev/null", archive);
    char *out = dtCapture(cmd);
    bool all = out != NULL;
    for (size_t i = 0; all && i < w->n; i++) all = strstr(out, w->posts[i].id) != NULL;
    free(out);
    return all;
}

static void assertEverywhere(const dtLoadPost *posts, size_t n, long n1, long n2) {
    /* The store counts a decision only once it is on the topic. */
    atLeast all1 = {&vs, merchantV1, n1}, all2 = {&vs, merchantV2, n2};
    assert_true(dtWaitFor(storeReached, &all1, 60000) && dtWaitFor(storeReached, &all2, 60000));
    assert_int_equal(storeCount(&vs, merchantV1), n1); /* each counted once */
    assert_int_equal(storeCount(&vs, merchantV2), n2);

    char *list = dtLoadIdList(posts, n), *sql;
    assert_true(asprintf(&sql, "SELECT count(*) FROM decisions WHERE decision_id IN (%s)", list) > 0);
    char *stored = dtPgScalar(&pg, sql);
    assert_int_equal(atol(stored), (long)n);
    free(stored);
    free(sql);
    free(list);

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/consume_decisions.py 127.0.0.1:%d decisions; echo rc=$?",
             kafka.port);
    char *topic = dtCapture(cmd);
    assert_non_null(strstr(topic, "rc=0"));
    assert_non_null(strstr(topic, " 1\n")); /* v1 records, from the old API */
    assert_true(everyPostIn("topic", topic, posts, n, onTopic));
    free(topic);

    archiveWait w = {posts, n};
    assert_true(dtWaitFor(archiveComplete, &w, 60000));
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/archive_versions.py --records %s; echo rc=$?", archive);
    char *files = dtCapture(cmd);
    assert_non_null(strstr(files, "rc=0"));
    assert_true(everyPostIn("archive", files, posts, n, inArchive));
    free(files);
}

/* ---- the rollout ---- */

static void test_v1_to_v2_under_load(void **state) {
    /* Everything on version 1. */
    assert_true(startApi(&apiOld, true));
    assert_true(startStream(true));
    assert_true(startArchiver(true));
    assert_true((store = startStoreOn(vsdir, &vs, "variable-store", true)) > 0);
    json_t *d1 = decision(merchantV1, false), *d2 = decision(merchantV2, true);
    dtLoad *v1load = dtLoadStart(&sock, LOADERS, LOAD_INTERVAL_MS, d1, KIND_V1), *v2load = NULL;
    assert_non_null(v1load);
    assert_true(dtLoadAdvance(v1load, 20));

    /* 1. Migrate with the new binary, while the old one serves (with the
     * connection option's old name, --database-url). */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "${BUILD:-build}/bin/decision-api migrate --database-url '%s' 2>&1; echo rc=$?",
             pg.conninfo);
    char *out = dtCapture(cmd);
    if (!strstr(out, "rc=0")) fprintf(stderr, "migrate: %s\n", out);
    assert_non_null(strstr(out, "rc=0"));
    /* an operator's script from before the rename still works, and is told */
    assert_non_null(strstr(out, "option --database-url is deprecated and will be removed: use --dsn"));
    free(out);

    /* 2. The new API takes over the socket; the old one drains and exits. */
    assert_true(startApi(&apiNew, false));
    assert_true(dtLoadAdvance(v1load, 20));
    assert_int_equal(dtApiStop(&apiOld), 0);
    assert_true(dtLoadAdvance(v1load, 10));

    /* 3. Policy engines on version 2 start posting beside the v1 ones. */
    assert_non_null(v2load = dtLoadStart(&sock, LOADERS, LOAD_INTERVAL_MS, d2, KIND_V2));
    assert_true(dtLoadAdvance(v2load, 20));

    /* 4. The old consumers read v2 records: learnt from the registry. */
    atLeast some = {&vs, merchantV2, 40};
    assert_true(dtWaitFor(storeReached, &some, 60000));
    assert_true(dtWaitFor(archivedV2, NULL, 60000));
    assert_int_equal(dtMetric(&proc.http, "stream_dlq_total"), 0);

    /* 5. Each restarts on the new binary, one by one, under load. */
    assert_int_equal(dtStreamStop(&proc), 0);
    assert_true(startStream(false));
    assert_true(dtLoadAdvance(v2load, 20));
    assert_int_equal(dtStop(archiver, SIGTERM), 0);
    assert_true(startArchiver(false));
    assert_true(dtLoadAdvance(v2load, 20));
    assert_int_equal(dtStop(store, SIGTERM), 0);
    assert_true((store = startStoreOn(vsdir, &vs, "variable-store", false)) > 0);
    assert_true(dtLoadAdvance(v2load, 20));
    dtLoadStop(v1load);
    dtLoadStop(v2load);

    /* No request failed, and every decision is everywhere. */
    char why[256];
    assert_int_equal(dtLoadFailed(v1load, why, sizeof(why)), 0);
    assert_int_equal(dtLoadFailed(v2load, why, sizeof(why)), 0);
    size_t n1, n2;
    const dtLoadPost *p1 = dtLoadPosts(v1load, &n1), *p2 = dtLoadPosts(v2load, &n2);
    fprintf(stderr, "rollout: %zu v1 and %zu v2 decisions posted, none failed\n", n1, n2);
    dtLoadPost *all = malloc((n1 + n2) * sizeof(*all));
    memcpy(all, p1, n1 * sizeof(*all));
    memcpy(all + n1, p2, n2 * sizeof(*all));
    assert_int_equal(dtMetric(&proc.http, "stream_dlq_total"), 0);
    assertEverywhere(all, n1 + n2, (long)n1, (long)n2);

    /* A new store started empty reads the whole topic, v1 records included. */
    dtApi fresh = {.port = dtFreePort()};
    snprintf(fresh.url, sizeof(fresh.url), "http://127.0.0.1:%d", fresh.port);
    char freshdir[320];
    snprintf(freshdir, sizeof(freshdir), "%s-fresh", vsdir);
    pid_t f = startStoreOn(freshdir, &fresh, "variable-store-fresh", false);
    assert_true(f > 0);
    assert_int_equal(storeCount(&fresh, merchantV1), (long)n1);
    assert_int_equal(storeCount(&fresh, merchantV2), (long)n2);
    assert_int_equal(dtStop(f, SIGTERM), 0);

    free(all);
    dtLoadFree(v1load);
    dtLoadFree(v2load);
    json_decref(d1);
    json_decref(d2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_to_v2_under_load),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
