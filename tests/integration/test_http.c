/* test_http.c - the HTTP scaffold both public servers share (lib/src/http.c),
 * tried from outside: TLS and mutual TLS with certificates made here by
 * openssl and checked with the curl command line; no HTTP/2 upgrade over
 * plain HTTP; the connection cap; h2o's own errors as JSON; ambiguous
 * request framing refused; error messages that echo bytes which are not
 * UTF-8. The variable store (ingest only, no Kafka) serves most of them;
 * the decision API the ones only it has, and its TLS wiring. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static dtPg pg;
static dtApi api;
static char dir[256]; /* certificates and store directories */

/* --- helpers --- */

static char *sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return dtCapture(cmd);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate it
 * signed, and a client certificate of another CA, in dir. */
static bool makeCertificates(void) {
    char *out = sh("set -e; cd %s; K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
                   "for ca in ca other; do openssl req -x509 $K -keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca "
                   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign 2>/dev/null; done\n"
                   "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext\n"
                   "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
                   "for c in server:ca:server client:ca:client stranger:other:client; do\n"
                   "  n=${c%%%%:*}; r=${c#*:}; ca=${r%%:*}; ext=${r#*:}\n"
                   "  openssl req $K -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null\n"
                   "  openssl x509 -req -in $n.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -out $n.pem -days 2 "
                   "-extfile $ext.ext 2>/dev/null\n"
                   "done; echo made",
                   dir);
    bool ok = strstr(out, "made") != NULL;
    if (!ok) fprintf(stderr, "making certificates failed: %s\n", out);
    free(out);
    return ok;
}

/* The status curl saw for url with the extra arguments, 0 if none came
 * (TLS refused, connection closed). */
static long curlStatus(const char *url, const char *args) {
    char *out = sh("curl -s -o /dev/null -w '%%{http_code}' --max-time 10 %s '%s' 2>/dev/null", args, url);
    long code = strtol(out, NULL, 10);
    free(out);
    return code;
}

typedef struct storeProc {
    pid_t pid;
    dtApi at; /* its url */
    char env[10][400];
    const char *envp[11];
} storeProc;

/* Starts an ingest-only variable store (no Kafka) with extra "NAME=value"
 * settings (NULL-terminated, may be NULL). Does not wait. */
static pid_t running = -1; /* the store a test started, stopped by testTeardown if the test failed */
static dtApi tls;          /* the API test_api_over_tls started, likewise */

static void storeSpawn(storeProc *p, const char *const *extra) {
    static int n;
    p->at.port = dtFreePort();
    snprintf(p->at.url, sizeof(p->at.url), "http://127.0.0.1:%d", p->at.port);
    size_t i = 0;
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_BROKERS=");
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_DATA_DIR=%s/store%d", dir, n++);
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_LISTEN_PORT=%d", p->at.port);
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_LISTEN_HOST=127.0.0.1");
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_LOG_LEVEL=warn");
    snprintf(p->env[i++], sizeof(p->env[0]), "VARSTORE_TOKENS_FILE=%s/tokens", dir);
    for (size_t k = 0; extra && extra[k] && i < 10; k++) snprintf(p->env[i++], sizeof(p->env[0]), "%s", extra[k]);
    for (size_t k = 0; k < i; k++) p->envp[k] = p->env[k];
    p->envp[i] = NULL;
    p->pid = running = dtSpawn("variable-store", NULL, p->envp);
}

static void storeStart(storeProc *p, const char *const *extra) {
    storeSpawn(p, extra);
    assert_true(p->pid > 0);
    assert_true(dtWaitReady(&p->at, 20000));
}

static void storeStop(storeProc *p) {
    running = -1;
    assert_int_equal(dtStop(p->pid, SIGTERM), 0);
}

static int testTeardown(void **state) {
    if (running > 0) dtStop(running, SIGKILL);
    if (tls.pid > 0) dtStop(tls.pid, SIGKILL);
    running = tls.pid = -1;
    return 0;
}

typedef struct httpsProbe {
    const char *url;
    const char *args;
} httpsProbe;

static bool httpsAnswers(void *arg) {
    httpsProbe *p = arg;
    return curlStatus(p->url, p->args) == 200;
}

static int rawConnect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool rawSend(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        data += n, len -= (size_t)n;
    }
    return true;
}

