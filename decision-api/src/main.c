/* main.c - decision-api: configuration table, start-up (codec, tokens,
 * migrations, database sessions, HTTP), signals and graceful shutdown.
 *
 *   decision-api [options]           serve
 *   decision-api migrate [options]   apply migrations and exit
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "decision.h"
#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "ds/timefmt.h"
#include "migrate.h"

#define ENV_PREFIX "DECISIONS_"
#define API_BACKLOG 1024

typedef struct apiOptions {
    char *listen_host;
    long listen_port;
    long listen_fd;
    char *dsn;
    char *tokens_file;
    char *schemas_dir;
    char *cursor_key_file;
    size_t max_body;
    long writer_connections, max_batch, write_timeout_ms, max_attempts;
    long queue_size;
    long reader_connections, statement_timeout_ms;
    long reader_queue;
    long batch_max_items;
    long max_clock_skew_ms;
    long retry_after_ms;
    long db_wait_ms;
    bool migrate;
    long shutdown_timeout_ms;
    char *log_level;
    dsHttpOptions http;
} apiOptions;

static apiOptions opt;

/* The one configuration table: --help prints it. */
static const dsConfigOption apiConfig[] = {
    {"listen-host", DS_CFG_STRING, "127.0.0.1",
     "address to listen on (0.0.0.0 or a public address to serve other machines)", &opt.listen_host, 0, 0},
    {"listen-port", DS_CFG_INT, "8080", "HTTP port", &opt.listen_port, 1, 65535},
    {"listen-fd", DS_CFG_INT, "-1",
     "inherited listening socket to accept on instead of listen-host:listen-port (-1: systemd's, if any)",
     &opt.listen_fd, -1, INT_MAX},
    DS_HTTP_CONFIG_OPTIONS(opt.http),
    {"dsn", DS_CFG_STRING, "dbname=decisions", "libpq connection string or URI", &opt.dsn, 0, 0},
    DS_CONFIG_ALIAS("database-url", "dsn"),
    {"tokens-file", DS_CFG_STRING, "var/tokens", "file of token SHA-256 hashes and roles", &opt.tokens_file, 0, 0},
    {"schemas-dir", DS_CFG_STRING, "",
     "schema directory (manifest.json and the .avsc files it names) to validate, store and serve instead of the "
     "schemas built in (empty: built in)", &opt.schemas_dir, 0, 0},
    {"cursor-key-file", DS_CFG_STRING, "",
     "file holding the key (32-256 bytes, e.g. `openssl rand -hex 32`) that signs search cursors; give every replica "
     "the same (empty: a random key per process, so cursors die with it)", &opt.cursor_key_file, 0, 0},
    {"max-body", DS_CFG_SIZE, "1MiB", "largest request body accepted (413 above)", &opt.max_body, 1024, 1 << 30},
    {"writer-connections", DS_CFG_INT, "2", "PostgreSQL sessions committing decisions", &opt.writer_connections, 1, 64},
    {"max-batch", DS_CFG_INT, "256", "most decisions committed in one transaction", &opt.max_batch, 1, 10000},
    {"queue-size", DS_CFG_INT, "10000", "decisions waiting to commit before 503", &opt.queue_size, 1, 10000000},
    {"write-timeout", DS_CFG_DURATION, "10s", "how long a decision may wait for the database", &opt.write_timeout_ms,
     10, 3600000},
    {"max-attempts", DS_CFG_INT, "3", "re-sends of a batch after a lost session", &opt.max_attempts, 0, 100},
    {"reader-connections", DS_CFG_INT, "2", "PostgreSQL sessions for support queries", &opt.reader_connections, 1, 64},
    {"reader-queue", DS_CFG_INT, "1000", "queries waiting before 503", &opt.reader_queue, 1, 1000000},
    {"statement-timeout", DS_CFG_DURATION, "5s", "longest support query", &opt.statement_timeout_ms, 10, 3600000},
    {"batch-max-items", DS_CFG_INT, "1000", "most decisions in one :batch request", &opt.batch_max_items, 1, 100000},
    {"max-clock-skew", DS_CFG_DURATION, "5m",
     "how far ahead of this server's clock a posted decided_at may be (a later one is refused)",
     &opt.max_clock_skew_ms, 0, 86400000},
    {"retry-after", DS_CFG_DURATION, "1s", "Retry-After advertised with 503 (rounded up to seconds)",
     &opt.retry_after_ms, 0, 3600000},
    {"db-wait", DS_CFG_DURATION, "30s", "how long start-up waits for PostgreSQL", &opt.db_wait_ms, 0, 3600000},
    {"migrate", DS_CFG_BOOL, "true", "apply pending migrations at start", &opt.migrate, 0, 0},
    {"shutdown-timeout", DS_CFG_DURATION, "10s", "on SIGTERM, how long to wait for pending commits",
     &opt.shutdown_timeout_ms, 0, 3600000},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define API_NCONFIG (sizeof(apiConfig) / sizeof(apiConfig[0]))

typedef struct apiMain {
    apiServer srv;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t ready; /* until the database sessions are up, then READY=1 */
    uv_timer_t drain;
    int64_t drain_deadline;
    bool closed_idle;
    int listen_fd;    /* the listening socket, accepted on once ready */
    bool inherited;   /* listen_fd came from a supervisor */
    int exit_code;
} apiMain;

static void mainReloadTokens(uv_signal_t *h, int signum) {
    apiMain *m = h->data;
    char err[512];
    dsAuth *a = dsAuthLoad(opt.tokens_file, err, sizeof(err));
    if (a == NULL) {
        dsLogError("SIGHUP: keeping the old tokens: %s", err);
        return;
    }
    dsAuthFree(m->srv.auth);
    m->srv.auth = a;
    dsLogInfo("SIGHUP: loaded %zu tokens from %s", dsAuthCount(a), opt.tokens_file);
}

/* Tells the supervisor a state such as "READY=1" (systemd's notify
 * protocol, without libsystemd): a datagram to $NOTIFY_SOCKET, a path or,
 * with a leading '@', an abstract name. Nothing without the variable. */
static void mainNotify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || (path[0] != '/' && path[0] != '@')) return;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof(a.sun_path)) {
        dsLogWarn("NOTIFY_SOCKET is too long: not telling the supervisor %s", state);
        return;
    }
    memcpy(a.sun_path, path, n);
    if (a.sun_path[0] == '@') a.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&a,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        dsLogWarn("cannot tell the supervisor %s through %s: %s", state, path, strerror(errno));
    if (fd >= 0) close(fd);
}

