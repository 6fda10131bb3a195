/* kafkahealth.c - one clear message per cluster problem, and its state
 * (kafkahealth.h). */
#include "ds/kafkahealth.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/log.h"
#include "ds/timefmt.h"

#define KH_RELOG_MS 60000  /* a lasting problem is logged again this often */
#define KH_REREAD_MS 2000  /* a password file is read again at most this often */
#define KH_CHECK_SLICE_MS 500

struct dsKafkaHealth {
    pthread_mutex_t mu;
    dsKafkaOptions o; /* the strings below, owned */
    char *topic;
    rd_kafka_t *rk;   /* borrowed */
    /* the current problem */
    dsKafkaProblem kind;
    char *problem_topic; /* the topic of a DS_KAFKA_TOPIC problem */
    bool authz;          /* a DS_KAFKA_AUTH problem is a missing ACL: connections are up */
    char msg[1400];
    int64_t since_ms, logged_ms, reread_ms;
    unsigned char pw_digest[EVP_MAX_MD_SIZE]; /* of the password in use; no copy of it is kept */
    unsigned int pw_digest_len;
    unsigned long long errors[DS_KAFKA_NPROBLEMS];
    /* metrics (the publishing thread's) */
    dsMetric *m_errors[DS_KAFKA_NPROBLEMS], *m_problem[DS_KAFKA_NPROBLEMS];
    unsigned long long published[DS_KAFKA_NPROBLEMS];
    bool registered;
};

static bool khSet(const char *s) {
    return s != NULL && *s != '\0';
}

const char *dsKafkaProblemName(dsKafkaProblem p) {
    static const char *const names[DS_KAFKA_NPROBLEMS] = {"ok", "auth", "tls", "topic"};
    return (unsigned)p < DS_KAFKA_NPROBLEMS ? names[p] : "ok";
}

/* ---- classification ------------------------------------------------------ */

static bool khAuthorization(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

static bool khCertificate(const char *reason) {
    return strstr(reason, "certificate verify failed") || strstr(reason, "verify broker certificate") ||
           strstr(reason, "could not be verified");
}

static dsKafkaProblem khKind(rd_kafka_resp_err_t err, const char *reason) {
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
        khAuthorization(err))
        return DS_KAFKA_AUTH;
    if (err == RD_KAFKA_RESP_ERR__SSL || (err == RD_KAFKA_RESP_ERR__TRANSPORT && khCertificate(reason)))
        return DS_KAFKA_TLS;
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        return DS_KAFKA_TOPIC;
    return DS_KAFKA_OK;
}

static void khAuthMessage(const dsKafkaOptions *o, rd_kafka_resp_err_t err, const char *reason, char *msg,
                          size_t len) {
    const char *user = khSet(o->sasl_username) ? o->sasl_username : "(none)";
    if (khAuthorization(err)) {
        snprintf(msg, len, "Kafka user \"%s\" is not authorized (%s) by the brokers at %s: grant it its ACLs "
                 "(a producer needs Write and Describe on its topics and IdempotentWrite on the cluster, a consumer Read on "
                 "its topic and its group) "
                 "[%s]", user, rd_kafka_err2name(err), o->brokers, reason);
    } else if (khSet(o->sasl_password_file)) {
        snprintf(msg, len, "Kafka authentication failed for user \"%s\" (SASL %s) at %s: check --sasl-username and "
                 "the password in --sasl-password-file %s (or the user's credentials on the brokers) [%s]", user,
                 khSet(o->sasl_mechanism) ? o->sasl_mechanism : "?", o->brokers, o->sasl_password_file, reason);
    } else {
        snprintf(msg, len, "Kafka authentication failed for user \"%s\" (SASL %s) at %s: check --sasl-username and "
                 "--sasl-password (or the user's credentials on the brokers) [%s]", user,
                 khSet(o->sasl_mechanism) ? o->sasl_mechanism : "?", o->brokers, reason);
    }
}

static void khTlsMessage(const dsKafkaOptions *o, const char *reason, char *msg, size_t len) {
    if (khCertificate(reason) && khSet(o->ssl_ca))
        snprintf(msg, len, "TLS: the certificate of the Kafka brokers at %s is not trusted by --ssl-ca-location %s "
                 "(or does not name the address in --brokers): give the PEM file of the CA that signed the brokers' "
                 "certificates [%s]", o->brokers, o->ssl_ca, reason);
    else if (khCertificate(reason))
        snprintf(msg, len, "TLS: the certificate of the Kafka brokers at %s is not trusted by the system's CA "
                 "certificates (no --ssl-ca-location given): give the brokers' CA with --ssl-ca-location [%s]",
                 o->brokers, reason);
    else
        snprintf(msg, len, "TLS handshake with the Kafka brokers at %s failed: check --security-protocol (ssl and "
                 "sasl_ssl need a TLS listener), --ssl-ca-location and, if the brokers ask for one, "
                 "--ssl-certificate-location and --ssl-key-location [%s]", o->brokers, reason);
}

