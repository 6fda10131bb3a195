/* test_exactlyonce.c - the stream processor's exactly-once delivery on a
 * single-node Apache Kafka (plaintext) under a steady load of decisions
 * posted through the API: the processor killed with SIGKILL at random
 * points and started again (KILLS times, default 20); a zombie processor
 * paused until PostgreSQL dropped its replication session, a second one
 * started on the same slot, then the first resumed; a processor stalled
 * past its transaction timeout; the broker restarted mid-transaction;
 * PostgreSQL restarted mid-batch. decision-archiver consumes the topic
 * throughout (read_committed), and its archive must hold every decision
 * once as well.
 *
 * What is checked is read from outside the processor. The topic is read
 * back with isolation.level=read_committed by Apache Kafka's own Java
 * consumer (kafka-console-consumer, run by kafka-cluster.sh): a client that
 * shares no code with the processor (Debian's kafka-python 2.0.2 always
 * fetches read_uncommitted and keeps aborted records). PostgreSQL tells
 * what was committed and in which order: a second slot, decoded with
 * test_decoding, gives every decision's commit position. After each case
 * the whole topic must hold every committed decision exactly once and
 * nothing else, every decision the API acknowledged among them, and the
 * records of each customer (the key) in commit order within its partition.
 *
 * DELIVERY=at-least-once runs the same cases against the old mode, which
 * shows duplicates after the kills: the test can fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "broker.h"
#include "harness.h"
#include "load.h"

#define TOPIC "decisions"
#define SLOT "decisions_stream"
#define CHECK_SLOT "eos_check"
/* 3 threads posting every 20 ms: about 150 decisions/s. */
#define LOADERS 3
#define LOAD_INTERVAL_MS 20
#define CUSTOMERS 40
#define DRAIN_MS 60000

static dtBroker broker;
static dtPg pg;
static dtApi api;
static dtStream proc;
static dtApi archHttp; /* the archiver's metrics */
static pid_t archiver = -1;
static char archive[300];
static const char *delivery;  /* the mode under test */

static long long monoMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t pgLsn(const char *sql) {
    return dtPgLsn(&pg, sql);
}

static uint64_t slotLsn(void) {
    return pgLsn("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" SLOT "'");
}

static bool slotReached(void *arg) {
    return slotLsn() >= *(uint64_t *)arg;
}

static bool slotInactive(void *arg) {
    char *v = dtPgScalar(&pg, "SELECT active FROM pg_replication_slots WHERE slot_name = '" SLOT "'");
    bool inactive = v && strcmp(v, "f") == 0;
    free(v);
    return inactive;
}

/* ---- what PostgreSQL committed ---------------------------------------------- */

typedef dtCommit commit;

static commit *commits; /* every decision committed since setup, sorted by id */
static size_t ncommits;

static int commitById(const void *a, const void *b) {
    return strcmp(((const commit *)a)->id, ((const commit *)b)->id);
}

/* Adds the decisions committed since the last call (consumes the check
 * slot); false on error (printed). */
static bool takeCommits(void) {
    size_t n;
    dtCommit *got = dtPgTakeCommits(&pg, CHECK_SLOT, &n);
    commits = realloc(commits, (ncommits + n + 1) * sizeof(*commits));
    for (size_t i = 0; i < n; i++) commits[ncommits++] = got[i];
    qsort(commits, ncommits, sizeof(*commits), commitById);
    bool ok = got != NULL;
    free(got);
    return ok;
}

static const commit *findCommit(const char *id) {
    commit key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return bsearch(&key, commits, ncommits, sizeof(commit), commitById);
}

/* ---- the topic read back, read_committed ---------------------------------- */

typedef struct rec {
    char id[37];
    char key[40];
    int partition;
    long offset;
} rec;

static int recById(const void *a, const void *b) {
    return strcmp(((const rec *)a)->id, ((const rec *)b)->id);
}

