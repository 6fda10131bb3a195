/* test_vspressure.c - the variable store under pressure: the ingest queue
 * is capped by requests and bytes (503 + Retry-After beyond, every request
 * let in applied); a full LMDB map pauses consumption and refuses ingest,
 * says so in /readyz and /metrics, and goes on once a sweep frees room or
 * after a restart with a larger map, counting every decision exactly once;
 * a store restarted full sweeps before consuming; reader slots of processes
 * killed -9 are cleared. Real dev-kafka, real processes; the other LMDB
 * processes (a writer holding the write lock, a reader killed -9) are
 * children of this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ds/codec.h"
#include "harness.h"

#define HOUR_MS 3600000LL
#define SMALL_MAP (1 << 20)

static dtKafka kafka;
static char tmp[64], varsfile[128], tokensfile[128];
static dsCodec *codec;
static rd_kafka_t *producer;
static pid_t running[8]; /* stores and children a failed test leaves behind, killed by its teardown */

static void track(pid_t pid) {
    for (int i = 0; i < 8; i++)
        if (running[i] <= 0) {
            running[i] = pid;
            return;
        }
}

static void untrack(pid_t pid) {
    for (int i = 0; i < 8; i++)
        if (running[i] == pid) running[i] = 0;
}

static int killLeftovers(void **state) {
    for (int i = 0; i < 8; i++)
        if (running[i] > 0) kill(running[i], SIGKILL), waitpid(running[i], NULL, 0), running[i] = 0;
    return 0;
}

/* One store process: its port, directory and environment. */
typedef struct store {
    dtApi at;
    pid_t pid;
    char dir[128];
    char env[8][160];
} store;

