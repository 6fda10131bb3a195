/* kafkagroup.c - joining a consumer group with static membership and
 * read_committed, and the message of a fenced member (kafkagroup.h). */
#include "ds/kafkagroup.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ds/kafka.h"

bool dsKafkaInstanceId(const dsKafkaGroup *g, char *out, size_t len, char *errbuf, size_t errlen) {
    const char *v = g->instance_id ? g->instance_id : DS_KAFKA_INSTANCE_AUTO;
    int n;
    if (strcmp(v, DS_KAFKA_INSTANCE_NONE) == 0) {
        n = snprintf(out, len, "%s", "");
    } else if (strcmp(v, DS_KAFKA_INSTANCE_AUTO) == 0) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            return snprintf(errbuf, errlen, "--group-instance-id auto: no host name; give the id"), false;
        host[sizeof(host) - 1] = '\0';
        n = snprintf(out, len, "%s@%s", g->program, host);
    } else {
        n = snprintf(out, len, "%s", v);
    }
    if (n < 0 || (size_t)n >= len)
        return snprintf(errbuf, errlen, "--group-instance-id: \"%.64s...\" is too long", v), false;
    return true;
}

/* librdkafka's heartbeat.interval.ms default. */
#define GROUP_HEARTBEAT_MS 3000

bool dsKafkaGroupConf(rd_kafka_conf_t *conf, const dsKafkaGroup *g, char *errbuf, size_t errlen) {
    char id[512], session[32], heartbeat[32];
    if (!dsKafkaInstanceId(g, id, sizeof(id), errbuf, errlen)) return false;
    snprintf(session, sizeof(session), "%ld", g->session_timeout_ms);
    /* Kafka's rule: heartbeats at a third of the session timeout at most, so
     * that one late heartbeat does not cost the member its partitions;
     * librdkafka's 3 s is more than that for sessions under 9 s. */
    long beat = g->session_timeout_ms / 3 < GROUP_HEARTBEAT_MS ? g->session_timeout_ms / 3 : GROUP_HEARTBEAT_MS;
    snprintf(heartbeat, sizeof(heartbeat), "%ld", beat > 0 ? beat : 1);
    return dsKafkaConfSet(conf, "group.id", g->group_id, errbuf, errlen) &&
           dsKafkaConfSet(conf, "group.instance.id", id[0] ? id : NULL, errbuf, errlen) &&
           dsKafkaConfSet(conf, "session.timeout.ms", session, errbuf, errlen) &&
           dsKafkaConfSet(conf, "heartbeat.interval.ms", heartbeat, errbuf, errlen) &&
           dsKafkaConfSet(conf, "isolation.level", "read_committed", errbuf, errlen) &&
           dsKafkaConfSet(conf, "enable.auto.commit", "false", errbuf, errlen) &&
           dsKafkaConfSet(conf, "auto.offset.reset", "earliest", errbuf, errlen);
}

bool dsKafkaGroupSubscribe(rd_kafka_t *rk, const char *topic, char *errbuf, size_t errlen) {
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) snprintf(errbuf, errlen, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void dsKafkaGroupFatal(rd_kafka_t *rk, const dsKafkaGroup *g, const char *env_prefix, char *msg, size_t len) {
    char why[512] = "", id[512] = "?", ignored[8];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, why, sizeof(why));
    if (!dsKafkaInstanceId(g, id, sizeof(id), ignored, sizeof(ignored))) snprintf(id, sizeof(id), "?");
    if (err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID)
        snprintf(msg, len,
                 "another member of consumer group \"%s\" joined with this one's group.instance.id \"%s\" and "
                 "fenced it: give every member its own --group-instance-id (%sGROUP_INSTANCE_ID) (%s)",
                 g->group_id, id, env_prefix, why);
    else
        snprintf(msg, len, "the Kafka consumer cannot go on: %s: %s", rd_kafka_err2name(err), why);
}
