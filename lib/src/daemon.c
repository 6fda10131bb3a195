/* daemon.c - the common start of every program's main(). */
#include "ds/daemon.h"

#include <stdio.h>
#include <string.h>

#include "ds/kafka.h"
#include "ds/log.h"

int dsDaemonStart(const dsDaemonSpec *spec, int argc, char **argv, char **positional, size_t *npositional) {
    char err[1024];
    dsConfigResult cr =
        dsConfigLoad(spec->opts, spec->nopts, spec->env_prefix, argc, argv, positional, npositional, err, sizeof(err));
    if (cr == DS_CONFIG_HELP) {
        dsConfigUsage(stdout, spec->usage, spec->summary, spec->opts, spec->nopts, spec->env_prefix);
        dsConfigFree(spec->opts, spec->nopts);
        return 0;
    }
    if (cr != DS_CONFIG_OK) {
        /* some of dsConfigLoad()'s messages already point at --help */
        fprintf(stderr, "%s: %s%s\n", spec->name, err, strstr(err, "--help") ? "" : " (see --help)");
        return 2;
    }
    dsLogLevel level;
    if (!dsLogParseLevel(*spec->log_level, &level)) {
        fprintf(stderr, "%s: invalid --log-level \"%s\" (debug, info, warn or error)\n", spec->name, *spec->log_level);
        dsConfigFree(spec->opts, spec->nopts);
        return 2;
    }
    if (spec->kafka != NULL && !dsKafkaOptionsCheck(spec->kafka, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", spec->name, err);
        dsConfigFree(spec->opts, spec->nopts);
        return 2;
    }
    dsLogInit(spec->name, level);
    return -1;
}
