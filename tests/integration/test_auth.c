/* test_auth.c - who may call what: every endpoint of every daemon (the
 * decision API, the variable store, the stream processor's and the
 * archiver's metrics servers, dev-kafka's control endpoint) called with no token, an unknown token and a
 * token of each role, against the one table below. A protected endpoint
 * answers 401 (no or unknown token) or 403 (role missing) with the
 * contract's JSON error; an allowed call gets past the door: its expected
 * status, or "not 401/403" where the body is deliberately invalid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <openssl/sha.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static dtPg pg;
static dtApi api, vs, arch;
static dtKafka kafka;
static dtStream proc;
static pid_t store = -1, archiver = -1;

enum { DAEMON_API, DAEMON_VS, DAEMON_STREAM, DAEMON_ARCHIVER, DAEMON_KAFKA };

/* The callers: no token, a token the servers do not know, and one per role. */
enum { C_NONE, C_UNKNOWN, C_WRITER, C_READER, C_LOOKUP, C_INGEST, C_ADMIN, C_N };
static const struct {
    const char *name, *token;
} callers[C_N] = {
    {"no token", NULL},
    {"unknown token", "not-a-known-token"},
    {"writer", DT_WRITER_TOKEN},
    {"reader", DT_READER_TOKEN},
    {"lookup", DT_LOOKUP_TOKEN},
    {"ingest", DT_INGEST_TOKEN},
    {"admin", DT_ADMIN_TOKEN},
};
#define OPEN (-1)        /* every caller, none included */
#define R(c) (1 << (c))  /* a caller allowed in */
#define PAST_DOOR 0      /* expected: anything but 401 or 403 */

typedef struct endpoint {
    int daemon;
    const char *method, *path, *body; /* body: sent as application/json when not NULL */
    int allowed;                      /* OPEN, or the R() of the callers let in */
    long ok;                          /* the status of an allowed call, or PAST_DOOR */
} endpoint;

#define DECISION_PATH "/v1/decisions/0b5e1e9a-58a4-4c5a-9d4c-2f9a3a4b5c6d"
#define BATCH_GET "{\"keys\":[{\"entity\":\"customer\",\"id\":\"cust-1\"}]}"

