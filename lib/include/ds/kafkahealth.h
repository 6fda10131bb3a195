/* kafkahealth.h - what a Kafka client tells an operator when the cluster
 * refuses it: the credentials (authentication or a missing ACL), the TLS
 * handshake (mostly a broker certificate the CA file does not vouch for),
 * or a topic that does not exist. librdkafka reports each of these as an
 * error it retries for ever, repeated on every reconnect; here it becomes
 * one problem with one clear message naming the option to fix, logged as
 * an ERROR when it appears or changes (and once a minute while it lasts),
 * counted in kafka_errors_total{kind}, shown by kafka_problem{kind} and by
 * the program's /readyz, and logged as cleared once the cluster answers
 * again.
 *
 * The daemons keep running and retrying through such a problem, whether it
 * is there at start or appears later: credentials are rotated, topics are
 * created, certificates reissued, often by someone else and in any order
 * with the daemons' start, and nothing they accepted is confirmed or
 * committed while it lasts. While an authentication problem lasts, a
 * --sasl-password-file that changed is read again and its password used
 * from the next connection on (rd_kafka_sasl_set_credentials()); a CA file
 * is read once, when the client is made (librdkafka cannot load another):
 * a new one needs a restart. A command-line client (decision-replay) fails
 * instead: dsKafkaHealthCheck() gives it the message within a bounded time.
 *
 * One dsKafkaHealth per client handle. Every function is thread-safe: the
 * client's own thread reports errors and successes, the HTTP thread reads
 * the problem and publishes the metrics.
 */
#ifndef DS_KAFKAHEALTH_H
#define DS_KAFKAHEALTH_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "ds/kafka.h"
#include "ds/metrics.h"

typedef enum {
    DS_KAFKA_OK = 0, /* none of the problems below */
    DS_KAFKA_AUTH,   /* the brokers refused the credentials, or the user lacks an ACL */
    DS_KAFKA_TLS,    /* the TLS handshake failed (the brokers' certificate not trusted, ...) */
    DS_KAFKA_TOPIC,  /* the topic does not exist on the cluster */
} dsKafkaProblem;
#define DS_KAFKA_NPROBLEMS 4

/* "ok", "auth", "tls", "topic": the kind label of the metrics. */
const char *dsKafkaProblemName(dsKafkaProblem p);

/* Classifies an error librdkafka reported (error callback, delivery
 * report, consumer error, metadata): DS_KAFKA_OK when it is none of the
 * three problems (a broker down, a timeout: what librdkafka retries and
 * logs). Otherwise msg gets the operator's message: what failed, against
 * which brokers, user or topic, the option to check, and librdkafka's own
 * words (reason) at the end. o: the client's options; topic: the topic
 * concerned when the error names none (may be NULL). */
dsKafkaProblem dsKafkaClassify(const dsKafkaOptions *o, const char *topic, rd_kafka_resp_err_t err,
                               const char *reason, char *msg, size_t len);

typedef struct dsKafkaHealth dsKafkaHealth;

/* A client's health, with no problem. o and topic (the client's main
 * topic, for messages that name none) are copied; nothing of the password
 * is kept but a digest. NULL if out of memory. */
dsKafkaHealth *dsKafkaHealthNew(const dsKafkaOptions *o, const char *topic);
/* NULL is ignored. Call after the client handle is destroyed or before. */
void dsKafkaHealthFree(dsKafkaHealth *h);

/* Sets on conf what the health reads: statistics every
 * DS_KAFKA_HEALTH_STATS_MS (the caller's stats callback hands them to
 * dsKafkaHealthStats()). */
#define DS_KAFKA_HEALTH_STATS_MS 5000
bool dsKafkaHealthConf(rd_kafka_conf_t *conf, char *errbuf, size_t errlen);

/* The client handle (borrowed; detach with NULL before destroying it), for
 * applying a changed password file. */
void dsKafkaHealthAttach(dsKafkaHealth *h, rd_kafka_t *rk);

/* An error librdkafka reported: one of the problems (dsKafkaClassify)
 * becomes the current one. topic: as for dsKafkaClassify. Returns its kind
 * (DS_KAFKA_OK: not a problem, nothing changed). */
dsKafkaProblem dsKafkaHealthError(dsKafkaHealth *h, rd_kafka_resp_err_t err, const char *reason, const char *topic);

/* For an error callback: the error becomes the problem, or, being none of
 * them (a broker down, a disconnect: librdkafka retries), is logged as a
 * WARN, or as DEBUG while a problem is current, whose ERROR explains it. */
void dsKafkaHealthOnError(dsKafkaHealth *h, rd_kafka_resp_err_t err, const char *reason);

/* Proof the cluster serves the client: topic NULL, a broker connection is
 * up (clears an authentication or TLS problem); a topic, that topic works
 * too (a message delivered to it or read from it, partitions assigned:
 * clears a problem with it as well). */
void dsKafkaHealthOk(dsKafkaHealth *h, const char *topic);

/* librdkafka's statistics (JSON): a broker in state UP, a topic with
 * partitions, count as dsKafkaHealthOk(). */
void dsKafkaHealthStats(dsKafkaHealth *h, const char *json, size_t len);

/* Call often (every poll) from the thread that polls the client: re-reads
 * a changed password file while authentication fails, repeats the log line
 * of a lasting problem once a minute. */
void dsKafkaHealthTick(dsKafkaHealth *h);

/* The current problem (DS_KAFKA_OK: none), its message in msg (may be
 * NULL). */
dsKafkaProblem dsKafkaHealthProblem(dsKafkaHealth *h, char *msg, size_t len);

/* Brings kafka_errors_total{kind} and kafka_problem{kind} in m up to date,
 * registering them on the first call. Call on the thread that owns m,
 * always with the same m, before rendering it. */
void dsKafkaHealthPublish(dsKafkaHealth *h, dsMetrics *m);

/* Blocks until the cluster answers a metadata request for topic (the
 * client's own kind of request: a producer's lets brokers that create
 * topics do so), serving rk's callbacks meanwhile (rd_kafka_poll: call
 * only on a producer, before anything is produced). true: the topic is
 * there. false, errbuf filled: a problem was reported (its message), or
 * timeout_ms passed without an answer. */
bool dsKafkaHealthCheck(dsKafkaHealth *h, rd_kafka_t *rk, const char *topic, int timeout_ms, char *errbuf,
                        size_t errlen);

#endif
