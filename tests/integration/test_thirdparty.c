/* test_thirdparty.c - a third-party Kafka client reads the decision stream
 * (CONTRACT §3): kafkajs with @kafkajs/confluent-schema-registry, from the npm
 * registry and sharing no code with this project (tests/tools/node/), consumes
 * the topic from dev-kafka as the stream processor wrote it (LZ4 batches) and
 * decodes every record through the decision API's read-only registry
 * endpoints, fetching the schema by the id in each record's Confluent header.
 * Real PostgreSQL, API, dev-kafka and stream processor; the packages are
 * installed by deploy/install-deps.sh (npm ci into tests/tools/node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"

#define NODE_DIR "tests/tools/node"

static dtPg pg;
static dtApi api;
static dtKafka kafka;
static dtStream proc;
/* lz4 named here rather than left to the default: the test is about a
 * foreign client reading what production writes, compression included. */
static const char *procEnv[] = {"STREAM_COMPRESSION=lz4", "STREAM_STATUS_INTERVAL=100ms", NULL};

static int setup(void **state) {
    struct stat st;
    if (stat(NODE_DIR "/node_modules/kafkajs", &st) != 0 ||
        stat(NODE_DIR "/node_modules/@kafkajs/confluent-schema-registry", &st) != 0) {
        fprintf(stderr, "test_thirdparty: %s/node_modules is missing: run deploy/install-deps.sh\n", NODE_DIR);
        return -1;
    }
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL)) return -1;
    if (!dtKafkaStart(&kafka)) return -1;
    return dtStreamStart(&proc, &pg, &kafka, procEnv) ? 0 : -1;
}

static int teardown(void **state) {
    int rc = dtStreamStop(&proc);
    if (dtApiStop(&api) != 0) rc = -1;
    dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    return rc == 0 ? 0 : -1;
}

/* The processor has read `events` decisions and Kafka acknowledged them all
 * (the delivery reports caught up with the events: stream_in_flight is
 * sampled at status updates, still 0 just after a send). */
static bool procDrained(void *arg) {
    double want = *(double *)arg;
    double events = dtMetric(&proc.http, "stream_events_total");
    double reported = dtMetric(&proc.http, "kafka_delivered_total") + dtMetric(&proc.http, "kafka_delivery_failed_total");
    return events >= want && reported >= events && dtMetric(&proc.http, "stream_in_flight") == 0;
}

/* The id the registry serves for the subject's latest version. */
static json_int_t latestSchemaId(void) {
    dtResponse r;
    assert_true(dtHttp(&api, "GET", "/subjects/decisions-value/versions/latest", NULL, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 200);
    json_t *id = json_object_get(r.json, "id");
    assert_true(json_is_integer(id));
    json_int_t v = json_integer_value(id);
    dtResponseFree(&r);
    return v;
}

/* The API's count of 200 answers on a route, 0 if it has none yet. */
static double apiAnswered(const char *route) {
    dtResponse r;
    double v = 0;
    assert_true(dtHttp(&api, "GET", "/metrics", NULL, NULL, NULL, 0, &r));
    char key[160];
    snprintf(key, sizeof(key), "http_requests_total{route=\"%s\",status=\"200\"} ", route);
    const char *at = strstr(r.body, key);
    if (at) v = atof(at + strlen(key));
    dtResponseFree(&r);
    return v;
}

enum { N = 50 };

static const char *const outcomes[] = {"APPROVED", "REJECTED", "REFERRED"};

typedef struct posted {
    char id[37];
    char customer[32];
    char merchant[32];
    json_int_t amount;
    const char *outcome;
    char decided_at[32];     /* RFC 3339 as posted, always with milliseconds and Z */
    json_int_t decided_ms;   /* the same instant in ms since the epoch */
} posted;

/* Posts decision i: the fixture with a fresh id, its own customer, and
 * merchant, amount, outcome and decided_at varied with i. */
static void postDecision(int i, posted *p) {
    dtUuid(p->id);
    snprintf(p->customer, sizeof(p->customer), "tp-cust-%02d", i);
    snprintf(p->merchant, sizeof(p->merchant), "m-%d", i % 7);
    p->amount = 100 + (json_int_t)i * 1013;
    p->outcome = outcomes[i % 3];
    /* 2026-11-24T10:00:00.000Z plus i seconds and i*37 ms */
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 24, .tm_hour = 10};
    time_t base = timegm(&tm) + i;
    int ms = (i * 37) % 1000;
    struct tm at;
    gmtime_r(&base, &at);
    char sec[24];
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &at);
    snprintf(p->decided_at, sizeof(p->decided_at), "%s.%03dZ", sec, ms);
    p->decided_ms = (json_int_t)base * 1000 + ms;

    json_t *doc = dtFixture("decision.json");
    json_object_set_new(doc, "decision_id", json_string(p->id));
    json_object_set_new(doc, "customer_id", json_string(p->customer));
    json_object_set_new(doc, "merchant_id", json_string(p->merchant));
    json_object_set_new(json_object_get(doc, "amount"), "value", json_integer(p->amount));
    json_object_set_new(doc, "outcome", json_string(p->outcome));
    json_object_set_new(doc, "decided_at", json_string(p->decided_at));
    char *body = json_dumps(doc, JSON_COMPACT);
    dtResponse r;
    assert_true(dtHttp(&api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r));
    if (r.status != 201) fprintf(stderr, "POST %s: %ld %s\n", p->id, r.status, r.body);
    assert_int_equal(r.status, 201);
    dtResponseFree(&r);
    free(body);
    json_decref(doc);
}

