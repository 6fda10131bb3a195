/* replay.c - the replay loop of replay.h: files in order, records through
 * the filters into the target, checkpoints only behind settled writes. */
#include "replay.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "ds/log.h"
#include "ds/timefmt.h"
#include "filereader.h"
#include "scan.h"

typedef struct rpRun {
    const rpReplaySpec *spec;
    dsCodec *codec;
    rpTarget *target;
    volatile sig_atomic_t *stop;
    rpReplayProgressFn *progress;
    void *opaque;
    rpReplayStats *st;
    rpCheckpoint cp;    /* the position and counts saved last (or loaded) */
    rpCheckpoint base;  /* counts of earlier runs, from the loaded checkpoint */
    uint64_t decode_failed; /* records that do not decode, or break a rule */
    avro_value_t value; /* the current record, current schema */
    int64_t next_progress, next_checkpoint;
    uint64_t bytes_before; /* bytes of the files finished in this run */
    const rpScanFile *file;
    rpFileReader *reader;
    bool fatal;
    char *errbuf;
    size_t errlen;
} rpRun;

/* Counts of this run plus those of the runs the checkpoint continues. */
static void rpUpdateStats(rpRun *r) {
    rpReplayStats *st = r->st;
    rpTargetCounts t = r->target ? r->target->settled : (rpTargetCounts){0};
    st->target.written = r->base.written + t.written;
    st->target.present = r->base.present + t.present;
    st->target.failed = r->base.failed + t.failed + r->decode_failed;
    st->bytes_done = r->bytes_before + (r->reader ? rpFileReaderBytes(r->reader) : 0);
    st->elapsed_ms = dsTimeNowMs() - st->started_ms;
}

static void rpSelection(const rpReplaySpec *s, char *out, size_t len) {
    char from[DS_TIME_BUFLEN] = "?", to[DS_TIME_BUFLEN] = "?";
    dsTimeFormat(s->from_ms, from);
    dsTimeFormat(s->to_ms, to);
    snprintf(out, len, "from=%s to=%s customer_id=%s merchant_id=%s outcome=%s target=%s", from, to,
             s->customer_id ? s->customer_id : "*", s->merchant_id ? s->merchant_id : "*",
             s->outcome ? s->outcome : "*", s->target_desc ? s->target_desc : "dry-run");
}

/* Flushes the target and, if everything handed so far was written, saves
 * the position: the next record to read. */
static bool rpCheckpointNow(rpRun *r, bool done) {
    if (r->target && !rpTargetFlush(r->target, r->errbuf, r->errlen)) return r->fatal = true, false;
    rpUpdateStats(r);
    if (r->target && r->target->settled.failed > 0) {
        snprintf(r->errbuf, r->errlen, "%llu decisions could not be written to the %s target",
                 (unsigned long long)r->target->settled.failed, r->target->ops->kind);
        return r->fatal = true, false;
    }
    if (r->spec->checkpoint == NULL) return true;
    rpCheckpoint *cp = &r->cp;
    snprintf(cp->file, sizeof(cp->file), "%s", r->file ? r->file->rel : "");
    cp->record = r->reader ? rpFileReaderPosition(r->reader) : 0;
    cp->done = done;
    cp->read = r->st->read;
    cp->skipped = r->st->skipped;
    cp->written = r->st->target.written;
    cp->present = r->st->target.present;
    cp->failed = r->st->target.failed;
    cp->bad_files = r->st->bad_files;
    if (!rpCheckpointSave(r->spec->checkpoint, cp, r->errbuf, r->errlen)) return r->fatal = true, false;
    return true;
}

static void rpTick(rpRun *r) {
    int64_t now = dsTimeNowMs();
    if (r->progress && now >= r->next_progress) {
        rpUpdateStats(r);
        r->progress(r->opaque, r->st, false);
        r->next_progress = now + r->spec->progress_ms;
    }
    if (r->spec->checkpoint && now >= r->next_checkpoint) {
        rpCheckpointNow(r, false);
        r->next_checkpoint = now + r->spec->checkpoint_ms;
    }
}

/* Sleeps until the rate allows the next decision (in slices, so a signal
 * is noticed). */
static void rpPace(rpRun *r, uint64_t handed) {
    if (r->spec->rate <= 0) return;
    int64_t due = r->st->started_ms + (int64_t)((double)handed * 1000.0 / r->spec->rate);
    for (int64_t now = dsTimeNowMs(); now < due && !*r->stop; now = dsTimeNowMs()) {
        int64_t ms = due - now < 100 ? due - now : 100;
        nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
        rpTick(r);
    }
}

