/* fixture_schemas.h - the tests' schema set, for dsCodecNewFrom().
 *
 * tests/fixtures/schemas/manifest.json (current version 3, ids 1 to 3): the
 * shipped schemas/decision/v1.avsc and v2.avsc, and
 * tests/fixtures/schemas/v3.avsc (version 2 plus optional fields, one of
 * them inside the checks array), so the version matrix covers three versions
 * that resolve every way. The Makefile embeds them with tools/embed.sh and
 * links the table into every test.
 */
#ifndef DT_FIXTURE_SCHEMAS_H
#define DT_FIXTURE_SCHEMAS_H

#include "ds/embedded.h"

extern const dsEmbeddedFile dtFixtureSchemas[];
extern const size_t dtFixtureSchemasCount;

#endif
