/* daemon.h - what every program's main() does first: load its option table
 * (defaults, environment, flags), answer --help, check the log level and
 * start logging. One place, so every daemon behaves the same on bad flags. */
#ifndef DS_DAEMON_H
#define DS_DAEMON_H

#include <stddef.h>

#include "ds/config.h"

typedef struct dsDaemonSpec {
    const char *name;     /* component name in logs and error messages */
    const char *usage;    /* what follows "usage: " in --help, e.g. "decision-api [migrate]" */
    const char *summary;  /* one line for --help */
    const dsConfigOption *opts;
    size_t nopts;
    const char *env_prefix;
    char *const *log_level; /* the target of the program's "log-level" option */
    const struct dsKafkaOptions *kafka; /* the program's Kafka options, checked once loaded; NULL: none */
} dsDaemonSpec;

/* Loads the options (positional arguments as dsConfigLoad() takes them; both
 * may be NULL), answers --help on stdout, checks the log level and calls
 * dsLogInit(); checks spec->kafka (dsKafkaOptionsCheck). Returns -1 when main() should go on; otherwise the exit
 * status to return at once (0 after --help, 2 after a configuration error (Kafka options included),
 * which has been printed to stderr), with the options already freed. */
int dsDaemonStart(const dsDaemonSpec *spec, int argc, char **argv, char **positional, size_t *npositional);

#endif
