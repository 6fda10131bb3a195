/* harness.c - PostgreSQL, decision-api process and HTTP helpers for the
 * integration tests. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static const char *dtBuild(void) {
    const char *b = getenv("BUILD");
    return b && b[0] ? b : "build";
}

static void dtSleepMs(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long dtNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool dtWaitFor(bool (*cond)(void *), void *arg, int timeout_ms) {
    long long deadline = dtNowMs() + timeout_ms;
    for (;;) {
        if (cond(arg)) return true;
        if (dtNowMs() >= deadline) return false;
        dtSleepMs(20);
    }
}

/* Runs a shell command, capturing the first line of its output. */
static bool dtRunLine(const char *cmd, char *out, size_t outlen) {
    FILE *p = popen(cmd, "r");
    if (p == NULL) return false;
    if (out != NULL) {
        out[0] = '\0';
        if (fgets(out, (int)outlen, p) != NULL) out[strcspn(out, "\n")] = '\0';
    }
    char sink[256];
    while (fgets(sink, sizeof(sink), p) != NULL) {
    }
    int st = pclose(p);
    if (st != 0) fprintf(stderr, "harness: command failed (%d): %s\n", st, cmd);
    return st == 0;
}

bool dtPgStart(dtPg *pg) {
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/ds-test-XXXXXX");
    if (mkdtemp(pg->dir) == NULL) return false;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash deploy/pg-cluster.sh start %s", pg->dir);
    return dtRunLine(cmd, pg->conninfo, sizeof(pg->conninfo)) && pg->conninfo[0] != '\0';
}

bool dtPgStop(dtPg *pg) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash deploy/pg-cluster.sh stop %s", pg->dir);
    return dtRunLine(cmd, NULL, 0);
}

bool dtPgRestart(dtPg *pg) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash deploy/pg-cluster.sh restart %s", pg->dir);
    return dtRunLine(cmd, NULL, 0);
}

void dtPgDestroy(dtPg *pg) {
    char cmd[512];
    if (pg->dir[0] == '\0') return;
    snprintf(cmd, sizeof(cmd), "bash deploy/pg-cluster.sh destroy %s", pg->dir);
    dtRunLine(cmd, NULL, 0);
    pg->dir[0] = '\0';
}

char *dtPgScalar(const dtPg *pg, const char *sql) {
    PGconn *c = PQconnectdb(pg->conninfo);
    char *out = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: connect: %s", PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = strdup(PQgetvalue(r, 0, 0));
        else if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return out;
}

bool dtPgExec(const dtPg *pg, const char *sql) {
    PGconn *c = PQconnectdb(pg->conninfo);
    bool ok = false;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok) fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

typedef struct dtSlotWait {
    const dtPg *pg;
    char sql[400];
} dtSlotWait;

static bool dtSlotCaughtUp(void *arg) {
    dtSlotWait *w = arg;
    char *v = dtPgScalar(w->pg, w->sql);
    bool ok = v && strcmp(v, "t") == 0;
    free(v);
    return ok;
}

uint64_t dtLsnParse(const char *s) {
    unsigned hi, lo;
    return s && sscanf(s, "%X/%X", &hi, &lo) == 2 ? (uint64_t)hi << 32 | lo : 0;
}

uint64_t dtPgLsn(const dtPg *pg, const char *sql) {
    char *v = dtPgScalar(pg, sql);
    uint64_t lsn = dtLsnParse(v);
    free(v);
    return lsn;
}

dtCommit *dtPgTakeCommits(const dtPg *pg, const char *check_slot, size_t *n) {
    /* A window rather than a join: the planner expects few rows from the
     * function and would join thousands in a nested loop. */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT id, commit_lsn FROM (SELECT data LIKE 'table public.decisions: INSERT:%%' AS decision,"
             "  substring(data from 'decision_id\\[uuid\\]:''([0-9a-f-]{36})''') AS id,"
             "  max(lsn) FILTER (WHERE data LIKE 'COMMIT%%') OVER (PARTITION BY xid::text) AS commit_lsn"
             "  FROM pg_logical_slot_get_changes('%.100s', NULL, NULL)) c WHERE decision",
             check_slot);
    PGconn *c = PQconnectdb(pg->conninfo);
    PGresult *r = PQexec(c, sql);
    *n = 0;
    dtCommit *out = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "commits: %s", PQerrorMessage(c));
    } else {
        *n = (size_t)PQntuples(r);
        out = calloc(*n + 1, sizeof(*out));
        for (size_t i = 0; out != NULL && i < *n; i++) {
            snprintf(out[i].id, sizeof(out[i].id), "%s", PQgetvalue(r, (int)i, 0));
            out[i].lsn = dtLsnParse(PQgetvalue(r, (int)i, 1));
        }
        if (out == NULL) *n = 0;
    }
    PQclear(r);
    PQfinish(c);
    return out;
}