static void mainFinish(apiMain *m) {
    uv_timer_stop(&m->ready);
    uv_timer_stop(&m->drain);
    apiWriterClose(m->srv.writer);
    apiReaderClose(m->srv.reader);
    m->srv.writer = NULL;
    m->srv.reader = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
    uv_close((uv_handle_t *)&m->ready, NULL);
    uv_close((uv_handle_t *)&m->drain, NULL);
    uv_stop(m->srv.loop);
}

static void mainOnDrain(uv_timer_t *t) {
    apiMain *m = t->data;
    size_t pending = apiWriterPending(m->srv.writer);
    if (pending == 0 && !m->closed_idle) {
        /* every answer is out or on its way: the drain timer ran once since */
        dsHttpServerCloseIdle(m->srv.http);
        m->closed_idle = true;
        return;
    }
    if ((pending == 0 && dsHttpServerIdle(m->srv.http)) || dsTimeNowMs() >= m->drain_deadline) {
        if (pending) dsLogWarn("shutdown: %zu decisions still pending, answering 503", pending);
        mainFinish(m);
    }
}

/* SIGTERM/SIGINT: stop accepting, let queued decisions commit and their
 * answers go out (connections close after them), then exit. */
static void mainOnStop(uv_signal_t *h, int signum) {
    apiMain *m = h->data;
    if (uv_is_active((uv_handle_t *)&m->drain)) return;
    uv_timer_stop(&m->ready);
    if (m->srv.http == NULL) {
        /* still waiting for PostgreSQL: nothing accepted, nothing owed */
        dsLogInfo("signal %d before accepting: exiting", signum);
        mainFinish(m);
        return;
    }
    dsLogInfo("signal %d: draining %zu pending decisions", signum, apiWriterPending(m->srv.writer));
    dsHttpServerShutdown(m->srv.http);
    m->drain_deadline = dsTimeNowMs() + opt.shutdown_timeout_ms;
    uv_timer_start(&m->drain, mainOnDrain, 0, 20);
}

