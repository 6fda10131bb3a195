/* migrate.h - versioned SQL migrations, embedded in the binary from
 * decision-api/migrations/NNN_name.sql and applied in order at start (or by
 * `decision-api migrate`). Applied versions are recorded in
 * schema_migrations; an advisory lock serializes concurrent instances.
 * This runs before the event loop starts, so it uses blocking libpq. */
#ifndef API_MIGRATE_H
#define API_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

/* Applies every migration not yet recorded. Retries the connection until
 * wait_ms has passed (PostgreSQL may still be starting). On failure writes
 * what failed (file and server message) into errbuf. *applied (may be NULL)
 * gets the number of migrations applied now. */
bool apiMigrate(const char *conninfo, long wait_ms, int *applied, char *errbuf, size_t errlen);

#endif
