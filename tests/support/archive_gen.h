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

#endif
