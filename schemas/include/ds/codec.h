/* codec.h - the decision document codec: posted JSON <-> Avro values.
 *
 * The Avro schemas in schemas/decision/ are the single source of the field
 * rules: besides the Avro types they carry rule attributes (minLength,
 * maxLength, pattern, format, minimum, maximum, maxItems, serverSet; see
 * schemas/README.md) that this codec enforces while it converts. The schema
 * files and their manifest are embedded in the binary at build time.
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
void dsCodecFree(dsCodec *c);

/* The version new documents are validated against and served as. */
int dsCodecCurrentVersion(const dsCodec *c);
/* The registry id of a version; -1 if the version is unknown. */
int dsCodecSchemaId(const dsCodec *c, int version);
/* The subject under which the versions are registered ("decisions-value"). */
const char *dsCodecSubject(const dsCodec *c);
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

/* Validates a posted document against the current schema and writes it into
 * *out (a value from dsCodecNewValue(); reset here first). Every rule of the
 * schema is checked; unknown fields are rejected at every level; optional
 * fields missing from doc take their schema default. Server-set fields
 * (recorded_at, schema_version) are ignored if posted and left at their
 * defaults. On failure returns false, fills *err with the first broken rule
 * and leaves *out in an unspecified (but valid to reuse) state. doc is
 * borrowed. */
bool dsCodecFromJson(dsCodec *c, const json_t *doc, avro_value_t *out, dsCodecError *err);

/* Sets the server-set fields of a decision value of the current schema.
 * Returns false if val is of another schema or recorded_at_ms cannot be
 * rendered (outside years 0001-9999). */
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

/* The Confluent wire format of the decision stream (CONTRACT §3): byte 0x00,
 * the 4-byte big-endian schema id, then the Avro binary encoding. */
#define DS_WIRE_HEADER_LEN 5

/* Decodes one framed record into *out (a value from dsCodecNewValue()).
 * *version (may be NULL) receives the writer's version. Refuses, with the
 * reason in errbuf: a short buffer, a wrong magic byte, an unknown schema
 * id, a writer version other than the current one (resolution between
 * versions is not implemented yet), bytes that do not decode, and trailing
 * bytes. Never reads past len. */
bool dsCodecDecodeWire(dsCodec *c, const void *buf, size_t len, avro_value_t *out, int *version, char *errbuf,
                       size_t errlen);

#endif
