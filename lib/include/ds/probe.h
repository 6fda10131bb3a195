/* probe.h - the internal HTTP endpoint of a daemon whose work is not
 * HTTP (decision-archiver, stream-processor):
 * GET /metrics (Prometheus text), /healthz (200 while the process
 * answers) and /readyz (200, or 503 with the reason), on a port of its
 * own, plain HTTP, bound to --listen-host (loopback by default).
 *
 * /readyz answers {"status": <word>} with 200 when ready, and
 * {"status": <what>, "reason": <sentence>} with 503 when not: what the
 * program's ready callback says.
 */
#ifndef DS_PROBE_H
#define DS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "ds/metrics.h"

/* Whether the program is ready: NULL when it is, or a short word for what
 * holds it up ("kafka", "held", ...) with the sentence in why. */
typedef const char *dsProbeReadyFn(void *app, char *why, size_t len);
/* Brings metrics up to date before they are rendered (gauges, ...). */
typedef void dsProbePublishFn(void *app, dsMetrics *m);

typedef struct dsProbeConfig {
    const char *host;
    int port;
    const char *ready_status; /* the 200 answer's status word: "archiving", "streaming" */
    dsMetrics *metrics;       /* borrowed; outlives the probe */
    dsProbeReadyFn *ready;    /* NULL: always ready */
    dsProbePublishFn *publish; /* NULL: none */
    void *app;
} dsProbeConfig;

typedef struct dsProbe dsProbe;

/* Binds host:port on loop and serves. cfg is copied (its strings must
 * outlive the probe). NULL with errbuf filled on failure. */
dsProbe *dsProbeStart(uv_loop_t *loop, const dsProbeConfig *cfg, char *errbuf, size_t errlen);
/* Stops accepting and closes the connections, running loop until they
 * are closed or timeout_ms passed (a scraper's connection closed just
 * before the stop is only noticed by running the loop). NULL ignored. */
void dsProbeStop(dsProbe *p, uv_loop_t *loop, int timeout_ms);
/* Frees, after the loop has stopped. NULL ignored. */
void dsProbeFree(dsProbe *p);

#endif