static int recByPosition(const void *a, const void *b) {
    const rec *x = a, *y = b;
    if (x->partition != y->partition) return x->partition - y->partition;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* One "Partition:P\tOffset:O\tdecision_id:ID\tKEY" line into r. */
static bool parseLine(const char *line, rec *r) {
    const char *h = strstr(line, "decision_id:");
    const char *key = strrchr(line, '\t');
    if (sscanf(line, "Partition:%d\tOffset:%ld", &r->partition, &r->offset) != 2 || h == NULL || key == NULL)
        return false;
    snprintf(r->id, sizeof(r->id), "%.36s", h + strlen("decision_id:"));
    snprintf(r->key, sizeof(r->key), "%s", key + 1);
    return true;
}

/* Every record of the topic as a consumer with isolation (read_committed
 * or read_uncommitted) sees it, in the order of the lines read
 * (partition, offset); *n gets the count. The consumer ends once no record
 * came for 3 s: the slot was confirmed past every decision before, so all
 * of them are on the topic already. NULL on error (printed). */
static rec *readTopic(const char *isolation, size_t *n) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "bash deploy/kafka-cluster.sh run %s org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server %s"
             " --topic " TOPIC " --from-beginning --isolation-level %s --timeout-ms 3000"
             " --property print.partition=true --property print.offset=true --property print.headers=true"
             " --property print.key=true --property print.value=false",
             broker.dir, broker.bootstrap, isolation);
    char *out = NULL;
    dtRun(cmd, &out);
    size_t cap = 1024, bad = 0;
    long total = -1;
    rec *recs = malloc(cap * sizeof(rec));
    *n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "Processed a total of %ld messages", &total) == 1) continue;
        if (strncmp(line, "Partition:", 10) != 0) continue;
        if (*n == cap) recs = realloc(recs, (cap *= 2) * sizeof(rec));
        if (parseLine(line, &recs[*n])) (*n)++;
        else if (bad++ < 3) fprintf(stderr, "consumer: unexpected line %s\n", line);
    }
    if (total != (long)*n || bad) {
        fprintf(stderr, "consumer: %zu records parsed, %zu lines not, the consumer says %ld\n", *n, bad, total);
        free(recs);
        recs = NULL;
    }
    free(out);
    return recs;
}

/* ---- the processor -------------------------------------------------------- */

/* A processor on the slot in the mode under test, its status every 100 ms
 * (the slot follows Kafka's acknowledgements closely). */
/* extra: one more "NAME=value" or NULL. */
static bool startProcWith(dtStream *s, const char *extra) {
    dtBrokerEnv e;
    char mode[64];
    snprintf(mode, sizeof(mode), "STREAM_DELIVERY=%s", delivery);
    const char *const own[] = {"STREAM_STATUS_INTERVAL=100ms", extra, mode, NULL};
    const char *env[16];
    return dtStreamStartOn(s, &pg, NULL, dtEnvJoin(env, 16, dtBrokerClientEnv(&broker, "STREAM_", &e), own));
}

static bool startProc(dtStream *s) {
    return startProcWith(s, NULL);
}

static bool procAlive(const dtStream *s) {
    return s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
}

/* SIGKILL, reaped. */
static void killProc(dtStream *s) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

static dtLoad *loading; /* the load of the case running, until it is checked */

/* A case that failed half-way leaves its load posting: stopped here, so
 * that the next case counts only its own. */
static void endLoad(void) {
    if (loading == NULL) return;
    dtLoadStop(loading);
    dtLoadFree(loading);
    loading = NULL;
}

static dtLoad *startLoad(void) {
    endLoad();
    json_t *doc = dtFixture("decision.json");
    dtLoad *load = dtLoadStart(&api, LOADERS, LOAD_INTERVAL_MS, doc, 0);
    json_decref(doc);
    assert_non_null(load);
    dtLoadSetCustomers(load, CUSTOMERS);
    return loading = load;
}

/* ---- the check every case ends with --------------------------------------- */

typedef struct tally {
    size_t records, missing, doubled, extra, unordered, unacked_lost;
} tally;

