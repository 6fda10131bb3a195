/* producer.c - idempotent librdkafka producer with delivery reports served
 * on the libuv loop: librdkafka writes a byte to a pipe when its main queue
 * becomes non-empty, a uv_poll on the pipe calls rd_kafka_poll(rk, 0). */
#include "producer.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds/kafkahealth.h"
#include "ds/log.h"

/* The tag travels as the message opaque pointer. */
_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "the tag must fit in a pointer");

/* A wake-up can be lost only if librdkafka's io-event write fails (pipe
 * full is impossible: it writes once per non-polling period); the timer
 * bounds the damage of any such surprise. */
#define SP_PRODUCER_SAFETY_POLL_MS 100
/* How long the start waits for the cluster to answer for each topic: a
 * missing topic or refused credentials are reported at once, not with the
 * first decision; brokers that do not answer delay the start this long. */
#define SP_PRODUCER_CHECK_MS 5000

struct spProducer {
    uv_loop_t *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    rd_kafka_topic_t *topic, *dlq, *ckpt; /* ckpt: transactional only */
    spDeliveredFn *on_delivered;
    void *arg;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles; /* uv handles not yet closed; freed at zero */
    bool poll_started, timer_started;
    bool too_large;
    size_t inflight_bytes; /* key + value of the messages not yet reported */
    size_t inflight_msgs;  /* messages not yet reported */
    /* The transactional call running on the pool, one at a time. The work
     * counts as an open handle: the memory outlives it. */
    uv_work_t work;
    enum { SP_OP_INIT, SP_OP_COMMIT, SP_OP_ABORT } op;
    int init_ms; /* the wait of the init call */
    bool busy, freeing;
    rd_kafka_error_t *result; /* written by the pool thread, read after it */
    spTxnDoneFn *done;
    void *done_arg;
    dsKafkaHealth *health; /* owned */
    uint64_t failure_logged_at; /* loop time of the last failure logged; 0: none yet */
    size_t failures_unlogged;   /* failures since then */
    dsMetric *m_delivered, *m_failed, *m_dlq;
};

/* ---- librdkafka callbacks ------------------------------------------------ */

/* An outage longer than message.timeout.ms fails every message in flight
 * at once (up to max-in-flight): a line a second says so, the metric
 * counts them all. */
static void spLogFailure(spProducer *p, const rd_kafka_message_t *m, uint64_t tag) {
    uint64_t now = uv_now(p->loop);
    if (p->failure_logged_at != 0 && now - p->failure_logged_at < 1000) {
        p->failures_unlogged++;
        return;
    }
    char more[64] = "";
    if (p->failures_unlogged > 0)
        snprintf(more, sizeof(more), " (%zu more failed since the last such line)", p->failures_unlogged);
    dsLogError("kafka: delivery to %s failed permanently (tag %llu): %s%s", rd_kafka_topic_name(m->rkt),
               (unsigned long long)tag, rd_kafka_err2str(m->err), more);
    p->failure_logged_at = now ? now : 1;
    p->failures_unlogged = 0;
}

/* Served by rd_kafka_poll on the loop thread. */
static void spOnDelivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    spProducer *p = opaque;
    uint64_t tag = (uint64_t)(uintptr_t)m->_private;
    size_t bytes = m->len + m->key_len;
    if (p->inflight_msgs > 0) p->inflight_msgs--;
    p->inflight_bytes = p->inflight_bytes > bytes ? p->inflight_bytes - bytes : 0;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dsKafkaHealthOk(p->health, rd_kafka_topic_name(m->rkt));
        dsMetricInc(p->m_delivered, 1);
        if (strcmp(rd_kafka_topic_name(m->rkt), rd_kafka_topic_name(p->dlq)) == 0) dsMetricInc(p->m_dlq, 1);
        p->on_delivered(tag, true, NULL, p->arg);
        return;
    }
    /* Purged by a transaction's abort: expected, and not a delivery failure. */
    bool purged = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (!purged) {
        dsMetricInc(p->m_failed, 1);
        dsKafkaHealthError(p->health, m->err, NULL, rd_kafka_topic_name(m->rkt));
        spLogFailure(p, m, tag);
    }
    p->on_delivered(tag, false, rd_kafka_err2str(m->err), p->arg);
}