dsKafkaProblem dsKafkaClassify(const dsKafkaOptions *o, const char *topic, rd_kafka_resp_err_t err,
                               const char *reason, char *msg, size_t len) {
    if (reason == NULL) reason = rd_kafka_err2str(err);
    dsKafkaProblem kind = khKind(err, reason);
    if (kind == DS_KAFKA_AUTH) khAuthMessage(o, err, reason, msg, len);
    else if (kind == DS_KAFKA_TLS) khTlsMessage(o, reason, msg, len);
    else if (kind == DS_KAFKA_TOPIC)
        snprintf(msg, len, "topic \"%s\" does not exist on the Kafka cluster at %s, whose brokers do not create "
                 "topics: create it (kafka-topics.sh --create --topic %s --partitions N --replication-factor 3; the "
                 "README's production topic settings give each topic's) [%s]", khSet(topic) ? topic : "?", o->brokers,
                 khSet(topic) ? topic : "?", reason);
    return kind;
}

/* ---- state ----------------------------------------------------------------- */

static char *khDup(const char *s) {
    return strdup(s ? s : "");
}

/* SHA-256 of the password in use, so that a changed file can be told. */
static void khDigest(dsKafkaHealth *h, const char *pw) {
    h->pw_digest_len = 0;
    if (!EVP_Digest(pw, strlen(pw), h->pw_digest, &h->pw_digest_len, EVP_sha256(), NULL)) h->pw_digest_len = 0;
}

dsKafkaHealth *dsKafkaHealthNew(const dsKafkaOptions *o, const char *topic) {
    dsKafkaHealth *h = calloc(1, sizeof(*h));
    if (h == NULL) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->o = (dsKafkaOptions){khDup(o->brokers), khDup(o->security_protocol), khDup(o->sasl_mechanism),
                            khDup(o->sasl_username), khDup(""), khDup(o->sasl_password_file), khDup(o->ssl_ca),
                            khDup(o->ssl_cert), khDup(o->ssl_key), khDup(o->client_id)};
    h->topic = khDup(topic);
    char err[512], *pw = khSet(o->sasl_password_file) ? dsKafkaPassword(o, err, sizeof(err)) : NULL;
    if (pw) khDigest(h, pw), OPENSSL_cleanse(pw, strlen(pw));
    free(pw);
    char **fields[] = {&h->o.brokers, &h->o.security_protocol, &h->o.sasl_mechanism, &h->o.sasl_username,
                       &h->o.sasl_password, &h->o.sasl_password_file, &h->o.ssl_ca, &h->o.ssl_cert, &h->o.ssl_key,
                       &h->o.client_id, &h->topic};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (*fields[i] == NULL) return dsKafkaHealthFree(h), NULL;
    return h;
}