/* Each committed decision on the topic once, nothing else on it. */
static void countCopies(rec *byId, size_t n, tally *t) {
    size_t i = 0;
    for (size_t c = 0; c < ncommits; c++) {
        while (i < n && strcmp(byId[i].id, commits[c].id) < 0) {
            if (t->extra++ < 3) fprintf(stderr, "%s on the topic, never committed\n", byId[i].id);
            i++;
        }
        size_t copies = 0;
        while (i < n && strcmp(byId[i].id, commits[c].id) == 0) copies++, i++;
        if (copies == 0 && t->missing++ < 3) fprintf(stderr, "%s committed, not on the topic\n", commits[c].id);
        if (copies > 1 && t->doubled++ < 3) fprintf(stderr, "%s on the topic %zu times\n", commits[c].id, copies);
    }
    t->extra += n - i;
}

/* Within a partition, each key's records in commit order. byPos is
 * sorted by position. */
static void countUnordered(const rec *byPos, size_t n, tally *t) {
    struct last {
        char key[40];
        int partition;
        uint64_t lsn;
    } seen[4 * CUSTOMERS + 16];
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) {
        const commit *k = findCommit(byPos[i].id);
        if (k == NULL) continue; /* counted as extra */
        size_t j = 0;
        while (j < nseen && (seen[j].partition != byPos[i].partition || strcmp(seen[j].key, byPos[i].key) != 0)) j++;
        if (j == nseen && nseen < sizeof(seen) / sizeof(seen[0])) {
            snprintf(seen[j].key, sizeof(seen[j].key), "%s", byPos[i].key);
            seen[j].partition = byPos[i].partition;
            seen[j].lsn = 0;
            nseen++;
        }
        if (j == nseen) continue;
        if (k->lsn < seen[j].lsn && t->unordered++ < 3)
            fprintf(stderr, "%s (key %s) at %d/%ld committed before the record ahead of it\n", byPos[i].id,
                    byPos[i].key, byPos[i].partition, byPos[i].offset);
        if (k->lsn > seen[j].lsn) seen[j].lsn = k->lsn;
    }
}

/* readTopic() again while a read got nothing: on a fresh broker the
 * consumer's group coordinator may still be loading when its idle timeout
 * ends the read. A read that got anything got all (the records were there
 * before it began). */
static rec *readTopicRetried(const char *isolation, size_t *n) {
    rec *recs = NULL;
    *n = 0;
    for (int attempt = 0; attempt < 4 && (recs == NULL || *n == 0); attempt++) {
        free(recs);
        recs = readTopic(isolation, n);
    }
    return recs;
}

/* The end of a case: the load stopped, everything committed confirmed by
 * the processor, the topic read back and checked. */
static void checkExactlyOnce(const char *name, dtLoad *load) {
    dtLoadStop(load); /* freed by endLoad(), even when a check fails */
    bool drained = dtPgWaitSlotCaughtUp(&pg, SLOT, DRAIN_MS);
    if (!drained) fprintf(stderr, "%s: the slot did not catch up within %d ms\n", name, DRAIN_MS);
    assert_true(drained);
    assert_true(takeCommits());
    char *rows = dtPgScalar(&pg, "SELECT count(*) FROM decisions");
    assert_non_null(rows);
    assert_int_equal(atol(rows), (long)ncommits);
    free(rows);
    size_t n;
    rec *recs = readTopicRetried("read_committed", &n);
    assert_non_null(recs);
    tally t = {.records = n};
    qsort(recs, n, sizeof(rec), recByPosition);
    countUnordered(recs, n, &t);
    qsort(recs, n, sizeof(rec), recById);
    countCopies(recs, n, &t);
    size_t nposts;
    const dtLoadPost *posts = dtLoadPosts(load, &nposts), *acked = NULL;
    for (size_t i = 0; i < nposts; i++)
        if (posts[i].status == 201 && !findCommit(posts[i].id) && t.unacked_lost++ == 0) acked = &posts[i];
    if (acked) fprintf(stderr, "%s: %s acknowledged by the API, not committed\n", name, acked->id);
    fprintf(stderr,
            "exactlyonce: %s (%s): %zu posts, %zu decisions committed so far; %zu committed records on the topic: %zu "
            "missing, %zu more than once, %zu never committed, %zu out of commit order\n",
            name, delivery, nposts, ncommits, t.records, t.missing, t.doubled, t.extra, t.unordered);
    free(recs);
    /* Transactions, not at-least-once by another name (auto falls back on a
     * cluster it takes for the mock). */
    double committed = dtMetric(&proc.http, "kafka_transactions_committed_total");
    fprintf(stderr, "exactlyonce: %s: the processor running now committed %.0f Kafka transactions, aborted %.0f\n",
            name, committed, dtMetric(&proc.http, "kafka_transactions_aborted_total"));
    if (strcmp(delivery, "exactly-once") == 0) assert_true(committed > 0);
    assert_true(nposts > 0);
    assert_int_equal(t.unacked_lost, 0);
    assert_int_equal(t.missing, 0);
    assert_int_equal(t.doubled, 0);
    assert_int_equal(t.extra, 0);
    assert_int_equal(t.unordered, 0);
}

