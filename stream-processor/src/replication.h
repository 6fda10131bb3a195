/* replication.h - the logical replication session: slot and publication
 * checks at start, START_REPLICATION with pgoutput, then the CopyData stream
 * on the libuv loop, and standby status updates back.
 *
 * Setup (connect, slot check or creation, START_REPLICATION) is blocking and
 * happens in spReplStart(), before the session is used; streaming is
 * non-blocking. The slot is never re-created silently: if it exists but its
 * WAL was lost (wal_status "lost"), spReplStart() refuses with that reason.
 */
#ifndef SP_REPLICATION_H
#define SP_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct spRepl spRepl;

typedef struct spReplConfig {
    const char *conninfo;    /* a libpq connection string; replication=database is added */
    const char *slot;
    const char *publication;
    const char *table;       /* the decisions table as SQL names it ("decisions", "audit.decisions"): rows of
                              * no other table are taken for decisions; for CREATE PUBLICATION when missing */
} spReplConfig;

/* One CopyData payload ('w' or 'k'), valid during the call only. */
typedef void spReplDataFn(const uint8_t *buf, size_t len, void *arg);
/* The stream ended or failed; the session must be closed and started again. */
typedef void spReplDownFn(const char *reason, void *arg);

/* Connects, resolves the table (refusing one that does not exist), makes
 * sure the publication and slot exist (refusing a slot whose WAL is lost), and starts streaming from the slot's confirmed position,
 * which *start_lsn receives. NULL with errbuf filled on failure. */
spRepl *spReplStart(uv_loop_t *loop, const spReplConfig *cfg, spReplDataFn *on_data, spReplDownFn *on_down,
                    void *arg, uint64_t *start_lsn, char *errbuf, size_t errlen);

/* The same checks as spReplStart (table, publication, slot created when
 * missing) without streaming: a slot made at once keeps every decision
 * committed from then on, however long the start takes after. *slot_lsn:
 * the slot's confirmed position. Blocking. false with errbuf filled. */
bool spReplPrepare(const spReplConfig *cfg, uint64_t *slot_lsn, char *errbuf, size_t errlen);

/* The backend pid of the process streaming cfg->slot now (0: none, or no
 * such slot), asked on a connection of its own (blocking, 5 s connect
 * timeout); -1 with errbuf filled when PostgreSQL cannot say. */
int spReplSlotHolder(const spReplConfig *cfg, char *errbuf, size_t errlen);
/* The backend pid of r's walsender (0: r is NULL or not connected). */
int spReplBackendPid(const spRepl *r);

/* Sends a standby status update: everything up to flush_lsn is durable
 * downstream and may be discarded by the server. false if the session
 * failed: on_down has then run (the session is restarting), so a caller
 * may ignore the result. */
bool spReplSendStatus(spRepl *r, uint64_t write_lsn, uint64_t flush_lsn, bool reply_requested);

/* Whether nspname.relname is the configured table (resolved at start, as
 * SQL resolves the name). */
bool spReplIsTable(const spRepl *r, const char *nspname, const char *relname);

/* Back-pressure: stop and resume reading the socket. While paused the server
 * buffers (and eventually blocks); status updates can still be sent. */
void spReplPause(spRepl *r);
void spReplResume(spRepl *r);

/* Ends the session and frees it once libuv has released its handle. No
 * callback runs after this call. */
void spReplClose(spRepl *r);

#endif
