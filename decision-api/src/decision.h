/* decision.h - the decision document on its way in and out of the table:
 * from a posted document to a write item, and from a stored row to the
 * document served (always in the current schema version). */
#ifndef API_DECISION_H
#define API_DECISION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"

/* Creates the server's reusable Avro values (scratch, again, older);
 * false with errbuf filled on failure. apiDecisionValuesFree() releases
 * them, also after a partial failure. */
bool apiDecisionValuesNew(apiServer *s, char *errbuf, size_t errlen);
void apiDecisionValuesFree(apiServer *s);

/* The writer's apiWriteSameFn (arg: the apiServer): whether item is the
 * decision stored under stored_version with hash stored_sha256, i.e.
 * whether an API of that version would have stored item's document with
 * that hash. Re-validates item->doc into the server's scratch value. */
bool apiDecisionSameAsStored(void *server, const apiWriteItem *item, int stored_version, const char *stored_sha256);

/* Validates a posted document (borrowed) and builds its write item, owned by
 * the caller. Returns NULL with *err filled when a rule is broken (or, with
 * code "internal", when memory ran out). */
apiWriteItem *apiDecisionPrepare(apiServer *s, const json_t *posted, dsCodecError *err);

/* The document served for a written decision: the item's canonical
 * document plus recorded_at and schema_version. New reference; NULL on
 * allocation failure. */
json_t *apiDecisionServed(apiServer *s, const apiWriteItem *item);

/* Rebuilds the served document from a stored row (doc text and recorded_at),
 * filling defaults of fields newer than the row. NULL with errbuf filled if
 * the stored document no longer validates. */
json_t *apiDecisionFromRow(apiServer *s, const char *doc_text, int64_t recorded_at_ms, char *errbuf,
                           size_t errlen);

/* Parses a request body as one JSON object, rejecting duplicate keys. NULL
 * with *err filled (code "malformed_json") on failure. */
json_t *apiDecisionParseBody(const char *body, size_t len, dsCodecError *err);

/* Checks a path UUID and writes it lower-cased into out (37 bytes). */
bool apiDecisionNormalizeId(const char *id, size_t len, char out[37]);

#endif
