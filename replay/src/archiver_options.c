/* archiver_options.c - decision-archiver's option table (archiver_options.h). */
#include "archiver_options.h"

#include <string.h>

#include "ds/kafkagroup.h"
#include "filereader.h"

size_t arOptionsTable(arOptions *o, dsConfigOption rows[AR_NOPTIONS]) {
    const dsConfigOption table[] = {
        DS_KAFKA_CONFIG_OPTIONS(o->kafka, AR_PROGRAM, "Kafka bootstrap servers (host:port,...)", 1),
        {"topic", DS_CFG_STRING, "decisions", "topic to archive", &o->topic, 1, 0},
        {"group-id", DS_CFG_STRING, "decision-archiver",
         "consumer group (every archiver writing one archive joins it)", &o->group_id, 1, 0},
        DS_CONFIG_ALIAS("group", "group-id"),
        DS_KAFKA_INSTANCE_OPTION(o->instance_id),
        {"archive", DS_CFG_STRING, "var/archive", "archive root directory (the one holding decisions/)", &o->archive,
         0, 0},
        DS_CONFIG_ALIAS("root", "archive"),
        {"max-records", DS_CFG_INT, "100000", "records per file at most", &o->max_records, 1, 100000000},
        {"max-bytes", DS_CFG_SIZE, "64MiB", "encoded bytes per file at most (approximate)", &o->max_bytes, 1024,
         1LL << 40},
        {"max-age", DS_CFG_DURATION, "60s", "a file is closed this long after its first record", &o->max_age_ms, 100,
         86400000},
        {"block-size", DS_CFG_SIZE, "1MiB",
         "Avro block size (a larger record is quarantined; at most 64MiB, what decision-replay reads by default)",
         &o->block_size, 65536, RP_MAX_BLOCK_DEFAULT},
        {"session-timeout", DS_CFG_DURATION, "45s",
         "consumer group session timeout: how soon a crashed archiver that does not come back loses its partitions "
         "(one restarted sooner gets them back at once)", &o->session_timeout_ms, 1000, 3600000},
        {"schemas-dir", DS_CFG_STRING, "",
         "schema directory (manifest.json and the .avsc files it names) to decode the stream with, instead of the "
         "schemas built in (empty: built in)", &o->schemas_dir, 0, 0},
        {"registry-url", DS_CFG_STRING, "http://127.0.0.1:8080",
         "schema registry to learn unknown schema ids from (the decision API serves one); empty: a record of an "
         "unknown id waits for a restart with a newer build", &o->registry_url, 0, 0},
        {"listen-host", DS_CFG_STRING, "127.0.0.1",
         "address of the metrics endpoint (0.0.0.0 or a public address for a scraper on another machine)",
         &o->listen_host, 0, 0},
        {"metrics-port", DS_CFG_INT, "0", "HTTP port of /metrics, /healthz, /readyz (0: none)", &o->metrics_port, 0,
         65535},
        {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &o->log_level, 0, 0},
    };
    size_t n = sizeof(table) / sizeof(table[0]);
    _Static_assert(sizeof(table) / sizeof(table[0]) == AR_NOPTIONS, "AR_NOPTIONS is the table's size");
    memcpy(rows, table, sizeof(table));
    return n;
}

arFiles arOptionsFiles(const arOptions *o, dsCodec *codec, dsLearner *learner) {
    return (arFiles){o->archive, o->max_records, o->max_bytes, o->max_age_ms, o->block_size, codec, learner};
}

arConsumerConfig arOptionsConsumer(const arOptions *o) {
    return (arConsumerConfig){&o->kafka, o->topic,
                              {o->group_id, o->instance_id, AR_PROGRAM, o->session_timeout_ms}, AR_ENV_PREFIX};
}
