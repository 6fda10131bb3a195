/* codec.h - the decision document codec: posted JSON <-> Avro values.
 *
 * The Avro schemas in schemas/decision/ are the single source of the field
 * rules: besides the Avro types they carry rule attributes (minLength,
 * maxLength, pattern, format, minimum, maximum, maxItems, serverSet; see
 * schemas/README.md) that this codec enforces while it converts. The schema
 * files and their manifest are embedded in the binary at build time.
 * Values of one version are resolved to another by the Avro specification's
 * rules, reader defaults included (dsCodecResolve()), which avro-c 1.11 does
 * not do by itself.
 *
 * Not thread-safe: keep one dsCodec and its values to one thread (avro-c's
 * error strings and value interfaces are per thread).
 */
#ifndef DS_CODEC_H
#define DS_CODEC_H

#include <avro.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/embedded.h"

typedef struct dsCodec dsCodec;

/* What is wrong with a document, for the HTTP 400 body. */
typedef struct dsCodecError {
    char code[32];     /* "missing_field", "unknown_field", "wrong_type", "invalid_value", "too_many_items";
                        * "internal" only if avro-c fails to store a value (a server fault, not the client's) */
    char field[256];   /* JSON path of the first broken rule: "amount.currency", "checks[3].outcome"; "" for the whole document */
    char message[512]; /* one human sentence naming the field and the rule */
    /* field and message are always valid UTF-8 (cut at a character boundary if long) */
} dsCodecError;

/* Loads the embedded manifest and every schema version, compiling their
 * rules (a schema with a rule the codec cannot enforce, or a default that
 * breaks its own rules, is refused here). Returns NULL and writes the reason
 * into errbuf on failure. Freed with dsCodecFree(); values made with
 * dsCodecNewValue() hold their own references and may outlive it. */
dsCodec *dsCodecNew(char *errbuf, size_t errlen);
/* The same from another file table (tests use a fixture schema set): it must
 * hold "manifest.json" and every file the manifest names, by base name. The
 * table is borrowed for the call only; the codec keeps copies of the texts. */
dsCodec *dsCodecNewFrom(const dsEmbeddedFile *files, size_t nfiles, char *errbuf, size_t errlen);
/* The same from a schema directory on disk (a program's --schemas-dir):
 * dir/manifest.json and the files it names, each a plain file name in dir.
 * Errors name the file ("DIR/v2.avsc: No such file or directory",
 * "DIR: v2.avsc: line 3: ..."). dir is read during the call only. */
dsCodec *dsCodecNewFromDir(const char *dir, char *errbuf, size_t errlen);
/* What a program's `schemas-dir` option asks for: the embedded schemas when
 * dir is NULL or "", else dsCodecNewFromDir(dir) with its errors prefixed
 * "schemas-dir: ", so the message names the option. */
dsCodec *dsCodecNewForDirOption(const char *dir, char *errbuf, size_t errlen);
void dsCodecFree(dsCodec *c);

/* Adds a version the build does not embed, such as one a newer producer
 * writes, fetched from the registry by its id: text is its schema (.avsc)
 * JSON, compiled with the same rules as the embedded ones. The current
 * version does not change. Refuses a version or id already known, and a
 * schema the codec cannot enforce; errbuf says why. text is copied. */
bool dsCodecAddVersion(dsCodec *c, int version, int id, const char *text, size_t len, char *errbuf,
                       size_t errlen);

/* The version new documents are validated against and served as. */
int dsCodecCurrentVersion(const dsCodec *c);
/* The registry id of a version; -1 if the version is unknown. */
int dsCodecSchemaId(const dsCodec *c, int version);
/* The version registered under a registry id; -1 if the id is unknown. */
int dsCodecVersionOfId(const dsCodec *c, int id);
/* The subject under which the versions are registered ("decisions-value"). */
const char *dsCodecSubject(const dsCodec *c);
/* The compatibility mode of the subject: the manifest's "compatibility"
 * (FULL_TRANSITIVE when absent), its canonical name. */
const char *dsCodecCompatibility(const dsCodec *c);
/* The schema text of a version as shipped (the .avsc file); NULL if unknown.
 * Owned by the codec. */
const char *dsCodecSchemaText(const dsCodec *c, int version);
/* The parsed avro-c schema of a version; NULL if unknown. Borrowed: the codec
 * keeps its reference. */
avro_schema_t dsCodecSchema(const dsCodec *c, int version);

/* Initializes *out as a new generic value of the current schema. The caller
 * owns it and releases it with avro_value_decref(). Values can be reused for
 * many documents. */