/* ---- the archive ------------------------------------------------------------ */

static int idCmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The archive's finished files as python3-avro reads them, one line a
 * record ("<decision_id> <decided_at ms> <customer_id> <file>"), "rc=N"
 * last (malloc'd). */
static char *readArchive(void) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py %s; echo rc=$?", archive);
    return dtCapture(cmd);
}

static size_t lineCount(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* As many records in finished files as decisions committed (the archiver
 * closes each file 300 ms after its first record). */
static bool archivedAll(void *arg) {
    if (dtMetric(&archHttp, "archiver_records_total") < (double)ncommits) return false;
    char *out = readArchive();
    bool all = lineCount(out) >= ncommits + 1;
    free(out);
    return all;
}

/* Counts what out (readArchive()) holds against the commits: missing,
 * doubled and never committed; false if it did not read. */
static bool countArchive(char *out, tally *t) {
    size_t n = 0, cap = ncommits + 16;
    char **ids = malloc(cap * sizeof(char *)), *save = NULL;
    bool read = false;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "rc=", 3) == 0) {
            read = strcmp(line, "rc=0") == 0;
            continue;
        }
        if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof(char *));
        ids[n++] = strtok(line, " ");
    }
    qsort(ids, n, sizeof(char *), idCmp);
    size_t i = 0;
    for (size_t c = 0; c < ncommits; c++) {
        while (i < n && strcmp(ids[i], commits[c].id) < 0) t->extra++, i++;
        size_t copies = 0;
        while (i < n && strcmp(ids[i], commits[c].id) == 0) copies++, i++;
        if (copies == 0 && t->missing++ < 3) fprintf(stderr, "%s committed, not in the archive\n", commits[c].id);
        if (copies > 1 && t->doubled++ < 3) fprintf(stderr, "%s in the archive %zu times\n", commits[c].id, copies);
    }
    t->extra += n - i;
    t->records = n;
    free(ids);
    return read;
}

/* The archiver on the cluster, consuming since the start; false if it is
 * not ready within 30 s. */
static bool startArchiver(void) {
    char e_root[330], e_port[64], registry[128];
    archHttp.port = dtFreePort();
    snprintf(archHttp.url, sizeof(archHttp.url), "http://127.0.0.1:%d", archHttp.port);
    snprintf(archive, sizeof(archive), "%s/archive", pg.dir);
    snprintf(e_root, sizeof(e_root), "ARCHIVER_ARCHIVE=%s", archive);
    snprintf(e_port, sizeof(e_port), "ARCHIVER_METRICS_PORT=%d", archHttp.port);
    snprintf(registry, sizeof(registry), "ARCHIVER_REGISTRY_URL=%s", api.url);
    const char *own[] = {e_root, e_port, registry, "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_SESSION_TIMEOUT=6s",
                         "ARCHIVER_LOG_LEVEL=warn", NULL};
    const char *env[24];
    dtBrokerEnv be;
    archiver = dtSpawn("decision-archiver", NULL, dtEnvJoin(env, 24, dtBrokerClientEnv(&broker, "ARCHIVER_", &be), own));
    return archiver > 0 && dtWaitReady(&archHttp, 30000);
}

