/* main.c - variable-store: configuration table, start-up (variables file,
 * LMDB state and its layout check, writer thread, HTTP), signals and
 * graceful shutdown.
 *
 *   variable-store [options]                 the writer: consumes the topic, serves
 *   variable-store --role replica [options]  a read replica of a writer's directory
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "ds/timefmt.h"
#include "ds/kafka.h"
#include "ds/kafkagroup.h"
#include "feed.h"
#include "server.h"
#include "store.h"
#include "vars.h"

#define ENV_PREFIX "VARSTORE_"

static struct {
    char *role, *listen_host, *data_dir, *variables_file, *topic, *group_id, *instance_id, *on_layout_change, *schemas_dir,
        *registry_url, *tokens_file, *log_level;
    long listen_port, batch_max, batch_wait_ms, sweep_ms, session_ms, batch_get_max, ingest_max, retry_after_ms, shutdown_ms,
        ingest_queue_max, reader_check_ms, max_clock_skew_ms;
    size_t map_size, max_body, ingest_queue_bytes;
    bool ingest;
    dsHttpOptions http;
    dsKafkaOptions kafka;
} opt;

static const dsConfigOption vsConfig[] = {
    {"role", DS_CFG_STRING, "writer", "writer (consumes and serves) or replica (serves a writer's data-dir)", &opt.role,
     0, 0},
    {"listen-host", DS_CFG_STRING, "127.0.0.1",
     "address to listen on (0.0.0.0 or a public address to serve other machines)", &opt.listen_host, 0, 0},
    {"listen-port", DS_CFG_INT, "8081", "HTTP port", &opt.listen_port, 1, 65535},
    {"tokens-file", DS_CFG_STRING, "var/tokens",
     "file of token SHA-256 hashes and roles, as the decision API's (required: the store refuses to start "
     "without it); reread on SIGHUP", &opt.tokens_file, 0, 0},
    DS_HTTP_CONFIG_OPTIONS(opt.http),
    {"data-dir", DS_CFG_STRING, "var/variable-store", "LMDB directory holding the state", &opt.data_dir, 1, 0},
    {"map-size", DS_CFG_SIZE, "16GiB", "most the state may grow to (address space, not memory)", &opt.map_size,
     1 << 20, LLONG_MAX},
    {"variables-file", DS_CFG_STRING, "variable-store/variables.json", "the variables computed (README)",
     &opt.variables_file, 1, 0},
    {"on-layout-change", DS_CFG_STRING, "rebuild",
     "when the file needs state the store lacks: rebuild (from the topic) or refuse to start", &opt.on_layout_change,
     0, 0},
    DS_KAFKA_CONFIG_OPTIONS(opt.kafka, "variable-store",
                            "Kafka bootstrap servers (host:port,...); empty: no consumer, ingest only", 0),
    {"topic", DS_CFG_STRING, "decisions", "the decision topic", &opt.topic, 1, 0},
    {"group-id", DS_CFG_STRING, "variable-store", "consumer group; one per store directory", &opt.group_id, 1, 0},
    DS_KAFKA_INSTANCE_OPTION(opt.instance_id),
    {"schemas-dir", DS_CFG_STRING, "",
     "schema directory (manifest.json and the .avsc files it names) to decode the stream with, instead of the schemas "
     "built in (empty: built in)", &opt.schemas_dir, 0, 0},
    {"registry-url", DS_CFG_STRING, "http://127.0.0.1:8080",
     "schema registry to learn unknown schema ids from (the decision API serves one); empty: a record of an "
     "unknown id waits for a restart with a newer build", &opt.registry_url, 0, 0},
    {"session-timeout", DS_CFG_DURATION, "10s", "consumer group session timeout", &opt.session_ms, 1000, 3600000},
    {"max-batch", DS_CFG_INT, "5000", "most Kafka messages applied in one transaction", &opt.batch_max, 1, 1000000},
    DS_CONFIG_ALIAS("batch-max", "max-batch"),
    {"batch-wait", DS_CFG_DURATION, "20ms", "longest wait for a batch to fill", &opt.batch_wait_ms, 1, 10000},
    {"sweep-interval", DS_CFG_DURATION, "60s", "how often expired events are deleted", &opt.sweep_ms, 10, 86400000},
    {"max-body", DS_CFG_SIZE, "8MiB", "largest request body (413 above)", &opt.max_body, 1024, 1 << 30},
    {"batch-get-max-keys", DS_CFG_INT, "100", "most keys in one batchGet (413 above)", &opt.batch_get_max, 1, 100000},
    {"ingest", DS_CFG_BOOL, "true", "serve POST /v1/decisions:ingest (decision-replay's target)", &opt.ingest, 0, 0},
    {"ingest-max-items", DS_CFG_INT, "1000", "most decisions in one ingest request (413 above)", &opt.ingest_max, 1,
     100000},
    {"ingest-queue-max", DS_CFG_INT, "16", "most ingest requests queued or being applied (503 above)",
     &opt.ingest_queue_max, 1, 100000},
    {"ingest-queue-bytes", DS_CFG_SIZE, "64MiB",
     "most request body bytes queued or being applied (503 above; one request alone always fits)",
     &opt.ingest_queue_bytes, 1, LLONG_MAX},
    {"reader-check-interval", DS_CFG_DURATION, "10s",
     "how often the writer clears LMDB readers left by dead processes (they keep freed pages from reuse)",
     &opt.reader_check_ms, 10, 3600000},
    {"max-clock-skew", DS_CFG_DURATION, "5m",
     "how far ahead of this server's clock an ingested decided_at may be (a later one is refused, as the decision "
     "API refuses it)",
     &opt.max_clock_skew_ms, 0, 86400000},
    {"retry-after", DS_CFG_DURATION, "1s", "Retry-After advertised with 503", &opt.retry_after_ms, 0, 3600000},
    {"shutdown-timeout", DS_CFG_DURATION, "5s", "on SIGTERM, how long open connections may take to close",
     &opt.shutdown_ms, 0, 3600000},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define VS_NCONFIG (sizeof(vsConfig) / sizeof(vsConfig[0]))

typedef struct vsMain {
    vsServer srv;
    vsVars *vars;
    vsStore *store;
    vsFeed *feed;
    uv_signal_t sigterm, sigint, sighup;
    dsAuth *auth;
    uv_timer_t watch;
    bool stopping, closed_idle;
    int64_t deadline;
    int rc;
} vsMain;

static void mainFinish(vsMain *m) {
    vsServerClose(&m->srv);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
    uv_close((uv_handle_t *)&m->watch, NULL);
    uv_stop(m->srv.loop);
}

/* Stops the writer (it answers every job it holds), then lets the answers
 * go out and the connections close (mainWatch ends the loop). */
