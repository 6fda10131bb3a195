/* main.c - dev-kafka: librdkafka's mock cluster as a local Kafka-protocol
 * broker for `make run` and the tests.
 *
 * The mock brokers listen on ephemeral ports (librdkafka's mock cluster, 2.8.0
 * included, cannot pick them); a forwarder on the fixed bootstrap address
 * (127.0.0.1:9092) pipes each connection to one of them, and clients then
 * follow the advertised broker addresses. Everything is in memory: a restart
 * loses the topics.
 *
 * Control endpoint (--control-port, loopback only), for fault injection:
 *   GET  /healthz                 {"bootstrap": "...", "brokers": N}
 *   POST /brokers/{id}/down|up    take a broker down or bring it back (ids 1..N)
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/http.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "forward.h"

#define ENV_PREFIX "DEV_KAFKA_"

static struct {
    char *listen_host;
    long listen_port;
    long brokers;
    char *topics;
    long control_port;
    long initial_rebalance_delay_ms;
    char *log_level;
} opt;

static const dsConfigOption dkConfig[] = {
    {"listen-host", DS_CFG_STRING, "127.0.0.1", "bootstrap address", &opt.listen_host, 0, 0},
    {"listen-port", DS_CFG_INT, "9092", "bootstrap port", &opt.listen_port, 1, 65535},
    /* not --brokers, which names bootstrap servers in every other program */
    {"broker-count", DS_CFG_INT, "3", "mock brokers in the cluster", &opt.brokers, 1, 16},
    DS_CONFIG_ALIAS("brokers", "broker-count"),
    {"topics", DS_CFG_STRING, "decisions:6,decisions.dlq:1,decisions.checkpoints:1",
     "topics created at start as name:partitions,... (others are auto-created)", &opt.topics, 0, 0},
    {"control-port", DS_CFG_INT, "9644", "HTTP control endpoint on 127.0.0.1 (0: none)", &opt.control_port, 0, 65535},
    /* Kafka's group.initial.rebalance.delay.ms, 3 s there and in the mock:
     * how long the first member of an empty group waits for others before
     * it gets partitions. Tests that start consumers one at a time set it
     * short rather than wait 3 s at each start. */
    {"group-initial-rebalance-delay", DS_CFG_DURATION, "3s",
     "how long a consumer group with no members waits for more to join before the first assignment",
     &opt.initial_rebalance_delay_ms, 0, 300000},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define DK_NCONFIG (sizeof(dkConfig) / sizeof(dkConfig[0]))

typedef struct dkMain {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;
    dkForward *fwd;
    dsHttpServer *http;
    uv_signal_t sigterm, sigint;
} dkMain;

static bool dkCreateTopics(dkMain *m, char *errbuf, size_t errlen) {
    char *copy = strdup(opt.topics), *save = NULL;
    bool ok = copy != NULL;
    for (char *t = ok ? strtok_r(copy, ",", &save) : NULL; ok && t; t = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(t, ':');
        int parts = colon ? atoi(colon + 1) : 1;
        if (colon) *colon = '\0';
        if (t[0] == '\0' || parts < 1) {
            snprintf(errbuf, errlen, "invalid --topics entry \"%s\" (expected name:partitions)", t);
            ok = false;
        } else if (rd_kafka_mock_topic_create(m->mc, t, parts, (int)(opt.brokers < 3 ? opt.brokers : 3)) !=
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errbuf, errlen, "cannot create topic %s", t);
            ok = false;
        }
    }
    free(copy);
    return ok;
}

/* The producer only hosts the mock cluster; its own connection chatter
 * (it also tries the bootstrap address while shutting down) is debug noise. */
static void dkRdkafkaLog(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    dsLogDebug("librdkafka %s: %s", fac, buf);
}

static bool dkStartCluster(dkMain *m, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, dkRdkafkaLog);
    /* rd_kafka_new() takes conf on success only. */
    if ((m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errlen)) == NULL) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    if ((m->mc = rd_kafka_mock_cluster_new(m->rk, (int)opt.brokers)) == NULL) {
        snprintf(errbuf, errlen, "cannot start the mock cluster");
        return false;
    }
    m->bootstraps = rd_kafka_mock_cluster_bootstraps(m->mc);
    rd_kafka_mock_group_initial_rebalance_delay_ms(m->mc, (int)opt.initial_rebalance_delay_ms);
    return dkCreateTopics(m, errbuf, errlen);
}

