/* loop.c - closing a daemon's event loop without leaking its handles. */
#include "ds/loop.h"

static void loopClose(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

bool dsLoopShutdown(uv_loop_t *loop) {
    uv_walk(loop, loopClose, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0;
}
