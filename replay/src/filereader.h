/* filereader.h - reading the decisions of one archive file, resolved to the
 * codec's current schema.
 *
 * The file's framing is checked first (container.h), so avro-c never reads
 * a block that is not intact; its writer schema must be one of the codec's
 * versions, and each record is resolved from that version to the current
 * one with reader defaults filled (dsCodecResolve). avro-c cannot seek, so a
 * position inside a file is a record index, reached by reading.
 */
#ifndef RP_FILEREADER_H
#define RP_FILEREADER_H

#include <avro.h>
#include <stdbool.h>
#include <stdint.h>

#include "ds/codec.h"

typedef struct rpFileReader rpFileReader;

/* Opens path. codec is borrowed and must outlive the reader. NULL with
 * errbuf filled ("<path>: ...") when the file cannot be opened, its header
 * is damaged, or its schema is none of the codec's versions. */
rpFileReader *rpFileReaderOpen(dsCodec *codec, const char *path, char *errbuf, size_t errlen);
void rpFileReaderClose(rpFileReader *r);

/* Reads the next record into out (a value from dsCodecNewValue()).
 * 1: a record; 0: the end of the intact records (see rpFileReaderDamage);
 * -1: a record that does not decode or resolve (errbuf names the file and
 * the record index); the reader cannot go on after -1. */
int rpFileReaderNext(rpFileReader *r, avro_value_t *out, char *errbuf, size_t errlen);

/* Records returned or skipped so far: the position a checkpoint records. */
uint64_t rpFileReaderPosition(const rpFileReader *r);
/* Bytes of the file read so far (approximate: avro-c reads ahead a block). */
uint64_t rpFileReaderBytes(const rpFileReader *r);
/* NULL when the file is intact; otherwise what is damaged and where,
 * without the path. Owned by the reader. */
const char *rpFileReaderDamage(const rpFileReader *r);

#endif