bool dtPgWaitSlotCaughtUp(const dtPg *pg, const char *slot, int timeout_ms) {
    char *lsn = dtPgScalar(pg, "SELECT pg_current_wal_lsn()");
    if (lsn == NULL) return false;
    dtSlotWait w = {pg, ""};
    snprintf(w.sql, sizeof(w.sql),
             "SELECT confirmed_flush_lsn >= '%s'::pg_lsn FROM pg_replication_slots WHERE slot_name = '%.200s'", lsn,
             slot);
    free(lsn);
    return dtWaitFor(dtSlotCaughtUp, &w, timeout_ms);
}

bool dtPgSetDefault(const dtPg *pg, const char *name, const char *value) {
    char sql[512];
    if (value)
        snprintf(sql, sizeof(sql), "DO $$BEGIN EXECUTE format('ALTER DATABASE %%I SET %s = %%L', current_database(),"
                 " '%s'); END$$", name, value);
    else
        snprintf(sql, sizeof(sql), "DO $$BEGIN EXECUTE format('ALTER DATABASE %%I RESET %s', current_database()); END$$",
                 name);
    return dtPgExec(pg, sql);
}

char *dtPgTableFingerprint(const dtPg *pg) {
    return dtPgScalar(pg, "SELECT count(*) || ':' || coalesce(md5(string_agg(decision_id::text || doc::text || "
                          "recorded_at::text, ',' ORDER BY decision_id)), '') FROM decisions");
}

int dtFreePort(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

pid_t dtSpawn(const char *program, const char *const *args, const char *const *env) {
    char bin[300];
    snprintf(bin, sizeof(bin), "%s/bin/%s", dtBuild(), program);
    const char *argv[32] = {bin};
    for (size_t i = 0; args && args[i] && i < 30; i++) argv[i + 1] = args[i];
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; env && env[i]; i++) putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    return pid;
}