/* Served on the loop thread too (error events go to the main queue). Most
 * errors are transient and librdkafka retries; a fatal one means the
 * idempotence guarantee is gone, and every message still queued will fail
 * through spOnDelivery, so logging is enough here. Refused credentials or
 * certificates are retried as well, and become the health's problem. */
static void spOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    spProducer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        dsLogError("kafka: fatal producer error %s: %s", rd_kafka_err2name(orig), buf);
    } else {
        dsKafkaHealthOnError(p->health, (rd_kafka_resp_err_t)err, reason);
    }
}

static int spOnStats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    spProducer *p = opaque;
    dsKafkaHealthStats(p->health, json, len);
    return 0; /* json is librdkafka's to free */
}

/* ---- loop side ----------------------------------------------------------- */

static void spServe(spProducer *p) {
    /* Drain the wake-up bytes before polling: librdkafka re-arms its write
     * when the queue is served, so a report enqueued after this read still
     * wakes us. */
    char buf[64];
    while (read(p->pipefd[0], buf, sizeof(buf)) > 0) {
    }
    if (p->rk == NULL) return; /* a renewal failed: the owner stops */
    rd_kafka_poll(p->rk, 0);
    dsKafkaHealthTick(p->health);
}

static void spOnPoll(uv_poll_t *h, int status, int events) {
    spServe(h->data);
}

static void spOnTimer(uv_timer_t *t) {
    spServe(t->data);
}

static void spRelease(spProducer *p) {
    if (--p->open_handles > 0) return;
    close(p->pipefd[0]);
    close(p->pipefd[1]);
    free(p);
}

static void spOnClosed(uv_handle_t *h) {
    spRelease(h->data);
}

/* ---- construction -------------------------------------------------------- */

/* Builds the configuration; on success the caller owns the result until
 * rd_kafka_new takes it. */
static rd_kafka_conf_t *spBuildConf(spProducer *p, const spProducerConfig *cfg, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = dsKafkaConfNew(cfg->kafka, errbuf, errlen);
    if (conf == NULL) return NULL;
    char linger[16], timeout[16], qmax[16], qkb[16], txn_timeout[16];
    int message_timeout = cfg->message_timeout_ms;
    int txn_ms = cfg->transaction_timeout_ms > 0 ? cfg->transaction_timeout_ms : 60000;
    if (cfg->transactional_id && (message_timeout <= 0 || message_timeout > txn_ms)) message_timeout = txn_ms;
    snprintf(linger, sizeof(linger), "%d", cfg->linger_ms);
    snprintf(timeout, sizeof(timeout), "%d", message_timeout);
    snprintf(txn_timeout, sizeof(txn_timeout), "%d", txn_ms);
    snprintf(qmax, sizeof(qmax), "%d", cfg->queue_max_messages);
    snprintf(qkb, sizeof(qkb), "%d", cfg->queue_max_kbytes);
    bool ok = dsKafkaConfSet(conf, "enable.idempotence", "true", errbuf, errlen) &&
              dsKafkaConfSet(conf, "acks", "all", errbuf, errlen) &&
              dsKafkaConfSet(conf, "linger.ms", linger, errbuf, errlen) &&
              dsKafkaConfSetPartitioner(conf, errbuf, errlen) &&
              dsKafkaConfSet(conf, "message.timeout.ms", message_timeout > 0 ? timeout : NULL, errbuf, errlen) &&
              dsKafkaConfSet(conf, "transactional.id", cfg->transactional_id, errbuf, errlen) &&
              dsKafkaConfSet(conf, "transaction.timeout.ms", cfg->transactional_id ? txn_timeout : NULL, errbuf,
                             errlen) &&
              dsKafkaConfSet(conf, "queue.buffering.max.messages", cfg->queue_max_messages > 0 ? qmax : NULL, errbuf,
                             errlen) &&
              dsKafkaConfSet(conf, "queue.buffering.max.kbytes", cfg->queue_max_kbytes > 0 ? qkb : NULL, errbuf, errlen) &&
              dsKafkaConfSet(conf, "compression.codec", cfg->compression, errbuf, errlen) &&
              dsKafkaHealthConf(conf, errbuf, errlen);
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, spOnDelivery);
    rd_kafka_conf_set_error_cb(conf, spOnError);
    rd_kafka_conf_set_stats_cb(conf, spOnStats);
    return conf;
}