bool dsCodecNewValue(dsCodec *c, avro_value_t *out);
/* The same for any known version; false if the version is unknown. */
bool dsCodecNewVersionValue(dsCodec *c, int version, avro_value_t *out);

/* Which known version the schema s is: the codec's own schema object, else
 * the first version avro_schema_equal() to it (the current one preferred),
 * so the stripped copy avro-c writes into container files (no doc, default,
 * logicalType or rules) is recognised. -1 if none. s is borrowed. */
int dsCodecVersionOfSchema(const dsCodec *c, avro_schema_t s);
/* Which known version has the same Avro Parsing Canonical Form as the
 * schema text (len bytes, need not be NUL-terminated), the current one
 * preferred. For untrusted text (a registry lookup's body, an archive
 * file's header): it is parsed by jansson only (ds/canonical.h), never by
 * avro-c, whose parser leaks on some invalid schemas. 0 when the text is a
 * valid schema of no known version, -1 when it is no valid schema; the
 * reason in errbuf for both. */
int dsCodecVersionOfSchemaText(const dsCodec *c, const char *text, size_t len, char *errbuf, size_t errlen);

/* Resolves src, a value of one version, into dst, a value of the same or
 * another version (both as dsCodecVersionOfSchema() tells), following the
 * Avro specification's schema resolution: record fields matched by name,
 * reader fields the writer lacks taking the reader's default, writer fields
 * the reader lacks dropped; enum symbols by name, an unknown one taking the
 * reader enum's default; union branches by type (and name); the promotions
 * int -> long/float/double, long -> float/double, float -> double; arrays and
 * maps element by element. dst is reset first; the same version is a plain
 * copy. Reader rule attributes are not re-checked: the evolution rule
 * (schemas/README.md) never tightens them. On failure returns false and
 * writes into errbuf the versions, the JSON path of the field
 * ("checks[3].outcome") and the rule that failed; dst is then in an
 * unspecified (but valid to reuse) state. Both values are borrowed. */
bool dsCodecResolve(dsCodec *c, avro_value_t *src, avro_value_t *dst, char *errbuf, size_t errlen);

/* Validates a document against the schema version of *out and writes it
 * into *out (a value from dsCodecNewValue() for the current version, as the
 * API validates posted documents, or from dsCodecNewVersionValue() for
 * another known version, as the stream processor re-encodes a row stored
 * under an older or newer version; the version is what
 * dsCodecVersionOfSchema() tells; reset here first). Every rule of that
 * schema is checked; unknown fields are rejected at every level; optional
 * fields missing from doc take their schema default. Server-set fields
 * (recorded_at, schema_version) are ignored if posted and left at their
 * defaults. On failure returns false, fills *err with the first broken rule
 * and leaves *out in an unspecified (but valid to reuse) state. doc is
 * borrowed. */
bool dsCodecFromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsCodecError *err);

/* decided_at before this instant, 2000-01-01T00:00:00Z, is refused by every
 * path that validates (dsCodecFromJson() and dsCodecFromJsonPosted()). */
#define DS_CODEC_DECIDED_AT_MIN_MS 946684800000LL
/* How far ahead of the server's clock a posted decided_at may be by
 * default (the decision API's max-clock-skew option): 5 minutes. */
#define DS_CODEC_MAX_CLOCK_SKEW_MS (5 * 60 * 1000LL)

/* dsCodecFromJson() for a newly posted document: besides every rule,
 * decided_at must not be after now_ms + max_skew_ms (ms since the epoch; a
 * negative skew counts as 0; the sum saturates). A future decision would be
 * counted by the variable store for ever; a document validated again later
 * (a stored row, an archived record) uses dsCodecFromJson(), which has only
 * the lower bound, since what was accepted then is no longer future. */
bool dsCodecFromJsonPosted(dsCodec *c, const json_t *doc, avro_value_t *out, int64_t now_ms, int64_t max_skew_ms,
                           dsCodecError *err);

/* Whether a value already in Avro form (a record read back from the
 * archive, decoded from Kafka, resolved from another version) keeps every
 * rule of its schema version (as dsCodecVersionOfSchema() tells) that
 * dsCodecFromJson() enforces on the way in, checked on the value itself by
 * the same per-rule code: string lengths, UTF-8, NUL and control
 * characters, patterns, UUIDs, number bounds, item and entry counts, enum
 * symbols, timestamps within years 0001-9999, the decided_at lower bound
 * (no upper one: as dsCodecFromJson(), for a record accepted earlier).
 * Besides, what a document cannot carry and a value can: a NaN, an enum
 * index or union branch outside the schema, an upper-case UUID (every
 * stored one is lower case). Server-set fields are checked against their
 * types' rules too (a stored value carries them). On failure returns false
 * and fills *err with the first broken rule at the JSON path
 * dsCodecFromJson() would name for the rendered document
 * ("checks[3].outcome", "attributes.<key>"); code "internal" when val is of
 * no known version or avro-c cannot read it. val is borrowed and left
 * unchanged; nothing is kept. Far cheaper than rendering to JSON and
 * converting back. */