/* "/brokers/{id}/down" or ".../up" exactly, id plain digits within 1..max
 * (sscanf's %d read 4294967297 as broker 1: an overflow, and the wrong
 * broker taken down). */
static bool dkParseBrokerPath(const char *path, long max, int *id, bool *down) {
    static const char prefix[] = "/brokers/";
    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0) return false;
    const char *p = path + sizeof(prefix) - 1, *digits = p;
    long v = 0;
    while (*p >= '0' && *p <= '9' && p - digits < 3) v = v * 10 + (*p++ - '0');
    if (p == digits || *digits == '0' || v > max) return false;
    if (strcmp(p, "/down") == 0) *down = true;
    else if (strcmp(p, "/up") == 0) *down = false;
    else return false;
    *id = (int)v;
    return true;
}

static void dkHandle(void *app, h2o_req_t *req) {
    dkMain *m = app;
    h2o_iovec_t p = req->path_normalized;
    int id = 0;
    bool down = false;
    char path[128];
    snprintf(path, sizeof(path), "%.*s", (int)(p.len < 127 ? p.len : 127), p.base);
    if (strcmp(path, "/healthz") == 0) {
        dsHttpRespondJson(m->http, req, "GET /healthz", 200,
                          json_pack("{s:s, s:I}", "bootstrap", m->bootstraps, "brokers", (json_int_t)opt.brokers),
                          NULL, 0);
    } else if (dsHttpMethodIs(req, "POST") && dkParseBrokerPath(path, opt.brokers, &id, &down)) {
        const char *action = down ? "down" : "up";
        rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(m->mc, id) : rd_kafka_mock_broker_set_up(m->mc, id);
        dsLogInfo("broker %d %s: %s", id, action, rd_kafka_err2str(err));
        dsHttpRespondJson(m->http, req, "POST /brokers", err ? 500 : 200,
                          json_pack("{s:i, s:s}", "broker", id, "state", action), NULL, 0);
    } else {
        dsHttpRespondError(m->http, req, "other", 404, "not_found",
                           "GET /healthz or POST /brokers/{1..N}/down|up", NULL, 0);
    }
}

static void dkOnStop(uv_signal_t *h, int signum) {
    dkMain *m = h->data;
    dsLogInfo("signal %d: stopping", signum);
    dkForwardClose(m->fwd);
    if (m->http) dsHttpServerStopAccepting(m->http);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

int main(int argc, char **argv) {
    char err[512];
    static const dsDaemonSpec spec = {"dev-kafka", "dev-kafka",
                                      "A local Kafka-protocol broker: librdkafka's mock cluster.", dkConfig,
                                      DK_NCONFIG, ENV_PREFIX, &opt.log_level, NULL};
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    signal(SIGPIPE, SIG_IGN);

    static dkMain m;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 1;
    if (!dkStartCluster(&m, err, sizeof(err)) ||
        (m.fwd = dkForwardStart(&loop, opt.listen_host, (int)opt.listen_port, m.bootstraps, err, sizeof(err))) ==
            NULL) {
        dsLogError("cannot start: %s", err);
        goto done;
    }
    if (opt.control_port > 0) {
        dsHttpConfig hc = {"127.0.0.1", (int)opt.control_port, 4096, 64, NULL};
        if ((m.http = dsHttpServerStart(&loop, &hc, dkHandle, &m, NULL, err, sizeof(err))) == NULL) {
            dsLogError("cannot start the control endpoint: %s", err);
            dkForwardClose(m.fwd);
            goto done;
        }
    }
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, dkOnStop, SIGTERM);
    uv_signal_start(&m.sigint, dkOnStop, SIGINT);
    dsLogInfo("bootstrap %s:%ld -> mock brokers %s; control port %ld", opt.listen_host, opt.listen_port, m.bootstraps,
              opt.control_port);
    /* Runs until the signal handler has closed the listeners. h2o keeps
     * timers of its own, so stop once only those remain. */
    while (uv_run(&loop, UV_RUN_ONCE) && uv_is_active((uv_handle_t *)&m.sigterm)) {
    }
    rc = 0;

done:
    dsHttpServerFree(m.http);
    if (!dsLoopShutdown(&loop)) dsLogWarn("event loop closed with handles still open");
    if (m.mc) rd_kafka_mock_cluster_destroy(m.mc);
    if (m.rk) rd_kafka_destroy(m.rk);
    dsConfigFree(dkConfig, DK_NCONFIG);
    return rc;
}