/* decided_at as the library decoded it: a number of ms when it leaves
 * timestamp-millis alone, or, if it maps the logical type to a Date,
 * the Date's JSON form (toISOString). */
static void assertDecidedAt(const json_t *v, const posted *p) {
    if (json_is_integer(v)) {
        assert_int_equal(json_integer_value(v), p->decided_ms);
    } else {
        assert_true(json_is_string(v));
        assert_string_equal(json_string_value(v), p->decided_at);
    }
}

static void test_kafkajs_decodes_every_record_through_the_registry(void **state) {
    static posted p[N];
    json_int_t schema_id = latestSchemaId();
    double fetched = apiAnswered("GET /schemas/ids/{id}");
    double events = dtMetric(&proc.http, "stream_events_total") + N;
    for (int i = 0; i < N; i++) postDecision(i, &p[i]);
    assert_true(dtWaitFor(procDrained, &events, 30000));

    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "timeout 120 node " NODE_DIR "/consume.js 127.0.0.1:%d decisions %s %d 60000; echo rc=$?", kafka.port,
             api.url, N);
    char *out = dtCapture(cmd);

    /* decision_id -> the one output line that carries it */
    json_t *byId = json_object();
    int lines = 0;
    bool ended_ok = false;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "rc=", 3) == 0) {
            ended_ok = strcmp(line, "rc=0") == 0;
            if (!ended_ok) fprintf(stderr, "consume.js ended with %s\n", line);
            continue;
        }
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        if (rec == NULL) fprintf(stderr, "not JSON: %s (%s)\n", line, err.text);
        assert_non_null(rec);
        lines++;
        const char *id = json_string_value(json_object_get(json_object_get(rec, "decision"), "decision_id"));
        assert_non_null(id);
        if (json_object_get(byId, id)) fprintf(stderr, "%s decoded twice\n", id);
        assert_null(json_object_get(byId, id));
        json_object_set_new(byId, id, rec);
    }
    assert_true(ended_ok);
    assert_int_equal(lines, N);

    for (int i = 0; i < N; i++) {
        json_t *rec = json_object_get(byId, p[i].id);
        if (rec == NULL) fprintf(stderr, "not decoded by the third-party client: %s\n", p[i].id);
        assert_non_null(rec);
        assert_true(json_is_integer(json_object_get(rec, "partition")));
        assert_non_null(json_object_get(rec, "offset"));
        assert_string_equal(json_string_value(json_object_get(rec, "key")), p[i].customer);
        assert_int_equal(json_integer_value(json_object_get(rec, "schema_id")), schema_id);
        json_t *d = json_object_get(rec, "decision");
        assert_string_equal(json_string_value(json_object_get(d, "customer_id")), p[i].customer);
        assert_string_equal(json_string_value(json_object_get(d, "merchant_id")), p[i].merchant);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "amount"), "value")), p[i].amount);
        assert_string_equal(json_string_value(json_object_get(json_object_get(d, "amount"), "currency")), "SEK");
        assert_string_equal(json_string_value(json_object_get(d, "outcome")), p[i].outcome);
        assertDecidedAt(json_object_get(d, "decided_at"), &p[i]);
    }
    json_decref(byId);
    free(out);
    /* the schema came from this API, fetched by the id in the header */
    assert_true(apiAnswered("GET /schemas/ids/{id}") >= fetched + 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafkajs_decodes_every_record_through_the_registry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