static void mainStop(vsMain *m, int rc) {
    if (m->stopping) return;
    m->stopping = true;
    m->rc = rc;
    m->deadline = dsTimeNowMs() + opt.shutdown_ms;
    vsServerShutdown(&m->srv);
    vsFeedStop(m->feed);
    m->feed = m->srv.feed = NULL;
    vsServerDrainJobs(&m->srv);
}

static void mainOnSignal(uv_signal_t *h, int signum) {
    dsLogInfo("signal %d: stopping", signum);
    mainStop(h->data, 0);
}

static void mainReloadTokens(uv_signal_t *h, int signum) {
    vsMain *m = h->data;
    char err[512];
    dsAuth *a = dsAuthLoad(opt.tokens_file, err, sizeof(err));
    if (a == NULL) {
        dsLogError("SIGHUP: keeping the old tokens: %s", err);
        return;
    }
    dsAuthFree(m->auth);
    m->auth = m->srv.auth = a;
    dsLogInfo("SIGHUP: loaded %zu tokens from %s", dsAuthCount(a), opt.tokens_file);
}

/* The writer thread cannot report to the loop by itself: a storage failure
 * stops the daemon, so that a supervisor restarts it from the last commit. */
static void mainWatch(uv_timer_t *t) {
    vsMain *m = t->data;
    if (m->feed && vsFeedFailed(m->feed)) mainStop(m, 1);
    if (m->stopping && !m->closed_idle) {
        /* a tick after the last answers were queued: they are out or going */
        vsServerCloseIdle(&m->srv);
        m->closed_idle = true;
    } else if (m->stopping && (vsServerIdle(&m->srv) || dsTimeNowMs() >= m->deadline)) {
        mainFinish(m);
    }
}

/* Opens the state; a layout change empties it (or refuses) as configured. */
static bool mainOpenStore(vsMain *m, bool replica, char *err, size_t errlen) {
    vsLayoutState layout;
    vsStoreConfig sc = {opt.data_dir, opt.map_size, replica};
    if ((m->store = vsStoreOpen(&sc, m->vars, &layout, err, errlen)) == NULL) return false;
    if (layout == VS_LAYOUT_CHANGED && strcmp(opt.on_layout_change, "rebuild") != 0) {
        snprintf(err, errlen, "%s was built for another variables file; start with --on-layout-change rebuild "
                              "to rebuild it", opt.data_dir);
        return false;
    }
    if (layout == VS_LAYOUT_SAME) return true;
    if (!vsStoreReset(m->store, err, errlen)) return false;
    if (layout == VS_LAYOUT_CHANGED)
        dsLogWarn("the variables file needs state the store did not keep: emptied %s, re-reading %s from its start. "
                  "If the topic no longer holds the longest window, refill from the archive: decision-replay "
                  "--target variable-store --url http://HOST:%ld --from <now minus that window> --to <now>",
                  opt.data_dir, opt.topic, opt.listen_port);
    return true;
}

