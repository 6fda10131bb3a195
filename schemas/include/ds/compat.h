/* compat.h - schema-level compatibility between decision schema versions:
 * whether data written with one schema can be read with another under the
 * Avro 1.11 specification's schema resolution, and the Confluent-style
 * compatibility modes (BACKWARD, FORWARD, FULL and their _TRANSITIVE forms)
 * over a list of versions. `decision-schemas check` is built on it.
 *
 * The check works on the schema JSON (as parsed by jansson), not on
 * avro_schema_t: avro-c 1.11 does not expose field defaults or enum
 * defaults, and both decide compatibility. The JSON must already be a valid
 * Avro schema (avro-c parses it, or the codec loads it); a malformed one
 * fails with a message rather than crashing, but is not diagnosed fully.
 *
 * The rules are the specification's, as the codec's value resolver
 * (schemas/src/resolve.c) applies them to every type the codec accepts, so
 * what passes here also resolves in the pipeline: records and enums match by unqualified name (Avro 1.10+), fixed
 * by unqualified name and size; reader fields the writer lacks need a
 * default, writer fields the reader lacks are dropped; every writer enum
 * symbol must be a reader symbol unless the reader enum has a default;
 * arrays and maps by element; a writer union needs every branch to resolve,
 * a reader union the first branch that matches a non-union writer; the
 * promotions int -> long/float/double, long -> float/double,
 * float -> double and string <-> bytes (bytes and fixed are checked for
 * completeness; the codec refuses them at load). Aliases are not honoured, because
 * the value resolver does not apply them: a rename made "compatible" by an
 * alias would pass here and fail in the pipeline.
 *
 * Messages name the JSON path of the field at fault ("amount.value",
 * "checks[].outcome"; "[]" is an array's items, "{}" a map's values, "the
 * record" the top level) and the rule that broke.
 */
#ifndef DS_COMPAT_H
#define DS_COMPAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    DS_COMPAT_BACKWARD,            /* the new version reads data of the previous one */
    DS_COMPAT_FORWARD,             /* the previous version reads data of the new one */
    DS_COMPAT_FULL,                /* both */
    DS_COMPAT_BACKWARD_TRANSITIVE, /* the new version reads data of every earlier one */
    DS_COMPAT_FORWARD_TRANSITIVE,  /* every earlier version reads data of the new one */
    DS_COMPAT_FULL_TRANSITIVE,     /* both, against every earlier version */
    DS_COMPAT_NONE,                /* nothing is checked */
} dsCompatMode;

/* Parses a mode name ("FULL_TRANSITIVE"; any case); false if unknown. */
bool dsCompatParseMode(const char *name, dsCompatMode *out);
/* The mode's canonical name ("FULL_TRANSITIVE"). */
const char *dsCompatModeName(dsCompatMode mode);

/* The mode a schema manifest (borrowed) declares in "compatibility", or
 * FULL_TRANSITIVE when it declares none: what the codec serves and the
 * schema tool checks new versions under. false when the value is not a
 * mode name. */
bool dsCompatManifestMode(const json_t *manifest, dsCompatMode *out);

/* Whether data written with writer can be read with reader (both schema
 * JSON, borrowed). On false, errbuf holds "<path>: <rule>", e.g.
 * `risk_score: field "risk_score" has no default and is missing from the
 * writer` or `amount.value: type changed from long to string` (a type
 * change is told from the writer's type to the reader's). */
bool dsCompatCheck(const json_t *reader, const json_t *writer, char *errbuf, size_t errlen);

/* One version of a subject, oldest first in the lists below. */
typedef struct dsCompatVersion {
    int version;          /* the manifest's version number, for messages */
    const json_t *schema; /* the parsed .avsc; borrowed */
} dsCompatVersion;

/* Told of every pair dsCompatCheckVersions() checks: the newer and the
 * older version's numbers, and on failure the message (NULL when ok). */
typedef void (*dsCompatPairFn)(void *ctx, int newer, int older, const char *failure);

/* Checks versions[index] against the earlier versions[0..index) under mode:
 * the previous one only, or all of them for the _TRANSITIVE modes (the
 * previous one first); BACKWARD has the new version read the old one's
 * data, FORWARD the old version read the new one's, FULL both; NONE checks
 * nothing. Every pair is checked and reported to each (may be NULL) even
 * after a failure. Returns false if any pair failed, with the first
 * failure in errbuf naming both versions, which one reads, the field and
 * the rule: "version 1 (reader) cannot read version 2 (writer):
 * amount.value: type changed from long to string". In these messages a
 * type change is told from the older version's type to the newer's. */
bool dsCompatCheckVersions(const dsCompatVersion *versions, size_t index, dsCompatMode mode, dsCompatPairFn each,
                           void *ctx, char *errbuf, size_t errlen);

#endif