void dsKafkaHealthFree(dsKafkaHealth *h) {
    if (h == NULL) return;
    char *fields[] = {h->o.brokers, h->o.security_protocol, h->o.sasl_mechanism, h->o.sasl_username,
                      h->o.sasl_password, h->o.sasl_password_file, h->o.ssl_ca, h->o.ssl_cert, h->o.ssl_key,
                      h->o.client_id, h->topic, h->problem_topic};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) free(fields[i]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

bool dsKafkaHealthConf(rd_kafka_conf_t *conf, char *errbuf, size_t errlen) {
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", DS_KAFKA_HEALTH_STATS_MS);
    return dsKafkaConfSet(conf, "statistics.interval.ms", ms, errbuf, errlen);
}

void dsKafkaHealthAttach(dsKafkaHealth *h, rd_kafka_t *rk) {
    pthread_mutex_lock(&h->mu);
    h->rk = rk;
    pthread_mutex_unlock(&h->mu);
}

/* Under mu. */
static void khClear(dsKafkaHealth *h) {
    dsLogInfo("kafka: %s problem cleared after %lld s; the cluster answers again", dsKafkaProblemName(h->kind),
              (long long)((dsTimeMonoMs() - h->since_ms) / 1000));
    h->kind = DS_KAFKA_OK;
    h->msg[0] = '\0';
    free(h->problem_topic);
    h->problem_topic = NULL;
}

dsKafkaProblem dsKafkaHealthError(dsKafkaHealth *h, rd_kafka_resp_err_t err, const char *reason, const char *topic) {
    char msg[sizeof(h->msg)];
    const char *t = khSet(topic) ? topic : h->topic;
    dsKafkaProblem kind = dsKafkaClassify(&h->o, t, err, reason, msg, sizeof(msg));
    if (kind == DS_KAFKA_OK) return kind;
    pthread_mutex_lock(&h->mu);
    h->errors[kind]++;
    /* The same problem again (librdkafka's details, such as how long the
     * state lasted, vary): the log line waits for its minute. */
    bool same = kind == h->kind && (kind != DS_KAFKA_TOPIC || (h->problem_topic && strcmp(h->problem_topic, t) == 0));
    if (!same) {
        int64_t now = dsTimeMonoMs();
        if (h->kind == DS_KAFKA_OK) h->since_ms = now;
        h->kind = kind;
        free(h->problem_topic);
        h->problem_topic = kind == DS_KAFKA_TOPIC ? strdup(t) : NULL;
        h->authz = khAuthorization(err);
        h->logged_ms = now;
        h->reread_ms = now + KH_REREAD_MS;
        dsLogError("kafka: %s", msg);
    }
    memcpy(h->msg, msg, sizeof(msg));
    pthread_mutex_unlock(&h->mu);
    return kind;
}

void dsKafkaHealthOnError(dsKafkaHealth *h, rd_kafka_resp_err_t err, const char *reason) {
    if (dsKafkaHealthError(h, err, reason, NULL) != DS_KAFKA_OK) return;
    dsLog(dsKafkaHealthProblem(h, NULL, 0) != DS_KAFKA_OK ? DS_LOG_DEBUG : DS_LOG_WARN, "kafka: %s: %s",
          rd_kafka_err2name(err), reason);
}

void dsKafkaHealthOk(dsKafkaHealth *h, const char *topic) {
    pthread_mutex_lock(&h->mu);
    /* A connection up proves the credentials and the certificate, not the
     * ACLs, which are refused on connections that are up. */
    if ((h->kind == DS_KAFKA_AUTH && (topic || !h->authz)) || h->kind == DS_KAFKA_TLS ||
        (h->kind == DS_KAFKA_TOPIC && topic && h->problem_topic && strcmp(topic, h->problem_topic) == 0))
        khClear(h);
    pthread_mutex_unlock(&h->mu);
}

/* Whether a topic's statistics list a partition of its own (not only the
 * unassigned one, -1, which every topic handle has). */
static bool khHasPartitions(json_t *topic) {
    const char *id;
    json_t *p;
    json_object_foreach(json_object_get(topic, "partitions"), id, p) {
        if (strcmp(id, "-1") != 0) return true;
    }
    return false;
}

void dsKafkaHealthStats(dsKafkaHealth *h, const char *json, size_t len) {
    json_t *root = json_loadb(json, len, 0, NULL), *v;
    const char *name;
    bool up = false;
    json_object_foreach(json_object_get(root, "brokers"), name, v) {
        up |= json_is_string(json_object_get(v, "state")) &&
              strcmp(json_string_value(json_object_get(v, "state")), "UP") == 0;
    }
    if (up) dsKafkaHealthOk(h, NULL);
    json_object_foreach(json_object_get(root, "topics"), name, v) {
        if (khHasPartitions(v)) dsKafkaHealthOk(h, name);
    }
    json_decref(root);
}

/* Under mu, while authentication fails: a password file whose content
 * changed is used from the next connection on. */
static void khReread(dsKafkaHealth *h, int64_t now) {
    if (h->rk == NULL || !khSet(h->o.sasl_password_file) || now < h->reread_ms) return;
    h->reread_ms = now + KH_REREAD_MS;
    char err[512];
    char *pw = dsKafkaPassword(&h->o, err, sizeof(err));
    if (pw == NULL) return;
    unsigned char old[EVP_MAX_MD_SIZE];
    unsigned int oldlen = h->pw_digest_len;
    memcpy(old, h->pw_digest, sizeof(old));
    khDigest(h, pw);
    if (oldlen != h->pw_digest_len || memcmp(old, h->pw_digest, oldlen) != 0) {
        rd_kafka_error_t *e = rd_kafka_sasl_set_credentials(h->rk, h->o.sasl_username, pw);
        if (e) dsLogError("kafka: cannot use the new password of %s: %s", h->o.sasl_password_file,
                          rd_kafka_error_string(e));
        else dsLogInfo("kafka: %s changed: its password is used from the next connection on", h->o.sasl_password_file);
        if (e) rd_kafka_error_destroy(e);
    }
    OPENSSL_cleanse(pw, strlen(pw));
    free(pw);
}

void dsKafkaHealthTick(dsKafkaHealth *h) {
    pthread_mutex_lock(&h->mu);
    int64_t now = dsTimeMonoMs();
    if (h->kind == DS_KAFKA_AUTH) khReread(h, now);
    if (h->kind != DS_KAFKA_OK && now - h->logged_ms >= KH_RELOG_MS) {
        h->logged_ms = now;
        dsLogError("kafka: still, for %lld s: %s", (long long)((now - h->since_ms) / 1000), h->msg);
    }
    pthread_mutex_unlock(&h->mu);
}

dsKafkaProblem dsKafkaHealthProblem(dsKafkaHealth *h, char *msg, size_t len) {
    pthread_mutex_lock(&h->mu);
    dsKafkaProblem kind = h->kind;
    if (msg && len) snprintf(msg, len, "%s", h->msg);
    pthread_mutex_unlock(&h->mu);
    return kind;
}

/* ---- metrics ----------------------------------------------------------------- */

static void khRegister(dsKafkaHealth *h, dsMetrics *m) {
    static const char *const label[] = {"kind"};
    dsMetricFamily *errors = dsMetricsFamily(m, "kafka_errors_total",
                                             "Errors of the Kafka cluster that need an operator, by kind: auth "
                                             "(credentials, ACLs), tls (the brokers' certificate), topic (missing).",
                                             DS_METRIC_COUNTER, label, 1, NULL, 0);
    dsMetricFamily *problem = dsMetricsFamily(m, "kafka_problem",
                                              "1 while the Kafka cluster refuses this client for that kind of "
                                              "reason (the log and /readyz say which).",
                                              DS_METRIC_GAUGE, label, 1, NULL, 0);
    for (int k = 1; k < DS_KAFKA_NPROBLEMS; k++) {
        const char *value[] = {dsKafkaProblemName((dsKafkaProblem)k)};
        h->m_errors[k] = dsMetricGet(errors, value);
        h->m_problem[k] = dsMetricGet(problem, value);
    }
    h->registered = true;
}

void dsKafkaHealthPublish(dsKafkaHealth *h, dsMetrics *m) {
    if (h == NULL || m == NULL) return;
    if (!h->registered) khRegister(h, m);
    unsigned long long errors[DS_KAFKA_NPROBLEMS];
    pthread_mutex_lock(&h->mu);
    memcpy(errors, h->errors, sizeof(errors));
    dsKafkaProblem kind = h->kind;
    pthread_mutex_unlock(&h->mu);
    for (int k = 1; k < DS_KAFKA_NPROBLEMS; k++) {
        dsMetricInc(h->m_errors[k], (double)(errors[k] - h->published[k]));
        h->published[k] = errors[k];
        dsMetricSet(h->m_problem[k], kind == (dsKafkaProblem)k ? 1 : 0);
    }
}

/* ---- a command-line client's check ----------------------------------------------- */

/* One metadata request for rkt; true when it answered (*terr: the topic's
 * error). */
static bool khMetadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms, rd_kafka_resp_err_t *terr) {
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    *terr = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (*terr == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt == 0)
        *terr = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    return true;
}

