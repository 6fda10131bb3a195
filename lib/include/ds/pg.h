/* pg.h - one asynchronous PostgreSQL session on a libuv loop.
 *
 * The connection is non-blocking and always in libpq pipeline mode: the owner
 * sends statements with the PQsend* calls on dsPgConnRaw() and closes each
 * group with dsPgConnSync(); every statement between two syncs runs in one
 * implicit transaction, which is what group commit needs. Results come back
 * through callbacks, in order. When the session drops, the owner hears
 * on_down (everything in flight has an unknown outcome) and the connection
 * reconnects by itself with capped exponential backoff.
 *
 * All callbacks run on the loop thread. A callback must not free the
 * connection; dsPgConnClose() is for shutdown, outside callbacks.
 */
#ifndef DS_PG_H
#define DS_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

typedef struct dsPgConn dsPgConn;

typedef struct dsPgCallbacks {
    /* A new session is up (first connect or reconnect); prepare statements
     * here. The owner may send and sync; on_idle follows when all is done. */
    void (*on_up)(dsPgConn *c, void *arg);
    /* One result, in order, including PGRES_PIPELINE_SYNC (end of a group)
     * and PGRES_PIPELINE_ABORTED. The callee owns res and must PQclear() it. */
    void (*on_result)(dsPgConn *c, PGresult *res, void *arg);
    /* Every sync sent has been answered: the owner may send the next group. */
    void (*on_idle)(dsPgConn *c, void *arg);
    /* The session is lost: whatever was in flight may or may not have
     * committed. reason is valid during the call only. */
    void (*on_down)(dsPgConn *c, const char *reason, void *arg);
} dsPgCallbacks;

/* conninfo: a libpq connection string or URI (copied). app_name is sent as
 * application_name (copied). Nothing happens until dsPgConnStart(). Returns
 * NULL on allocation failure. */
dsPgConn *dsPgConnNew(uv_loop_t *loop, const char *conninfo, const char *app_name, const dsPgCallbacks *cb,
                      void *arg);
void dsPgConnStart(dsPgConn *c);

/* Closes the session and frees the connection once libuv has released its
 * handles. No callback runs after this call. */
void dsPgConnClose(dsPgConn *c);

/* The libpq connection, for PQsend* calls; only valid while dsPgConnIsUp(). */
PGconn *dsPgConnRaw(dsPgConn *c);
bool dsPgConnIsUp(const dsPgConn *c);
/* Up and no sync outstanding. */
bool dsPgConnIsIdle(const dsPgConn *c);

/* Ends the current group with a pipeline sync and starts sending it. Returns
 * false if the session failed: on_down has then been called and owns the
 * recovery, so a caller with nothing more to send may ignore the result. */
bool dsPgConnSync(dsPgConn *c);

/* Drops the session as failed (e.g. a PQsend* call returned 0): calls on_down
 * and schedules a reconnect. */
void dsPgConnFail(dsPgConn *c, const char *reason);

/* The libpq "options" value every session of ours connects with: the
 * conninfo's own options (else $PGOPTIONS), then "-c DateStyle=ISO -c
 * TimeZone=UTC". Timestamps are read back as text in places (pgoutput sends
 * every column as its output function prints it), and a server, database or
 * role default such as DateStyle 'SQL, DMY' must not change what they look
 * like; options sent at connection start take precedence over all of those
 * (ALTER DATABASE/ROLE ... SET included). Pass it as the "options" keyword
 * after the expanded conninfo. malloc'd, the caller frees; NULL when out of
 * memory. */
char *dsPgSessionOptions(const char *conninfo);

#endif
