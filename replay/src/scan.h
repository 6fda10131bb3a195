/* scan.h - which archive files a time range needs (layout of archive.h).
 *
 * The dt=/hour= directories bound decided_at to an hour, so a range reads
 * only the hours it overlaps; records inside those files are still filtered
 * by their own decided_at. Files come out in a total order (hour, partition,
 * first offset), the order a checkpoint position refers to.
 */
#ifndef RP_SCAN_H
#define RP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpScanFile {
    char *path;       /* full path; owned by the list */
    char *rel;        /* path below the archive root ("decisions/dt=.../....avro"); points into path */
    int64_t hour;     /* hours since the epoch */
    int32_t partition;
    int64_t offset;   /* first offset, from the name */
    uint64_t bytes;   /* size when scanned */
} rpScanFile;

typedef struct rpScanList {
    rpScanFile *files; /* owned; sorted by rpScanCompare */
    size_t n, cap;
} rpScanList;

/* Called for a directory or file the scan cannot use (unreadable, or a name
 * outside the layout); path is the offending one, why a sentence. Returning
 * false stops the scan, as a NULL callback does. Temporary files of a running or crashed archiver
 * (".*.tmp") are skipped without a call. */
typedef bool rpScanProblemFn(void *opaque, const char *path, const char *why);

/* Lists the files under root for hours overlapping [from_ms, to_ms) into
 * *out (zeroed first; free with rpScanListFree even on failure). Returns
 * false when root/decisions cannot be read (errbuf says why) or the problem
 * callback stopped the scan. */
bool rpScanArchive(const char *root, int64_t from_ms, int64_t to_ms, rpScanProblemFn *problem, void *opaque,
                   rpScanList *out, char *errbuf, size_t errlen);
void rpScanListFree(rpScanList *l);

/* Order of files: hour, then partition, then first offset. */
int rpScanCompare(const rpScanFile *a, const rpScanFile *b);

/* Parses a path below the root ("decisions/dt=2026-11-24/hour=17/decisions+3+00000000000000000042.avro")
 * into hour, partition and offset. */
bool rpScanParseRel(const char *rel, rpScanFile *out);

#endif
