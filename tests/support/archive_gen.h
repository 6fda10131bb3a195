/* archive_gen.h - a test archive written through the archiver's own file
 * module (replay/src/archive.h), from documents the test knows, so replay
 * results can be compared with what went in. */
#ifndef DT_ARCHIVE_GEN_H
#define DT_ARCHIVE_GEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_GEN_PARTITIONS 3

/* Writes n decisions into root's archive layout. Decision i: decision_id
 * dtGenId(i), customer "cust-<i%7>", merchant "m-<i%5>", outcome APPROVED,
 * REJECTED, REFERRED in turn, decided_at first_ms + i*step_ms, partition by
 * customer, one file per partition and hour. *docs (if docs is not NULL)
 * receives the documents as posted (without server fields), in order of i:
 * a new reference. */
bool dtArchiveGenerate(const char *root, int n, int64_t first_ms, int64_t step_ms, json_t **docs);

/* Avro block size of the files written (the archiver's default, 1 MiB,
 * unless a test wants several blocks per file). */
extern size_t dtGenBlockSize;

/* The decision_id of decision i (lower case UUID). */
void dtGenId(int i, char out[37]);

/* The Avro binary encoding (current shipped schema, no wire header) of
 * decision i as dtArchiveGenerate writes it, decided at decided_ms.
 * malloc'd (the caller frees), *len its size; NULL on failure (printed). */
char *dtGenRecord(int i, int64_t decided_ms, size_t *len);

/* A decision in the wire format (current shipped schema) as a producer
 * writing around the stream processor could put it on the topic: doc
 * (borrowed, a valid document), then decided_at and, when country is not
 * NULL, country overwritten on the value, past every rule a post checks (a
 * date before 2000, a country in lower case). malloc'd (the caller frees),
 * *len its size; NULL on failure (printed). */
char *dtGenWire(const json_t *doc, int64_t decided_ms, const char *country, size_t *len);

/* The records a container file holds, read with avro-c's own reader; -1
 * if it does not open. */
int dtGenCountRecords(const char *path);

/* One block of a hand-made container file: the object count it declares
 * and the serialized objects (before compression). */
typedef struct dtGenBlock {
    int64_t count;
    const void *data;
    size_t len;
} dtGenBlock;

/* Writes a container file byte by byte, for what avro-c never writes (a
 * block whose count disagrees with its bytes, one that inflates to
 * gigabytes): the current shipped schema in the header, codec "null" or
 * "deflate" (blocks compressed here), then the blocks. */
bool dtGenContainer(const char *path, const char *codec, const dtGenBlock *blocks, size_t n);

#endif
