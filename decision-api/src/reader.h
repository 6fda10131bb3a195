/* reader.h - a small pool of PostgreSQL sessions for support queries, so a
 * slow search never delays a commit. Each session runs one query at a time;
 * queries wait in a bounded FIFO. Sessions set a statement timeout.
 *
 * Ownership: apiReaderQuery() copies sql and params. done is called exactly
 * once (unless the call itself returned false) with a result the callee
 * owns and must PQclear(): the rows (PGRES_TUPLES_OK) or the statement's
 * error (PGRES_FATAL_ERROR, whose SQLSTATE tells a refused value from a
 * database in trouble); or with res == NULL and a reason when the session
 * was lost or no result came.
 */
#ifndef API_READER_H
#define API_READER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

typedef struct apiReader apiReader;
typedef void apiReadDoneFn(PGresult *res, const char *error, void *arg);

typedef struct apiReaderConfig {
    const char *conninfo;
    int connections;
    size_t max_queue;
    long statement_timeout_ms;
} apiReaderConfig;

apiReader *apiReaderNew(uv_loop_t *loop, const apiReaderConfig *cfg);
/* false when no session is up or the queue is full (answer 503). */
bool apiReaderQuery(apiReader *r, const char *sql, int nparams, const char *const *params, apiReadDoneFn *done,
                    void *arg);
bool apiReaderReady(const apiReader *r);
void apiReaderClose(apiReader *r);

#endif