static const endpoint endpoints[] = {
    /* decision API (decision-api/src/routes.c, registry.c) */
    {DAEMON_API, "POST", "/v1/decisions", "{}", R(C_WRITER) | R(C_ADMIN), 400},
    {DAEMON_API, "GET", "/v1/decisions?customer_id=cust-1", NULL, R(C_READER) | R(C_ADMIN), 200},
    {DAEMON_API, "POST", "/v1/decisions:batch", "{}", R(C_WRITER) | R(C_ADMIN), PAST_DOOR},
    {DAEMON_API, "GET", DECISION_PATH, NULL, R(C_READER) | R(C_ADMIN), 404},
    {DAEMON_API, "GET", "/healthz", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/readyz", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/metrics", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/schemas/ids/1", NULL, OPEN, PAST_DOOR},
    {DAEMON_API, "GET", "/schemas/ids/1/versions", NULL, OPEN, PAST_DOOR},
    {DAEMON_API, "GET", "/subjects", NULL, OPEN, 200},
    {DAEMON_API, "POST", "/subjects/decisions-value", "{}", OPEN, PAST_DOOR},
    {DAEMON_API, "GET", "/subjects/decisions-value/versions", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/subjects/decisions-value/versions/1", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/config", NULL, OPEN, 200},
    {DAEMON_API, "GET", "/no/such/endpoint", NULL, OPEN, 404},
    /* variable store (variable-store/src/routes.c) */
    {DAEMON_VS, "GET", "/v1/variables/customer/cust-1", NULL, R(C_LOOKUP) | R(C_READER) | R(C_ADMIN), 200},
    {DAEMON_VS, "POST", "/v1/variables:batchGet", BATCH_GET, R(C_LOOKUP) | R(C_READER) | R(C_ADMIN), 200},
    {DAEMON_VS, "POST", "/v1/decisions:ingest", "{\"decisions\":[]}", R(C_INGEST) | R(C_ADMIN), PAST_DOOR},
    {DAEMON_VS, "GET", "/healthz", NULL, OPEN, 200},
    {DAEMON_VS, "GET", "/readyz", NULL, OPEN, 200},
    {DAEMON_VS, "GET", "/metrics", NULL, OPEN, 200},
    {DAEMON_VS, "GET", "/no/such/endpoint", NULL, OPEN, 404},
    /* stream processor: its metrics server only */
    {DAEMON_STREAM, "GET", "/healthz", NULL, OPEN, 200},
    {DAEMON_STREAM, "GET", "/readyz", NULL, OPEN, 200},
    {DAEMON_STREAM, "GET", "/metrics", NULL, OPEN, 200},
    /* archiver: its metrics server only (ds/probe.h) */
    {DAEMON_ARCHIVER, "GET", "/healthz", NULL, OPEN, 200},
    {DAEMON_ARCHIVER, "GET", "/readyz", NULL, OPEN, 200},
    {DAEMON_ARCHIVER, "GET", "/metrics", NULL, OPEN, 200},
    {DAEMON_ARCHIVER, "GET", "/no/such/endpoint", NULL, OPEN, 404},
    /* dev-kafka: the control endpoint, on loopback only (a development tool) */
    {DAEMON_KAFKA, "GET", "/healthz", NULL, OPEN, 200},
};

static const dtApi *daemonAt(int d) {
    switch (d) {
    case DAEMON_API: return &api;
    case DAEMON_VS: return &vs;
    case DAEMON_STREAM: return &proc.http;
    case DAEMON_ARCHIVER: return &arch;
    default: return &kafka.control;
    }
}

static const char *daemonName(int d) {
    static const char *const names[] = {"decision-api", "variable-store", "stream-processor", "decision-archiver",
                                        "dev-kafka"};
    return names[d];
}

static int suiteSetup(void **state) {
    if (!dtPgStart(&pg) || !dtApiStart(&api, &pg, NULL) || !dtKafkaStart(&kafka) ||
        !dtStreamStart(&proc, &pg, &kafka, NULL))
        return -1;
    static char e_dir[330], e_port[64], e_tokens[360];
    vs.port = dtFreePort();
    snprintf(vs.url, sizeof(vs.url), "http://127.0.0.1:%d", vs.port);
    snprintf(e_dir, sizeof(e_dir), "VARSTORE_DATA_DIR=%s/variable-store", pg.dir);
    snprintf(e_port, sizeof(e_port), "VARSTORE_LISTEN_PORT=%d", vs.port);
    snprintf(e_tokens, sizeof(e_tokens), "VARSTORE_TOKENS_FILE=%s", api.tokens_file);
    const char *env[] = {"VARSTORE_BROKERS=", e_dir, e_port, e_tokens, "VARSTORE_LOG_LEVEL=warn", NULL};
    store = dtSpawn("variable-store", NULL, env);
    static char a_brokers[64], a_dir[330], a_port[64];
    arch.port = dtFreePort();
    snprintf(arch.url, sizeof(arch.url), "http://127.0.0.1:%d", arch.port);
    snprintf(a_brokers, sizeof(a_brokers), "ARCHIVER_BROKERS=127.0.0.1:%d", kafka.port);
    snprintf(a_dir, sizeof(a_dir), "ARCHIVER_ARCHIVE=%s/archive", pg.dir);
    snprintf(a_port, sizeof(a_port), "ARCHIVER_METRICS_PORT=%d", arch.port);
    const char *aenv[] = {a_brokers, a_dir, a_port, "ARCHIVER_LOG_LEVEL=warn", NULL};
    archiver = dtSpawn("decision-archiver", NULL, aenv);
    return store > 0 && archiver > 0 && dtWaitReady(&vs, 30000) && dtWaitReady(&arch, 30000) ? 0 : -1;
}

static int suiteTeardown(void **state) {
    int rc = 0;
    if (store > 0 && dtStop(store, SIGTERM) != 0) rc = -1;
    if (archiver > 0 && dtStop(archiver, SIGTERM) != 0) rc = -1;
    if (proc.pid > 0 && dtStreamStop(&proc) != 0) rc = -1;
    if (api.pid > 0) dtApiStop(&api);
    if (kafka.pid > 0) dtKafkaStop(&kafka);
    dtPgDestroy(&pg);
    return rc;
}

/* The status one caller should get from one endpoint: 401, 403, e->ok, or
 * PAST_DOOR. */
static long expected(const endpoint *e, int c) {
    if (e->allowed == OPEN) return e->ok;
    if (c == C_NONE || c == C_UNKNOWN) return 401;
    return (e->allowed & R(c)) ? e->ok : 403;
}

/* One call; a message on stderr and false when it is not as the table says. */
static bool check(const endpoint *e, int c) {
    dtResponse r;
    const char *ct = e->body ? "application/json" : NULL;
    if (!dtHttp(daemonAt(e->daemon), e->method, e->path, callers[c].token, ct, e->body,
                e->body ? strlen(e->body) : 0, &r)) {
        fprintf(stderr, "%s %s %s as %s: no answer\n", daemonName(e->daemon), e->method, e->path, callers[c].name);
        return false;
    }
    long want = expected(e, c);
    bool ok = want == PAST_DOOR ? r.status != 401 && r.status != 403 : r.status == want;
    const char *code = json_string_value(json_object_get(r.json, "error"));
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    if (ok && want == 401) ok = code && strcmp(code, "unauthorized") == 0 && msg;
    if (ok && want == 403) ok = code && strcmp(code, "forbidden") == 0 && msg;
    if (!ok)
        fprintf(stderr, "%s %s %s as %s: %ld, expected %s%ld: %.200s\n", daemonName(e->daemon), e->method, e->path,
                callers[c].name, r.status, want == PAST_DOOR ? "anything but 401/403, e.g. " : "",
                want == PAST_DOOR ? 200L : want, r.body ? r.body : "");
    dtResponseFree(&r);
    return ok;
}

static void test_every_endpoint_by_every_caller(void **state) {
    int failed = 0;
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
        for (int c = 0; c < C_N; c++) failed += !check(&endpoints[i], c);
    assert_int_equal(failed, 0);
}

/* A 403 names the roles the endpoint takes, so an operator knows which
 * role to grant. */
static void test_forbidden_names_the_roles(void **state) {
    dtResponse r;
    assert_true(dtHttp(&vs, "GET", "/v1/variables/customer/cust-1", DT_WRITER_TOKEN, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 403);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "reader, lookup or admin"));
    dtResponseFree(&r);
    assert_true(dtHttp(&vs, "POST", "/v1/decisions:ingest", DT_LOOKUP_TOKEN, "application/json", "{\"decisions\":[]}",
                       16, &r));
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), "ingest or admin"));
    dtResponseFree(&r);
}

