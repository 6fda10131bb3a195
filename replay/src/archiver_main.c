/* archiver_main.c - decision-archiver: a Kafka consumer group on the
 * decisions topic writing the archive of CONTRACT §4. The work is the
 * modules': archiver.h (files, rotation, quarantine, commit ordering),
 * archiver_consumer.h (the group member), archiver_options.h (the option
 * table). Here: start-up, the sweep of a crash's leftovers, the metrics
 * endpoint (ds/probe.h) served between polls, and the signals.
 */
#include <signal.h>
#include <stdio.h>

#include "archive.h"
#include "archiver_consumer.h"
#include "archiver_options.h"
#include "ds/codec.h"
#include "ds/daemon.h"
#include "ds/learn.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "ds/probe.h"

static arOptions opt;
static dsConfigOption table[AR_NOPTIONS];
static volatile sig_atomic_t stopping;

static void arOnSignal(int sig) {
    stopping = 1;
}

static const char *arReady(void *app, char *why, size_t len) {
    return arConsumerHeldUp(app, why, len);
}

static void arPublish(void *app, dsMetrics *m) {
    arConsumerPublish(app, m);
}

/* Polls until SIGTERM or a failure; the endpoint, when there is one, is
 * served between polls, hence their short wait. */
static int arRun(arConsumer *c, uv_loop_t *loop, dsProbe *probe) {
    while (!stopping) {
        if (!arConsumerStep(c, probe ? 20 : 100)) return 1;
        if (probe) uv_run(loop, UV_RUN_NOWAIT);
    }
    return arConsumerFinish(c) ? 0 : 1;
}

int main(int argc, char **argv) {
    char err[1536];
    static const dsDaemonSpec spec = {AR_PROGRAM, AR_PROGRAM, "Archives the decision stream as Avro container files.",
                                      table, AR_NOPTIONS, AR_ENV_PREFIX, &opt.log_level, .kafka = &opt.kafka};
    arOptionsTable(&opt, table);
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    signal(SIGTERM, arOnSignal);
    signal(SIGINT, arOnSignal);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 1, swept = rpArchiveSweep(opt.archive, err, sizeof(err));
    if (swept < 0) dsLogError("%s", err);
    else if (swept > 0) dsLogInfo("removed %d unfinished files left by a crash", swept);
    dsLearner *learner = NULL;
    arConsumer *consumer = NULL;
    dsProbe *probe = NULL;
    dsMetrics *metrics = dsMetricsNew();
    dsCodec *codec = dsCodecNewForDirOption(opt.schemas_dir, err, sizeof(err));
    if (codec == NULL) {
        dsLogError("cannot load the schemas: %s", err);
        goto done;
    }
    if (*opt.registry_url && (learner = dsLearnerNew(opt.registry_url, "--registry-url", err, sizeof(err))) == NULL) {
        dsLogError("%s", err);
        goto done;
    }
    arFiles files = arOptionsFiles(&opt, codec, learner);
    arConsumerConfig cc = arOptionsConsumer(&opt);
    if (metrics == NULL || (consumer = arConsumerNew(&cc, &files, err, sizeof(err))) == NULL) {
        dsLogError("cannot start the consumer: %s", metrics ? err : "out of memory");
        goto done;
    }
    arConsumerPublish(consumer, metrics); /* every metric there from the first scrape */
    dsProbeConfig pc = {opt.listen_host, (int)opt.metrics_port, "archiving", metrics, arReady, arPublish, consumer};
    if (opt.metrics_port > 0 && (probe = dsProbeStart(&loop, &pc, err, sizeof(err))) == NULL) {
        dsLogError("cannot start the metrics endpoint: %s", err);
        goto done;
    }
    dsLogInfo("archiving %s from %s into %s", opt.topic, opt.kafka.brokers, opt.archive);
    rc = arRun(consumer, &loop, probe);
done:
    dsProbeStop(probe, &loop, 1000);
    arConsumerFree(consumer);
    dsProbeFree(probe);
    if (!dsLoopShutdown(&loop)) dsLogWarn("event loop closed with handles still open");
    dsMetricsFree(metrics);
    dsLearnerFree(learner);
    dsCodecFree(codec);
    dsConfigFree(table, AR_NOPTIONS);
    return rc;
}