static long long nowMs(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Whether buf holds a whole response: its head and content-length bytes. */
static bool rawComplete(const char *buf, size_t len) {
    const char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL) return false;
    const char *cl = strcasestr(buf, "\ncontent-length:");
    if (cl == NULL || cl > end) return false;
    return len - (size_t)(end + 4 - buf) >= strtoul(cl + 16, NULL, 10);
}

/* Reads one response on fd, or until the server closes; NULL if nothing
 * came within timeout_ms. malloc'd. */
static char *rawRead(int fd, int timeout_ms) {
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap + 1);
    long long deadline = nowMs() + timeout_ms;
    while (!rawComplete(buf, len)) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = deadline - nowMs();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) break;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    if (len == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* One request on a fresh connection; the whole answer (empty if none). */
static char *raw(int port, const char *req, size_t len) {
    int fd = rawConnect(port);
    assert_true(fd >= 0);
    assert_true(rawSend(fd, req, len));
    char *out = rawRead(fd, 10000);
    close(fd);
    return out ? out : strdup("");
}

/* The JSON body of a raw response, asserting it is the contract's error. */
static void assertJsonError(const char *resp, const char *status_line, const char *code) {
    if (strncmp(resp, status_line, strlen(status_line)) != 0) fail_msg("expected %s, got: %s", status_line, resp);
    const char *head_end = strstr(resp, "\r\n\r\n");
    assert_non_null(head_end);
    assert_non_null(strcasestr(resp, "\ncontent-type: application/json"));
    json_error_t err;
    json_t *j = json_loads(head_end + 4, 0, &err);
    if (j == NULL) fail_msg("not JSON: %s", head_end + 4);
    assert_string_equal(json_string_value(json_object_get(j, "error")), code);
    assert_true(json_is_string(json_object_get(j, "message")));
    json_decref(j);
}

/* --- TLS --- */

static void test_tls_serves_https_only(void **state) {
    char cert[300], key[300], url[128], args[700];
    snprintf(cert, sizeof(cert), "VARSTORE_TLS_CERT=%s/server.pem", dir);
    snprintf(key, sizeof(key), "VARSTORE_TLS_KEY=%s/server.key", dir);
    const char *env[] = {cert, key, NULL};
    storeProc p;
    storeSpawn(&p, env);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", p.at.port);
    snprintf(args, sizeof(args), "--cacert %s/ca.pem", dir);
    httpsProbe probe = {url, args};
    assert_true(dtWaitFor(httpsAnswers, &probe, 20000));
    /* plain HTTP on the TLS port gets no HTTP answer */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", p.at.port);
    assert_int_equal(curlStatus(url, ""), 0);
    /* nor does a client that cannot verify the certificate (no CA given) */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", p.at.port);
    assert_int_equal(curlStatus(url, ""), 0);
    storeStop(&p);
}

static void test_mutual_tls(void **state) {
    char cert[300], key[300], ca[300], url[128], args[900];
    snprintf(cert, sizeof(cert), "VARSTORE_TLS_CERT=%s/server.pem", dir);
    snprintf(key, sizeof(key), "VARSTORE_TLS_KEY=%s/server.key", dir);
    snprintf(ca, sizeof(ca), "VARSTORE_TLS_CLIENT_CA=%s/ca.pem", dir);
    const char *env[] = {cert, key, ca, NULL};
    storeProc p;
    storeSpawn(&p, env);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", p.at.port);
    snprintf(args, sizeof(args), "--cacert %s/ca.pem --cert %s/client.pem --key %s/client.key", dir, dir, dir);
    httpsProbe probe = {url, args};
    assert_true(dtWaitFor(httpsAnswers, &probe, 20000));
    /* without a client certificate: refused */
    snprintf(args, sizeof(args), "--cacert %s/ca.pem", dir);
    assert_int_equal(curlStatus(url, args), 0);
    /* with one another CA signed: refused */
    snprintf(args, sizeof(args), "--cacert %s/ca.pem --cert %s/stranger.pem --key %s/stranger.key", dir, dir, dir);
    assert_int_equal(curlStatus(url, args), 0);
    storeStop(&p);
}

/* Each bad setting stops the program at start with the option and the
 * file named. */
static void expectStartError(const char *program, const char *env_prefix, const char *flags, const char *expect) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char *out = sh("VARSTORE_BROKERS= VARSTORE_DATA_DIR=%s/badstore VARSTORE_TOKENS_FILE=%s/tokens %sLOG_LEVEL=info "
                   "%s/bin/%s %s 2>&1; echo \"exit=$?\"",
                   dir, dir, env_prefix, build, program, flags);
    if (strstr(out, expect) == NULL || strstr(out, "exit=1") == NULL)
        fail_msg("%s %s: expected \"%s\" and exit 1, got: %s", program, flags, expect, out);
    free(out);
}

