/* forward.h - a TCP forwarder on libuv: every connection accepted on the
 * listening address is piped, both ways, to one of the mock brokers. Kafka
 * clients bootstrap through it and then talk to the advertised brokers
 * directly (librdkafka 2.0.2's mock cluster cannot choose its ports). */
#ifndef DK_FORWARD_H
#define DK_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct dkForward dkForward;

/* targets: "host:port,host:port,..." as rd_kafka_mock_cluster_bootstraps()
 * gives it (copied). Connections go round robin, skipping targets that
 * refuse. Returns NULL with errbuf filled on failure. */
dkForward *dkForwardStart(uv_loop_t *loop, const char *host, int port, const char *targets, char *errbuf,
                          size_t errlen);
/* Stops listening and closes every piped connection; frees itself once
 * libuv has released the handles. */
void dkForwardClose(dkForward *f);

#endif
