/* test_pipeline.c - the whole pipeline on Apache Kafka over SASL_SSL: a
 * single-node KRaft cluster whose only client listener takes SCRAM-SHA-512
 * over TLS (kafka-cluster.sh's user, created at format time, and its own
 * CA). Decisions posted through the API go through PostgreSQL and the
 * stream processor onto `decisions`; the archiver and the variable store
 * consume them there; decision-replay puts the archive back onto another
 * topic. Every program reaches the cluster through the shared Kafka options
 * (dtBrokerClientEnv: sasl_ssl, SCRAM-SHA-512, a password file, the CA).
 * What the topics hold is read back by kafka-python with the cluster's
 * client.json (tests/tools/consume_decisions.py), what the archive holds
 * by python3-avro (tests/tools/read_archive.py): clients that share no code
 * with the programs. Every decision is counted by its id, exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "harness.h"
#include "varexpect.h"

enum { N = 300 }; /* decisions posted: 8 customers, 5 merchants */

static dtBroker broker;
static dtPg pg;
static dtApi api;
static dtApi vs;       /* the variable store's HTTP */
static dtApi archHttp; /* the archiver's metrics */
static dtStream proc;
static pid_t archiver = -1, store = -1;
static dtVarSet vset = {NULL, 8, 5, 0}; /* every document posted, for the expected values */
static char archive[300];

static int teardown(void **state) {
    int rc = 0;
    if (store > 0 && dtStop(store, SIGTERM) != 0) rc = -1;
    if (archiver > 0 && dtStop(archiver, SIGTERM) != 0) rc = -1;
    if (proc.pid > 0 && dtStreamStop(&proc) != 0) rc = -1;
    store = archiver = -1;
    if (api.pid > 0) dtApiStop(&api);
    dtPgDestroy(&pg);
    if (!dtBrokerDestroy(&broker)) rc = -1;
    json_decref(vset.posted);
    vset.posted = NULL;
    return rc;
}

/* A daemon with prefix's shared Kafka options pointing at the cluster, the
 * API as schema registry, and the test's own settings; its pid, or -1 when
 * it is not ready (at's /readyz) within 30 s. */
static pid_t startOnBroker(const char *program, const char *prefix, const char *const *own, const dtApi *at) {
    dtBrokerEnv be;
    char registry[128];
    snprintf(registry, sizeof(registry), "%sREGISTRY_URL=%s", prefix, api.url);
    const char *with[2] = {registry, NULL}, *mine[24], *env[32];
    dtEnvJoin(mine, 24, with, own);
    pid_t pid = dtSpawn(program, NULL, dtEnvJoin(env, 32, dtBrokerClientEnv(&broker, prefix, &be), mine));
    return pid > 0 && dtWaitReady(at, 30000) ? pid : -1;
}

static bool startAll(void) {
    if (!dtBrokerStart(&broker, 1, true, true, NULL) || !dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL)) return false;
    dtBrokerEnv be;
    char registry[128];
    snprintf(registry, sizeof(registry), "STREAM_REGISTRY_URL=%s", api.url);
    const char *own[] = {registry, NULL}, *env[16];
    if (!dtStreamStartOn(&proc, &pg, NULL, dtEnvJoin(env, 16, dtBrokerClientEnv(&broker, "STREAM_", &be), own)))
        return false;

    char e_root[330], e_aport[64];
    archHttp.port = dtFreePort();
    snprintf(archHttp.url, sizeof(archHttp.url), "http://127.0.0.1:%d", archHttp.port);
    snprintf(archive, sizeof(archive), "%s/archive", pg.dir);
    snprintf(e_root, sizeof(e_root), "ARCHIVER_ARCHIVE=%s", archive);
    snprintf(e_aport, sizeof(e_aport), "ARCHIVER_METRICS_PORT=%d", archHttp.port);
    const char *aenv[] = {e_root, e_aport, "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_SESSION_TIMEOUT=6s",
                          "ARCHIVER_LOG_LEVEL=warn", NULL};
    archiver = startOnBroker("decision-archiver", "ARCHIVER_", aenv, &archHttp);

    char e_dir[330], e_port[64], e_tokens[330];
    vs.port = dtFreePort();
    snprintf(vs.url, sizeof(vs.url), "http://127.0.0.1:%d", vs.port);
    snprintf(e_dir, sizeof(e_dir), "VARSTORE_DATA_DIR=%s/variable-store", pg.dir);
    snprintf(e_port, sizeof(e_port), "VARSTORE_LISTEN_PORT=%d", vs.port);
    snprintf(e_tokens, sizeof(e_tokens), "VARSTORE_TOKENS_FILE=%s", api.tokens_file);
    const char *venv[] = {e_dir, e_port, e_tokens, "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_SESSION_TIMEOUT=6s",
                          "VARSTORE_LOG_LEVEL=warn", NULL};
    store = startOnBroker("variable-store", "VARSTORE_", venv, &vs);
    return archiver > 0 && store > 0;
}

static int setup(void **state) {
    vset.posted = json_array();
    if (startAll()) return 0;
    teardown(state);
    return -1;
}

/* --- counting decisions by id ---- */

/* Where a line of a reader's output holds what is checked: the decision id,
 * a second copy of it (-1: none) and the customer (-1: none). */
typedef struct columns {
    int id, id_again, customer;
} columns;

/* Whether out, one record a line ("rc=..." lines aside), holds every posted
 * decision exactly once and nothing else, with the right customer; prints
 * every difference. */