static bool rpFieldIs(avro_value_t *v, const char *name, const char *want) {
    const char *text = dsCodecFieldText(v, name);
    return text != NULL && strcmp(text, want) == 0;
}

static bool rpSelected(rpRun *r, avro_value_t *v) {
    const rpReplaySpec *s = r->spec;
    int64_t decided = 0;
    if (!dsCodecFieldLong(v, "decided_at", &decided) || decided < s->from_ms || decided >= s->to_ms) return false;
    return (!s->customer_id || rpFieldIs(v, "customer_id", s->customer_id)) &&
           (!s->merchant_id || rpFieldIs(v, "merchant_id", s->merchant_id)) &&
           (!s->outcome || rpFieldIs(v, "outcome", s->outcome));
}

/* Whether v keeps the rules a posted document must (codec.h), checked on
 * the value itself: a record damaged in the archive ("SE" -> "sE") is
 * refused here rather than written into a target that cannot serve it. The
 * future included: no decision the API accepted is still in the future when
 * it is replayed, and one that is would be counted by the variable store in
 * every window until its date (which refuses it on ingest, with the whole
 * batch). */
static bool rpValid(rpRun *r, avro_value_t *v, char *why, size_t whylen) {
    dsCodecError e;
    bool ok = dsCodecValidateNotFuture(r->codec, v, dsTimeNowMs(), r->spec->max_clock_skew_ms, &e);
    if (!ok) snprintf(why, whylen, "%s", e.message);
    return ok;
}

/* A file that cannot be read to its end: reported; fatal if the spec says
 * a bad file stops the run. */
static bool rpBadFile(rpRun *r, const char *what) {
    r->st->bad_files++;
    dsLogError("%s (%s)", what, r->spec->stop_on_error ? "stopping: --on-error=stop" : "skipped: --on-error=continue");
    return !r->spec->stop_on_error;
}

/* Reads one file from record `from` on; false to stop the run. */
static bool rpFile(rpRun *r, uint64_t from) {
    char err[1536], why[600];
    int rc = 1;
    if ((r->reader = rpFileReaderOpen(r->codec, r->file->path, err, sizeof(err))) == NULL) return rpBadFile(r, err);
    if (r->spec->max_block) rpFileReaderSetMaxBlock(r->reader, r->spec->max_block);
    while (!*r->stop && !r->fatal && (rc = rpFileReaderNext(r->reader, &r->value, err, sizeof(err))) == 1) {
        if (rpFileReaderPosition(r->reader) <= from) continue; /* done by an earlier run */
        r->st->read++;
        if (!rpSelected(r, &r->value)) {
            r->st->skipped++;
        } else if (!rpValid(r, &r->value, why, sizeof(why))) {
            r->decode_failed++;
            dsLogError("%s: record %llu (block at byte %llu) refused: %s", r->file->path,
                       (unsigned long long)rpFileReaderPosition(r->reader) - 1,
                       (unsigned long long)rpFileReaderBlockOffset(r->reader), why);
        } else if (r->target && !rpTargetWrite(r->target, &r->value, r->errbuf, r->errlen)) {
            r->fatal = true;
        } else {
            rpPace(r, r->target ? r->target->handed : r->st->read - r->st->skipped);
        }
        rpTick(r);
    }
    if (*r->stop || r->fatal) return false;
    if (rc < 0) {
        r->decode_failed++;
        return rpBadFile(r, err);
    }
    const char *damage = rpFileReaderDamage(r->reader);
    if (damage) {
        snprintf(err, sizeof(err), "%s: damaged after record %llu: %s", r->file->path,
                 (unsigned long long)rpFileReaderPosition(r->reader), damage);
        return rpBadFile(r, err);
    }
    return true;
}

