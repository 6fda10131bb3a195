/* kafka.c - owns the checks on the shared Kafka client options and their
 * mapping to librdkafka properties (kafka.h).
 *
 * librdkafka accepts most bad combinations silently and fails later, at
 * connection time, with a line in its log (a mechanism without credentials,
 * a CA file with a plaintext protocol, a file it cannot read): here they are
 * refused at start-up, naming the option an operator has to fix.
 */
#include "ds/kafka.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ds/fileio.h"
#include "ds/log.h"
#include "ds/timefmt.h"

static bool kfSet(const char *s) {
    return s != NULL && *s != '\0';
}

static bool kfFail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool kfFail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errbuf && errlen) vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return false;
}

bool dsKafkaConfSet(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf, size_t errlen) {
    if (value == NULL) return true;
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK) return true;
    return kfFail(errbuf, errlen, "kafka config %s: %s", name, why);
}

bool dsKafkaConfSetPartitioner(rd_kafka_conf_t *conf, char *errbuf, size_t errlen) {
    return dsKafkaConfSet(conf, "partitioner", DS_KAFKA_PARTITIONER, errbuf, errlen);
}

/* A transactional producer's PID request is retried every few tens of ms
 * while its coordinator loads (a fresh cluster, a failover), each failure
 * a WARN: one line per KF_GETPID_EVERY_MS says so, with the count of those
 * left out (at DEBUG) since the last. */
#define KF_GETPID_EVERY_MS 10000

static bool kfGetpidRepeated(long *skipped) {
    static _Atomic int64_t logged_at;
    static atomic_long left_out;
    int64_t now = dsTimeMonoMs(), at = atomic_load(&logged_at);
    if (at != 0 && now - at < KF_GETPID_EVERY_MS) return atomic_fetch_add(&left_out, 1), true;
    if (!atomic_compare_exchange_strong(&logged_at, &at, now)) return atomic_fetch_add(&left_out, 1), true;
    *skipped = atomic_exchange(&left_out, 0);
    return false;
}

void dsKafkaLog(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    dsLogLevel l = level <= 4 ? DS_LOG_WARN : level == 5 ? DS_LOG_INFO : DS_LOG_DEBUG;
    long skipped = 0;
    if (l == DS_LOG_WARN && strcmp(fac, "GETPID") == 0 && kfGetpidRepeated(&skipped)) l = DS_LOG_DEBUG;
    if (skipped > 0) dsLog(l, "kafka: %s: %s (%ld like it since the last such line)", fac, buf, skipped);
    else dsLog(l, "kafka: %s: %s", fac, buf);
}

/* ---- checks -------------------------------------------------------------- */

static const char *const kfProtocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
static const char *const kfMechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

/* The protocol in librdkafka's spelling, or NULL if it is none of them. */
static const char *kfProtocol(const char *s) {
    if (!kfSet(s)) return "plaintext";
    for (size_t i = 0; i < sizeof(kfProtocols) / sizeof(kfProtocols[0]); i++)
        if (strcasecmp(s, kfProtocols[i]) == 0) return kfProtocols[i];
    return NULL;
}

static const char *kfMechanism(const char *s) {
    for (size_t i = 0; i < sizeof(kfMechanisms) / sizeof(kfMechanisms[0]); i++)
        if (strcasecmp(s, kfMechanisms[i]) == 0) return kfMechanisms[i];
    return NULL;
}