static bool spCreateKafka(spProducer *p, const spProducerConfig *cfg, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = spBuildConf(p, cfg, errbuf, errlen);
    if (conf == NULL) return false;
    char err[512];
    /* rd_kafka_new owns conf on success only. */
    if ((p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "kafka: cannot create producer: %s", err);
        return false;
    }
    p->topic = rd_kafka_topic_new(p->rk, cfg->topic ? cfg->topic : "decisions", NULL);
    p->dlq = rd_kafka_topic_new(p->rk, cfg->dlq_topic ? cfg->dlq_topic : "decisions.dlq", NULL);
    if (cfg->transactional_id)
        p->ckpt = rd_kafka_topic_new(p->rk, cfg->checkpoint_topic ? cfg->checkpoint_topic : "decisions.checkpoints",
                                     NULL);
    if (p->topic == NULL || p->dlq == NULL || (cfg->transactional_id && p->ckpt == NULL)) {
        snprintf(errbuf, errlen, "kafka: cannot create topic handles: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return false;
    }
    p->mainq = rd_kafka_queue_get_main(p->rk);
    dsKafkaHealthAttach(p->health, p->rk);
    return true;
}

/* Releases the librdkafka handle spCreateKafka made (any part of it may
 * be missing); what was in flight goes without reports. */
static void spDestroyHandle(spProducer *p) {
    if (p->mainq) {
        rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(p->mainq);
    }
    if (p->topic) rd_kafka_topic_destroy(p->topic);
    if (p->dlq) rd_kafka_topic_destroy(p->dlq);
    if (p->ckpt) rd_kafka_topic_destroy(p->ckpt);
    if (p->health) dsKafkaHealthAttach(p->health, NULL);
    if (p->rk) rd_kafka_destroy(p->rk);
    p->mainq = NULL;
    p->topic = p->dlq = p->ckpt = NULL;
    p->rk = NULL;
    p->inflight_msgs = p->inflight_bytes = 0;
}

static void spDestroyKafka(spProducer *p) {
    spDestroyHandle(p);
    dsKafkaHealthFree(p->health);
    p->health = NULL;
}

static bool spStartWatching(spProducer *p, char *errbuf, size_t errlen) {
    int rc;
    if ((rc = uv_poll_start(&p->poll, UV_READABLE, spOnPoll)) != 0 ||
        (rc = uv_timer_start(&p->timer, spOnTimer, SP_PRODUCER_SAFETY_POLL_MS, SP_PRODUCER_SAFETY_POLL_MS)) != 0) {
        snprintf(errbuf, errlen, "kafka: cannot watch the delivery queue: %s", uv_strerror(rc));
        return false;
    }
    static const char wake = 1;
    rd_kafka_queue_io_event_enable(p->mainq, p->pipefd[1], &wake, 1);
    return true;
}

/* Asks the cluster about both topics once: a problem is reported now and
 * the producer starts anyway (it retries, and says so in the health). */
static void spCheck(spProducer *p, const char *topic, const char *dlq) {
    char err[1400];
    if (dsKafkaHealthCheck(p->health, p->rk, topic, SP_PRODUCER_CHECK_MS, err, sizeof(err)) &&
        dsKafkaHealthCheck(p->health, p->rk, dlq, SP_PRODUCER_CHECK_MS, err, sizeof(err)) &&
        (p->ckpt == NULL ||
         dsKafkaHealthCheck(p->health, p->rk, rd_kafka_topic_name(p->ckpt), SP_PRODUCER_CHECK_MS, err, sizeof(err))))
        return;
    if (dsKafkaHealthProblem(p->health, NULL, 0) == DS_KAFKA_OK)
        dsLogWarn("%s; starting anyway, decisions wait for the brokers", err);
}

spProducer *spProducerNew(uv_loop_t *loop, const spProducerConfig *cfg, spDeliveredFn *on_delivered, void *arg,
                          char *errbuf, size_t errlen) {
    spProducer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->on_delivered = on_delivered;
    p->arg = arg;
    if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(errbuf, errlen, "kafka: pipe: %s", strerror(errno));
        free(p);
        return NULL;
    }
    /* From here on the handles exist and the memory goes through spOnClosed. */
    int rc = uv_poll_init(loop, &p->poll, p->pipefd[0]);
    if (rc != 0) {
        snprintf(errbuf, errlen, "kafka: cannot watch the wake-up pipe: %s", uv_strerror(rc));
        close(p->pipefd[0]);
        close(p->pipefd[1]);
        free(p);
        return NULL;
    }
    uv_timer_init(loop, &p->timer);
    p->poll.data = p->timer.data = p;
    p->open_handles = 2;
    const char *topic = cfg->topic ? cfg->topic : "decisions";
    if ((p->health = dsKafkaHealthNew(cfg->kafka, topic)) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        spProducerFree(p);
        return NULL;
    }
    if (!spCreateKafka(p, cfg, errbuf, errlen) || !spStartWatching(p, errbuf, errlen)) {
        spProducerFree(p);
        return NULL;
    }
    spCheck(p, topic, cfg->dlq_topic ? cfg->dlq_topic : "decisions.dlq");
    p->m_delivered = dsMetricsCounter(cfg->metrics, "kafka_delivered_total", "Messages Kafka acknowledged.");
    p->m_failed = dsMetricsCounter(cfg->metrics, "kafka_delivery_failed_total",
                                   "Messages that failed permanently after retries.");
    p->m_dlq = dsMetricsCounter(cfg->metrics, "kafka_dlq_total", "Rejected rows Kafka acknowledged on the DLQ topic.");
    return p;
}