/* ---- setup ----------------------------------------------------------------- */

static int teardown(void **state) {
    endLoad();
    int rc = 0;
    if (archiver > 0 && dtStop(archiver, SIGTERM) != 0) rc = -1;
    archiver = -1;
    if (proc.pid > 0 && dtStreamStop(&proc) != 0) rc = -1;
    if (api.pid > 0) dtApiStop(&api);
    dtPgDestroy(&pg);
    if (!dtBrokerDestroy(&broker)) rc = -1;
    free(commits);
    curl_global_cleanup();
    return rc;
}

static int setup(void **state) {
    delivery = getenv("DELIVERY") && *getenv("DELIVERY") ? getenv("DELIVERY") : "exactly-once";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Broker restarts take the transaction coordinator with them: a small
     * transaction log loads fast. */
    static const char *const settings[] = {"transaction.state.log.num.partitions=3",
                                           /* a timed-out transaction is aborted within a second */
                                           "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000", NULL};
    if (!dtBrokerStart(&broker, 1, false, false, settings)) return -1;
    /* A paused processor loses its replication session within 2 s. */
    bool ok = dtPgStart(&pg) && dtPgExec(&pg, "ALTER SYSTEM SET wal_sender_timeout = '2s'") &&
              dtPgExec(&pg, "SELECT pg_reload_conf()") && dtApiStart(&api, &pg, NULL) &&
              dtPgExec(&pg, "SELECT pg_create_logical_replication_slot('" CHECK_SLOT "', 'test_decoding')");
    ok = ok && startProc(&proc) && startArchiver();
    if (!ok) teardown(state); /* cmocka runs no group teardown after a failed setup */
    return ok ? 0 : -1;
}

/* ---- the cases --------------------------------------------------------------- */

static int kills(void) {
    const char *k = getenv("KILLS");
    return k && atoi(k) > 0 ? atoi(k) : 20;
}

/* kill -9 at random points under load, each time started again: after each
 * start the processor confirms something new, then runs on for a random
 * number of posts (0 to 0.3 s) before the next kill. */
static void test_kill9_under_load(void **state) {
    unsigned seed = getenv("SEED") ? (unsigned)atol(getenv("SEED")) : (unsigned)time(NULL);
    fprintf(stderr, "exactlyonce: %d kills, SEED=%u\n", kills(), seed);
    srand(seed);
    dtLoad *load = startLoad();
    assert_true(dtLoadAdvance(load, 10));
    long long t0 = monoMs(), ready_ms = 0, confirm_ms = 0;
    for (int k = 0; k < kills(); k++) {
        uint64_t from = slotLsn() + 1;
        long long t = monoMs();
        assert_true(dtLoadAdvance(load, 1)); /* something to confirm */
        assert_true(dtWaitFor(slotReached, &from, 30000));
        confirm_ms += monoMs() - t;
        assert_true(dtLoadAdvance(load, rand() % 16));
        assert_true(procAlive(&proc));
        killProc(&proc);
        t = monoMs();
        assert_true(startProc(&proc));
        ready_ms += monoMs() - t;
    }
    fprintf(stderr,
            "exactlyonce: %d kills and restarts in %lld ms; on average %lld ms from the start to /readyz, %lld ms "
            "from there to confirming a decision posted after the start\n",
            kills(), monoMs() - t0, ready_ms / kills(), confirm_ms / kills());
    assert_true(dtLoadAdvance(load, 10));
    checkExactlyOnce("kill -9", load);
    /* The kills left transactions open, aborted by the next start: their
     * records are in the log, where a read_uncommitted consumer sees them;
     * the read_committed one above did not. */
    size_t all;
    rec *recs = readTopicRetried("read_uncommitted", &all);
    bool read = recs != NULL;
    free(recs);
    assert_true(read);
    fprintf(stderr, "exactlyonce: kill -9: %zu records in the log for read_uncommitted, %zu of aborted transactions\n",
            all, all > ncommits ? all - ncommits : 0);
    if (strcmp(delivery, "exactly-once") == 0) assert_true(all > ncommits);
}

