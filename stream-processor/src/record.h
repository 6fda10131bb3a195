/* record.h - one row of the decisions table as the Kafka record value of
 * CONTRACT §3: byte 0x00, the 4-byte big-endian schema id, then the Avro
 * binary encoding of the decision under that schema.
 *
 * The row's canonical document (column doc) is validated again by the codec
 * on the way out: a row written by hand that breaks the schema is refused
 * here with the reason, and goes to the dead-letter topic instead.
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/attrs.h"
#include "ds/codec.h"
#include "pgoutput.h"

/* A growable byte buffer, reused from record to record. Owned by the caller;
 * spRecordBufFree() releases its memory. */
typedef struct spRecordBuf {
    uint8_t *data;
    size_t len, cap;
} spRecordBuf;

void spRecordBufFree(spRecordBuf *b);

/* Encodes a row into out (replacing its contents) under the schema version
 * of scratch: a value from dsCodecNewVersionValue() for the version the row
 * was stored with (its schema_version column), reused from row to row. The
 * document is validated against that version, schema_version is set to it,
 * and the wire header carries that version's id, whatever the codec's
 * current version: a row is published as it was written. doc_json: the doc
 * column as text; recorded_at: the recorded_at column as PostgreSQL prints
 * a timestamptz (see spPgTimestampParse). On failure returns false and
 * writes why into errbuf ("doc: missing_field customer_id: ..."); out is
 * then unspecified. */
DS_MUST_CHECK bool spRecordEncode(dsCodec *codec, avro_value_t *scratch, const char *doc_json, const char *recorded_at,
                    spRecordBuf *out, char *errbuf, size_t errlen);

/* The text of column name of a decoded row, NUL-terminated (the caller
 * frees it); NULL with why filled, naming what came instead, when the
 * column is missing, null, an unchanged TOAST value (which an insert cannot
 * carry) or sent in binary. */
char *spRowText(const spRelation *rel, const spTuple *tup, const char *name, char *why, size_t len);

/* Longest row JSON a dead-letter record carries whole, and how much of each
 * column value a longer row keeps: the record must fit in one Kafka
 * message (message.max.bytes, 1,000,000 by default) with its headers. The
 * row itself stays in PostgreSQL, found by its source_lsn. */
#define SP_DLQ_ROW_MAX (512 * 1024)
#define SP_DLQ_VALUE_CUT 1024

/* The row as the value of its dead-letter record: a JSON object of its
 * columns' text (null for NULL, "(unchanged TOAST value)", "(not valid
 * UTF-8)"). When that passes SP_DLQ_ROW_MAX bytes, each value longer than
 * SP_DLQ_VALUE_CUT is cut at a character boundary and ends "... (N bytes in
 * all)". malloc'd, the caller frees; NULL when out of memory. */
char *spRowDlqJson(const spRelation *rel, const spTuple *tup);

/* Parses a timestamptz as PostgreSQL prints it in ISO DateStyle
 * ("2026-11-24 17:05:35.655123+00", "...+05:30", also with 'T') into
 * milliseconds since the epoch (sub-millisecond digits truncated). */
bool spPgTimestampParse(const char *text, int64_t *ms, char *errbuf, size_t errlen);

#endif
