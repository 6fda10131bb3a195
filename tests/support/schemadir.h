/* schemadir.h - schema directories written by a test, for programs and
 * codecs loaded with --schemas-dir / dsCodecNewFromDir(): the shipped
 * schemas/decision/v1.avsc alone (what a build before version 2 embedded,
 * to play an old binary), or with the shipped v2.avsc. */
#ifndef DT_SCHEMADIR_H
#define DT_SCHEMADIR_H

#include <jansson.h>
#include <stdbool.h>

/* The shipped version 2's schema text (malloc'd, the caller frees); NULL on
 * failure (printed). Paths are relative to the repository root. */
char *dtSchemaV2Text(void);

/* Writes dir/manifest.json (subject decisions-value, versions 1..n with ids
 * 1..n, current n) and the version files, creating dir if missing; n is 1
 * or 2. false on failure (printed). */
bool dtSchemaDirWrite(const char *dir, int n);

/* Sets a field only version 2 has in doc: model {name: tag, version: "1"}. */
void dtSchemaV2Tag(json_t *doc, const char *tag);
/* That tag of a decision document; NULL if it has none (version 1, or null). */
const char *dtSchemaV2TagOf(const json_t *doc);

#endif
