/* loop.h - the end of a daemon's libuv loop, shared by every program. */
#ifndef DS_LOOP_H
#define DS_LOOP_H

#include <stdbool.h>
#include <uv.h>

/* Closes every handle still open on loop, runs it until all close
 * callbacks (which free their owners) have run, and closes it. Call after
 * uv_run() has returned and after freeing anything that closes handles of
 * its own (an h2o context). false if libuv still reports the loop busy. */
bool dsLoopShutdown(uv_loop_t *loop);

#endif