void spProducerFree(spProducer *p) {
    if (p == NULL) return;
    uv_poll_stop(&p->poll);
    uv_timer_stop(&p->timer);
    /* Before closing the pipe: librdkafka's threads may write to it until
     * rd_kafka_destroy returns. A call on the pool still uses the handle:
     * it is destroyed when that returns. */
    if (p->busy) p->freeing = true;
    else spDestroyKafka(p);
    uv_close((uv_handle_t *)&p->poll, spOnClosed);
    uv_close((uv_handle_t *)&p->timer, spOnClosed);
}

/* ---- sending ------------------------------------------------------------- */

static bool spProduced(spProducer *p, rd_kafka_resp_err_t err, const char *what, rd_kafka_topic_t *rkt, size_t bytes,
                       char *errbuf, size_t errlen) {
    p->too_large = err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->inflight_bytes += bytes;
        p->inflight_msgs++;
        return true;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        snprintf(errbuf, errlen, "kafka: producer queue full (%d messages, %zu bytes in flight)",
                 rd_kafka_outq_len(p->rk), p->inflight_bytes);
    else if (p->too_large)
        snprintf(errbuf, errlen, "kafka: %s of %zu bytes is larger than the producer's message.max.bytes", what, bytes);
    else if (dsKafkaHealthError(p->health, err, NULL, rd_kafka_topic_name(rkt)) == DS_KAFKA_TOPIC)
        snprintf(errbuf, errlen, "kafka: cannot produce %s: topic %s does not exist", what, rd_kafka_topic_name(rkt));
    else
        snprintf(errbuf, errlen, "kafka: cannot produce %s: %s", what, rd_kafka_err2str(err));
    return false;
}

