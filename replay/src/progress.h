/* progress.h - how decision-replay reports: a live line on a terminal, one
 * JSON line at an interval otherwise (for logs and schedulers), and a
 * final summary (human on a terminal, one JSON object otherwise). */
#ifndef RP_PROGRESS_H
#define RP_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "replay.h"

typedef struct rpProgress {
    FILE *out;        /* progress lines; borrowed */
    bool tty;         /* out is a terminal: redraw one line */
    long interval_ms; /* between JSON lines when not a terminal */
    long long next_ms;
    bool dry_run;
} rpProgress;

/* An rpReplayProgressFn; opaque is an rpProgress. */
void rpProgressReport(void *opaque, const rpReplayStats *st, bool final);

/* Writes the summary of a finished (or stopped) run to out. human: aligned
 * text; otherwise one JSON object on one line. result is rpReplayRun's. */
void rpProgressSummary(FILE *out, bool human, const rpReplayStats *st, int result, bool dry_run);

#endif
