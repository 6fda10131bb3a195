/* test_varstore.c - the variable store end to end (CONTRACT §6): decisions
 * posted through the API reach the store through PostgreSQL, the stream
 * processor and the topic, and every variable of the shipped file equals
 * what this test computes itself from the posted documents; the same
 * history replayed twice (into the store, and onto the topic) changes
 * nothing; kill -9 while consuming loses and doubles nothing; an empty
 * store refilled from the archive, and a read replica, answer exactly as
 * the live store does; bad requests get the statuses of the contract; a
 * new variable over a field not kept rebuilds the state from the topic.
 * Real PostgreSQL, dev-kafka, real processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "archive_gen.h"
#include "harness.h"
#include "varexpect.h"


static dtPg pg;
static dtApi api, vs;
static dtKafka kafka;
static dtStream proc;
static pid_t archiver = -1, store = -1;
static dtVarSet vset = {NULL, 8, 5, 0}; /* every document posted, for the expected values */
static size_t reproduced; /* decisions replayed onto the topic: archived again */
static char vsdir[300], archive[300];
static char env_abrokers[64], env_aroot[330];
static const char *archEnv[] = {env_abrokers, env_aroot, "ARCHIVER_MAX_AGE=300ms", "ARCHIVER_LOG_LEVEL=error",
                                "ARCHIVER_SESSION_TIMEOUT=3s", "ARCHIVER_GROUP_INSTANCE_ID=none", NULL};
static char env_vbrokers[64], env_vdir[330], env_vport[64], env_vtokens[330];
static const char *storeEnv[] = {env_vbrokers, env_vdir, env_vport, env_vtokens, "VARSTORE_LOG_LEVEL=warn",
                                 "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_SESSION_TIMEOUT=3s",
                                 "VARSTORE_GROUP_INSTANCE_ID=none", NULL};
static char ingestTokenFile[330]; /* decision-replay's: DT_INGEST_TOKEN in clear */

static bool storeStartWith(const char *const *env) {
    store = dtSpawn("variable-store", NULL, env);
    return store > 0 && dtWaitReady(&vs, 30000);
}

static bool storeStart(void) {
    store = dtSpawn("variable-store", NULL, storeEnv);
    return store > 0 && dtWaitReady(&vs, 30000);
}

static int setup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL) || !dtKafkaStart(&kafka)) return -1;
    vset.posted = json_array();
    if (!dtStreamStart(&proc, &pg, &kafka, NULL)) return -1;
    snprintf(archive, sizeof(archive), "%s/archive", pg.dir);
    snprintf(env_abrokers, sizeof(env_abrokers), "ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(env_aroot, sizeof(env_aroot), "ARCHIVER_ARCHIVE=%s", archive);
    archiver = dtSpawn("decision-archiver", NULL, archEnv);
    vs.port = dtFreePort();
    snprintf(vs.url, sizeof(vs.url), "http://127.0.0.1:%d", vs.port);
    snprintf(vsdir, sizeof(vsdir), "%s/variable-store", pg.dir);
    snprintf(env_vbrokers, sizeof(env_vbrokers), "VARSTORE_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(env_vdir, sizeof(env_vdir), "VARSTORE_DATA_DIR=%s", vsdir);
    snprintf(env_vport, sizeof(env_vport), "VARSTORE_LISTEN_PORT=%d", vs.port);
    snprintf(env_vtokens, sizeof(env_vtokens), "VARSTORE_TOKENS_FILE=%s", api.tokens_file);
    snprintf(ingestTokenFile, sizeof(ingestTokenFile), "%s/ingest.token", pg.dir);
    FILE *f = fopen(ingestTokenFile, "w");
    if (f == NULL || fprintf(f, "%s\n", DT_INGEST_TOKEN) < 0 || fclose(f) != 0) return -1;
    return storeStart() ? 0 : -1;
}

static int teardown(void **state) {
    int rc = dtStop(store, SIGTERM);
    if (dtStreamStop(&proc) != 0 || dtStop(archiver, SIGTERM) != 0) rc = -1;
    dtApiStop(&api);
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    json_decref(vset.posted);
    return rc == 0 ? 0 : -1;
}

/* Posts n decisions through the API's batch endpoint, 100 per request. */
static void postDecisions(int n) {
    assert_true(dtVarPost(&api, &vset, n));
}

static bool storeMatches(void *arg) {
    return dtVarMatches(arg, &vset, false);
}

typedef struct atLeast {
    const char *name;
    double value;
} atLeast;

static bool metricAtLeast(void *arg) {
    atLeast *a = arg;
    return dtMetric(&vs, a->name) >= a->value;
}

static bool archived(void *arg);

/* decision-replay of a whole archive with args; its output then "rc=N". */
static char *replayFrom(const char *root, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "${BUILD:-build}/bin/decision-replay --archive %s --from 2020-01-01T00:00:00Z --to 2100-01-01T00:00:00Z"
             " --log-level warn %s 2>&1; echo rc=$?",
             root, args);
    return dtCapture(cmd);
}