bool spProducerSend(spProducer *p, const void *key, size_t keylen, const void *value, size_t vallen,
                    const char *decision_id, int schema_id, const char *source_lsn, uint64_t tag, char *errbuf,
                    size_t errlen) {
    char sid[16];
    snprintf(sid, sizeof(sid), "%d", schema_id);
    const char *did = decision_id ? decision_id : "", *lsn = source_lsn ? source_lsn : "";
    /* RD_KAFKA_MSG_F_COPY: librdkafka copies key and value; header values
     * are always copied. */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, keylen), RD_KAFKA_V_VALUE((void *)value, vallen),
        RD_KAFKA_V_HEADER("decision_id", did, -1), RD_KAFKA_V_HEADER("schema_id", sid, -1),
        RD_KAFKA_V_HEADER("source_lsn", lsn, -1), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
    return spProduced(p, err, "decision", p->topic, keylen + vallen, errbuf, errlen);
}

bool spProducerSendDlq(spProducer *p, const char *key, const char *row_json, const char *error, const char *source_lsn,
                       uint64_t tag, char *errbuf, size_t errlen) {
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_header_add(hdrs, "error", -1, error ? error : "", -1);
    if (source_lsn) rd_kafka_header_add(hdrs, "source_lsn", -1, source_lsn, -1);
    const char *row = row_json ? row_json : "";
    /* The headers list passes to librdkafka on success only. */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->dlq), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)row, strlen(row)),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);
    return spProduced(p, err, "DLQ record", p->dlq, (key ? strlen(key) : 0) + strlen(row), errbuf, errlen);
}

dsKafkaHealth *spProducerHealth(const spProducer *p) {
    return p->health;
}

bool spProducerTooLarge(const spProducer *p) {
    return p->too_large;
}

size_t spProducerInFlightBytes(const spProducer *p) {
    return p->inflight_bytes;
}

size_t spProducerInFlight(const spProducer *p) {
    int n = p->rk ? rd_kafka_outq_len(p->rk) : 0;
    return n > 0 ? (size_t)n : 0;
}