static bool mainListen(apiMain *m, char *err, size_t errlen) {
    apiServer *s = &m->srv;
    dsHttpConfig hc = {opt.listen_host, (int)opt.listen_port, opt.max_body, API_BACKLOG, &opt.http};
    s->http = dsHttpServerStartOn(s->loop, &hc, m->listen_fd, apiHandle, s, s->metrics, err, errlen);
    if (s->http == NULL) return false;
    char where[128];
    dsHttpServerAddress(s->http, where, sizeof(where));
    m->listen_fd = -1; /* the server owns it now */
    dsLogInfo("accepting on %s%s (%zu tokens, schema v%d)", where, m->inherited ? ", inherited socket" : "",
              dsAuthCount(s->auth), dsCodecCurrentVersion(s->codec));
    return true;
}

/* Ready as /readyz means it: a writer and a reader session are up. This is
 * also when accepting starts, on an inherited socket and on our own alike:
 * every request taken before the sessions are up would be answered 503
 * instead of waiting in the backlog for a process that can serve it
 * (another one sharing an inherited socket, or this one a moment later). */
static void mainOnReadyCheck(uv_timer_t *t) {
    apiMain *m = t->data;
    if (!apiWriterReady(m->srv.writer) || !apiReaderReady(m->srv.reader)) return;
    uv_timer_stop(t);
    char err[1024];
    if (m->srv.http == NULL && !mainListen(m, err, sizeof(err))) {
        dsLogError("cannot start: %s", err);
        m->exit_code = 1;
        mainFinish(m);
        return;
    }
    dsLogInfo("ready: PostgreSQL sessions up");
    mainNotify("READY=1");
}

/* Binds listen-host:listen-port and listens without accepting: connections
 * wait in the backlog until mainOnReadyCheck starts the server on it. A
 * port already taken still fails the start at once. */
static int mainBind(char *err, size_t errlen) {
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(opt.listen_host, (int)opt.listen_port, &addr);
    if (rc != 0) {
        snprintf(err, errlen, "listen-host %s: not an IPv4 address: %s", opt.listen_host, uv_strerror(rc));
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, API_BACKLOG) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%ld: %s", opt.listen_host, opt.listen_port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static bool mainStart(apiMain *m, uv_loop_t *loop, char *err, size_t errlen) {
    apiServer *s = &m->srv;
    m->listen_fd = -1;
    s->loop = loop;
    s->retry_after_s = (int)((opt.retry_after_ms + 999) / 1000);
    s->max_batch_items = (size_t)opt.batch_max_items;
    s->max_clock_skew_ms = opt.max_clock_skew_ms;
    if ((s->metrics = dsMetricsNew()) == NULL) return snprintf(err, errlen, "out of memory"), false;
    s->m_db_up = dsMetricsGauge(s->metrics, "decision_db_up", "1 when a writer session to PostgreSQL is up.");
    s->m_abandoned = dsMetricsCounter(s->metrics, "http_requests_abandoned_total",
                                      "Requests whose client went away before the database answered.");
    if ((s->codec = dsCodecNewForDirOption(opt.schemas_dir, err, errlen)) == NULL) return false;
    if (!apiDecisionValuesNew(s, err, errlen)) return false;
    if ((s->auth = dsAuthLoad(opt.tokens_file, err, errlen)) == NULL) return false;
    if (!apiCursorKeyLoad(opt.cursor_key_file, &s->cursor_key, err, errlen)) return false;
    if (s->cursor_key.ephemeral)
        dsLogWarn("no cursor-key-file: search cursors are signed with a random key, so they fail (400) after a "
                  "restart or on another replica");
    apiWriterConfig wc = {opt.dsn, (int)opt.writer_connections, (int)opt.max_batch, (size_t)opt.queue_size,
                          opt.write_timeout_ms, (int)opt.max_attempts, apiDecisionSameAsStored, s};
    apiReaderConfig rc = {opt.dsn, (int)opt.reader_connections, (size_t)opt.reader_queue, opt.statement_timeout_ms};
    s->writer = apiWriterNew(loop, &wc, s->metrics);
    s->reader = apiReaderNew(loop, &rc);
    if (s->writer == NULL || s->reader == NULL) return snprintf(err, errlen, "out of memory"), false;
    /* listen-fd, else systemd's socket, else -1 (bind). Asked even when
     * unused: it also clears systemd's variables. */
    int systemd = dsHttpSystemdListenFd();
    m->listen_fd = opt.listen_fd >= 0 ? (int)opt.listen_fd : systemd;
    m->inherited = m->listen_fd >= 0;
    if (m->inherited) {
        if (!dsHttpCheckListenFd(m->listen_fd, err, errlen)) return false;
        dsLogInfo("inherited socket fd %d: accepting once PostgreSQL is up", m->listen_fd);
    } else {
        if ((m->listen_fd = mainBind(err, errlen)) < 0) return false;
        dsLogInfo("listening on %s:%ld: accepting once PostgreSQL is up", opt.listen_host, opt.listen_port);
    }

    uv_signal_init(loop, &m->sigterm);
    uv_signal_init(loop, &m->sigint);
    uv_signal_init(loop, &m->sighup);
    uv_timer_init(loop, &m->ready);
    uv_timer_init(loop, &m->drain);
    m->sigterm.data = m->sigint.data = m->sighup.data = m->ready.data = m->drain.data = m;
    uv_timer_start(&m->ready, mainOnReadyCheck, 0, 20);
    uv_signal_start(&m->sigterm, mainOnStop, SIGTERM);
    uv_signal_start(&m->sigint, mainOnStop, SIGINT);
    uv_signal_start(&m->sighup, mainReloadTokens, SIGHUP);
    return true;
}

