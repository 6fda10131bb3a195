/* schemas_embedded.h - the schema files compiled into the binary.
 *
 * The table is generated at build time by schemas/embed.sh from
 * schemas/decision/manifest.json and every schemas/decision/v*.avsc, so a
 * program never reads schema files at run time and can never run with
 * schemas that differ from the ones it was built and tested with.
 */
#ifndef DS_SCHEMAS_EMBEDDED_H
#define DS_SCHEMAS_EMBEDDED_H

#include <stddef.h>

typedef struct dsEmbeddedFile {
    const char *name;          /* the file's basename: "manifest.json", "v1.avsc" */
    const unsigned char *data; /* the file's bytes followed by one NUL (not counted in len) */
    size_t len;                /* byte length of the file */
} dsEmbeddedFile;

/* Static, read-only, in the order the files were given to embed.sh. */
extern const dsEmbeddedFile dsEmbeddedSchemas[];
extern const size_t dsEmbeddedSchemasCount;

#endif
