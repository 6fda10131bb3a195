/* target.h - where decision-replay writes: one small interface, one file
 * per kind of target (target_kafka.c, target_pg.c, target_vs.c).
 *
 * A target may buffer what it is handed; rpTargetFlush() waits until every
 * decision handed so far is settled (written, found already present, or
 * failed) and only then may the replay record its position in a checkpoint.
 * Results are counted in the target's settled counters as they come in.
 */
#ifndef RP_TARGET_H
#define RP_TARGET_H

#include "ds/attrs.h"
#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/codec.h"
#include "ds/kafka.h"

typedef struct rpTargetCounts {
    uint64_t written; /* newly written */
    uint64_t present; /* the target already had the decision (idempotent targets) */
    uint64_t failed;  /* could not be written; the first reason is logged */
} rpTargetCounts;

typedef struct rpTarget rpTarget;

typedef struct rpTargetOps {
    const char *kind; /* "kafka", "postgres", ... */
    /* Hands over one decision (a value of the codec's current schema,
     * borrowed for the call: the target copies what it keeps). false: the
     * target cannot go on (errbuf says why); the decision is not counted. */
    bool (*write)(rpTarget *t, avro_value_t *decision, char *errbuf, size_t errlen);
    /* Settles everything handed so far. false: the target cannot go on. */
    bool (*flush)(rpTarget *t, char *errbuf, size_t errlen);
    void (*destroy)(rpTarget *t);
} rpTargetOps;

struct rpTarget {
    const rpTargetOps *ops;
    rpTargetCounts settled; /* updated by the target; read by the replay */
    uint64_t handed;        /* decisions accepted by write(); updated by rpTargetWrite */
};

DS_MUST_CHECK static inline bool rpTargetWrite(rpTarget *t, avro_value_t *decision, char *errbuf, size_t errlen) {
    if (!t->ops->write(t, decision, errbuf, errlen)) return false;
    t->handed++;
    return true;
}

DS_MUST_CHECK static inline bool rpTargetFlush(rpTarget *t, char *errbuf, size_t errlen) {
    return t->ops->flush(t, errbuf, errlen);
}

/* Frees the target; whatever was not flushed is lost (call flush first). */
static inline void rpTargetDestroy(rpTarget *t) {
    if (t) t->ops->destroy(t);
}

/* Kafka: the live stream's key (customer_id) and Confluent wire format
 * under the current schema id, headers decision_id and schema_id, through
 * an idempotent producer (acks=all). kafka (the cluster and how to reach
 * it) is read during the call; topic is copied; codec is borrowed. NULL with
 * errbuf filled on a configuration error (naming the option at fault). */
rpTarget *rpKafkaTargetNew(dsCodec *codec, const dsKafkaOptions *kafka, const char *topic, const char *compression,
                           char *errbuf, size_t errlen);

/* PostgreSQL: batched INSERT ... ON CONFLICT (decision_id) DO NOTHING into
 * the decisions table, one transaction per batch, rows exactly as the
 * decision API writes them (canonical document, its SHA-256, the archived
 * recorded_at and schema_version). Connects at once; NULL with errbuf
 * filled if it cannot. */
rpTarget *rpPgTargetNew(dsCodec *codec, const char *conninfo, size_t batch, char *errbuf, size_t errlen);

/* Variable store: batches of `batch` decision documents (as the decision
 * API serves them) POSTed to {url}/v1/decisions:ingest, one transaction
 * each; counted decisions are written, duplicates and expired ones present.
 * A batch the store refuses as invalid is counted failed without stopping
 * the target; a store that cannot take writes is retried for a minute. url
 * (http:// or https://, a trailing '/' ignored) is copied; codec is
 * borrowed. token, the bearer token every request carries (the store
 * requires one with the ingest role), is copied. Checks GET {url}/healthz at
 * once; NULL with errbuf filled if the URL is malformed or the store does
 * not answer. */
rpTarget *rpVsTargetNew(dsCodec *codec, const char *url, const char *token, size_t batch, char *errbuf,
                        size_t errlen);

#endif