/* SASL options only mean something with a sasl_* protocol. */
static bool kfCheckSasl(const dsKafkaOptions *o, const char *proto, char *errbuf, size_t errlen) {
    bool sasl = strncmp(proto, "sasl_", 5) == 0;
    const char *given = kfSet(o->sasl_mechanism) ? "sasl-mechanism"
                        : kfSet(o->sasl_username) ? "sasl-username"
                        : kfSet(o->sasl_password) ? "sasl-password"
                        : kfSet(o->sasl_password_file) ? "sasl-password-file"
                                                        : NULL;
    if (!sasl) {
        if (!given) return true;
        return kfFail(errbuf, errlen, "--%s is set but --security-protocol is %s: SASL needs sasl_plaintext or "
                      "sasl_ssl", given, proto);
    }
    if (!kfSet(o->sasl_mechanism))
        return kfFail(errbuf, errlen, "--security-protocol %s needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or "
                      "SCRAM-SHA-512)", proto);
    if (!kfMechanism(o->sasl_mechanism))
        return kfFail(errbuf, errlen, "--sasl-mechanism: \"%s\" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                      o->sasl_mechanism);
    if (!kfSet(o->sasl_username))
        return kfFail(errbuf, errlen, "--sasl-mechanism %s needs --sasl-username", o->sasl_mechanism);
    if (kfSet(o->sasl_password) && kfSet(o->sasl_password_file))
        return kfFail(errbuf, errlen, "give the SASL password once: --sasl-password or --sasl-password-file, not both");
    if (!kfSet(o->sasl_password) && !kfSet(o->sasl_password_file))
        return kfFail(errbuf, errlen, "--sasl-mechanism %s needs --sasl-password-file or --sasl-password",
                      o->sasl_mechanism);
    return true;
}

/* A file librdkafka will read only when it connects: unreadable is refused now. */
static bool kfReadable(const char *option, const char *path, char *errbuf, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return kfFail(errbuf, errlen, "--%s %s: %s", option, path, strerror(errno));
    fclose(f);
    return true;
}

/* TLS files only mean something with an ssl protocol. */
static bool kfCheckSsl(const dsKafkaOptions *o, const char *proto, char *errbuf, size_t errlen) {
    bool ssl = strcmp(proto, "ssl") == 0 || strcmp(proto, "sasl_ssl") == 0;
    const char *given = kfSet(o->ssl_ca) ? "ssl-ca-location"
                        : kfSet(o->ssl_cert) ? "ssl-certificate-location"
                        : kfSet(o->ssl_key) ? "ssl-key-location"
                                             : NULL;
    if (!given) return true;
    if (!ssl)
        return kfFail(errbuf, errlen, "--%s is set but --security-protocol is %s: TLS needs ssl or sasl_ssl", given,
                      proto);
    if (kfSet(o->ssl_cert) != kfSet(o->ssl_key))
        return kfFail(errbuf, errlen, "--%s needs --%s: a client certificate goes with its key",
                      kfSet(o->ssl_cert) ? "ssl-certificate-location" : "ssl-key-location",
                      kfSet(o->ssl_cert) ? "ssl-key-location" : "ssl-certificate-location");
    return (!kfSet(o->ssl_ca) || kfReadable("ssl-ca-location", o->ssl_ca, errbuf, errlen)) &&
           (!kfSet(o->ssl_cert) || kfReadable("ssl-certificate-location", o->ssl_cert, errbuf, errlen)) &&
           (!kfSet(o->ssl_key) || kfReadable("ssl-key-location", o->ssl_key, errbuf, errlen));
}

char *dsKafkaPassword(const dsKafkaOptions *o, char *errbuf, size_t errlen) {
    char why[512], *pw;
    size_t len;
    if (!kfSet(o->sasl_password_file)) {
        if ((pw = strdup(o->sasl_password)) == NULL) kfFail(errbuf, errlen, "out of memory");
        return pw;
    }
    if ((pw = dsFileRead(o->sasl_password_file, DS_FILE_MAX_SECRET, &len, why, sizeof(why))) == NULL) {
        kfFail(errbuf, errlen, "--sasl-password-file: %s", why);
        return NULL;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    for (size_t n = strlen(pw); n > 0 && (pw[n - 1] == ' ' || pw[n - 1] == '\t');) pw[--n] = '\0';
    if (*pw == '\0') {
        free(pw);
        kfFail(errbuf, errlen, "--sasl-password-file %s: the first line is empty", o->sasl_password_file);
        return NULL;
    }
    return pw;
}

/* ---- the configuration --------------------------------------------------- */

static bool kfSetSasl(rd_kafka_conf_t *conf, const dsKafkaOptions *o, char *errbuf, size_t errlen) {
    char *pw = dsKafkaPassword(o, errbuf, errlen);
    if (pw == NULL) return false;
    bool ok = dsKafkaConfSet(conf, "sasl.mechanism", kfMechanism(o->sasl_mechanism), errbuf, errlen) &&
              dsKafkaConfSet(conf, "sasl.username", o->sasl_username, errbuf, errlen) &&
              dsKafkaConfSet(conf, "sasl.password", pw, errbuf, errlen);
    OPENSSL_cleanse(pw, strlen(pw)); /* librdkafka keeps its own copy */
    free(pw);
    return ok;
}

static const char *kfOrNull(const char *s) {
    return kfSet(s) ? s : NULL;
}

/* Everything but the password file's content, which only its reading
 * tells. */
static bool kfCheckOptions(const dsKafkaOptions *o, const char *proto, char *errbuf, size_t errlen) {
    if (proto == NULL)
        return kfFail(errbuf, errlen, "--security-protocol: \"%s\" is not plaintext, ssl, sasl_plaintext or sasl_ssl",
                      o->security_protocol);
    return kfCheckSasl(o, proto, errbuf, errlen) && kfCheckSsl(o, proto, errbuf, errlen);
}

bool dsKafkaOptionsCheck(const dsKafkaOptions *o, char *errbuf, size_t errlen) {
    const char *proto = kfProtocol(o->security_protocol);
    if (!kfSet(o->brokers)) return true;
    if (!kfCheckOptions(o, proto, errbuf, errlen)) return false;
    if (strncmp(proto, "sasl_", 5) != 0) return true;
    char *pw = dsKafkaPassword(o, errbuf, errlen);
    if (pw == NULL) return false;
    OPENSSL_cleanse(pw, strlen(pw));
    free(pw);
    return true;
}

rd_kafka_conf_t *dsKafkaConfNew(const dsKafkaOptions *o, char *errbuf, size_t errlen) {
    if (!kfSet(o->brokers)) return kfFail(errbuf, errlen, "--brokers is empty: no Kafka bootstrap servers"), NULL;
    const char *proto = kfProtocol(o->security_protocol);
    /* the password is read once, by kfSetSasl below */
    if (!kfCheckOptions(o, proto, errbuf, errlen)) return NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = dsKafkaConfSet(conf, "bootstrap.servers", o->brokers, errbuf, errlen) &&
              dsKafkaConfSet(conf, "security.protocol", proto, errbuf, errlen) &&
              dsKafkaConfSet(conf, "client.id", kfOrNull(o->client_id), errbuf, errlen) &&
              /* Nagle's algorithm held the second TLS record of a request
               * until the broker's delayed ACK (~40 ms): the stream
               * processor's median commit-to-ack over SASL_SSL was 44 ms
               * against 2 ms in plaintext. Every client pays it, consumers'
               * fetches and commits too. */
              dsKafkaConfSet(conf, "socket.nagle.disable", "true", errbuf, errlen) &&
              dsKafkaConfSet(conf, "topic.metadata.refresh.interval.ms", DS_KAFKA_METADATA_REFRESH_MS, errbuf,
                             errlen) &&
              /* A coordinator (of transactions, of a group) that died is
               * looked up again only when librdkafka next tries to reach
               * it: with the default back-off of up to 10 s, a transactional
               * producer stood still 12 s after a node was killed, against 3 s
               * for the partitions' leaders. */
              dsKafkaConfSet(conf, "reconnect.backoff.max.ms", DS_KAFKA_RECONNECT_BACKOFF_MAX_MS, errbuf, errlen) &&
              dsKafkaConfSet(conf, "ssl.ca.location", kfOrNull(o->ssl_ca), errbuf, errlen) &&
              dsKafkaConfSet(conf, "ssl.certificate.location", kfOrNull(o->ssl_cert), errbuf, errlen) &&
              dsKafkaConfSet(conf, "ssl.key.location", kfOrNull(o->ssl_key), errbuf, errlen) &&
              (strncmp(proto, "sasl_", 5) != 0 || kfSetSasl(conf, o, errbuf, errlen));
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, dsKafkaLog);
    return conf;
}
