/* filereader.h - reading the decisions of one archive file, resolved to the
 * codec's current schema.
 *
 * The file's framing is checked first (container.h); then each block is
 * read, decompressed and decoded here rather than by avro-c's file reader,
 * which trusts what a block says of itself: it inflates a block whatever it
 * expands to, and reads the declared number of records whether the block's
 * bytes hold more or fewer (a lowered count silently drops records). Here a
 * block is refused, naming the file and the block's byte offset, when:
 *   - it (compressed or inflated) is larger than max_block bytes;
 *   - its codec is other than "null" or "deflate" (what the archiver writes);
 *   - its bytes do not hold exactly the records it declares, no more, no fewer.
 * The writer schema must be one of the codec's versions, and each record is
 * resolved from that version to the current one with reader defaults filled
 * (dsCodecResolve). A position inside a file is a record index, reached by
 * reading.
 */
#ifndef RP_FILEREADER_H
#define RP_FILEREADER_H

#include <avro.h>
#include <stdbool.h>
#include <stdint.h>

#include "ds/codec.h"

/* What a block may hold at most unless configured (decision-replay's
 * --max-block-size); the archiver's block-size is at most this. */
#define RP_MAX_BLOCK_DEFAULT (64u << 20)

typedef struct rpFileReader rpFileReader;

/* Opens path, with a cap of RP_MAX_BLOCK_DEFAULT bytes on a block. codec is
 * borrowed and must outlive the reader. NULL with errbuf filled ("<path>:
 * ...") when the file cannot be opened, its header is damaged, its codec is
 * not supported, or its schema is none of the codec's versions. */
rpFileReader *rpFileReaderOpen(dsCodec *codec, const char *path, char *errbuf, size_t errlen);
/* Bytes a block may hold, stored or inflated, from the next block read on. */
void rpFileReaderSetMaxBlock(rpFileReader *r, size_t max_block);
void rpFileReaderClose(rpFileReader *r);

/* Reads the next record into out (a value from dsCodecNewValue()).
 * 1: a record; 0: the end of the intact records (see rpFileReaderDamage);
 * -1: a block refused (see above) or a record that does not decode or
 * resolve (errbuf names the file, the block's byte offset and the record
 * index); the reader cannot go on after -1. */
int rpFileReaderNext(rpFileReader *r, avro_value_t *out, char *errbuf, size_t errlen);

/* Records returned or skipped so far: the position a checkpoint records. */
uint64_t rpFileReaderPosition(const rpFileReader *r);
/* Byte offset of the block the last record returned came from. */
uint64_t rpFileReaderBlockOffset(const rpFileReader *r);
/* Bytes of the file read so far. */
uint64_t rpFileReaderBytes(const rpFileReader *r);
/* NULL when the file is intact; otherwise what is damaged and where,
 * without the path. Owned by the reader. */
const char *rpFileReaderDamage(const rpFileReader *r);

#endif