static bool mainStart(vsMain *m, uv_loop_t *loop, char *err, size_t errlen) {
    bool replica = strcmp(opt.role, "replica") == 0;
    if (!replica && strcmp(opt.role, "writer") != 0)
        return snprintf(err, errlen, "--role: \"%s\" is not writer or replica", opt.role), false;
    if (strcmp(opt.on_layout_change, "rebuild") != 0 && strcmp(opt.on_layout_change, "refuse") != 0)
        return snprintf(err, errlen, "--on-layout-change: \"%s\" is not rebuild or refuse", opt.on_layout_change),
               false;
    /* Tokens first: a store that would take writes from anyone must not start. */
    if ((m->auth = dsAuthLoad(opt.tokens_file, err, errlen)) == NULL) return false;
    if (!dsHttpOptionsLoad(&opt.http, err, errlen)) return false;
    dsCodec *codec = dsCodecNewForDirOption(opt.schemas_dir, err, errlen);
    if (codec == NULL) return false;
    m->vars = vsVarsLoad(opt.variables_file, codec, err, errlen);
    dsCodecFree(codec);
    if (m->vars == NULL || !mainOpenStore(m, replica, err, errlen)) return false;
    if (!replica) {
        vsFeedConfig fc = {&opt.kafka,     opt.topic,       opt.group_id,    (size_t)opt.batch_max,
                           opt.batch_wait_ms, opt.sweep_ms, opt.session_ms, opt.schemas_dir, opt.registry_url,
                           (size_t)opt.ingest_queue_max, opt.ingest_queue_bytes, opt.reader_check_ms,
                           opt.max_clock_skew_ms + VS_STREAM_CLOCK_SLACK_MS, opt.instance_id};
        if ((m->feed = vsFeedStart(&fc, m->store, m->vars, err, errlen)) == NULL) return false;
    }
    vsServer *s = &m->srv;
    s->loop = loop, s->vars = m->vars, s->store = m->store, s->feed = m->feed, s->auth = m->auth;
    s->batch_get_max = (size_t)opt.batch_get_max, s->ingest_max = (size_t)opt.ingest_max, s->ingest = opt.ingest;
    s->retry_after_s = (int)((opt.retry_after_ms + 999) / 1000);
    s->max_clock_skew_ms = opt.max_clock_skew_ms;
    dsHttpConfig hc = {opt.listen_host, (int)opt.listen_port, opt.max_body, 1024, &opt.http};
    if (!vsServerStart(s, &hc, err, errlen)) return false;
    uv_signal_init(loop, &m->sigterm);
    uv_signal_init(loop, &m->sigint);
    uv_signal_init(loop, &m->sighup);
    uv_timer_init(loop, &m->watch);
    m->sigterm.data = m->sigint.data = m->sighup.data = m->watch.data = m;
    uv_signal_start(&m->sigterm, mainOnSignal, SIGTERM);
    uv_signal_start(&m->sigint, mainOnSignal, SIGINT);
    uv_signal_start(&m->sighup, mainReloadTokens, SIGHUP);
    uv_timer_start(&m->watch, mainWatch, 20, 20);
    return true;
}

int main(int argc, char **argv) {
    char err[1024];
    static const dsDaemonSpec spec = {"variable-store", "variable-store",
                                      "Per-customer and per-merchant variables from the decision stream.\n"
                                      "Every request but /healthz, /readyz and /metrics carries a bearer token from "
                                      "the tokens file:\nlookups and batchGet need the role lookup, reader or admin; "
                                      "ingest needs ingest or admin.", vsConfig,
                                      VS_NCONFIG, ENV_PREFIX, &opt.log_level, .kafka = &opt.kafka};
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    signal(SIGPIPE, SIG_IGN);
    static vsMain m;
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (!mainStart(&m, &loop, err, sizeof(err))) {
        dsLogError("cannot start: %s", err);
        m.rc = 1;
    } else {
        dsLogInfo("listening on %s:%ld (%s, %zu entities, state in %s, %zu tokens)", opt.listen_host, opt.listen_port,
                  opt.role, m.vars->nentities, opt.data_dir, dsAuthCount(m.auth));
        uv_run(&loop, UV_RUN_DEFAULT);
        dsLogInfo("stopped");
    }
    vsFeedStop(m.feed); /* start-up failed half way */
    vsServerFree(&m.srv);
    if (!dsLoopShutdown(&loop)) dsLogWarn("event loop closed with handles still open");
    vsStoreClose(m.store);
    vsVarsFree(m.vars);
    dsAuthFree(m.auth);
    dsHttpOptionsRelease(&opt.http);
    dsConfigFree(vsConfig, VS_NCONFIG);
    return m.rc;
}