static char *replay(const char *args) {
    return replayFrom(archive, args);
}

/* The archive holds every posted decision (the archiver closes files within 300 ms). */
static bool archived(void *arg) {
    char *out = replay("--dry-run");
    char want[64];
    snprintf(want, sizeof(want), "\"read\":%zu,", json_array_size(vset.posted) + reproduced);
    bool ok = strstr(out, want) != NULL;
    free(out);
    return ok;
}

static void test_variables_follow_posted_decisions(void **state) {
    postDecisions(120);
    if (!dtWaitFor(storeMatches, &vs, 30000)) assert_true(dtVarMatches(&vs, &vset, true));
    /* and again with more decisions on top, so the values are seen to change */
    json_t *before = dtVarSnapshot(&vs, &vset);
    postDecisions(40);
    if (!dtWaitFor(storeMatches, &vs, 30000)) assert_true(dtVarMatches(&vs, &vset, true));
    json_t *after = dtVarSnapshot(&vs, &vset);
    assert_false(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

/* The same history twice into the live store, then twice onto its topic:
 * every decision is a duplicate, no value moves. */
static void test_replayed_history_changes_nothing(void **state) {
    assert_true(dtWaitFor(archived, NULL, 30000));
    assert_true(dtVarMatches(&vs, &vset, true));
    size_t n = json_array_size(vset.posted);
    char args[600];
    snprintf(args, sizeof(args), "--target variable-store --url %s --token-file %s", vs.url, ingestTokenFile);
    for (int round = 0; round < 2; round++) {
        char *out = replay(args);
        if (strstr(out, "rc=0") == NULL) fprintf(stderr, "%s\n", out);
        assert_non_null(strstr(out, "rc=0"));
        free(out);
        assert_true(dtVarMatches(&vs, &vset, true));
    }
    /* from a copy: what goes onto the topic is archived again */
    char copy[1000];
    snprintf(copy, sizeof(copy), "rm -rf %s/copy && cp -r %s %s/copy && echo copied", pg.dir, archive, pg.dir);
    free(dtCapture(copy));
    snprintf(copy, sizeof(copy), "%s/copy", pg.dir);
    atLeast dups = {"variable_store_duplicates_total", dtMetric(&vs, "variable_store_duplicates_total")};
    snprintf(args, sizeof(args), "--target kafka --brokers 127.0.0.1:%d --topic decisions", kafka.port);
    for (int round = 0; round < 2; round++) {
        char *out = replayFrom(copy, args);
        assert_non_null(strstr(out, "rc=0"));
        free(out);
    }
    reproduced += 2 * n;
    /* decisions older than every window are "expired", not duplicates */
    dups.value += 2.0 * (double)n * 3 / 4;
    assert_true(dtWaitFor(metricAtLeast, &dups, 30000));
    assert_true(dtVarMatches(&vs, &vset, true));
}

static bool consuming(void *arg) {
    return dtMetric(&vs, "variable_store_kafka_messages_total") > *(double *)arg;
}

static void test_kill9_while_consuming(void **state) {
    double seen = dtMetric(&vs, "variable_store_kafka_messages_total");
    postDecisions(400);
    assert_true(dtWaitFor(consuming, &seen, 30000));
    assert_int_equal(dtStop(store, SIGKILL), 128 + SIGKILL);
    assert_true(storeStart());
    if (!dtWaitFor(storeMatches, &vs, 30000)) assert_true(dtVarMatches(&vs, &vset, true));
}

/* An empty store (no Kafka) refilled from the archive answers exactly as the
 * live one; so does a read replica of the live one's directory. */
static void test_refill_and_replica_equal_live(void **state) {
    assert_true(dtWaitFor(archived, NULL, 30000));
    dtApi fresh = {0}, replica = {0};
    char dir[330], e_dir[360], e_port[64], r_dir[360], r_port[64];
    fresh.port = dtFreePort();
    snprintf(fresh.url, sizeof(fresh.url), "http://127.0.0.1:%d", fresh.port);
    snprintf(dir, sizeof(dir), "%s/refilled", pg.dir);
    snprintf(e_dir, sizeof(e_dir), "VARSTORE_DATA_DIR=%s", dir);
    snprintf(e_port, sizeof(e_port), "VARSTORE_LISTEN_PORT=%d", fresh.port);
    const char *freshEnv[] = {"VARSTORE_BROKERS=", e_dir, e_port, env_vtokens, "VARSTORE_LOG_LEVEL=warn", NULL};
    pid_t f = dtSpawn("variable-store", NULL, freshEnv);
    assert_true(dtWaitReady(&fresh, 20000));
    char args[600];
    /* the store takes writes only from a token with the ingest role */
    snprintf(args, sizeof(args), "--target variable-store --url %s", fresh.url);
    char *out = replay(args);
    assert_non_null(strstr(out, "needs a token with the ingest role"));
    assert_non_null(strstr(out, "rc=2"));
    free(out);
    snprintf(args, sizeof(args), "--target variable-store --url %s --token %s", fresh.url, DT_LOOKUP_TOKEN);
    out = replay(args);
    assert_non_null(strstr(out, "refuses the token (403"));
    assert_non_null(strstr(out, "rc=1"));
    free(out);
    snprintf(args, sizeof(args), "--target variable-store --url %s --token-file %s", fresh.url, ingestTokenFile);
    out = replay(args);
    if (strstr(out, "rc=0") == NULL) fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, "rc=0"));
    free(out);

    replica.port = dtFreePort();
    snprintf(replica.url, sizeof(replica.url), "http://127.0.0.1:%d", replica.port);
    snprintf(r_dir, sizeof(r_dir), "VARSTORE_DATA_DIR=%s", vsdir);
    snprintf(r_port, sizeof(r_port), "VARSTORE_LISTEN_PORT=%d", replica.port);
    const char *replicaEnv[] = {"VARSTORE_ROLE=replica", r_dir, r_port, env_vtokens, "VARSTORE_LOG_LEVEL=warn", NULL};
    pid_t r = dtSpawn("variable-store", NULL, replicaEnv);
    assert_true(dtWaitReady(&replica, 20000));

    assert_true(dtVarMatches(&vs, &vset, true));
    json_t *live = dtVarSnapshot(&vs, &vset), *refilled = dtVarSnapshot(&fresh, &vset);
    json_t *replicated = dtVarSnapshot(&replica, &vset);
    assert_non_null(live);
    for (size_t i = 0; i < json_array_size(live); i++) {
        json_t *want = json_object_get(json_array_get(live, i), "variables");
        assert_true(json_equal(want, json_object_get(json_array_get(refilled, i), "variables")));
        assert_true(json_equal(want, json_object_get(json_array_get(replicated, i), "variables")));
    }
    /* a replica takes no writes */
    dtResponse resp;
    assert_true(dtHttp(&replica, "POST", "/v1/decisions:ingest", DT_INGEST_TOKEN, "application/json",
                       "{\"decisions\":[]}", 16, &resp));
    assert_int_equal(resp.status, 503);
    dtResponseFree(&resp);
    json_decref(live), json_decref(refilled), json_decref(replicated);
    assert_int_equal(dtStop(f, SIGTERM), 0);
    assert_int_equal(dtStop(r, SIGTERM), 0);
}