/* A processor paused until PostgreSQL dropped its session, a second one on
 * the same slot, then the first resumed: fenced at its next Kafka commit,
 * it exits by itself with status 0 (so that a supervisor does not start it
 * again in a loop). */
static void test_fenced_zombie(void **state) {
    dtLoad *load = startLoad();
    assert_true(dtLoadAdvance(load, 10));
    dtStream zombie = proc;
    assert_int_equal(kill(zombie.pid, SIGSTOP), 0);
    bool dropped = dtWaitFor(slotInactive, NULL, 30000);
    bool second = dropped && startProc(&proc);
    bool more = second && dtLoadAdvance(load, 25);
    kill(zombie.pid, SIGCONT);
    int status = dtWaitExit(zombie.pid, 30000);
    if (proc.pid == zombie.pid) proc.pid = -1; /* no second one: nothing left to stop */
    fprintf(stderr, "exactlyonce: the zombie exited with status %d\n", status);
    assert_true(dropped && second && more);
    assert_int_equal(status, 0);
    assert_true(procAlive(&proc));
    assert_true(dtLoadAdvance(load, 10));
    checkExactlyOnce("fenced zombie", load);
}

/* The state of the processor's transactional id, as Kafka's own tool
 * describes it ("Ongoing", "CompleteAbort", ...), in state; false when the
 * tool says nothing of it. */
static bool txnState(char state[32]) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof(cmd),
             "bash deploy/kafka-cluster.sh run %s org.apache.kafka.tools.TransactionsCommand --bootstrap-server %s "
             "describe --transactional-id stream-processor-" SLOT,
             broker.dir, broker.bootstrap);
    dtRun(cmd, &out);
    /* a header line, then: CoordinatorId TransactionalId ProducerId ProducerEpoch TransactionState ... */
    char *row = strstr(out, "\n");
    bool ok = row && sscanf(row, " %*d stream-processor-" SLOT " %*d %*d %31s", state) == 1;
    free(out);
    return ok;
}

static bool txnTimedOut(void *arg) {
    char state[32];
    return txnState(state) && strcmp(state, "Ongoing") != 0 && strcmp(state, "PrepareCommit") != 0;
}

/* A processor stalled (SIGSTOP) with its Kafka transaction open, longer
 * than its transaction-timeout: the coordinator aborts the transaction and
 * fences the producer (epoch bump). On SIGCONT the processor finds itself
 * fenced, but no other process streams its slot: it is no zombie, and a new
 * producer takes over from the slot, rather than an exit that would leave
 * the stream stopped after any long Kafka stall. */
static void test_stalled_past_transaction_timeout(void **state) {
    if (strcmp(delivery, "exactly-once") != 0) skip(); /* fencing by the coordinator is a transactions' matter */
    assert_int_equal(dtStop(proc.pid, SIGTERM), 0);
    assert_true(startProcWith(&proc, "STREAM_TRANSACTION_TIMEOUT=3s"));
    dtLoad *load = startLoad();
    assert_true(dtLoadAdvance(load, 10));
    char st[32] = "";
    bool open = false;
    /* the stall must catch a transaction open: between two it is retried */
    for (int tries = 0; tries < 5 && !open; tries++) {
        assert_int_equal(kill(proc.pid, SIGSTOP), 0);
        open = txnState(st) && strcmp(st, "Ongoing") == 0;
        if (!open) {
            kill(proc.pid, SIGCONT);
            assert_true(dtLoadAdvance(load, 3));
        }
    }
    if (!open) fail_msg("no stall caught a transaction open (last state %s)", st);
    bool aborted = dtWaitFor(txnTimedOut, NULL, 30000);
    txnState(st);
    kill(proc.pid, SIGCONT);
    fprintf(stderr, "exactlyonce: stalled past the transaction timeout: the coordinator left it %s\n", st);
    assert_true(aborted);
    assert_true(dtWaitMetric(&proc.http, "kafka_producer_renewals_total", 1, 30000));
    assert_true(procAlive(&proc));
    assert_true(dtLoadAdvance(load, 10));
    checkExactlyOnce("stalled past the transaction timeout", load);
    assert_int_equal(dtStop(proc.pid, SIGTERM), 0); /* the later cases want the usual timeout */
    assert_true(startProc(&proc));
}