bool dsKafkaHealthCheck(dsKafkaHealth *h, rd_kafka_t *rk, const char *topic, int timeout_ms, char *errbuf,
                        size_t errlen) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL)
        return snprintf(errbuf, errlen, "kafka: topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error())), false;
    int64_t deadline = dsTimeMonoMs() + timeout_ms;
    bool ok = false;
    for (int64_t left = timeout_ms; left > 0 && !ok; left = deadline - dsTimeMonoMs()) {
        rd_kafka_resp_err_t terr = RD_KAFKA_RESP_ERR_NO_ERROR;
        bool answered = khMetadata(rk, rkt, left < KH_CHECK_SLICE_MS ? (int)left : KH_CHECK_SLICE_MS, &terr);
        if (answered && terr == RD_KAFKA_RESP_ERR_NO_ERROR) ok = true, dsKafkaHealthOk(h, topic);
        else if (answered) dsKafkaHealthError(h, terr, rd_kafka_err2str(terr), topic);
        rd_kafka_poll(rk, 0); /* the error callback: authentication, TLS */
        if (!ok && dsKafkaHealthProblem(h, errbuf, errlen) != DS_KAFKA_OK) break;
    }
    rd_kafka_topic_destroy(rkt);
    if (!ok && dsKafkaHealthProblem(h, NULL, 0) == DS_KAFKA_OK)
        snprintf(errbuf, errlen, "kafka: no answer from the brokers at %s within %d s (are they running, and is "
                 "--brokers right?)", h->o.brokers, (timeout_ms + 999) / 1000);
    return ok;
}