static bool eachPostedOnce(const char *out, columns c) {
    json_t *seen = json_object(), *byId = json_object(), *doc;
    size_t i;
    json_array_foreach(vset.posted, i, doc) json_object_set(byId, json_string_value(json_object_get(doc, "decision_id")), doc);
    char *copy = strdup(out), *save = NULL;
    bool ok = true;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "rc=", 3) == 0) continue;
        char *f[8] = {0}, *fs = NULL, *text = strdup(line);
        int nf = 0;
        for (char *t = strtok_r(text, " ", &fs); t && nf < 8; t = strtok_r(NULL, " ", &fs)) f[nf++] = t;
        doc = nf > c.id ? json_object_get(byId, f[c.id]) : NULL;
        const char *cust = doc ? json_string_value(json_object_get(doc, "customer_id")) : NULL;
        bool good = doc != NULL && (c.id_again < 0 || (nf > c.id_again && strcmp(f[c.id_again], f[c.id]) == 0)) &&
                    (c.customer < 0 || (nf > c.customer && strcmp(f[c.customer], cust) == 0));
        if (!good) fprintf(stderr, "not a posted decision as written: %s\n", line);
        else if (json_object_get(seen, f[c.id]) != NULL) fprintf(stderr, "twice: %s\n", line), good = false;
        else json_object_set_new(seen, f[c.id], json_true());
        ok = ok && good;
        free(text);
    }
    if (json_object_size(seen) != json_array_size(vset.posted))
        fprintf(stderr, "%zu of %zu posted decisions read\n", json_object_size(seen), json_array_size(vset.posted)), ok = false;
    free(copy);
    json_decref(seen);
    json_decref(byId);
    return ok;
}

/* Every record of a topic, read by kafka-python over SASL_SSL with the
 * cluster's client.json: "<partition> <offset> <key> <decision_id header>
 * <decision_id> <schema id>" lines, then "rc=N". */
static char *topic(const char *name) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 tests/tools/consume_decisions.py --config %s/client.json '%s'; echo rc=$?", broker.dir,
             name);
    return dtCapture(cmd);
}

static const columns onTopic = {.id = 4, .id_again = 3, .customer = 2};

/* decision-replay over the whole archive with args and the shared Kafka
 * options (REPLAY_ environment) of the cluster; stdout and stderr, then
 * "rc=N". */
static char *replay(const char *args) {
    dtBrokerEnv be;
    const char *const *env = dtBrokerClientEnv(&broker, "REPLAY_", &be);
    char cmd[4096];
    int n = snprintf(cmd, sizeof(cmd), "env");
    for (int i = 0; env[i] && n < (int)sizeof(cmd) - 400; i++) n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", env[i]);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n,
             " ${BUILD:-build}/bin/decision-replay --archive %s --from 2020-01-01T00:00:00Z --to 2100-01-01T00:00:00Z"
             " --log-level warn %s 2>&1; echo rc=$?",
             archive, args);
    return dtCapture(cmd);
}

/* The archive's files hold N records (the archiver closes each 300 ms
 * after its first). */
static bool archivedAll(void *arg) {
    char *out = replay("--dry-run");
    char want[64];
    snprintf(want, sizeof(want), "\"read\":%d,", N);
    bool ok = strstr(out, want) != NULL;
    free(out);
    return ok;
}

static bool storeMatches(void *arg) {
    return dtVarMatches(&vs, &vset, false);
}

/* --- the tests, in order: the first posts ---- */

/* Posted through the API, every decision reaches the variable store through
 * the topic: each variable equals what the posted documents imply. */
static void test_variable_store_counts_every_decision(void **state) {
    assert_true(dtVarPost(&api, &vset, N));
    if (!dtWaitFor(storeMatches, NULL, 60000)) assert_true(dtVarMatches(&vs, &vset, true));
    assert_int_equal(dtMetric(&vs, "variable_store_duplicates_total"), 0);
}

/* The topic holds every decision exactly once, keyed by its customer, as an
 * independent client reads it over SASL_SSL. */
static void test_topic_holds_every_decision_once(void **state) {
    char *out = topic("decisions");
    bool ok = eachPostedOnce(out, onTopic);
    if (strstr(out, "rc=0") == NULL) fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, "rc=0"));
    assert_true(ok);
    free(out);
}

/* The archive's files hold every decision exactly once, as python3-avro
 * reads them: "<decision_id> <decided_at ms> <customer_id> <file>". */
static void test_archive_holds_every_decision_once(void **state) {
    assert_true(dtWaitFor(archivedAll, NULL, 60000));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/read_archive.py %s; echo rc=$?", archive);
    char *out = dtCapture(cmd);
    bool ok = eachPostedOnce(out, (columns){.id = 0, .id_again = -1, .customer = 2});
    assert_non_null(strstr(out, "rc=0"));
    assert_true(ok);
    free(out);
    assert_int_equal(dtMetric(&archHttp, "archiver_records_total"), N);
}

/* decision-replay --target kafka over SASL_SSL puts the archive onto a
 * topic of its own: every decision once, read back independently. */
static void test_replay_onto_another_topic(void **state) {
    assert_true(dtBrokerTopic(&broker, "decisions.replayed", 3, 0));
    char *out = replay("--target kafka --topic decisions.replayed");
    if (strstr(out, "rc=0") == NULL) fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, "rc=0"));
    char want[64];
    snprintf(want, sizeof(want), "\"written\":%d,", N);
    assert_non_null(strstr(out, want));
    free(out);
    out = topic("decisions.replayed");
    bool ok = eachPostedOnce(out, onTopic);
    assert_non_null(strstr(out, "rc=0"));
    assert_true(ok);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variable_store_counts_every_decision),
        cmocka_unit_test(test_topic_holds_every_decision_once),
        cmocka_unit_test(test_archive_holds_every_decision_once),
        cmocka_unit_test(test_replay_onto_another_topic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