static void test_tls_bad_files_refused_at_start(void **state) {
    char flags[1200], expect[600];
    const char *programs[][2] = {{"variable-store", "VARSTORE_"}, {"decision-api", "DECISIONS_"}};
    for (size_t i = 0; i < 2; i++) {
        const char *prog = programs[i][0], *pre = programs[i][1];
        snprintf(flags, sizeof(flags), "--tls-cert %s/missing.pem --tls-key %s/server.key", dir, dir);
        snprintf(expect, sizeof(expect), "--tls-cert %s/missing.pem: No such file", dir);
        expectStartError(prog, pre, flags, expect);
        snprintf(flags, sizeof(flags), "--tls-cert %s/server.ext --tls-key %s/server.key", dir, dir);
        snprintf(expect, sizeof(expect), "--tls-cert %s/server.ext: not a PEM certificate", dir);
        expectStartError(prog, pre, flags, expect);
        snprintf(flags, sizeof(flags), "--tls-cert %s/server.pem --tls-key %s/client.key", dir, dir);
        snprintf(expect, sizeof(expect), "--tls-key %s/client.key: not the PEM private key of --tls-cert", dir);
        expectStartError(prog, pre, flags, expect);
        snprintf(flags, sizeof(flags), "--tls-cert %s/server.pem --tls-key %s/server.key --tls-client-ca %s/nope.pem",
                 dir, dir, dir);
        snprintf(expect, sizeof(expect), "--tls-client-ca %s/nope.pem: No such file", dir);
        expectStartError(prog, pre, flags, expect);
        snprintf(flags, sizeof(flags), "--tls-cert %s/server.pem", dir);
        expectStartError(prog, pre, flags, "--tls-cert is set but --tls-key");
    }
}

/* One set of option names for both servers (DS_HTTP_CONFIG_OPTIONS). */
static void test_same_options_in_both_servers(void **state) {
    const char *progs[] = {"decision-api", "variable-store"};
    const char *names[] = {"--tls-cert ", "--tls-key ", "--tls-client-ca ", "--max-connections ", "--http2 "};
    for (size_t i = 0; i < 2; i++) {
        char *out = sh("${BUILD:-build}/bin/%s --help", progs[i]);
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strstr(out, names[k]) == NULL) fail_msg("%s --help has no %s", progs[i], names[k]);
        free(out);
    }
}

/* The decision API takes the same options (here on an inherited socket:
 * the harness waits for READY=1, not for a plain-HTTP /readyz). */
static void test_api_over_tls(void **state) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0);
    char cert[300], key[300], url[128], args[700];
    snprintf(cert, sizeof(cert), "DECISIONS_TLS_CERT=%s/server.pem", dir);
    snprintf(key, sizeof(key), "DECISIONS_TLS_KEY=%s/server.key", dir);
    const char *env[] = {cert, key, NULL};
    assert_true(dtApiStartOnFd(&tls, &pg, fd, env));
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/decisions?customer_id=nobody", tls.port);
    snprintf(args, sizeof(args), "--cacert %s/ca.pem -H 'Authorization: Bearer %s'", dir, DT_READER_TOKEN);
    assert_int_equal(curlStatus(url, args), 200);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", tls.port);
    assert_int_equal(curlStatus(url, ""), 0);
    close(fd);
    assert_int_equal(dtApiStop(&tls), 0);
}

/* --- HTTP/2 upgrade, connection cap --- */

