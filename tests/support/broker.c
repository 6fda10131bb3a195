/* broker.c - see broker.h. */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs the script with args; true if it exited 0. Its stderr is the test's. */
static bool dtBrokerRun(const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh %s >&2", args);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "broker: kafka-cluster.sh %s failed (status %d)\n", args, rc);
    return rc == 0;
}

bool dtBrokerStart(dtBroker *b, int nodes, bool sasl, bool tls, const char *const *settings) {
    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "/tmp/ds-kafka-XXXXXX");
    if (mkdtemp(b->dir) == NULL) return false;
    b->nodes = nodes;
    b->sasl = sasl;
    b->tls = tls;
    char cmd[2048];
    int n = snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh start %s --nodes %d%s%s", b->dir, nodes,
                     sasl ? " --sasl" : "", tls ? " --tls" : "");
    for (int i = 0; settings && settings[i] && n < (int)sizeof(cmd) - 64; i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --set '%s'", settings[i]);
    char *out = dtCapture(cmd);
    out[strcspn(out, "\r\n")] = '\0';
    bool ok = strncmp(out, "127.0.0.1:", 10) == 0 && strlen(out) < sizeof(b->bootstrap);
    if (ok) snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", out);
    else fprintf(stderr, "broker: kafka-cluster.sh start %s printed '%s'\n", b->dir, out);
    free(out);
    if (!ok) dtBrokerDestroy(b);
    return ok;
}

bool dtBrokerDestroy(dtBroker *b) {
    if (b->dir[0] == '\0') return true;
    char args[128];
    snprintf(args, sizeof(args), "destroy %s", b->dir);
    bool ok = dtBrokerRun(args);
    b->dir[0] = '\0';
    return ok;
}

static bool dtBrokerNodeCmd(dtBroker *b, const char *what, int node) {
    char args[160];
    if (node > 0) snprintf(args, sizeof(args), "%s %s %d", what, b->dir, node);
    else snprintf(args, sizeof(args), "%s %s", what, b->dir);
    return dtBrokerRun(args);
}

bool dtBrokerKill(dtBroker *b, int node) { return node > 0 && dtBrokerNodeCmd(b, "kill", node); }
bool dtBrokerStop(dtBroker *b, int node) { return dtBrokerNodeCmd(b, "stop", node); }
bool dtBrokerRestart(dtBroker *b, int node) { return node > 0 && dtBrokerNodeCmd(b, "restart", node); }

bool dtBrokerTopic(dtBroker *b, const char *name, int partitions, int rf) {
    char args[512];
    if (rf > 0) snprintf(args, sizeof(args), "topic %s '%s' %d %d", b->dir, name, partitions, rf);
    else snprintf(args, sizeof(args), "topic %s '%s' %d", b->dir, name, partitions);
    return dtBrokerRun(args);
}

int dtBrokerLeader(dtBroker *b, const char *topic, int partition) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash deploy/kafka-cluster.sh leader %s '%s' %d", b->dir, topic, partition);
    char *out = dtCapture(cmd);
    char *end;
    long v = strtol(out, &end, 10);
    int node = end != out && v >= 1 && v <= b->nodes ? (int)v : -1;
    if (node < 0) fprintf(stderr, "broker: no leader for %s[%d]: '%s'\n", topic, partition, out);
    free(out);
    return node;
}

const char *const *dtBrokerClientEnv(const dtBroker *b, const char *prefix, dtBrokerEnv *e) {
    int n = 0;
    snprintf(e->buf[n++], sizeof(e->buf[0]), "%sBROKERS=%s", prefix, b->bootstrap);
    if (b->sasl || b->tls) {
        const char *proto = b->sasl ? (b->tls ? "sasl_ssl" : "sasl_plaintext") : "ssl";
        snprintf(e->buf[n++], sizeof(e->buf[0]), "%sSECURITY_PROTOCOL=%s", prefix, proto);
    }
    if (b->sasl) {
        snprintf(e->buf[n++], sizeof(e->buf[0]), "%sSASL_MECHANISM=SCRAM-SHA-512", prefix);
        snprintf(e->buf[n++], sizeof(e->buf[0]), "%sSASL_USERNAME=decisions", prefix);
        snprintf(e->buf[n++], sizeof(e->buf[0]), "%sSASL_PASSWORD_FILE=%s/sasl-password", prefix, b->dir);
    }
    if (b->tls) snprintf(e->buf[n++], sizeof(e->buf[0]), "%sSSL_CA_LOCATION=%s/ca.pem", prefix, b->dir);
    for (int i = 0; i < n; i++) e->env[i] = e->buf[i];
    e->env[n] = NULL;
    return e->env;
}

const char **dtEnvJoin(const char **out, int max, const char *const *a, const char *const *b) {
    int n = 0;
    for (int i = 0; a && a[i] && n < max - 1; i++) out[n++] = a[i];
    for (int i = 0; b && b[i] && n < max - 1; i++) out[n++] = b[i];
    out[n] = NULL;
    return out;
}
