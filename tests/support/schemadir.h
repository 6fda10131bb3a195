/* schemadir.h - schema directories written by a test, for programs and
 * codecs loaded with --schemas-dir / dsCodecNewFromDir(): version 1 is the
 * shipped schemas/decision/v1.avsc itself, version 2 is made here from it
 * plus one optional field, so the tests do not depend on which versions
 * the repository ships. */
#ifndef DT_SCHEMADIR_H
#define DT_SCHEMADIR_H

#include <stdbool.h>

/* The field version 2 adds: "note", ["null", string of 1-64 bytes], default null. */
#define DT_V2_FIELD "note"

/* Version 2's schema text (malloc'd, the caller frees); NULL on failure
 * (printed). Paths are relative to the repository root. */
char *dtSchemaV2Text(void);

/* Writes dir/manifest.json (subject decisions-value, versions 1..n with ids
 * 1..n, current n) and the version files, creating dir if missing; n is 1
 * or 2. false on failure (printed). */
bool dtSchemaDirWrite(const char *dir, int n);

#endif