static long status(const char *method, const char *path, const char *ctype, const char *body, json_t **json) {
    dtResponse r;
    const char *token = strcmp(path, "/v1/decisions:ingest") == 0 ? DT_INGEST_TOKEN : DT_LOOKUP_TOKEN;
    long st = dtHttp(&vs, method, path, token, ctype, body, body ? strlen(body) : 0, &r) ? r.status : -1;
    if (json) *json = json_incref(r.json);
    dtResponseFree(&r);
    return st;
}

static void test_bad_requests(void **state) {
    json_t *j = NULL;
    assert_int_equal(status("GET", "/v1/variables/planet/earth", NULL, NULL, &j), 404);
    assert_string_equal(dtStr(j, "error"), "unknown_entity");
    json_decref(j);
    assert_int_equal(status("GET", "/v1/variables/customer/never-seen", NULL, NULL, &j), 200);
    json_t *v = json_object_get(j, "variables");
    assert_int_equal(json_integer_value(json_object_get(v, "approved_count_30d")), 0);
    assert_true(json_is_null(json_object_get(v, "last_outcome")));
    json_decref(j);
    assert_int_equal(status("GET", "/v1/variables/customer/a%2Fb", NULL, NULL, NULL), 200);
    assert_int_equal(status("GET", "/v1/variables/customer/%zz", NULL, NULL, NULL), 400);
    assert_int_equal(status("GET", "/v1/variables/customer/", NULL, NULL, NULL), 400);
    assert_int_equal(status("DELETE", "/v1/variables/customer/x", NULL, NULL, NULL), 405);
    /* a query parameter is refused, never ignored: min_position answered
     * without waiting for it would be a silent stale read */
    assert_int_equal(status("GET", "/v1/variables/customer/x?min_position=0%2F1&wait_ms=100", NULL, NULL, &j), 400);
    assert_string_equal(dtStr(j, "error"), "invalid_query");
    assert_string_equal(dtStr(j, "field"), "min_position");
    json_decref(j);
    assert_int_equal(status("GET", "/v1/variables/customer/x?%ff=1", NULL, NULL, &j), 400);
    assert_string_equal(dtStr(j, "error"), "invalid_query");
    json_decref(j);
    assert_int_equal(status("GET", "/v1/variables/customer/x?", NULL, NULL, NULL), 200);

    const char *batch = "/v1/variables:batchGet", *json = "application/json";
    assert_int_equal(status("POST", batch, json, "{\"keys\": [", NULL), 400);
    assert_int_equal(status("POST", batch, json, "{\"keys\": {}}", NULL), 400);
    assert_int_equal(status("POST", batch, json, "{\"keys\": [{\"entity\": \"customer\"}]}", &j), 400);
    assert_string_equal(dtStr(j, "field"), "keys[0].id");
    json_decref(j);
    assert_int_equal(status("POST", batch, json, "{\"keys\": [{\"entity\": \"planet\", \"id\": \"x\"}]}", NULL), 404);
    assert_int_equal(status("POST", batch, "text/plain", "{\"keys\": []}", NULL), 415);
    json_t *keys = json_array();
    for (int i = 0; i < 101; i++) json_array_append_new(keys, json_pack("{s:s, s:s}", "entity", "customer", "id", "x"));
    json_t *big = json_pack("{s:o}", "keys", keys);
    char *body = json_dumps(big, JSON_COMPACT);
    assert_int_equal(status("POST", batch, json, body, &j), 413);
    assert_string_equal(dtStr(j, "error"), "too_many_keys");
    json_decref(j);
    free(body);
    json_decref(big);

    /* an ingest batch with one broken decision applies none of them */
    double counted = dtMetric(&vs, "variable_store_counted_total");
    json_t *good = dtVarDecision(&vset, 1000, dtNowMs()), *bad = dtVarDecision(&vset, 1001, dtNowMs());
    json_object_set_new(json_object_get(bad, "amount"), "value", json_string("lots"));
    json_t *ing = json_pack("{s:[o,o]}", "decisions", good, bad);
    body = json_dumps(ing, JSON_COMPACT);
    assert_int_equal(status("POST", "/v1/decisions:ingest", json, body, &j), 400);
    assert_string_equal(dtStr(j, "field"), "decisions[1].amount.value");
    json_decref(j);
    assert_true(dtMetric(&vs, "variable_store_counted_total") == counted);
    free(body);
    json_decref(ing);

    /* nor one dated in the future, as the API refuses it: it would stay in
     * every window, and be the customer's last outcome, until that date */
    ing = json_pack("{s:[o]}", "decisions", dtVarDecision(&vset, 1002, dtNowMs() + DT_DAY_MS));
    body = json_dumps(ing, JSON_COMPACT);
    assert_int_equal(status("POST", "/v1/decisions:ingest", json, body, &j), 400);
    assert_string_equal(dtStr(j, "field"), "decisions[0].decided_at");
    assert_non_null(strstr(dtStr(j, "message"), "is in the future"));
    json_decref(j);
    assert_true(dtMetric(&vs, "variable_store_counted_total") == counted);
    free(body);
    json_decref(ing);
    assert_true(dtVarMatches(&vs, &vset, true));
}