/* Frees everything once the loop has stopped: h2o's context first (it
 * closes its own timers), then the loop with every handle left, so every
 * close callback (which frees the writer, reader and sessions) runs. */
static void mainCleanup(apiMain *m, uv_loop_t *loop) {
    apiServer *s = &m->srv;
    if (s->writer) apiWriterClose(s->writer); /* start-up failed half way */
    if (s->reader) apiReaderClose(s->reader);
    dsHttpServerFree(s->http);
    if (m->listen_fd >= 0 && !m->inherited) close(m->listen_fd); /* never served */
    if (!dsLoopShutdown(loop)) dsLogWarn("event loop closed with handles still open");
    apiDecisionValuesFree(s);
    dsCodecFree(s->codec);
    dsAuthFree(s->auth);
    dsMetricsFree(s->metrics);
}

int main(int argc, char **argv) {
    char err[1024];
    char *positional[1];
    size_t npositional = 1;
    static const dsDaemonSpec spec = {"decision-api", "decision-api [migrate]",
                                      "Decision API: stores credit decisions in PostgreSQL and serves them.",
                                      apiConfig, API_NCONFIG, ENV_PREFIX, &opt.log_level, NULL};
    int early = dsDaemonStart(&spec, argc, argv, positional, &npositional);
    if (early >= 0) return early;
    bool migrate_only = npositional == 1 && strcmp(positional[0], "migrate") == 0;
    if (npositional == 1 && !migrate_only) {
        fprintf(stderr, "decision-api: unknown command \"%s\" (the only command is migrate)\n", positional[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Before migrations, which may wait for PostgreSQL: a wrong file is
     * the operator's to fix now. */
    if (!migrate_only && !dsHttpOptionsLoad(&opt.http, err, sizeof(err))) {
        dsLogError("cannot start: %s", err);
        dsConfigFree(apiConfig, API_NCONFIG);
        return 1;
    }

    int applied = 0;
    if ((opt.migrate || migrate_only) && !apiMigrate(opt.dsn, opt.db_wait_ms, &applied, err, sizeof(err))) {
        dsLogError("migrations failed: %s", err);
        dsHttpOptionsRelease(&opt.http);
        dsConfigFree(apiConfig, API_NCONFIG);
        return 1;
    }
    if (migrate_only) {
        dsLogInfo("migrations: %d applied, database up to date", applied);
        dsConfigFree(apiConfig, API_NCONFIG);
        return 0;
    }

    static apiMain m;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 0;
    if (!mainStart(&m, &loop, err, sizeof(err))) {
        dsLogError("cannot start: %s", err);
        rc = 1;
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = m.exit_code;
        dsLogInfo("stopped");
    }
    mainCleanup(&m, &loop);
    dsHttpOptionsRelease(&opt.http);
    dsConfigFree(apiConfig, API_NCONFIG);
    return rc;
}