/* The variable store takes writes from anyone who reaches it unless it has
 * tokens: it refuses to start without its tokens file. */
static void test_store_refuses_to_start_without_tokens(void **state) {
    char e_dir[330], e_tokens[360], e_port[64];
    snprintf(e_port, sizeof(e_port), "VARSTORE_LISTEN_PORT=%d", dtFreePort());
    snprintf(e_dir, sizeof(e_dir), "VARSTORE_DATA_DIR=%s/vs-no-tokens", pg.dir);
    snprintf(e_tokens, sizeof(e_tokens), "VARSTORE_TOKENS_FILE=%s/no-such-tokens-file", pg.dir);
    const char *missing[] = {"VARSTORE_BROKERS=", e_dir, e_tokens, e_port, "VARSTORE_LOG_LEVEL=error", NULL};
    assert_int_equal(dtStop(dtSpawn("variable-store", NULL, missing), 0), 1);
    const char *empty[] = {"VARSTORE_BROKERS=", e_dir, "VARSTORE_TOKENS_FILE=", e_port, "VARSTORE_LOG_LEVEL=error",
                           NULL};
    assert_int_equal(dtStop(dtSpawn("variable-store", NULL, empty), 0), 1);
}

typedef struct lateToken {
    const dtApi *at;
    const char *path;
} lateToken;

static bool lateTokenWorks(void *arg) {
    const lateToken *l = arg;
    dtResponse r;
    bool ok = dtHttp(l->at, "GET", l->path, "test-late-token", NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

/* SIGHUP rereads the tokens file, in both servers: a token added to it
 * works without a restart (without the handler, SIGHUP would end the
 * store). */
static void test_sighup_reloads_tokens(void **state) {
    lateToken onApi = {&api, "/v1/decisions?customer_id=cust-1"}, onStore = {&vs, "/v1/variables/customer/cust-1"};
    assert_false(lateTokenWorks(&onApi));
    assert_false(lateTokenWorks(&onStore));
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)"test-late-token", strlen("test-late-token"), d);
    FILE *f = fopen(api.tokens_file, "a");
    assert_non_null(f);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) fprintf(f, "%02x", d[i]);
    fprintf(f, " reader,lookup late\n"); /* reader: the API's search; lookup: the store's */
    assert_int_equal(fclose(f), 0);
    assert_int_equal(kill(api.pid, SIGHUP), 0);
    assert_int_equal(kill(store, SIGHUP), 0);
    assert_true(dtWaitFor(lateTokenWorks, &onApi, 10000));
    assert_true(dtWaitFor(lateTokenWorks, &onStore, 10000));
}

/* 0 when a TCP connection to addr:port opens, else the errno. */
static int connectTo(const char *addr, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* Started without a listen address (the harness sets none), every daemon
 * listens on 127.0.0.1 only: another address of the machine, even another
 * loopback one, is refused. */
static void test_daemons_listen_on_loopback_by_default(void **state) {
    for (int d = DAEMON_API; d <= DAEMON_KAFKA; d++) {
        int port = atoi(strrchr(daemonAt(d)->url, ':') + 1);
        if (connectTo("127.0.0.1", port) != 0) fail_msg("%s: nothing on 127.0.0.1:%d", daemonName(d), port);
        if (connectTo("127.0.0.2", port) != ECONNREFUSED)
            fail_msg("%s accepts connections on 127.0.0.2:%d: it does not listen on 127.0.0.1 only", daemonName(d),
                     port);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_endpoint_by_every_caller),
        cmocka_unit_test(test_forbidden_names_the_roles),
        cmocka_unit_test(test_store_refuses_to_start_without_tokens),
        cmocka_unit_test(test_daemons_listen_on_loopback_by_default),
        cmocka_unit_test(test_sighup_reloads_tokens),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