static int64_t nowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool healthy(void *at) {
    dtResponse r;
    bool up = dtHttp(at, "GET", "/healthz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return up;
}

/* Starts a store on name's directory (kept across restarts) with extra
 * settings ("NAME=value", NULL-terminated); waits for /healthz only, since
 * a full store is not ready. */
static bool storeStart(store *s, const char *name, const char *const *extra) {
    const char *env[24];
    size_t n = 0;
    if (s->at.port == 0) {
        s->at.port = dtFreePort();
        snprintf(s->at.url, sizeof(s->at.url), "http://127.0.0.1:%d", s->at.port);
        snprintf(s->dir, sizeof(s->dir), "%s/%s", tmp, name);
    }
    snprintf(s->env[0], sizeof(s->env[0]), "VARSTORE_DATA_DIR=%s", s->dir);
    snprintf(s->env[1], sizeof(s->env[1]), "VARSTORE_LISTEN_PORT=%d", s->at.port);
    snprintf(s->env[2], sizeof(s->env[2]), "VARSTORE_VARIABLES_FILE=%s", varsfile);
    snprintf(s->env[3], sizeof(s->env[3]), "VARSTORE_GROUP_ID=%s", name);
    snprintf(s->env[4], sizeof(s->env[4]), "VARSTORE_TOKENS_FILE=%s", tokensfile);
    for (int i = 0; i < 5; i++) env[n++] = s->env[i];
    env[n++] = "VARSTORE_LOG_LEVEL=warn";
    env[n++] = "VARSTORE_REGISTRY_URL=";
    env[n++] = "VARSTORE_BATCH_WAIT=5ms";
    env[n++] = "VARSTORE_SESSION_TIMEOUT=3s";
    env[n++] = "VARSTORE_GROUP_INSTANCE_ID=none";
    for (size_t i = 0; extra && extra[i] && n < 23; i++) env[n++] = extra[i];
    env[n] = NULL;
    s->pid = dtSpawn("variable-store", NULL, env);
    if (s->pid > 0) track(s->pid);
    return s->pid > 0 && dtWaitFor(healthy, &s->at, 30000);
}

static int storeStop(store *s) {
    int rc = dtStop(s->pid, SIGTERM);
    untrack(s->pid);
    s->pid = -1;
    return rc;
}

/* One variable over a two-hour window: events are kept 2 h + 1 h of slack. */
static int setup(void **state) {
    char err[512];
    snprintf(tmp, sizeof(tmp), "/tmp/vspressure-XXXXXX");
    if (mkdtemp(tmp) == NULL) return -1;
    snprintf(varsfile, sizeof(varsfile), "%s/variables.json", tmp);
    FILE *f = fopen(varsfile, "w");
    if (f == NULL) return -1;
    fputs("{\"entities\": [{\"name\": \"customer\", \"key\": \"customer_id\", \"variables\": ["
          "{\"name\": \"decision_count_2h\", \"aggregation\": \"count\", \"window\": \"2h\"}]}]}\n",
          f);
    fclose(f);
    snprintf(tokensfile, sizeof(tokensfile), "%s/tokens", tmp);
    if (!dtWriteTokens(tokensfile)) return -1;
    if ((codec = dsCodecNew(err, sizeof(err))) == NULL) return print_error("codec: %s\n", err), -1;
    /* dev-kafka with this test's topics made at start: a consumer
     * subscribed to a topic that does not exist yet may take minutes to
     * see it */
    char bp[16], cp[16];
    kafka.port = dtFreePort();
    int control = dtFreePort();
    snprintf(kafka.control.url, sizeof(kafka.control.url), "http://127.0.0.1:%d", control);
    snprintf(bp, sizeof(bp), "%d", kafka.port);
    snprintf(cp, sizeof(cp), "%d", control);
    const char *args[] = {"--listen-port", bp, "--control-port", cp, "--log-level", "warn",
                          "--topics", "decisions-sweep:3,decisions-grow:3", "--group-initial-rebalance-delay", "200ms",
                          NULL};
    kafka.pid = dtSpawn("dev-kafka", args, NULL);
    return kafka.pid > 0 && dtWaitFor(healthy, &kafka.control, 20000) ? 0 : -1;
}

static int teardown(void **state) {
    if (producer) rd_kafka_destroy(producer);
    dsCodecFree(codec);
    int rc = dtKafkaStop(&kafka);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    free(dtCapture(cmd));
    return rc == 0 ? 0 : -1;
}

/* A decision document of customer at decided_at ms. */
static json_t *decision(const char *customer, int64_t ms) {
    char id[37], at[32];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    size_t n = strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", gmtime_r(&s, &tm));
    snprintf(at + n, sizeof(at) - n, ".%03dZ", (int)(ms % 1000));
    dtUuid(id);
    json_t *doc = dtFixture("decision.json");
    json_object_set_new(doc, "decision_id", json_string(id));
    json_object_set_new(doc, "customer_id", json_string(customer));
    json_object_set_new(doc, "decided_at", json_string(at));
    return doc;
}

/* {"decisions": [n decisions of customer, now]} */
static char *ingestBody(const char *customer, int n) {
    json_t *list = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(list, decision(customer, nowMs() - i));
    json_t *body = json_pack("{s:o}", "decisions", list);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

static double metric(const store *s, const char *name) {
    return dtMetric(&s->at, name);
}

typedef struct metricIs {
    const store *s;
    const char *name;
    double value;
} metricIs;

static bool metricEquals(void *arg) {
    metricIs *m = arg;
    return metric(m->s, m->name) == m->value;
}

static bool waitMetric(const store *s, const char *name, double value, int timeout_ms) {
    metricIs m = {s, name, value};
    if (dtWaitFor(metricEquals, &m, timeout_ms)) return true;
    print_error("%s is %g, not %g\n", name, metric(s, name), value);
    return false;
}

/* decision_count_2h of one customer, -1 on error. */
static long countOf(const store *s, const char *customer) {
    char path[256];
    dtResponse r;
    long n = -1;
    snprintf(path, sizeof(path), "/v1/variables/customer/%s", customer);
    if (dtHttp(&s->at, "GET", path, DT_LOOKUP_TOKEN, NULL, NULL, 0, &r) && r.status == 200)
        n = (long)json_integer_value(json_object_get(json_object_get(r.json, "variables"), "decision_count_2h"));
    dtResponseFree(&r);
    return n;
}

/* ---- other LMDB processes ------------------------------------------- */

/* A child that opens dir and begins a transaction (a write one unless
 * read_only), then says so on the returned pipe and waits for a byte on
 * *release before aborting it and exiting. -1 on failure. */
static pid_t lmdbChild(const char *dir, bool read_only, int *release) {
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        char c = 1;
        close(ready[0]), close(go[1]);
        if (mdb_env_create(&env) || mdb_env_set_mapsize(env, SMALL_MAP) ||
            mdb_env_open(env, dir, MDB_NOTLS | (read_only ? MDB_RDONLY : 0), 0640) ||
            mdb_txn_begin(env, NULL, read_only ? MDB_RDONLY : 0, &txn))
            _exit(2);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(3);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(0);
    }
    close(ready[1]), close(go[0]);
    char c;
    bool ok = pid > 0 && read(ready[0], &c, 1) == 1;
    close(ready[0]);
    *release = go[1];
    if (!ok && pid > 0) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    if (ok) track(pid);
    return ok ? pid : -1;
}

static int childExit(pid_t pid) {
    int st;
    untrack(pid);
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A child posting body to the store: exits 0 on a 200 that counted n. */
static pid_t postChild(const store *s, const char *body, int n) {
    pid_t pid = fork();
    if (pid == 0) {
        dtResponse r;
        bool ok = dtHttp(&s->at, "POST", "/v1/decisions:ingest", DT_INGEST_TOKEN, "application/json", body,
                         strlen(body), &r) &&
                  r.status == 200 && json_integer_value(json_object_get(r.json, "counted")) == n;
        if (!ok) fprintf(stderr, "ingest child: %ld %s\n", r.status, r.body ? r.body : "");
        _exit(ok ? 0 : 1);
    }
    if (pid > 0) track(pid);
    return pid;
}

static void expect503(const store *s, const char *body, const char *code, const char *says) {
    dtResponse r;
    assert_true(
        dtHttp(&s->at, "POST", "/v1/decisions:ingest", DT_INGEST_TOKEN, "application/json", body, strlen(body), &r));
    if (r.status != 503) fprintf(stderr, "%ld %s\n", r.status, r.body);
    assert_int_equal(r.status, 503);
    assert_string_not_equal(r.retry_after, "");
    assert_string_equal(json_string_value(json_object_get(r.json, "error")), code);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(msg);
    if (strstr(msg, says) == NULL) fprintf(stderr, "message: %s\n", msg);
    assert_non_null(strstr(msg, says));
    dtResponseFree(&r);
}

/* ---- the ingest queue ---------------------------------------------- */

/* With the writer held up (another process holds LMDB's write lock), ingest
 * requests pile up: at three requests, or when one more would pass 16 KiB,
 * the store answers 503 with Retry-After at once. Every request let in is
 * applied once the lock is released; one request alone is always let in. */
static void test_ingest_queue_is_capped(void **state) {
    store s = {0};
    const char *extra[] = {"VARSTORE_BROKERS=", "VARSTORE_INGEST_QUEUE_MAX=3", "VARSTORE_INGEST_QUEUE_BYTES=16KiB",
                           NULL};
    assert_true(storeStart(&s, "queue", extra));
    int release;
    pid_t locker = lmdbChild(s.dir, false, &release);
    assert_true(locker > 0);
    char *small[4], *big = ingestBody("q-big", 30);
    for (int i = 0; i < 4; i++) small[i] = ingestBody("q-small", 2);
    assert_true(strlen(small[0]) < 4096 && strlen(big) > 16384);
    pid_t posters[3];
    for (int i = 0; i < 2; i++) {
        posters[i] = postChild(&s, small[i], 2);
        assert_true(waitMetric(&s, "variable_store_ingest_queue_requests", i + 1, 10000));
    }
    expect503(&s, big, "overloaded", "--ingest-queue-bytes");
    posters[2] = postChild(&s, small[2], 2);
    assert_true(waitMetric(&s, "variable_store_ingest_queue_requests", 3, 10000));
    expect503(&s, small[3], "overloaded", "--ingest-queue-max");
    assert_true(metric(&s, "variable_store_counted_total") == 0);

    assert_int_equal(write(release, "x", 1), 1);
    close(release);
    assert_int_equal(childExit(locker), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(childExit(posters[i]), 0);
    assert_true(waitMetric(&s, "variable_store_ingest_queue_requests", 0, 10000));
    assert_true(metric(&s, "variable_store_ingest_queue_bytes") == 0);
    assert_true(metric(&s, "variable_store_counted_total") == 6);
    assert_true(metric(&s, "variable_store_ingest_refused_total") == 2);
    assert_int_equal(countOf(&s, "q-small"), 6);
    /* alone, the request over the byte cap goes in */
    pid_t p = postChild(&s, big, 30);
    assert_int_equal(childExit(p), 0);
    assert_int_equal(countOf(&s, "q-big"), 30);
    for (int i = 0; i < 4; i++) free(small[i]);
    free(big);
    assert_int_equal(storeStop(&s), 0);
}

/* ---- stale readers --------------------------------------------------- */

/* Whether pid holds a slot in dir's reader table (mdb_reader_list). */
static int listLine(const char *msg, void *ctx) {
    char *out = ctx;
    strncat(out, msg, 4095 - strlen(out));
    return 0;
}

static bool readerOf(MDB_env *env, pid_t pid) {
    char text[4096] = "", *line, *save = NULL;
    mdb_reader_list(env, listLine, text);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (atol(line) == (long)pid) return true;
    return false;
}

static pid_t deadReader(const char *dir) {
    int release;
    pid_t pid = lmdbChild(dir, true, &release);
    assert_true(pid > 0);
    kill(pid, SIGKILL);
    assert_int_equal(childExit(pid), 128 + SIGKILL);
    close(release);
    return pid;
}

typedef struct readerGone {
    MDB_env *env;
    pid_t pid;
} readerGone;

static bool readerCleared(void *arg) {
    readerGone *g = arg;
    return !readerOf(g->env, g->pid);
}

/* A reader killed -9 leaves its slot, pinning its snapshot: the writer's
 * periodic check clears it, and so does the check at start. This process
 * keeps the environment open, as a replica would, so that a restarted store
 * is not its first user (which would reset the table anyway). */
static void test_stale_readers_are_cleared(void **state) {
    store s = {0};
    const char *extra[] = {"VARSTORE_BROKERS=", "VARSTORE_READER_CHECK_INTERVAL=100ms", NULL};
    assert_true(storeStart(&s, "readers", extra));
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, s.dir, MDB_RDONLY | MDB_NOTLS, 0640), 0);

    readerGone g = {env, deadReader(s.dir)};
    assert_true(dtWaitFor(readerCleared, &g, 10000));
    assert_true(waitMetric(&s, "variable_store_stale_readers_cleared_total", 1, 10000));

    /* at start: the interval is long, only the check at open can clear it */
    assert_int_equal(storeStop(&s), 0);
    g.pid = deadReader(s.dir);
    assert_true(readerOf(env, g.pid));
    const char *slow[] = {"VARSTORE_BROKERS=", "VARSTORE_READER_CHECK_INTERVAL=1h", NULL};
    assert_true(storeStart(&s, "readers", slow));
    assert_false(readerOf(env, g.pid));
    assert_true(metric(&s, "variable_store_stale_readers_cleared_total") == 1);
    mdb_env_close(env);
    assert_int_equal(storeStop(&s), 0);
}

/* ---- a full map ------------------------------------------------------ */

static bool startProducer(void) {
    return (producer = dtKafkaProducer(&kafka, NULL)) != NULL;
}

/* n decisions onto topic, of customers "<prefix>-<k mod 10>" with 100-byte
 * ids (so that a small map fills fast), decided at ms. */
static void produce(const char *topic, const char *prefix, int n, int64_t ms) {
    if (producer == NULL) assert_true(startProducer());
    for (int k = 0; k < n; k++) {
        char customer[128], err[256];
        unsigned char buf[8192];
        snprintf(customer, sizeof(customer), "%s-%d-%0*d", prefix, k % 10, 100 - (int)strlen(prefix) - 3, 0);
        json_t *doc = decision(customer, ms - k % 1000);
        avro_value_t v;
        dsCodecError e;
        assert_true(dsCodecNewValue(codec, &v));
        assert_true(dsCodecFromJson(codec, doc, &v, &e));
        assert_true(dsCodecSetServerFields(codec, &v, nowMs(), dsCodecCurrentVersion(codec)));
        size_t len = dsCodecEncodeWire(codec, &v, buf, sizeof(buf), err, sizeof(err));
        assert_true(len > 0 && len <= sizeof(buf));
        avro_value_decref(&v);
        json_decref(doc);
        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(customer, strlen(customer)),
                                 RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 100);
    }
    assert_int_equal(rd_kafka_flush(producer, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* The id of customer k of a prefix, as produce() makes it. */
static void customerId(const char *prefix, int k, char out[128]) {
    snprintf(out, 128, "%s-%d-%0*d", prefix, k, 100 - (int)strlen(prefix) - 3, 0);
}

typedef struct fillState {
    const store *s;
    double produced;
} fillState;

/* The store read everything produced, or found its map full. */
static bool settled(void *arg) {
    fillState *f = arg;
    return metric(f->s, "variable_store_map_full") == 1 ||
           metric(f->s, "variable_store_kafka_messages_total") >= f->produced;
}

/* Produces old (or fresh) decisions in rounds of 1000 until every store in
 * stores[0..n) is full; returns how many were produced. */
static int fillUntilFull(const char *topic, const char *prefix, int64_t ms, store **stores, int n) {
    int produced = 0;
    for (int round = 0; round < 40; round++) {
        produce(topic, prefix, 1000, ms);
        produced += 1000;
        int full = 0;
        for (int i = 0; i < n; i++) {
            fillState fs = {stores[i], produced};
            assert_true(dtWaitFor(settled, &fs, 30000));
            full += metric(stores[i], "variable_store_map_full") == 1;
        }
        if (full == n) return produced;
    }
    fail_msg("the map never filled");
    return 0;
}

/* What a full store says: /readyz 503 naming the map, the gauges, ingest
 * refused with Retry-After. */
static void expectFull(const store *s) {
    dtResponse r;
    assert_true(dtHttp(&s->at, "GET", "/readyz", NULL, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 503);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "LMDB map is full"));
    dtResponseFree(&r);
    assert_true(metric(s, "variable_store_map_full") == 1);
    assert_true(metric(s, "variable_store_map_full_total") >= 1);
    assert_true(metric(s, "variable_store_map_bytes") == SMALL_MAP);
    assert_true(metric(s, "variable_store_used_bytes") > SMALL_MAP / 2);
    char *body = ingestBody("while-full", 1);
    expect503(s, body, "unavailable", "--map-size");
    free(body);
}

/* Every decision read once by this process (read of the produced ones):
 * counted, or expired for those read after their time, none twice, none
 * counted in a batch that was aborted; and each fresh customer's count
 * exact. */
static void expectExactlyOnce(const store *s, double read, const char *fresh, int nfresh) {
    assert_true(waitMetric(s, "variable_store_kafka_messages_total", read, 30000));
    assert_true(metric(s, "variable_store_duplicates_total") == 0);
    assert_true(metric(s, "variable_store_counted_total") + metric(s, "variable_store_expired_total") == read);
    for (int k = 0; k < 10; k++) {
        char id[128];
        customerId(fresh, k, id);
        assert_int_equal(countOf(s, id), nfresh / 10);
    }
}

/* Two stores fill their small maps with decisions that leave every window
 * (2 h + 1 h of slack) EXPIRE_MS after the test starts, then fresh ones
 * arrive (start and filling take 2-4 s, ASan included: the rest is the
 * wait for the expiry). One stays up: it pauses, refuses, and goes on by
 * itself once its sweep deletes the expired ones. The other is stopped
 * full and restarted after they expired: it sweeps before consuming, so it
 * never finds its map full again. Both end with every decision counted
 * once. */
static void test_full_map_waits_for_the_sweep(void **state) {
    enum { EXPIRE_MS = 15000 };
    const char *topic = "decisions-sweep";
    int64_t start = nowMs(), expiry = start + EXPIRE_MS;
    store a = {0}, b = {0};
    const char *extra[] = {"VARSTORE_MAP_SIZE=1MiB", "VARSTORE_SWEEP_INTERVAL=200ms", "VARSTORE_MAX_BATCH=200",
                           "VARSTORE_TOPIC=decisions-sweep", NULL};
    char brokers[64];
    snprintf(brokers, sizeof(brokers), "VARSTORE_BROKERS=127.0.0.1:%d", kafka.port);
    const char *withBrokers[8] = {brokers};
    for (int i = 0; extra[i]; i++) withBrokers[i + 1] = extra[i];
    assert_true(storeStart(&a, "sweep-a", withBrokers));
    assert_true(storeStart(&b, "sweep-b", withBrokers));
    assert_true(dtWaitReady(&a.at, 30000) && dtWaitReady(&b.at, 30000));
    store *both[] = {&a, &b};
    int produced = fillUntilFull(topic, "old", expiry - 3 * HOUR_MS, both, 2);
    if (nowMs() > expiry - 5000) fail_msg("filling took %lld ms: too long to test anything", (long long)(nowMs() - start));
    produce(topic, "fresh", 1000, nowMs());
    produced += 1000;
    expectFull(&a);
    expectFull(&b);
    double consumed = metric(&b, "variable_store_kafka_messages_total");
    assert_int_equal(storeStop(&b), 0);

    assert_true(waitMetric(&a, "variable_store_map_full", 0, 60000));
    assert_true(dtWaitReady(&a.at, 30000));
    expectExactlyOnce(&a, produced, "fresh", 1000);
    assert_true(metric(&a, "variable_store_swept_total") > 0);

    /* only the sweep at start can make room before the first batch */
    withBrokers[2] = "VARSTORE_SWEEP_INTERVAL=1h";
    assert_true(storeStart(&b, "sweep-b", withBrokers));
    assert_true(dtWaitReady(&b.at, 30000));
    expectExactlyOnce(&b, produced - consumed, "fresh", 1000);
    assert_true(metric(&b, "variable_store_map_full_total") == 0);
    assert_int_equal(storeStop(&a), 0);
    assert_int_equal(storeStop(&b), 0);
}

/* Decisions that stay in their window fill the map: nothing frees room, so
 * the store waits; restarted with a larger map it goes on from its last
 * commit, and every decision is counted once. */
static void test_full_map_goes_on_with_a_larger_one(void **state) {
    const char *topic = "decisions-grow";
    store s = {0};
    char brokers[64];
    snprintf(brokers, sizeof(brokers), "VARSTORE_BROKERS=127.0.0.1:%d", kafka.port);
    const char *small[] = {brokers, "VARSTORE_MAP_SIZE=1MiB", "VARSTORE_MAX_BATCH=200",
                           "VARSTORE_TOPIC=decisions-grow", NULL};
    assert_true(storeStart(&s, "grow", small));
    assert_true(dtWaitReady(&s.at, 30000));
    store *one[] = {&s};
    int produced = fillUntilFull(topic, "grow", nowMs(), one, 1);
    expectFull(&s);
    double consumed = metric(&s, "variable_store_kafka_messages_total");
    assert_true(consumed < produced);
    assert_int_equal(storeStop(&s), 0);

    const char *larger[] = {brokers, "VARSTORE_MAP_SIZE=8MiB", "VARSTORE_MAX_BATCH=200",
                            "VARSTORE_TOPIC=decisions-grow", NULL};
    assert_true(storeStart(&s, "grow", larger));
    assert_true(dtWaitReady(&s.at, 30000));
    expectExactlyOnce(&s, produced - consumed, "grow", produced);
    assert_true(metric(&s, "variable_store_map_full") == 0);
    assert_int_equal(storeStop(&s), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ingest_queue_is_capped, killLeftovers),
        cmocka_unit_test_teardown(test_stale_readers_are_cleared, killLeftovers),
        cmocka_unit_test_teardown(test_full_map_waits_for_the_sweep, killLeftovers),
        cmocka_unit_test_teardown(test_full_map_goes_on_with_a_larger_one, killLeftovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
