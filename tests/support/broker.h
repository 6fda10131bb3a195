/* broker.h - the real-broker tier's Apache Kafka: a throwaway KRaft cluster
 * run by deploy/kafka-cluster.sh in a temporary directory, and the
 * environment that points a program at it with the shared Kafka options
 * (ds/kafka.h). Every call runs the script and waits for it: start and
 * restart return once a metadata request lists the nodes. */
#ifndef DT_BROKER_H
#define DT_BROKER_H

#include <stdbool.h>

typedef struct dtBroker {
    char dir[64];         /* the cluster's directory (client files in it) */
    char bootstrap[256];  /* "127.0.0.1:p1,..." */
    int nodes;
    bool sasl, tls;
} dtBroker;

/* Formats and starts a cluster of nodes (1 or 3) with the topics decisions
 * (6 partitions), decisions.dlq and decisions.checkpoints (compacted); sasl: SCRAM-SHA-512 user "decisions";
 * tls: a CA of its own (dir/ca.pem). settings: NULL-terminated broker
 * settings "key=value" (kafka-cluster.sh --set), may be NULL. On failure
 * nothing is left running and the script's output is on stderr. */
bool dtBrokerStart(dtBroker *b, int nodes, bool sasl, bool tls, const char *const *settings);
/* SIGKILLs every node and deletes the directory; true if it is gone. */
bool dtBrokerDestroy(dtBroker *b);
/* SIGKILL node (1-based), as a crash. */
bool dtBrokerKill(dtBroker *b, int node);
/* SIGTERM node (1-based; 0: every node) and waits until it has exited. */
bool dtBrokerStop(dtBroker *b, int node);
/* Starts a killed or stopped node again and waits until it serves metadata. */
bool dtBrokerRestart(dtBroker *b, int node);
/* Creates a topic (rf 0: the number of nodes) and waits for its leaders. */
bool dtBrokerTopic(dtBroker *b, const char *name, int partitions, int rf);
/* The node leading topic's partition, or -1 (printed). */
int dtBrokerLeader(dtBroker *b, const char *topic, int partition);

/* The environment for a program whose options have prefix (e.g.
 * "ARCHIVER_") to reach b: PREFIX_BROKERS, and with SASL/TLS
 * PREFIX_SECURITY_PROTOCOL, PREFIX_SASL_MECHANISM, PREFIX_SASL_USERNAME,
 * PREFIX_SASL_PASSWORD_FILE, PREFIX_SSL_CA_LOCATION. Written into e; the
 * returned NULL-terminated list points into e (valid as long as e). */
typedef struct dtBrokerEnv {
    char buf[6][320];
    const char *env[7];
} dtBrokerEnv;
const char *const *dtBrokerClientEnv(const dtBroker *b, const char *prefix, dtBrokerEnv *e);

/* Appends a's NULL-terminated list and b's (either may be NULL) into out,
 * of room max entries including the terminator; returns out. For combining
 * dtBrokerClientEnv() with a test's own settings. */
const char **dtEnvJoin(const char **out, int max, const char *const *a, const char *const *b);

#endif
