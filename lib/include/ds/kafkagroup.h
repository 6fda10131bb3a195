/* kafkagroup.h - what the two consumer-group members (decision-archiver,
 * the variable store's feed) share: how they join their group, and what
 * they say when the group throws them out for good.
 *
 * Static membership (Kafka's group.instance.id): a member restarted within
 * its session timeout (a crash, kill -9, a deploy) rejoins under the same
 * identity and gets its partitions back without a rebalance; the other
 * members' assignments never change. Without it, a crashed member's
 * partitions were paused for the whole session timeout, then the group
 * rebalanced twice (once without it, once when it came back). The price:
 * a static member stopped for good (scaled down) does not leave the group,
 * so its partitions move only after the session timeout.
 *
 * The option --group-instance-id (DS_KAFKA_INSTANCE_OPTION) is "auto" by
 * default: <program>@<host name>, right for one member per host (or per
 * container, whose host name is its own). Two members of one group on one
 * host need ids of their own; two with one id fence each other: the broker
 * gives the newer one the partitions and answers the older one
 * FENCED_INSTANCE_ID, a fatal error after which that consumer cannot go on
 * (dsKafkaGroupFatal() says which option to change). "none" turns static
 * membership off.
 *
 * Both members read isolation.level=read_committed: records of aborted
 * Kafka transactions are never seen, nor are transaction markers, whose
 * offsets are gaps in what a partition hands out.
 */
#ifndef DS_KAFKAGROUP_H
#define DS_KAFKAGROUP_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "ds/config.h"

#define DS_KAFKA_INSTANCE_AUTO "auto"
#define DS_KAFKA_INSTANCE_NONE "none"

/* The option row of a program's table (target: a char * variable). */
#define DS_KAFKA_INSTANCE_OPTION(target)                                                                            \
    {"group-instance-id", DS_CFG_STRING, DS_KAFKA_INSTANCE_AUTO,                                                     \
     "Kafka group.instance.id (static membership: a member restarted within session-timeout gets its partitions "   \
     "back without a rebalance); auto: <program>@<host name>; none: no static membership. Every member of a group " \
     "needs its own", &(target), 1, 0}

typedef struct dsKafkaGroup {
    const char *group_id;
    const char *instance_id; /* the option's value: "auto", "none" or the id itself */
    const char *program;     /* what "auto" starts with */
    long session_timeout_ms;
} dsKafkaGroup;

/* The group.instance.id an option value stands for: out receives the id,
 * "" for "none". false (errbuf filled, naming the option) when the host
 * name cannot be had or the id does not fit. */
bool dsKafkaInstanceId(const dsKafkaGroup *g, char *out, size_t len, char *errbuf, size_t errlen);

/* Sets on conf (a consumer's, from dsKafkaConfNew()) the group, the
 * instance id, the session timeout (heartbeats at a third of it, 3 s at
 * most), isolation.level=read_committed, manual offset commits and
 * auto.offset.reset=earliest. false with errbuf filled. */
bool dsKafkaGroupConf(rd_kafka_conf_t *conf, const dsKafkaGroup *g, char *errbuf, size_t errlen);

/* Routes rk's events to its consumer queue (rd_kafka_poll_set_consumer)
 * and subscribes it to topic. false with errbuf filled. */
bool dsKafkaGroupSubscribe(rd_kafka_t *rk, const char *topic, char *errbuf, size_t errlen);

/* After librdkafka reported RD_KAFKA_RESP_ERR__FATAL on rk (the consumer
 * cannot go on): the operator's message in msg. Fenced by another member
 * with the same group.instance.id, it names the id, the group and the
 * option to change. env_prefix: the program's ("ARCHIVER_"), for the
 * variable's name. */
void dsKafkaGroupFatal(rd_kafka_t *rk, const dsKafkaGroup *g, const char *env_prefix, char *msg, size_t len);

#endif
