/* main.c - stream-processor: configuration table, the metrics endpoint,
 * signals. The work itself is processor.c (txn.c: exactly-once). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/kafka.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "ds/probe.h"
#include "checkpoint.h"
#include "processor.h"

#define ENV_PREFIX "STREAM_"

static struct {
    char *dsn, *slot, *publication, *table;
    dsKafkaOptions kafka;
    char *compression, *topic, *dlq_topic;
    char *delivery, *checkpoint_topic, *transactional_id;
    long transaction_timeout_ms, transaction_max_messages, transaction_interval_ms;
    char *schemas_dir, *registry_url, *listen_host;
    long max_in_flight, status_interval_ms, message_timeout_ms, linger_ms, metrics_port, shutdown_timeout_ms;
    size_t max_in_flight_bytes;
    char *log_level;
} opt;

static const dsConfigOption spConfig[] = {
    {"dsn", DS_CFG_STRING, "dbname=decisions", "libpq connection string (replication=database is added)", &opt.dsn,
     0, 0},
    DS_CONFIG_ALIAS("database-url", "dsn"),
    {"slot", DS_CFG_STRING, "decisions_stream", "logical replication slot (created when missing)", &opt.slot, 1, 0},
    {"publication", DS_CFG_STRING, "decisions_pub", "publication to stream (created when missing)", &opt.publication,
     0, 0},
    {"table", DS_CFG_STRING, "decisions", "the decisions table", &opt.table, 1, 0},
    DS_KAFKA_CONFIG_OPTIONS(opt.kafka, "stream-processor", "Kafka bootstrap servers (host:port,...)", 1),
    {"topic", DS_CFG_STRING, "decisions", "topic for decisions", &opt.topic, 1, 0},
    {"compression", DS_CFG_STRING, "lz4", "Kafka compression.codec: none, gzip, snappy, lz4, zstd", &opt.compression,
     0, 0},
    {"dlq-topic", DS_CFG_STRING, "decisions.dlq", "topic for rows that fail validation", &opt.dlq_topic, 1, 0},
    {"delivery", DS_CFG_STRING, "auto",
     "exactly-once (Kafka transactions with a checkpoint per slot: read_committed consumers see each decision "
     "once), at-least-once (duplicates after a failure), or auto: exactly-once unless the cluster is librdkafka's "
     "mock (dev-kafka), which cannot do transactions faithfully", &opt.delivery, 1, 0},
    {"checkpoint-topic", DS_CFG_STRING, "decisions.checkpoints",
     "exactly-once: compacted topic of each slot's last committed LSN (key = slot)", &opt.checkpoint_topic, 1, 0},
    {"transactional-id", DS_CFG_STRING, "",
     "exactly-once: Kafka transactional.id (empty: stream-processor-SLOT); a second processor with the same id "
     "fences the first", &opt.transactional_id, 0, 0},
    {"transaction-timeout", DS_CFG_DURATION, "60s",
     "exactly-once: transaction.timeout.ms, how long the brokers keep a transaction of a processor that died open "
     "(read_committed consumers wait behind it) unless a new processor on the slot aborts it first",
     &opt.transaction_timeout_ms, 1000, 900000},
    {"transaction-max-messages", DS_CFG_INT, "10000",
     "exactly-once: a Kafka transaction closes at the next PostgreSQL commit once it holds this many messages",
     &opt.transaction_max_messages, 1, 1000000},
    {"transaction-interval", DS_CFG_DURATION, "100ms",
     "exactly-once: a Kafka transaction closes at the next PostgreSQL commit once it is this old",
     &opt.transaction_interval_ms, 1, 60000},
    {"schemas-dir", DS_CFG_STRING, "",
     "schema directory (manifest.json and the .avsc files it names) to encode rows with instead of the schemas built "
     "in (empty: built in)", &opt.schemas_dir, 0, 0},
    {"registry-url", DS_CFG_STRING, "http://127.0.0.1:8080",
     "Confluent-compatible schema registry (the decision API serves one) to learn a row's schema version from when "
     "the schemas lack it; empty: such a row waits for a restart with a newer build", &opt.registry_url, 0, 0},
    {"max-in-flight", DS_CFG_INT, "50000", "messages awaiting Kafka before the stream pauses", &opt.max_in_flight, 1,
     1000000},
    {"max-in-flight-bytes", DS_CFG_SIZE, "256MiB", "key and value bytes awaiting Kafka before the stream pauses",
     &opt.max_in_flight_bytes, 1024, 1 << 30},
    {"status-interval", DS_CFG_DURATION, "1s", "how often the confirmed position is sent", &opt.status_interval_ms, 10,
     60000},
    {"message-timeout", DS_CFG_DURATION, "5m", "how long Kafka delivery is retried before restarting from the slot",
     &opt.message_timeout_ms, 1000, 86400000},
    /* 0, not librdkafka's 5 ms: at a steady trickle (1,000 decisions/s over
     * six partitions) nearly every message would wait out the whole linger,
     * the largest part of commit-to-ack latency on a real broker; a backlog
     * is batched all the same, by the requests in flight (bench/stream.sh). */
    {"linger", DS_CFG_DURATION, "0",
     "how long Kafka batches wait for more messages before they are sent (librdkafka linger.ms; 0: at once, the "
     "lowest latency)", &opt.linger_ms, 0, 1000},
    {"listen-host", DS_CFG_STRING, "127.0.0.1",
     "address of the metrics endpoint (0.0.0.0 or a public address for a scraper on another machine)",
     &opt.listen_host, 0, 0},
    {"metrics-port", DS_CFG_INT, "9101", "HTTP port of /metrics, /healthz, /readyz (0: none)", &opt.metrics_port, 0,
     65535},
    {"shutdown-timeout", DS_CFG_DURATION, "10s", "on SIGTERM, how long to wait for Kafka", &opt.shutdown_timeout_ms, 0,
     600000},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define SP_NCONFIG (sizeof(spConfig) / sizeof(spConfig[0]))

