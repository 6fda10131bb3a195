/* fixture_schemas.h - the tests' schema set, for dsCodecNewFrom().
 *
 * tests/fixtures/schemas/manifest.json (current version 2, ids 1 and 2),
 * the shipped schemas/decision/v1.avsc and tests/fixtures/schemas/v2.avsc
 * (version 1 plus optional fields, so both resolve either way). The Makefile
 * embeds them with tools/embed.sh and links the table into every test, so
 * resolution between versions is tested before the shipped schemas have a
 * second version.
 */
#ifndef DT_FIXTURE_SCHEMAS_H
#define DT_FIXTURE_SCHEMAS_H

#include "ds/embedded.h"

extern const dsEmbeddedFile dtFixtureSchemas[];
extern const size_t dtFixtureSchemasCount;

#endif