int dtWaitExit(pid_t pid, int timeout_ms) {
    if (pid <= 0) return -1;
    long long deadline = dtNowMs() + timeout_ms;
    int st = 0;
    pid_t got;
    while ((got = waitpid(pid, &st, WNOHANG)) == 0) {
        if (dtNowMs() >= deadline) {
            fprintf(stderr, "harness: process %d did not exit within %d ms: killed with SIGKILL\n", (int)pid,
                    timeout_ms);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        dtSleepMs(20);
    }
    if (got < 0) {
        fprintf(stderr, "harness: waiting for process %d: %s\n", (int)pid, strerror(errno));
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int dtStop(pid_t pid, int sig) {
    if (pid <= 0) return -1;
    kill(pid, sig);
    return dtWaitExit(pid, 20000);
}

/* Reads p to its end and closes it; *out is what it printed (malloc'd),
 * the result pclose()'s status. */
static int dtReadAll(FILE *p, char **out) {
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    *out = buf;
    return pclose(p);
}

char *dtCapture(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (p == NULL) return strdup("");
    char *out;
    dtReadAll(p, &out);
    return out;
}

int dtRun(const char *cmd, char **out) {
    char *full;
    if (asprintf(&full, "( %s ) 2>&1", cmd) < 0) return -1;
    FILE *p = popen(full, "r");
    free(full);
    if (p == NULL) {
        *out = strdup("");
        return -1;
    }
    int st = dtReadAll(p, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool dtKafkaHealthy(void *arg) {
    dtResponse r;
    bool ok = dtHttp(&((dtKafka *)arg)->control, "GET", "/healthz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

rd_kafka_t *dtKafkaProducer(const dtKafka *k, rd_kafka_conf_t *conf) {
    char brokers[64], err[512];
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", k->port);
    if (conf == NULL) conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        (rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "harness: producer: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

bool dtKafkaStart(dtKafka *k) {
    char bp[16], cp[16];
    k->port = dtFreePort();
    int control_port = dtFreePort();
    snprintf(k->control.url, sizeof(k->control.url), "http://127.0.0.1:%d", control_port);
    snprintf(bp, sizeof(bp), "%d", k->port);
    snprintf(cp, sizeof(cp), "%d", control_port);
    /* consumers start one at a time here: none waits for others to join */
    const char *args[] = {"--listen-port", bp, "--control-port", cp, "--log-level", "warn",
                          "--group-initial-rebalance-delay", "200ms", NULL};
    k->pid = dtSpawn("dev-kafka", args, NULL);
    return k->pid > 0 && dtWaitFor(dtKafkaHealthy, k, 20000);
}

int dtKafkaStop(dtKafka *k) {
    int rc = dtStop(k->pid, SIGTERM);
    k->pid = -1;
    return rc;
}

bool dtKafkaBrokers(dtKafka *k, const char *state) {
    for (int b = 1; b <= 3; b++) {
        char path[64];
        snprintf(path, sizeof(path), "/brokers/%d/%s", b, state);
        dtResponse r;
        bool ok = dtHttp(&k->control, "POST", path, NULL, NULL, "", 0, &r) && r.status == 200;
        dtResponseFree(&r);
        if (!ok) return false;
    }
    return true;
}

static void dtHashLine(FILE *f, const char *token, const char *roles) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) fprintf(f, "%02x", d[i]);
    fprintf(f, " %s %s\n", roles, token);
}

static bool dtApiReady(void *arg) {
    dtApi *api = arg;
    dtResponse r;
    /* /readyz, not /healthz: until the database sessions are up the API
     * rightly answers 503, and the first test must not race that. */
    bool ok = dtHttp(api, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    int st;
    if (waitpid(api->pid, &st, WNOHANG) == api->pid) {
        api->pid = -1;
        return true; /* exited: stop waiting, the caller sees pid == -1 */
    }
    return ok;
}

/* The test tokens, hashed, in the cluster directory (api->tokens_file). */
static bool dtApiWriteTokens(dtApi *api, const dtPg *pg) {
    snprintf(api->tokens_file, sizeof(api->tokens_file), "%s/tokens", pg->dir);
    return dtWriteTokens(api->tokens_file);
}

bool dtWriteTokens(const char *path) {
    FILE *f = fopen(path, "w");
    if (f == NULL) return false;
    fprintf(f, "# test tokens\n");
    dtHashLine(f, DT_WRITER_TOKEN, "writer");
    dtHashLine(f, DT_READER_TOKEN, "reader");
    dtHashLine(f, DT_LOOKUP_TOKEN, "lookup");
    dtHashLine(f, DT_INGEST_TOKEN, "ingest");
    dtHashLine(f, DT_ADMIN_TOKEN, "admin");
    return fclose(f) == 0;
}

static bool dtApiStartOnPort(dtApi *api, const dtPg *pg, const char *const *extra_env);

bool dtApiStart(dtApi *api, const dtPg *pg, const char *const *extra_env) {
    api->port = dtFreePort();
    return dtApiStartOnPort(api, pg, extra_env);
}

bool dtApiRestart(dtApi *api, const dtPg *pg, const char *const *extra_env) {
    return dtApiStartOnPort(api, pg, extra_env);
}

static bool dtApiStartOnPort(dtApi *api, const dtPg *pg, const char *const *extra_env) {
    snprintf(api->url, sizeof(api->url), "http://127.0.0.1:%d", api->port);
    if (!dtApiWriteTokens(api, pg)) return false;

    char bin[300];
    snprintf(bin, sizeof(bin), "%s/bin/decision-api", dtBuild());
    api->pid = fork();
    if (api->pid < 0) return false;
    if (api->pid == 0) {
        char port[16];
        snprintf(port, sizeof(port), "%d", api->port);
        setenv("DECISIONS_LISTEN_PORT", port, 1);
        setenv("DECISIONS_DSN", pg->conninfo, 1);
        setenv("DECISIONS_TOKENS_FILE", api->tokens_file, 1);
        setenv("DECISIONS_LOG_LEVEL", "warn", 0);
        for (size_t i = 0; extra_env && extra_env[i]; i++) putenv((char *)extra_env[i]);
        execl(bin, bin, (char *)NULL);
        fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    if (!dtWaitFor(dtApiReady, api, 30000) || api->pid < 0) {
        fprintf(stderr, "harness: decision-api did not become ready\n");
        if (api->pid > 0) dtApiStop(api);
        return false;
    }
    return true;
}

int dtApiStop(dtApi *api) {
    int rc = dtStop(api->pid, SIGTERM);
    api->pid = -1;
    return rc;
}

int dtApiWait(dtApi *api) {
    int rc = dtWaitExit(api->pid, 20000);
    api->pid = -1;
    return rc;
}

typedef struct dtBuf {
    char *data;
    size_t len;
} dtBuf;

static size_t dtOnBody(char *p, size_t size, size_t n, void *arg) {
    dtBuf *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (grown == NULL) return 0;
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

static void dtCopyHeader(const char *line, size_t len, const char *name, char *out, size_t outlen) {
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0) return;
    const char *v = line + n;
    size_t vlen = len - n;
    while (vlen && (*v == ' ')) v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n')) vlen--;
    snprintf(out, outlen, "%.*s", (int)vlen, v);
}

static size_t dtOnHeader(char *p, size_t size, size_t n, void *arg) {
    dtResponse *r = arg;
    dtCopyHeader(p, size * n, "location:", r->location, sizeof(r->location));
    dtCopyHeader(p, size * n, "retry-after:", r->retry_after, sizeof(r->retry_after));
    dtCopyHeader(p, size * n, "content-type:", r->content_type, sizeof(r->content_type));
    return size * n;
}

bool dtHttp(const dtApi *api, const char *method, const char *path, const char *token, const char *content_type,
            const char *body, size_t len, dtResponse *out) {
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    if (c == NULL) return false;
    char url[1024], auth[256], ct[256];
    snprintf(url, sizeof(url), "%s%s", api->url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "");
    h = curl_slist_append(h, content_type ? ct : "Content-Type:");
    dtBuf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dtOnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, dtOnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    out->body = b.data ? b.data : strdup("");
    out->len = b.len;
    out->json = json_loadb(out->body, out->len, 0, NULL);
    return rc == CURLE_OK;
}

void dtResponseFree(dtResponse *r) {
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

bool dtHttp2PostAndHangUp(const dtApi *api, const char *path, const char *token, const char *body,
                          bool (*until)(void *), void *arg, int timeout_ms) {
    CURLM *m = curl_multi_init();
    CURL *c = curl_easy_init();
    char url[1024], auth[256];
    snprintf(url, sizeof(url), "%s%s", api->url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    dtBuf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dtOnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_multi_add_handle(m, c);
    long long deadline = dtNowMs() + timeout_ms;
    bool reached = false;
    int running = 1;
    while (running && !(reached = until(arg)) && dtNowMs() < deadline) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    /* Hang up: removing the handle closes its connection mid-request. */
    curl_multi_remove_handle(m, c);
    curl_easy_cleanup(c);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    bool answered = b.len > 0;
    free(b.data);
    return reached && !answered;
}

json_t *dtFixture(const char *name) {
    char path[512];
    snprintf(path, sizeof(path), "tests/fixtures/%s", name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL) fprintf(stderr, "harness: %s: %s\n", path, err.text);
    return j;
}

void dtUuid(char out[37]) {
    unsigned char b[16];
    RAND_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* --- decision-api on an inherited socket (dtApiStartOnFd) --- */

extern char **environ;

/* The supervisor's end of the notify protocol: a datagram socket bound to
 * a fresh path in the cluster directory. */
static int dtNotifySocket(const dtPg *pg, char *path, size_t pathlen) {
    static int seq;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(path, pathlen, "%s/notify-%d", pg->dir, ++seq);
    if (strlen(path) >= sizeof(a.sun_path)) {
        fprintf(stderr, "harness: notify socket path too long: %s\n", path);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path));
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "harness: notify socket %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* The child's environment, built before fork(): the test may have threads
 * (a load generator) holding malloc's lock at that moment, so the child
 * only calls async-signal-safe functions. getenv() takes the first match,
 * hence the order: extra_env, the harness's settings, the test's own
 * environment, then defaults that environment may override. listen_pid
 * is filled in by the child. */
static char **dtApiEnv(const dtPg *pg, const dtApi *api, const char *notify, const char *const *extra_env,
                       char *listen_pid) {
    size_t n = 0, nenv = 0, nextra = 0;
    while (environ[nenv]) nenv++;
    while (extra_env && extra_env[nextra]) nextra++;
    char **env = calloc(nextra + nenv + 8, sizeof(char *));
    for (size_t i = 0; i < nextra; i++) env[n++] = strdup(extra_env[i]);
    if (asprintf(&env[n++], "DECISIONS_DSN=%s", pg->conninfo) < 0 ||
        asprintf(&env[n++], "DECISIONS_TOKENS_FILE=%s", api->tokens_file) < 0 ||
        asprintf(&env[n++], "NOTIFY_SOCKET=%s", notify) < 0)
        abort();
    env[n++] = strdup("LISTEN_FDS=1");
    env[n++] = listen_pid;
    for (size_t i = 0; i < nenv; i++) env[n++] = strdup(environ[i]);
    env[n++] = strdup("DECISIONS_LOG_LEVEL=warn");
    return env;
}

/* In the child: the socket becomes fd 3 (SD_LISTEN_FDS_START), every other
 * descriptor of the test is closed, and LISTEN_PID names this process. */
static void dtExecOnFd(const char *bin, int fd, char **env, char *listen_pid) {
    if (fd == 3) fcntl(3, F_SETFD, 0); /* dup2 onto itself would keep close-on-exec */
    else if (dup2(fd, 3) != 3) _exit(126);
    if (close_range(4, ~0U, 0) != 0)
        for (int i = 4; i < 1024; i++) close(i);
    char digits[16], *w = listen_pid + strlen("LISTEN_PID=");
    int nd = 0;
    for (pid_t p = getpid(); p > 0; p /= 10) digits[nd++] = (char)('0' + p % 10);
    while (nd > 0) *w++ = digits[--nd];
    *w = '\0';
    char *argv[] = {(char *)bin, NULL};
    execve(bin, argv, env);
    static const char msg[] = "harness: exec decision-api failed\n";
    if (write(2, msg, sizeof(msg) - 1) < 0) _exit(127);
    _exit(127);
}

typedef struct dtNotifyWait {
    dtApi *api;
    int sock;
} dtNotifyWait;

static bool dtApiNotifiedReady(void *arg) {
    dtNotifyWait *w = arg;
    char msg[512];
    ssize_t n;
    while ((n = recv(w->sock, msg, sizeof(msg) - 1, MSG_DONTWAIT)) > 0) {
        msg[n] = '\0';
        if (strncmp(msg, "READY=1", 7) == 0 || strstr(msg, "\nREADY=1") != NULL) return true;
    }
    int st;
    if (waitpid(w->api->pid, &st, WNOHANG) == w->api->pid) {
        w->api->pid = -1;
        return true; /* exited: stop waiting, the caller sees pid == -1 */
    }
    return false;
}

bool dtApiStartOnFd(dtApi *api, const dtPg *pg, int fd, const char *const *extra_env) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &alen) != 0 || addr.sin_family != AF_INET) {
        fprintf(stderr, "harness: fd %d is not an IPv4 socket\n", fd);
        return false;
    }
    api->port = ntohs(addr.sin_port);
    snprintf(api->url, sizeof(api->url), "http://127.0.0.1:%d", api->port);
    if (!dtApiWriteTokens(api, pg)) return false;
    char notify[300], bin[300];
    int ns = dtNotifySocket(pg, notify, sizeof(notify));
    if (ns < 0) return false;
    snprintf(bin, sizeof(bin), "%s/bin/decision-api", dtBuild());
    char *listen_pid = calloc(1, 32);
    strcpy(listen_pid, "LISTEN_PID=");
    char **env = dtApiEnv(pg, api, notify, extra_env, listen_pid);
    api->pid = fork();
    if (api->pid == 0) dtExecOnFd(bin, fd, env, listen_pid);
    for (char **e = env; *e; e++) free(*e);
    free(env);
    dtNotifyWait w = {api, ns};
    bool ok = api->pid > 0 && dtWaitFor(dtApiNotifiedReady, &w, 30000) && api->pid > 0;
    close(ns);
    unlink(notify);
    if (!ok) {
        fprintf(stderr, "harness: decision-api on fd %d did not report ready\n", fd);
        if (api->pid > 0) dtApiStop(api);
    }
    return ok;
}

/* --- the stream processor, metrics --- */

static bool dtReady(void *arg) {
    dtResponse r;
    bool ok = dtHttp(arg, "GET", "/readyz", NULL, NULL, NULL, 0, &r) && r.status == 200;
    dtResponseFree(&r);
    return ok;
}

bool dtWaitReady(const dtApi *at, int timeout_ms) {
    return dtWaitFor(dtReady, (void *)at, timeout_ms);
}

bool dtStreamStart(dtStream *s, const dtPg *pg, const dtKafka *k, const char *const *extra_env) {
    char brokers[64];
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", k->port);
    return dtStreamStartOn(s, pg, brokers, extra_env);
}

bool dtStreamStartOn(dtStream *s, const dtPg *pg, const char *brokers, const char *const *extra_env) {
    const char *env[24] = {s->env[0], s->env[2], "STREAM_LOG_LEVEL=warn"};
    size_t n = 3;
    int port = dtFreePort();
    snprintf(s->http.url, sizeof(s->http.url), "http://127.0.0.1:%d", port);
    snprintf(s->env[0], sizeof(s->env[0]), "STREAM_DSN=%s", pg->conninfo);
    snprintf(s->env[2], sizeof(s->env[2]), "STREAM_METRICS_PORT=%d", port);
    if (brokers != NULL) {
        snprintf(s->env[1], sizeof(s->env[1]), "STREAM_BROKERS=%s", brokers);
        env[n++] = s->env[1];
    }
    for (size_t i = 0; extra_env && extra_env[i] && n < 23; i++) env[n++] = extra_env[i];
    env[n] = NULL;
    s->pid = dtSpawn("stream-processor", NULL, env);
    return s->pid > 0 && dtWaitFor(dtReady, &s->http, 20000);
}

int dtStreamStop(dtStream *s) {
    int rc = dtStop(s->pid, SIGTERM);
    s->pid = -1;
    return rc;
}

typedef struct dtMetricMin {
    const dtApi *at;
    const char *name;
    double min;
} dtMetricMin;

static bool dtMetricReached(void *arg) {
    const dtMetricMin *m = arg;
    return dtMetric(m->at, m->name) >= m->min;
}

bool dtWaitMetric(const dtApi *at, const char *name, double min, int timeout_ms) {
    dtMetricMin m = {at, name, min};
    return dtWaitFor(dtMetricReached, &m, timeout_ms);
}

double dtMetric(const dtApi *at, const char *name) {
    dtResponse r;
    double v = -1;
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    if (dtHttp(at, "GET", "/metrics", NULL, NULL, NULL, 0, &r) && r.body && strstr(r.body, key))
        v = atof(strstr(r.body, key) + strlen(key));
    dtResponseFree(&r);
    return v;
}

bool dtPostFixture(const dtApi *api, char id[37], const char *customer) {
    json_t *doc = dtFixture("decision.json");
    if (doc == NULL) return false;
    dtUuid(id);
    json_object_set_new(doc, "decision_id", json_string(id));
    if (customer) json_object_set_new(doc, "customer_id", json_string(customer));
    char *body = json_dumps(doc, JSON_COMPACT);
    dtResponse r;
    bool ok = body && dtHttp(api, "POST", "/v1/decisions", DT_WRITER_TOKEN, "application/json", body, strlen(body), &r) &&
              r.status == 201;
    if (body) dtResponseFree(&r);
    free(body);
    json_decref(doc);
    return ok;
}