typedef struct spMain {
    spProcessor *proc;
    dsProbe *probe;
    dsMetrics *metrics;
    uv_signal_t sigterm, sigint;
} spMain;

static const char *orNull(const char *s) {
    return s && s[0] ? s : NULL;
}

/* Ready while streaming and the cluster takes the decisions; otherwise 503
 * with the reason ("kafka": what the cluster refuses, the message the log
 * has). */
static const char *mainReady(void *app, char *why, size_t len) {
    spMain *m = app;
    if (dsKafkaHealthProblem(spProcessorKafkaHealth(m->proc), why, len) != DS_KAFKA_OK) return "kafka";
    if (spProcessorStreaming(m->proc)) return NULL;
    snprintf(why, len, "the replication session is being started again (the log says why)");
    return "reconnecting";
}

static void mainPublish(void *app, dsMetrics *metrics) {
    spMain *m = app;
    dsKafkaHealthPublish(spProcessorKafkaHealth(m->proc), metrics);
}

static int exit_code;

static void mainStop(spMain *m) {
    spProcessorStop(m->proc, (int)opt.shutdown_timeout_ms);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

static void mainOnStop(uv_signal_t *h, int signum) {
    dsLogInfo("signal %d: flushing to Kafka and confirming", signum);
    mainStop(h->data);
}

static void mainOnExit(int code, void *arg) {
    exit_code = code;
    mainStop(arg);
}

/* Whether to run exactly-once (*eos, with its transactional.id in tid),
 * from --delivery (checked already) and what the cluster is. */
static void mainDelivery(char *tid, size_t tidlen, bool *eos) {
    bool any = strcmp(opt.delivery, "auto") == 0;
    *eos = false;
    if (strcmp(opt.delivery, "at-least-once") == 0) return;
    char err[1024] = "";
    int mock = spClusterIsMock(&opt.kafka, 10000, err, sizeof(err));
    if (mock == 1 && any) {
        dsLogWarn("delivery auto: the cluster is librdkafka's mock (dev-kafka), whose transactions are not real "
                  "(read_committed consumers see aborted records): at-least-once");
        return;
    }
    if (mock == 1)
        dsLogWarn("delivery exactly-once on librdkafka's mock cluster: the transactional calls run, but the mock "
                  "shows aborted records to read_committed consumers, so nothing is exactly once there");
    if (mock < 0 && any) dsLogWarn("delivery auto: %s; taking it for a real cluster: exactly-once", err);
    if (mock == 0 && any && err[0])
        dsLogWarn("delivery auto: the cluster refuses this client, so it is not librdkafka's mock (which asks for no "
                  "credentials and has no TLS): exactly-once, once the refusal is fixed");
    *eos = true;
    if (*opt.transactional_id) snprintf(tid, tidlen, "%s", opt.transactional_id);
    else snprintf(tid, tidlen, "stream-processor-%s", opt.slot);
    dsLogInfo("delivery exactly-once: transactional.id %s, checkpoints on %s", tid, opt.checkpoint_topic);
}

/* The processor's configuration from the options; tid: the
 * transactional.id of exactly-once, NULL for at-least-once. */
static spProcessorConfig mainProcessorConfig(spMain *m, dsLearner *learner, const char *tid) {
    return (spProcessorConfig){
        .repl = {opt.dsn, opt.slot, opt.publication, opt.table},
        .kafka = {.kafka = &opt.kafka, .compression = orNull(opt.compression), .topic = opt.topic,
                  .dlq_topic = opt.dlq_topic,
                  .message_timeout_ms = (int)opt.message_timeout_ms,
                  .linger_ms = (int)opt.linger_ms,
                  /* Above what the window lets through (one message past
                   * either limit), so a send never meets a full queue. */
                  .queue_max_messages = (int)opt.max_in_flight * 2,
                  .queue_max_kbytes = (int)(opt.max_in_flight_bytes / 1024 * 2 + 4096),
                  .transactional_id = tid,
                  .transaction_timeout_ms = (int)opt.transaction_timeout_ms,
                  .checkpoint_topic = opt.checkpoint_topic},
        .max_in_flight = opt.max_in_flight,
        .max_in_flight_bytes = opt.max_in_flight_bytes,
        .status_interval_ms = opt.status_interval_ms,
        .learner = learner,
        .batch = {.max_messages = opt.transaction_max_messages, .interval_ms = opt.transaction_interval_ms,
                  .idle_ms = opt.status_interval_ms},
        .on_exit = mainOnExit,
        .exit_arg = m,
    };
}

int main(int argc, char **argv) {
    char err[1024];
    static const dsDaemonSpec spec = {"stream-processor", "stream-processor",
                                      "Streams committed decisions from PostgreSQL to Kafka.", spConfig, SP_NCONFIG,
                                      ENV_PREFIX, &opt.log_level, .kafka = &opt.kafka};
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    if (strcmp(opt.delivery, "exactly-once") != 0 && strcmp(opt.delivery, "at-least-once") != 0 &&
        strcmp(opt.delivery, "auto") != 0) {
        fprintf(stderr, "stream-processor: --delivery: \"%s\" is not exactly-once, at-least-once or auto (see "
                "--help)\n", opt.delivery);
        dsConfigFree(spConfig, SP_NCONFIG);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    static spMain m;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 1;
    dsCodec *codec = dsCodecNewForDirOption(opt.schemas_dir, err, sizeof(err));
    dsLearner *learner = NULL;
    if (codec && *opt.registry_url && !(learner = dsLearnerNew(opt.registry_url, "registry-url", err, sizeof(err)))) {
        dsLogError("cannot start: %s", err);
        goto done;
    }
    m.metrics = dsMetricsNew();
    char tid[300];
    bool eos = false;
    if (codec) mainDelivery(tid, sizeof(tid), &eos);
    spProcessorConfig pc = mainProcessorConfig(&m, learner, eos ? tid : NULL);
    if (codec == NULL || m.metrics == NULL || (m.proc = spProcessorNew(&loop, &pc, codec, m.metrics, err, sizeof(err))) == NULL) {
        dsLogError("cannot start: %s", err);
        goto done;
    }
    dsProbeConfig probe = {opt.listen_host, (int)opt.metrics_port, "streaming", m.metrics, mainReady, mainPublish, &m};
    if (opt.metrics_port > 0 && (m.probe = dsProbeStart(&loop, &probe, err, sizeof(err))) == NULL) {
        dsLogError("cannot start the metrics endpoint: %s", err);
        spProcessorStop(m.proc, 0);
        goto done;
    }
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, mainOnStop, SIGTERM);
    uv_signal_start(&m.sigint, mainOnStop, SIGINT);
    while (uv_run(&loop, UV_RUN_ONCE) && uv_is_active((uv_handle_t *)&m.sigterm)) {
    }
    rc = exit_code;

done:
    dsProbeStop(m.probe, &loop, 1000);
    dsProbeFree(m.probe);
    if (!dsLoopShutdown(&loop)) dsLogWarn("event loop closed with handles still open");
    dsMetricsFree(m.metrics);
    dsLearnerFree(learner);
    dsCodecFree(codec);
    dsConfigFree(spConfig, SP_NCONFIG);
    return rc;
}
