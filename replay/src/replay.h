/* replay.h - the replay itself: archive files of a time range, read in
 * order, resolved to the current schema, filtered, handed to a target,
 * with progress, rate limit and checkpoint. decision-replay's main() only
 * parses the command line and builds the target.
 */
#ifndef RP_REPLAY_H
#define RP_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "ds/codec.h"
#include "target.h"

typedef struct rpReplaySpec {
    const char *root;                 /* archive root (holds decisions/) */
    int64_t from_ms, to_ms;           /* decided_at in [from, to) */
    const char *customer_id;          /* filters; NULL = any */
    const char *merchant_id;
    const char *outcome;
    const char *target_desc;          /* names the target in the checkpoint's selection */
    double rate;                      /* decisions/s handed to the target; 0 = unlimited */
    const char *checkpoint;           /* NULL = none */
    long checkpoint_ms;               /* how often the target is flushed and the checkpoint saved */
    bool stop_on_error;               /* a bad file stops the run (else it is reported and skipped) */
    long progress_ms;                 /* how often the progress callback runs */
    size_t max_block;                 /* bytes an archive block may hold (filereader.h); 0: RP_MAX_BLOCK_DEFAULT */
    long max_clock_skew_ms;           /* a record dated later than now plus this is refused, as a post is */
} rpReplaySpec;

typedef struct rpReplayStats {
    uint64_t files, files_done, bad_files;
    uint64_t read, skipped; /* skipped: read, but outside the range or filters */
    uint64_t read_before;   /* of read: by the earlier runs a checkpoint continues */
    rpTargetCounts target;  /* written, present, failed */
    uint64_t bytes_total, bytes_done;
    int64_t started_ms, elapsed_ms; /* of this run */
    bool resumed, interrupted;
} rpReplayStats;

typedef void rpReplayProgressFn(void *opaque, const rpReplayStats *stats, bool final);

typedef enum {
    RP_REPLAY_OK = 0,          /* every selected decision written (or already present) */
    RP_REPLAY_FAILED = 1,      /* some decisions or files failed; the rest was replayed */
    RP_REPLAY_INTERRUPTED = 3, /* stopped by *stop; the checkpoint (if any) resumes it */
} rpReplayResult;

/* Every selected decision is validated with the rules a post is
 * (dsCodecFromJson on its JSON form) before it is handed to the target: one
 * that breaks a rule (an archive edited or corrupted inside a valid Avro
 * value, "SE" become "sE") would be written where the API cannot serve it.
 * It is refused, logged with its file, record index and block offset, and
 * counted as failed; the run goes on and ends RP_REPLAY_FAILED.
 *
 * Runs the replay into target (NULL: a dry run that counts only). codec and
 * target are borrowed. *stop is polled between decisions. Problems are
 * logged with the file they concern; a fatal one (archive unreadable, target
 * gone, checkpoint unusable) is returned as -1 with errbuf filled. The
 * progress callback may be NULL. */
int rpReplayRun(const rpReplaySpec *spec, dsCodec *codec, rpTarget *target, volatile sig_atomic_t *stop,
                rpReplayProgressFn *progress, void *opaque, rpReplayStats *stats, char *errbuf, size_t errlen);

#endif