static void test_no_http2_over_plain_http(void **state) {
    storeProc p;
    storeStart(&p, NULL);
    static const char upgrade[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                  "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    char *r = raw(p.at.port, upgrade, sizeof(upgrade) - 1);
    if (strncmp(r, "HTTP/1.1 200", 12) != 0) fail_msg("Upgrade: h2c answered: %s", r);
    free(r);
    /* nor HTTP/2 with prior knowledge: the preface is not an HTTP/1 request */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    r = raw(p.at.port, preface, sizeof(preface) - 1);
    if (strncmp(r, "HTTP/1.1 400", 12) != 0) fail_msg("the HTTP/2 preface got: %s", r);
    free(r);
    storeStop(&p);
}

static int servedConnection(int port) {
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = rawConnect(port);
    assert_true(fd >= 0 && rawSend(fd, get, sizeof(get) - 1));
    char *r = rawRead(fd, 10000);
    assert_non_null(r);
    assert_memory_equal(r, "HTTP/1.1 200", 12);
    free(r);
    return fd;
}

static void test_connection_cap(void **state) {
    storeProc p;
    const char *env[] = {"VARSTORE_MAX_CONNECTIONS=2", NULL};
    storeStart(&p, env);
    int a = servedConnection(p.at.port), b = servedConnection(p.at.port); /* both kept open */
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int c = rawConnect(p.at.port); /* the kernel completes the handshake: the backlog */
    assert_true(c >= 0 && rawSend(c, get, sizeof(get) - 1));
    char *r = rawRead(c, 700);
    if (r != NULL) fail_msg("a third connection was served over a cap of 2: %s", r);
    close(a);
    r = rawRead(c, 10000);
    assert_non_null(r);
    assert_memory_equal(r, "HTTP/1.1 200", 12);
    free(r);
    close(b);
    close(c);
    assert_true(dtMetric(&p.at, "http_accept_paused_total") >= 1);
    storeStop(&p);
}

/* --- malformed requests --- */

static void test_h2o_errors_are_json(void **state) {
    storeProc p;
    storeStart(&p, NULL);
    const char *head = "POST /v1/variables:batchGet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Authorization: Bearer " DT_LOOKUP_TOKEN "\r\n";
    char req[512];
    struct {
        const char *rest, *status, *code;
    } cases[] = {
        {"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "HTTP/1.1 400", "bad_request"},
        {"Transfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 400", "bad_request"},
        {"Content-Length: two\r\n\r\n{}", "HTTP/1.1 400", "bad_request"},
        {"Content-Length: 999999999\r\n\r\n{}", "HTTP/1.1 413", "body_too_large"},
        {"Content-Length: 2\r\nExpect: coffee\r\n\r\n{}", "HTTP/1.1 417", "expectation_failed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req), "%s%s", head, cases[i].rest);
        char *r = raw(p.at.port, req, strlen(req));
        assertJsonError(r, cases[i].status, cases[i].code);
        free(r);
    }
    /* Over h2o's 100 headers: refused before any request exists, in h2o's
     * own plain text (documented in the README). */
    char many[8192];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 120; i++) n += (size_t)snprintf(many + n, sizeof(many) - n, "X-H%d: y\r\n", i);
    n += (size_t)snprintf(many + n, sizeof(many) - n, "\r\n");
    char *r = raw(p.at.port, many, n);
    assert_memory_equal(r, "HTTP/1.1 400", 12);
    free(r);
    storeStop(&p);
}

static void test_ambiguous_framing_refused(void **state) {
    storeProc p;
    storeStart(&p, NULL);
    const char *head = "POST /v1/variables:batchGet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Authorization: Bearer " DT_LOOKUP_TOKEN "\r\n";
    char req[512];
    /* h2o alone reads 2 bytes by the first header and would take the rest
     * ("GET /smuggled ...") as the next request on the connection */
    const char *refused[] = {
        "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Pad: 1234\r\n\r\n",
        "Content-Length: 40\r\ncontent-length: 2\r\n\r\n{}GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Pad: 1234\r\n\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(req, sizeof(req), "%s%s", head, refused[i]);
        char *r = raw(p.at.port, req, strlen(req));
        assertJsonError(r, "HTTP/1.1 400", "bad_request");
        assert_non_null(strstr(r, "ambiguous"));
        assert_null(strstr(r, "smuggled")); /* and nothing after it was served */
        assert_non_null(strcasestr(r, "\nconnection: close"));
        free(r);
    }
    /* the same length twice is no ambiguity */
    snprintf(req, sizeof(req), "%sContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", head);
    char *r = raw(p.at.port, req, strlen(req));
    assert_null(strstr(r, "ambiguous"));
    assertJsonError(r, "HTTP/1.1 400", "bad_request"); /* {} has no "keys": the handler's answer */
    free(r);
    storeStop(&p);
}

/* --- messages echoing bytes that are not UTF-8 --- */

static void test_store_entity_not_utf8(void **state) {
    storeProc p;
    storeStart(&p, NULL);
    static const char get[] =
        "GET /v1/variables/\xff\xfe/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " DT_LOOKUP_TOKEN "\r\n\r\n";
    char *r = raw(p.at.port, get, sizeof(get) - 1);
    assertJsonError(r, "HTTP/1.1 404", "unknown_entity");
    assert_non_null(strstr(r, "\\\\xFF\\\\xFE")); /* the text \xFF\xFE, JSON-escaped */
    free(r);
    /* a long name cut inside a character ("é" across the 64-byte mark) */
    char body[256], name[80];
    memset(name, 'a', 63);
    strcpy(name + 63, "\xc3\xa9");
    snprintf(body, sizeof(body), "{\"keys\": [{\"entity\": \"%s\", \"id\": \"x\"}]}", name);
    dtResponse resp;
    assert_true(
        dtHttp(&p.at, "POST", "/v1/variables:batchGet", DT_LOOKUP_TOKEN, "application/json", body, strlen(body), &resp));
    assert_int_equal(resp.status, 404);
    assert_non_null(resp.json);
    assert_string_equal(json_string_value(json_object_get(resp.json, "error")), "unknown_entity");
    const char *msg = json_string_value(json_object_get(resp.json, "message"));
    assert_non_null(strstr(msg, "aaa...\"")); /* cut before the "é", not inside it */
    assert_null(strstr(msg, "\\x"));
    dtResponseFree(&resp);
    storeStop(&p);
}

static void test_api_query_name_not_utf8(void **state) {
    dtResponse r;
    assert_true(dtHttp(&api, "GET", "/v1/decisions?customer_id=c&%FF%FE=1", DT_READER_TOKEN, NULL, NULL, 0, &r));
    assert_int_equal(r.status, 400);
    assert_non_null(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "error")), "invalid_query");
    dtResponseFree(&r);
}