/* The node killed or stopped while posts go on, started again, and
 * everything committed meanwhile committed to Kafka. */
static void brokerDownAndBack(dtLoad *load, bool crash) {
    long long t0 = monoMs();
    assert_true(crash ? dtBrokerKill(&broker, 1) : dtBrokerStop(&broker, 1));
    assert_true(dtLoadAdvance(load, 5));
    long long t1 = monoMs();
    assert_true(dtBrokerRestart(&broker, 1));
    long long t2 = monoMs();
    assert_true(dtPgWaitSlotCaughtUp(&pg, SLOT, DRAIN_MS));
    fprintf(stderr, "exactlyonce: broker %s: %lld ms down, restarted in %lld ms, backlog committed %lld ms later\n",
            crash ? "killed" : "stopped", t1 - t0, t2 - t1, monoMs() - t2);
    assert_true(dtLoadAdvance(load, 10));
}

/* The broker restarted (one node: every partition and the transaction
 * coordinator) at a time when transactions are open, and it will be open
 * again by the time it is back. The node is stopped (SIGTERM);
 * BROKER_KILL=1 kills it (SIGKILL) first as well, which costs about 20 s
 * more: the log recovery of an unclean shutdown, and the producer's
 * reconnection backoff grown meanwhile. */
static void test_broker_restart(void **state) {
    dtLoad *load = startLoad();
    assert_true(dtLoadAdvance(load, 10));
    if (getenv("BROKER_KILL") && atoi(getenv("BROKER_KILL")) > 0) brokerDownAndBack(load, true);
    brokerDownAndBack(load, false);
    assert_true(procAlive(&proc));
    checkExactlyOnce("broker restart", load);
}

/* PostgreSQL restarted while the processor is streaming a batch. */
static void test_pg_restart(void **state) {
    dtLoad *load = startLoad();
    assert_true(dtLoadAdvance(load, 10));
    assert_true(dtPgStop(&pg) && dtPgRestart(&pg));
    /* The API answers again: posts succeed (some failed meanwhile). */
    assert_true(dtWaitReady(&api, 30000));
    assert_true(dtLoadAdvance(load, 10));
    assert_true(procAlive(&proc));
    checkExactlyOnce("PostgreSQL restart", load);
}

/* The archive, fed from the topic through every case, holds each committed
 * decision exactly once. */
static void test_archive_once(void **state) {
    bool all = dtWaitFor(archivedAll, NULL, 60000);
    char *out = readArchive();
    tally t = {0};
    bool read = countArchive(out, &t);
    free(out);
    fprintf(stderr, "exactlyonce: archive: %zu records for %zu decisions committed: %zu missing, %zu more than once, "
            "%zu never committed\n", t.records, ncommits, t.missing, t.doubled, t.extra);
    assert_true(all && read);
    assert_int_equal(t.missing, 0);
    assert_int_equal(t.doubled, 0);
    assert_int_equal(t.extra, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_under_load),
        cmocka_unit_test(test_fenced_zombie),
        cmocka_unit_test(test_stalled_past_transaction_timeout),
        cmocka_unit_test(test_broker_restart),
        cmocka_unit_test(test_pg_restart),
        cmocka_unit_test(test_archive_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
