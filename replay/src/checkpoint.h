/* checkpoint.h - where an interrupted replay resumes.
 *
 * The checkpoint names the next record to read: a file below the archive
 * root and a record index inside it (avro-c cannot seek, so resuming reads
 * up to that index again without writing it). It is saved only after the
 * target has settled everything before that position, and atomically
 * (temporary file, fsync, rename, directory fsync), so a kill at any moment
 * leaves either the previous checkpoint or the new one. It also records the
 * selection it belongs to, so a checkpoint is never applied to another
 * replay, and the counts so far, so the final summary covers the whole run.
 * A finished replay leaves a checkpoint marked done: running it again
 * writes nothing.
 */
#ifndef RP_CHECKPOINT_H
#define RP_CHECKPOINT_H

#include "ds/attrs.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpCheckpoint {
    char selection[1024]; /* time range, filters and target, as rpReplay renders them */
    char file[1024];      /* path below the archive root; "" = before the first file */
    uint64_t record;      /* records of that file already done */
    bool done;            /* the replay finished */
    /* counts of the runs so far */
    uint64_t read, skipped, written, present, failed, bad_files;
} rpCheckpoint;

/* Loads path into *cp. *exists false (and true returned) when there is no
 * such file yet. false with errbuf filled when it cannot be read or is not
 * a checkpoint. */
DS_MUST_CHECK bool rpCheckpointLoad(const char *path, rpCheckpoint *cp, bool *exists, char *errbuf, size_t errlen);

/* Replaces path with *cp, durably. */
DS_MUST_CHECK bool rpCheckpointSave(const char *path, const rpCheckpoint *cp, char *errbuf, size_t errlen);

#endif
