/* progress.c - the progress line and the summary of decision-replay. */
#include "progress.h"

#include <jansson.h>

#include "ds/timefmt.h"

static double pgRate(uint64_t n, long long ms) {
    return ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0;
}

/* Seconds left at the byte rate so far; -1 when unknown. */
static long long pgEta(const rpReplayStats *st) {
    if (st->bytes_done == 0 || st->elapsed_ms <= 0 || st->bytes_done >= st->bytes_total) return -1;
    double left = (double)(st->bytes_total - st->bytes_done) * (double)st->elapsed_ms / (double)st->bytes_done;
    return (long long)(left / 1000.0 + 0.5);
}

static void pgLine(rpProgress *p, const rpReplayStats *st) {
    long long eta = pgEta(st);
    char etas[32] = "--:--";
    if (eta >= 0) snprintf(etas, sizeof(etas), "%lld:%02lld:%02lld", eta / 3600, eta / 60 % 60, eta % 60);
    fprintf(p->out, "\r\033[K%llu read  %llu %s  %.0f/s  %.1f/%.1f MiB  files %llu/%llu  ETA %s",
            (unsigned long long)st->read,
            (unsigned long long)(p->dry_run ? st->read - st->skipped : st->target.written + st->target.present),
            p->dry_run ? "selected" : "written", pgRate(st->read - st->read_before, st->elapsed_ms),
            (double)st->bytes_done / 1048576.0, (double)st->bytes_total / 1048576.0,
            (unsigned long long)st->files_done, (unsigned long long)st->files, etas);
    fflush(p->out);
}

static void pgJson(rpProgress *p, const rpReplayStats *st) {
    json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I}}", "progress", "read",
                          (json_int_t)st->read, "skipped", (json_int_t)st->skipped, "written",
                          (json_int_t)st->target.written, "present", (json_int_t)st->target.present, "failed",
                          (json_int_t)st->target.failed, "records_per_s", pgRate(st->read - st->read_before, st->elapsed_ms),
                          "bytes", (json_int_t)st->bytes_done, "bytes_total", (json_int_t)st->bytes_total,
                          "files_done", (json_int_t)st->files_done, "files", (json_int_t)st->files, "eta_s",
                          (json_int_t)pgEta(st));
    if (j) json_dumpf(j, p->out, JSON_COMPACT);
    fputc('\n', p->out);
    fflush(p->out);
    json_decref(j);
}

void rpProgressReport(void *opaque, const rpReplayStats *st, bool final) {
    rpProgress *p = opaque;
    if (p->tty) {
        pgLine(p, st);
        if (final) fputc('\n', p->out);
        return;
    }
    long long now = dsTimeNowMs();
    if (final || now < p->next_ms) return;
    p->next_ms = now + p->interval_ms;
    pgJson(p, st);
}

static const char *pgStatus(int result) {
    switch (result) {
    case RP_REPLAY_OK: return "ok";
    case RP_REPLAY_FAILED: return "failed";
    case RP_REPLAY_INTERRUPTED: return "interrupted";
    default: return "error";
    }
}

void rpProgressSummary(FILE *out, bool human, const rpReplayStats *st, int result, bool dry_run) {
    uint64_t selected = st->read - st->skipped;
    if (human) {
        fprintf(out,
                "%s%s in %.1f s\n  read            %llu\n  skipped         %llu (outside the range or filters)\n"
                "  %-15s %llu\n  already present %llu\n  failed          %llu\n  bad files       %llu\n"
                "  rate            %.0f records/s\n",
                dry_run ? "dry run " : "", pgStatus(result), (double)st->elapsed_ms / 1000.0,
                (unsigned long long)st->read, (unsigned long long)st->skipped, dry_run ? "would write" : "written",
                (unsigned long long)(dry_run ? selected : st->target.written),
                (unsigned long long)st->target.present, (unsigned long long)st->target.failed,
                (unsigned long long)st->bad_files, pgRate(st->read - st->read_before, st->elapsed_ms));
        return;
    }
    json_t *j = json_pack("{s:{s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}}", "summary", "status",
                          pgStatus(result), "dry_run", dry_run, "resumed", st->resumed, "read", (json_int_t)st->read,
                          "skipped", (json_int_t)st->skipped, "selected", (json_int_t)selected, "written",
                          (json_int_t)st->target.written, "present", (json_int_t)st->target.present, "failed",
                          (json_int_t)st->target.failed, "bad_files", (json_int_t)st->bad_files, "elapsed_ms",
                          (json_int_t)st->elapsed_ms, "records_per_s", pgRate(st->read - st->read_before, st->elapsed_ms));
    if (j) json_dumpf(j, out, JSON_COMPACT);
    fputc('\n', out);
    fflush(out);
    json_decref(j);
}
