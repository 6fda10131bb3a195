/* kafka.h - what every Kafka client of the project shares: the options an
 * operator sets to reach a cluster (bootstrap servers, security protocol,
 * SASL, TLS files, client id), under the same names in every program; the
 * one place that turns them into an rd_kafka_conf_t; the log callback that
 * routes librdkafka's lines to ds/log.h; and the partitioner producers use.
 *
 * What belongs to one kind of client stays in its module: acks,
 * idempotence, compression and linger in the producers, group id, offset
 * and session settings in the consumers (set with dsKafkaConfSet() on the
 * conf dsKafkaConfNew() returns).
 */
#ifndef DS_KAFKA_H
#define DS_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "ds/config.h"

/* The strings are the option table's (dsConfigFree() frees them); "" means
 * unset. */
typedef struct dsKafkaOptions {
    char *brokers;           /* bootstrap.servers, "host:port,..." */
    char *security_protocol; /* plaintext, ssl, sasl_plaintext, sasl_ssl; "": plaintext */
    char *sasl_mechanism;    /* PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 */
    char *sasl_username;
    char *sasl_password;
    char *sasl_password_file; /* first line is the password (not on a command line, where ps shows it) */
    char *ssl_ca;             /* ssl.ca.location: PEM CA certificates; "": the system's */
    char *ssl_cert;           /* ssl.certificate.location: client certificate (PEM) for mutual TLS */
    char *ssl_key;            /* ssl.key.location: its private key (PEM, unencrypted) */
    char *client_id;          /* client.id, shown in the brokers' logs and quotas */
} dsKafkaOptions;

/* The rows of a dsConfigOption table for o (a dsKafkaOptions variable).
 * default_client_id: the program's client.id; brokers_doc: what --brokers
 * means in this program; brokers_required: 1 when an empty --brokers is a
 * usage error, 0 when it means "no Kafka" to the program. */
#define DS_KAFKA_CONFIG_OPTIONS(o, default_client_id, brokers_doc, brokers_required)                                  \
    {"brokers", DS_CFG_STRING, "127.0.0.1:9092", brokers_doc, &(o).brokers, brokers_required, 0},                     \
    {"security-protocol", DS_CFG_STRING, "",                                                                          \
     "Kafka security.protocol: plaintext, ssl, sasl_plaintext or sasl_ssl (empty: plaintext)",                        \
     &(o).security_protocol, 0, 0},                                                                                   \
    {"sasl-mechanism", DS_CFG_STRING, "",                                                                             \
     "Kafka sasl.mechanism with a sasl_* protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", &(o).sasl_mechanism, 0,    \
     0},                                                                                                              \
    {"sasl-username", DS_CFG_STRING, "", "Kafka sasl.username", &(o).sasl_username, 0, 0},                            \
    {"sasl-password", DS_CFG_STRING, "",                                                                              \
     "Kafka sasl.password; rather set it in the environment or use sasl-password-file, since a command line is "      \
     "visible to every user of the machine", &(o).sasl_password, 0, 0},                                               \
    {"sasl-password-file", DS_CFG_STRING, "", "file whose first line is the Kafka sasl.password",                     \
     &(o).sasl_password_file, 0, 0},                                                                                  \
    {"ssl-ca-location", DS_CFG_STRING, "",                                                                            \
     "Kafka ssl.ca.location: PEM CA certificates the brokers' certificates are checked against (empty: the "          \
     "system's)", &(o).ssl_ca, 0, 0},                                                                                 \
    {"ssl-certificate-location", DS_CFG_STRING, "",                                                                   \
     "Kafka ssl.certificate.location: PEM client certificate, for brokers that ask for one", &(o).ssl_cert, 0, 0},    \
    {"ssl-key-location", DS_CFG_STRING, "", "Kafka ssl.key.location: PEM private key of ssl-certificate-location",    \
     &(o).ssl_key, 0, 0},                                                                                             \
    {"client-id", DS_CFG_STRING, default_client_id, "Kafka client.id (brokers log and apply quotas by it)",           \
     &(o).client_id, 0, 0}

/* Java's default partitioner (murmur2 of the key; no key: random), so a key
 * lands on the partition a Java client would put it on. Every producer of
 * the decision stream sets it. */
#define DS_KAFKA_PARTITIONER "murmur2_random"

/* topic.metadata.refresh.interval.ms of every client: a topic created
 * after the client started (librdkafka's default would take 5 minutes to
 * notice), or a partition count changed, is seen within this. */
#define DS_KAFKA_METADATA_REFRESH_MS "10000"

/* reconnect.backoff.max.ms of every client: a dead coordinator's successor
 * is found at the next reconnection attempt. */
#define DS_KAFKA_RECONNECT_BACKOFF_MAX_MS "1000"

/* Checks the options together (none when brokers is empty: no Kafka to
 * reach, which dsKafkaConfNew refuses): a known protocol and mechanism, a SASL
 * mechanism with a username and a password (a password file readable, its
 * first line not empty), TLS files only with an ssl protocol and readable.
 * false with errbuf naming the option at fault. Programs call it (through
 * dsDaemonStart) before anything starts, so that a mistyped option is a
 * usage error like any other. */
bool dsKafkaOptionsCheck(const dsKafkaOptions *o, char *errbuf, size_t errlen);

/* Checks the options (dsKafkaOptionsCheck) and builds a configuration from them with dsKafkaLog as its log callback,
 * DS_KAFKA_METADATA_REFRESH_MS and DS_KAFKA_RECONNECT_BACKOFF_MAX_MS, with Nagle's algorithm off (over TLS it held
 * a request's second record for the broker's delayed ACK, ~40 ms).
 * The caller owns the result until rd_kafka_new() takes it
 * (rd_kafka_conf_destroy() otherwise). NULL with errbuf naming the option at
 * fault. */
rd_kafka_conf_t *dsKafkaConfNew(const dsKafkaOptions *o, char *errbuf, size_t errlen);

/* rd_kafka_conf_set() with the project's error convention: false with
 * errbuf "kafka config NAME: why". value NULL: nothing set, true. */
bool dsKafkaConfSet(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf, size_t errlen);

/* The SASL password: the first line of --sasl-password-file (trailing
 * blanks dropped), read now, or --sasl-password. A new string the caller
 * cleanses (OPENSSL_cleanse) and frees; NULL with errbuf naming the option. */
char *dsKafkaPassword(const dsKafkaOptions *o, char *errbuf, size_t errlen);

/* Sets DS_KAFKA_PARTITIONER. */
bool dsKafkaConfSetPartitioner(rd_kafka_conf_t *conf, char *errbuf, size_t errlen);

/* librdkafka's log lines to ds/log.h (callable from its threads): syslog
 * levels up to warning as WARN (its errors are mostly connection failures
 * it retries, which the error callbacks and delivery reports account for),
 * notice as INFO, info and debug as DEBUG. A transactional producer's
 * failed PID requests (GETPID, retried every few tens of ms while the
 * coordinator loads) are a WARN at most once per 10 s, the rest DEBUG. */
void dsKafkaLog(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