bool dsCodecValidate(dsCodec *c, avro_value_t *val, dsCodecError *err);
/* dsCodecValidate() with dsCodecFromJsonPosted()'s upper bound too:
 * decided_at must not be after now_ms + max_skew_ms. For a record that the
 * API must once have accepted (a replayed one): it cannot be in the future
 * now, and one that is would be counted in every window until its date. */
bool dsCodecValidateNotFuture(dsCodec *c, avro_value_t *val, int64_t now_ms, int64_t max_skew_ms, dsCodecError *err);

/* Sets the server-set fields of a decision value of any known version (as
 * dsCodecVersionOfSchema() tells). Returns false if val is of no known
 * version, its version lacks the serverSet fields recorded_at (long) and
 * schema_version (int) (only the current version must have them), or
 * recorded_at_ms cannot be rendered (outside years 0001-9999). */
bool dsCodecSetServerFields(dsCodec *c, avro_value_t *val, int64_t recorded_at_ms, int schema_version);

#define DS_CODEC_OMIT_SERVER_FIELDS 0x1

/* Renders a decision value as the JSON document of CONTRACT §1: fields in
 * schema order, optional unions unwrapped (null or the plain value),
 * timestamps as RFC 3339 UTC with milliseconds, enums as their symbol, map
 * keys sorted by bytes. val must be of one of the codec's schema versions
 * (by identity or avro_schema_equal); val is borrowed. With
 * DS_CODEC_OMIT_SERVER_FIELDS the server-set fields are left out; that form is
 * canonical (identical documents give identical bytes with JSON_COMPACT) and is
 * what idempotency compares. Returns a new reference, NULL on failure. */
json_t *dsCodecToJson(dsCodec *c, avro_value_t *val, int flags);

/* A top-level field of a decision value as text: a string field's value, an
 * enum field's symbol. NULL if there is no such field or it is of another
 * type. Borrowed from val (valid until val changes). */
const char *dsCodecFieldText(avro_value_t *val, const char *name);
/* A top-level long field (decided_at, recorded_at); false if there is none. */
bool dsCodecFieldLong(avro_value_t *val, const char *name, int64_t *out);

/* The Confluent wire format of the decision stream (CONTRACT §3): byte 0x00,
 * the 4-byte big-endian schema id, then the Avro binary encoding. */
#define DS_WIRE_HEADER_LEN 5

/* The schema id in the header of a framed record; -1 if buf is not in the
 * wire format (shorter than the header and one byte of body, a magic byte
 * other than 0x00, an id above INT32_MAX). Says nothing of the body. */
int dsCodecWireId(const void *buf, size_t len);

/* Decodes one framed record of any known writer version into *out (a value
 * from dsCodecNewValue(), or of any version from dsCodecNewVersionValue()),
 * resolving it with dsCodecResolve() when the versions differ (the writer's
 * record is decoded into a scratch value the codec keeps per version).
 * *version (may be NULL) receives the writer's version. Refuses, with the
 * reason in errbuf: a short buffer, a wrong magic byte, an unknown schema
 * id, bytes that do not decode, trailing bytes, and a record that does not
 * resolve to out's version. Never reads past len. */
bool dsCodecDecodeWire(dsCodec *c, const void *buf, size_t len, avro_value_t *out, int *version, char *errbuf,
                       size_t errlen);

/* Checks that buf holds exactly count records of schema s in Avro binary
 * encoding, each length, block count and index within the bytes: what
 * dsCodecDecodeWire() checks before it lets avro-c decode (avro-c allocates
 * a declared length before reading it). For bytes avro-c would otherwise
 * read unchecked, such as a container file's decompressed block (count is
 * the block's record count). Errors name the record and byte offset.
 * Nothing is allocated; s and buf are borrowed. */
bool dsCodecCheckBinary(avro_schema_t s, const void *buf, size_t len, int64_t count, char *errbuf, size_t errlen);

/* Encodes val (a value of one of the codec's versions) in the wire format
 * under that version's id into buf. Like snprintf, returns the full length
 * of the record: when it is larger than cap nothing is written and the
 * caller retries with a buffer of that size. 0 (errbuf filled) when val is
 * of no known version or avro-c cannot encode it. */
size_t dsCodecEncodeWire(dsCodec *c, avro_value_t *val, void *buf, size_t cap, char *errbuf, size_t errlen);

#endif
