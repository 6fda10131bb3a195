/* schemas_embedded.h - the schema files compiled into the binary.
 *
 * The table is generated at build time by tools/embed.sh (symbol
 * dsEmbeddedSchemas) from schemas/decision/manifest.json and every
 * schemas/decision/v*.avsc, so a program never reads schema files at run time
 * and can never run with schemas that differ from the ones it was built and
 * tested with. Only the codec (schemas/src/codec.c) reads it.
 */
#ifndef DS_SCHEMAS_EMBEDDED_H
#define DS_SCHEMAS_EMBEDDED_H

#include "ds/embedded.h"

/* Static, read-only, in the order the files were given to embed.sh;
 * "manifest.json" and the .avsc files by base name. */
extern const dsEmbeddedFile dsEmbeddedSchemas[];
extern const size_t dsEmbeddedSchemasCount;

#endif