/* The checkpoint to resume from; false if it cannot be used. */
static bool rpResume(rpRun *r, bool *finished) {
    char selection[sizeof(r->cp.selection)];
    bool exists = false;
    rpSelection(r->spec, selection, sizeof(selection));
    if (r->spec->checkpoint && !rpCheckpointLoad(r->spec->checkpoint, &r->cp, &exists, r->errbuf, r->errlen))
        return false;
    if (exists && strcmp(r->cp.selection, selection) != 0) {
        snprintf(r->errbuf, r->errlen, "checkpoint %s belongs to another replay (%s); use another file or remove it",
                 r->spec->checkpoint, r->cp.selection);
        return false;
    }
    snprintf(r->cp.selection, sizeof(r->cp.selection), "%s", selection);
    r->base = r->cp;
    r->st->resumed = exists;
    r->st->read = r->st->read_before = r->cp.read;
    r->st->skipped = r->cp.skipped;
    r->st->bad_files = r->cp.bad_files;
    *finished = exists && r->cp.done;
    return true;
}

static bool rpScanProblem(void *opaque, const char *path, const char *why) {
    char what[2048];
    snprintf(what, sizeof(what), "%s: %s", path, why);
    return rpBadFile(opaque, what);
}

/* Index of the first file at or after the checkpoint's. */
static size_t rpFirstFile(rpRun *r, const rpScanList *l) {
    rpScanFile at;
    if (r->cp.file[0] == '\0' || !rpScanParseRel(r->cp.file, &at)) return 0;
    size_t i = 0;
    while (i < l->n && rpScanCompare(&l->files[i], &at) < 0) i++;
    if (i == l->n || rpScanCompare(&l->files[i], &at) != 0) {
        dsLogWarn("checkpoint file %s is no longer in the archive; resuming at the next one", r->cp.file);
        r->cp.record = 0;
    }
    return i;
}

static int rpLoop(rpRun *r, rpScanList *files) {
    size_t first = rpFirstFile(r, files);
    r->st->files = files->n - first;
    for (size_t i = first; i < files->n; i++) r->st->bytes_total += files->files[i].bytes;
    bool go = true;
    for (size_t i = first; go && i < files->n; i++) {
        r->file = &files->files[i];
        go = rpFile(r, i == first ? r->cp.record : 0);
        if (go) {
            r->st->files_done++;
            r->bytes_before += r->file->bytes;
            rpFileReaderClose(r->reader);
            r->reader = NULL;
        }
    }
    /* A stop leaves the position inside the current file; a target failure
     * leaves the last checkpoint, the only one behind settled writes. */
    if (go) r->file = NULL;
    bool saved = !r->fatal && rpCheckpointNow(r, go);
    rpFileReaderClose(r->reader);
    r->reader = NULL;
    if (r->fatal || !saved) return -1;
    r->st->interrupted = *r->stop != 0;
    if (*r->stop) return RP_REPLAY_INTERRUPTED;
    return r->st->bad_files || r->st->target.failed || !go ? RP_REPLAY_FAILED : RP_REPLAY_OK;
}

int rpReplayRun(const rpReplaySpec *spec, dsCodec *codec, rpTarget *target, volatile sig_atomic_t *stop,
                rpReplayProgressFn *progress, void *opaque, rpReplayStats *stats, char *errbuf, size_t errlen) {
    rpRun r = {.spec = spec, .codec = codec, .target = target, .stop = stop, .progress = progress,
               .opaque = opaque, .st = stats, .errbuf = errbuf, .errlen = errlen};
    memset(stats, 0, sizeof(*stats));
    stats->started_ms = dsTimeNowMs();
    bool finished = false;
    if (!rpResume(&r, &finished)) return -1;
    if (finished) {
        /* The outcome is the finished run's: a retry until status 0 must not
         * turn the decisions and files it failed into a success. */
        rpUpdateStats(&r);
        bool failed = stats->bad_files || stats->target.failed;
        dsLogWarn("checkpoint %s: this replay already finished%s; nothing to do", spec->checkpoint,
                  failed ? ", with failures (see its counts)" : "");
        return failed ? RP_REPLAY_FAILED : RP_REPLAY_OK;
    }
    rpScanList files;
    if (!rpScanArchive(spec->root, spec->from_ms, spec->to_ms, rpScanProblem, &r, &files, errbuf, errlen)) {
        rpScanListFree(&files);
        return -1;
    }
    if (!dsCodecNewValue(codec, &r.value)) {
        rpScanListFree(&files);
        snprintf(errbuf, errlen, "cannot make a decision value: %s", avro_strerror());
        return -1;
    }
    r.next_checkpoint = stats->started_ms + spec->checkpoint_ms;
    int rc = rpLoop(&r, &files);
    rpUpdateStats(&r);
    if (progress) progress(opaque, stats, true);
    avro_value_decref(&r.value);
    rpScanListFree(&files);
    return rc;
}