/* A bad setting found late in start-up (a registry URL that is no URL,
 * checked once the state is open) ends the store with status 1 and its
 * message, never a crash on the way out. */
static void test_bad_registry_url_is_an_error_not_a_crash(void **state) {
    char dir[330], e_dir[360], e_port[64];
    snprintf(dir, sizeof(dir), "%s/bad-registry", pg.dir);
    snprintf(e_dir, sizeof(e_dir), "VARSTORE_DATA_DIR=%s", dir);
    snprintf(e_port, sizeof(e_port), "VARSTORE_LISTEN_PORT=%d", dtFreePort());
    const char *env[] = {"VARSTORE_BROKERS=", e_dir, e_port, env_vtokens, "VARSTORE_REGISTRY_URL=garbage",
                         "VARSTORE_LOG_LEVEL=error", NULL};
    pid_t p = dtSpawn("variable-store", NULL, env);
    assert_true(p > 0);
    assert_int_equal(dtWaitExit(p, 20000), 1);
}

/* The fixture decision for customer and merchant "cust-stray"/"m-stray"
 * with outcome, decided at decided_ms, in the wire format: what a producer
 * writing around the API could put on the topic. malloc'd. */
static char *strayRecord(const char *outcome, int64_t decided_ms, const char *country, size_t *len) {
    char id[37];
    json_t *doc = dtFixture("decision.json");
    dtUuid(id);
    json_object_set_new(doc, "decision_id", json_string(id));
    json_object_set_new(doc, "customer_id", json_string("cust-stray"));
    json_object_set_new(doc, "merchant_id", json_string("m-stray"));
    json_object_set_new(doc, "outcome", json_string(outcome));
    char *wire = dtGenWire(doc, decided_ms, country, len);
    assert_non_null(wire);
    json_decref(doc);
    return wire;
}

