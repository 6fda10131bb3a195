/* archiver_options.h - decision-archiver's option table (ds/config.h),
 * filled into an arOptions the caller owns, so that a test can load it
 * from its own arguments and environment as main() does. */
#ifndef AR_OPTIONS_H
#define AR_OPTIONS_H

#include <stddef.h>

#include "archiver.h"
#include "archiver_consumer.h"
#include "ds/config.h"
#include "ds/kafka.h"

#define AR_ENV_PREFIX "ARCHIVER_"
#define AR_PROGRAM "decision-archiver"

/* The strings are the table's (dsConfigFree() frees them). */
typedef struct arOptions {
    dsKafkaOptions kafka;
    char *topic, *group_id, *instance_id, *archive, *schemas_dir, *registry_url, *listen_host, *log_level;
    long max_records, max_age_ms, session_timeout_ms, metrics_port;
    size_t max_bytes, block_size;
} arOptions;

#define AR_NOPTIONS 26

/* Fills rows[0..AR_NOPTIONS) with the table, targets in o. Returns the
 * number of rows. */
size_t arOptionsTable(arOptions *o, dsConfigOption rows[AR_NOPTIONS]);

/* The archiver's and the consumer's settings from loaded options (pointers
 * into o; codec and learner are the caller's). */
arFiles arOptionsFiles(const arOptions *o, dsCodec *codec, dsLearner *learner);
arConsumerConfig arOptionsConsumer(const arOptions *o);

#endif