static void test_api_batch_key_not_utf8(void **state) {
    dtResponse r;
    /* invalid UTF-8 in a key: jansson's message quotes the bytes */
    static const char bad[] = "{\"decisions\": [], \"\xff\xfe\": 1}";
    assert_true(dtHttp(&api, "POST", "/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", bad,
                       sizeof(bad) - 1, &r));
    assert_int_equal(r.status, 400);
    assert_non_null(r.json);
    dtResponseFree(&r);
    /* a valid key cut by the message inside a character */
    char body[512], key[260];
    memset(key, 'k', 199);
    strcpy(key + 199, "\xc3\xa9\xc3\xa9");
    snprintf(body, sizeof(body), "{\"decisions\": [], \"%s\": 1}", key);
    assert_true(dtHttp(&api, "POST", "/v1/decisions:batch", DT_WRITER_TOKEN, "application/json", body,
                       strlen(body), &r));
    assert_int_equal(r.status, 400);
    assert_non_null(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "error")), "unknown_field");
    assert_string_equal(json_string_value(json_object_get(r.json, "field")), key);
    const char *msg = json_string_value(json_object_get(r.json, "message"));
    assert_non_null(strstr(msg, "kkk...\"")); /* cut before the "é", not inside it */
    assert_null(strstr(msg, "\\x"));
    dtResponseFree(&r);
}

static int suiteSetup(void **state) {
    char *made = dtCapture("mktemp -d /tmp/test_http.XXXXXX");
    snprintf(dir, sizeof(dir), "%.*s", (int)strcspn(made, "\n"), made);
    free(made);
    if (dir[0] == '\0' || !makeCertificates()) return -1;
    char tokens[300];
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    if (!dtWriteTokens(tokens)) return -1;
    if (!dtPgStart(&pg)) return -1;
    return dtApiStart(&api, &pg, NULL) ? 0 : -1;
}

static int suiteTeardown(void **state) {
    int rc = dtApiStop(&api);
    dtPgDestroy(&pg);
    char *out = sh("rm -rf '%s'", dir);
    free(out);
    return rc == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tls_serves_https_only, testTeardown),
        cmocka_unit_test_teardown(test_mutual_tls, testTeardown),
        cmocka_unit_test_teardown(test_tls_bad_files_refused_at_start, testTeardown),
        cmocka_unit_test_teardown(test_same_options_in_both_servers, testTeardown),
        cmocka_unit_test_teardown(test_api_over_tls, testTeardown),
        cmocka_unit_test_teardown(test_no_http2_over_plain_http, testTeardown),
        cmocka_unit_test_teardown(test_connection_cap, testTeardown),
        cmocka_unit_test_teardown(test_h2o_errors_are_json, testTeardown),
        cmocka_unit_test_teardown(test_ambiguous_framing_refused, testTeardown),
        cmocka_unit_test_teardown(test_store_entity_not_utf8, testTeardown),
        cmocka_unit_test_teardown(test_api_query_name_not_utf8, testTeardown),
        cmocka_unit_test_teardown(test_api_batch_key_not_utf8, testTeardown),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