/* Whether the store counts cust-stray's one approved decision. */
static bool strayCounted(void *arg) {
    json_t *j = NULL;
    bool yes = status("GET", "/v1/variables/customer/cust-stray", NULL, NULL, &j) == 200 &&
               json_integer_value(json_object_get(json_object_get(j, "variables"), "approved_count_30d")) == 1;
    json_decref(j);
    return yes;
}

/* Records put on the topic around the API that break its rules are not
 * counted (rejected, logged): dated before 2000, a day ahead (it would
 * otherwise stay in every window and be the customer's last outcome until
 * its date), or with a field no post could carry. A record of now after
 * them is counted. */
static void test_records_breaking_the_rules_are_not_counted(void **state) {
    int64_t now = dtNowMs();
    size_t lens[4];
    char *values[4] = {strayRecord("REJECTED", now + DT_DAY_MS, NULL, &lens[0]),
                       strayRecord("REJECTED", 631152000000LL /* 1990 */, NULL, &lens[1]),
                       strayRecord("REJECTED", now - 90000, "se", &lens[2]), /* breaks the country rule */
                       strayRecord("APPROVED", now - 60000, NULL, &lens[3])};
    double rejected = dtMetric(&vs, "variable_store_rejected_total");
    rd_kafka_t *rk = dtKafkaProducer(&kafka, NULL);
    assert_non_null(rk);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("decisions"), RD_KAFKA_V_KEY("cust-stray", 10),
                                           RD_KAFKA_V_VALUE(values[i], lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    /* the last record counted: the three before it in its partition were read first */
    assert_true(dtWaitFor(strayCounted, NULL, 20000));
    assert_true(dtMetric(&vs, "variable_store_rejected_total") == rejected + 3);
    json_t *j = NULL;
    assert_int_equal(status("GET", "/v1/variables/customer/cust-stray", NULL, NULL, &j), 200);
    json_t *v = json_object_get(j, "variables");
    assert_string_equal(dtStr(v, "last_outcome"), "APPROVED");
    assert_int_equal(json_integer_value(json_object_get(v, "rejected_count_30d")), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "approved_count_30d")), 1);
    json_decref(j);
    for (int i = 0; i < 4; i++) free(values[i]);
}