bool spProducerFlush(spProducer *p, int timeout_ms) {
    /* rd_kafka_flush serves the main queue itself (callback mode), so the
     * remaining reports reach on_delivered from inside this call. */
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        dsLogWarn("kafka: flush: %zu messages still in flight after %d ms", spProducerInFlight(p), timeout_ms);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ---- transactions -------------------------------------------------------- */

size_t spProducerInFlightMessages(const spProducer *p) {
    return p->inflight_msgs;
}

bool spProducerSendCheckpoint(spProducer *p, const char *key, const char *value, uint64_t tag, char *errbuf,
                              size_t errlen) {
    if (p->ckpt == NULL) {
        snprintf(errbuf, errlen, "kafka: not a transactional producer");
        return false;
    }
    size_t klen = strlen(key), vlen = strlen(value);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(p->ckpt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY((void *)key, klen),
        RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
    return spProduced(p, err, "checkpoint", p->ckpt, klen + vlen, errbuf, errlen);
}

static bool spFencedCode(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR__FENCED || e == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           e == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

/* A fatal error no new handle would escape: the configuration, the brokers. */
static bool spConfigCode(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT || e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
           e == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION || e == RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
}

spTxnStatus spProducerFatal(spProducer *p, char *why, size_t len) {
    char buf[512];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(p->rk, buf, sizeof(buf));
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return SP_TXN_OK;
    snprintf(why, len, "%s: %s", rd_kafka_err2name(e), buf);
    return spFencedCode(e) ? SP_TXN_FENCED : spConfigCode(e) ? SP_TXN_FATAL : SP_TXN_RENEW;
}

/* What the application must do after a transactional call; destroys e. */
static spTxnStatus spTxnClassify(spProducer *p, rd_kafka_error_t *e, char *why, size_t len) {
    if (e == NULL) return SP_TXN_OK;
    snprintf(why, len, "%s: %s", rd_kafka_error_name(e), rd_kafka_error_string(e));
    /* neither retriable, abortable nor fatal: the handle is unusable, as librdkafka advises */
    spTxnStatus st = spConfigCode(rd_kafka_error_code(e)) ? SP_TXN_FATAL : SP_TXN_RENEW;
    if (spFencedCode(rd_kafka_error_code(e))) st = SP_TXN_FENCED;
    else if (rd_kafka_error_is_fatal(e) && spProducerFatal(p, why, len) == SP_TXN_FENCED) st = SP_TXN_FENCED;
    else if (rd_kafka_error_txn_requires_abort(e)) st = SP_TXN_ABORT;
    else if (rd_kafka_error_is_retriable(e)) st = SP_TXN_RETRY;
    rd_kafka_error_destroy(e);
    return st;
}

static void spTxnWork(uv_work_t *w) {
    spProducer *p = w->data;
    if (p->op == SP_OP_INIT) p->result = rd_kafka_init_transactions(p->rk, p->init_ms);
    else if (p->op == SP_OP_COMMIT) p->result = rd_kafka_commit_transaction(p->rk, -1);
    else p->result = rd_kafka_abort_transaction(p->rk, -1);
}

static void spTxnAfter(uv_work_t *w, int status) {
    spProducer *p = w->data;
    p->busy = false;
    char why[700] = "";
    spTxnStatus st = spTxnClassify(p, p->result, why, sizeof(why));
    p->result = NULL;
    if (p->freeing) spDestroyKafka(p);
    else p->done(st, why, p->done_arg);
    spRelease(p);
}

static void spTxnStart(spProducer *p, int op, spTxnDoneFn *done, void *arg) {
    p->op = op;
    p->done = done;
    p->done_arg = arg;
    p->work.data = p;
    p->busy = true;
    p->open_handles++;
    int rc = uv_queue_work(p->loop, &p->work, spTxnWork, spTxnAfter);
    if (rc != 0) { /* cannot happen with a valid loop and callbacks */
        p->busy = false;
        p->open_handles--;
        done(SP_TXN_FATAL, uv_strerror(rc), arg);
    }
}

void spProducerTxnInit(spProducer *p, int timeout_ms, spTxnDoneFn *done, void *arg) {
    p->init_ms = timeout_ms;
    spTxnStart(p, SP_OP_INIT, done, arg);
}

void spProducerTxnCommit(spProducer *p, spTxnDoneFn *done, void *arg) {
    spTxnStart(p, SP_OP_COMMIT, done, arg);
}

void spProducerTxnAbort(spProducer *p, spTxnDoneFn *done, void *arg) {
    spTxnStart(p, SP_OP_ABORT, done, arg);
}

void spProducerPurge(spProducer *p) {
    /* The purged messages' reports reach the loop like any other (this may
     * be called from inside one, so it does not poll). */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

bool spProducerTxnBegin(spProducer *p, spTxnStatus *status, char *errbuf, size_t errlen) {
    *status = spTxnClassify(p, rd_kafka_begin_transaction(p->rk), errbuf, errlen);
    return *status == SP_TXN_OK;
}

spTxnStatus spProducerTxnFinishNow(spProducer *p, bool commit, int timeout_ms, char *errbuf, size_t errlen) {
    rd_kafka_error_t *e = commit ? rd_kafka_commit_transaction(p->rk, timeout_ms)
                                 : rd_kafka_abort_transaction(p->rk, timeout_ms);
    return spTxnClassify(p, e, errbuf, errlen);
}

bool spProducerRenew(spProducer *p, const spProducerConfig *cfg, char *errbuf, size_t errlen) {
    if (p->busy) {
        snprintf(errbuf, errlen, "kafka: a transactional call still runs");
        return false;
    }
    spDestroyHandle(p);
    char buf[64];
    while (read(p->pipefd[0], buf, sizeof(buf)) > 0) {
    }
    if (!spCreateKafka(p, cfg, errbuf, errlen)) {
        spDestroyHandle(p);
        return false;
    }
    static const char wake = 1;
    rd_kafka_queue_io_event_enable(p->mainq, p->pipefd[1], &wake, 1);
    return true;
}

bool spProducerTxnBusy(const spProducer *p) {
    return p->busy;
}