/* Distinct purchases of a customer in 30 days, computed here. */
static json_int_t expectPurchases(const char *id, int64_t as_of) {
    json_t *seen = json_object(), *doc;
    size_t i;
    json_array_foreach(vset.posted, i, doc)
        if (strcmp(dtStr(doc, "customer_id"), id) == 0 && dtParseMs(dtStr(doc, "decided_at")) > as_of - 30 * DT_DAY_MS)
            json_object_set_new(seen, dtStr(doc, "purchase_id"), json_true());
    json_int_t n = (json_int_t)json_object_size(seen);
    json_decref(seen);
    return n;
}

/* A variable over a field the store did not keep: restarted with the new
 * file, the store empties its state, reads the topic again, and answers the
 * new variable and the old ones exactly. */
static void test_new_variable_rebuilds_from_the_topic(void **state) {
    json_error_t jerr;
    json_t *file = json_load_file("variable-store/variables.json", 0, &jerr);
    assert_non_null(file);
    json_array_append_new(json_object_get(json_array_get(json_object_get(file, "entities"), 0), "variables"),
                          json_pack("{s:s, s:s, s:s, s:s}", "name", "distinct_purchases_30d", "aggregation",
                                    "distinct", "field", "purchase_id", "window", "30d"));
    char path[330], env_file[360];
    snprintf(path, sizeof(path), "%s/variables-plus.json", pg.dir);
    assert_int_equal(json_dump_file(file, path, 0), 0);
    json_decref(file);
    snprintf(env_file, sizeof(env_file), "VARSTORE_VARIABLES_FILE=%s", path);
    const char *env[] = {env_vbrokers, env_vdir, env_vport, env_vtokens, env_file, "VARSTORE_LOG_LEVEL=error",
                         "VARSTORE_BATCH_WAIT=5ms", "VARSTORE_SESSION_TIMEOUT=3s",
                         "VARSTORE_GROUP_INSTANCE_ID=none", NULL};
    assert_int_equal(dtStop(store, SIGTERM), 0);
    assert_true(storeStartWith(env));

    json_t *snap = dtVarSnapshot(&vs, &vset), *res;
    size_t i;
    assert_non_null(snap);
    json_array_foreach(snap, i, res) {
        const char *id = dtStr(res, "id");
        int64_t as_of = dtParseMs(dtStr(res, "as_of"));
        if (strcmp(dtStr(res, "entity"), "customer") != 0) continue;
        json_t *want = dtVarExpectCustomer(&vset, id, as_of);
        json_object_set_new(want, "distinct_purchases_30d", json_integer(expectPurchases(id, as_of)));
        assert_true(json_equal(want, json_object_get(res, "variables")));
        json_decref(want);
    }
    json_decref(snap);
}

/* SIGTERM while a client keeps an idle keep-alive connection: h2o 2.2
 * aborted disposing its context under it; the store now closes it and
 * exits 0 at once (well within its 5 s shutdown timeout). */
static void test_sigterm_with_an_idle_keepalive_connection(void **state) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)vs.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    char buf[512];
    assert_true(read(fd, buf, sizeof(buf)) > 12);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    int64_t t0 = dtNowMs();
    assert_int_equal(dtStop(store, SIGTERM), 0);
    assert_true(dtNowMs() - t0 < 4000);
    assert_int_equal(read(fd, buf, sizeof(buf)), 0); /* closed by the server */
    close(fd);
    assert_true(storeStart()); /* for the teardown */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variables_follow_posted_decisions),
        cmocka_unit_test(test_replayed_history_changes_nothing),
        cmocka_unit_test(test_kill9_while_consuming),
        cmocka_unit_test(test_refill_and_replica_equal_live),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_bad_registry_url_is_an_error_not_a_crash),
        cmocka_unit_test(test_records_breaking_the_rules_are_not_counted),
        cmocka_unit_test(test_new_variable_rebuilds_from_the_topic),
        cmocka_unit_test(test_sigterm_with_an_idle_keepalive_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
