/* archive.h - the archive layout of CONTRACT §4 and how a file gets there:
 *
 *   <root>/decisions/dt=YYYY-MM-DD/hour=HH/decisions+<partition>+<first offset, 20 digits>.avro
 *
 * dt/hour come from decided_at in UTC. A file is written under a hidden
 * temporary name in its final directory, then, once complete: flushed,
 * fsynced, renamed, and the directory fsynced. So a file appears under its
 * final name only when complete and durable, and since the name depends only
 * on (partition, first offset, hour), a re-run after a crash overwrites
 * rather than duplicates. Temporary files left by a crash start with '.'
 * and end in ".tmp"; readers skip them and rpArchiveSweep() removes them.
 *
 * Several archivers of one consumer group share the archive directory. A
 * temporary file is locked (flock) by its writer from creation until it is
 * renamed or removed, so that the start-up sweep of an archiver removes
 * only what a dead process left, never a file another one is writing; and
 * two archivers holding one partition at once (the group gave it to another
 * member while its old owner was still writing, as after a stall past the
 * session timeout) never write one file together: the second waits until
 * the first has renamed or dropped it, then writes it again under the same
 * name. The lock is flock(2): local file systems, and NFS where Linux
 * emulates it with byte-range locks.
 *
 * Files are Avro Object Container Files with the deflate codec, written by
 * avro-c with an explicit block size (its 16 KiB default fails on a record
 * larger than a block).
 *
 * They hold customer data: files are created RP_ARCHIVE_FILE_MODE and the
 * directories made here RP_ARCHIVE_DIR_MODE, set explicitly (fchmod, chmod)
 * so a permissive umask cannot widen them nor a strict one narrow them.
 * A directory that already exists (the root an operator made) keeps its
 * mode.
 *
 * A record that has no place in the layout (a decided_at before 1970 or
 * past 9999, a value that does not decode) is not a storage failure and
 * must not stop the archiver: rpArchiveQuarantine() keeps its bytes under
 * <root>/quarantine/, outside the layout of CONTRACT §4 (which replay
 * scans), so the archiver can move past it without losing it.
 */
#ifndef RP_ARCHIVE_H
#define RP_ARCHIVE_H

#include "ds/attrs.h"
#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RP_ARCHIVE_FILE_MODE ((mode_t)0640)
#define RP_ARCHIVE_DIR_MODE ((mode_t)0750)
#define RP_QUARANTINE_DIR "quarantine"

/* Writes the final path of a file into out. false if it does not fit or the
 * time is out of range. */
bool rpArchivePath(char *out, size_t len, const char *root, int64_t decided_at_ms, int32_t partition,
                   int64_t first_offset);

typedef struct rpArchiveFile rpArchiveFile;

/* Starts a file (creating its directories). schema is borrowed and must
 * outlive the file. block_size: bytes per Avro block (at least the largest
 * record). NULL with errbuf filled on failure; errno is EWOULDBLOCK when
 * another live process is writing the same file (not a storage failure: try
 * again later). */
rpArchiveFile *rpArchiveOpen(const char *root, int64_t decided_at_ms, int32_t partition, int64_t first_offset,
                             avro_schema_t schema, size_t block_size, char *errbuf, size_t errlen);
/* Appends one record, a value of the file's schema; a value of another
 * schema is refused (errbuf says so) rather than written undecodably. */
DS_MUST_CHECK bool rpArchiveAppend(rpArchiveFile *f, avro_value_t *record, char *errbuf, size_t errlen);
size_t rpArchiveRecords(const rpArchiveFile *f);
/* Finishes the file: flush, fsync, rename to the final name, fsync the
 * directory. Frees f whatever the result; on failure the temporary file is
 * removed and nothing appears under the final name. */
DS_MUST_CHECK bool rpArchiveCommit(rpArchiveFile *f, char *errbuf, size_t errlen);
/* rpArchiveCommit() that also gives the file's size in *bytes (may be NULL). */
DS_MUST_CHECK bool rpArchiveCommitSized(rpArchiveFile *f, uint64_t *bytes, char *errbuf, size_t errlen);
/* Gives the file up: removes the temporary file and frees f. */
void rpArchiveAbort(rpArchiveFile *f);

/* Removes temporary files a crash left under root/decisions and
 * root/quarantine; one a live process holds (another archiver writing it)
 * stays. Returns how many were removed, -1 on error (errbuf says which
 * directory). */
int rpArchiveSweep(const char *root, char *errbuf, size_t errlen);

/* Keeps a record the layout has no place for, as
 *   <root>/quarantine/decisions+<partition>+<offset, 20 digits>.value  (the Kafka value, byte for byte)
 *   <root>/quarantine/decisions+<partition>+<offset, 20 digits>.reason (one line: why)
 * each written atomically and durably as a file is committed; the same
 * record quarantined again overwrites its files. path receives the .value
 * file's path. false (errbuf filled) only on a storage failure. */
DS_MUST_CHECK bool rpArchiveQuarantine(const char *root, int32_t partition, int64_t offset, const void *value, size_t len,
                                       const char *reason, char *path, size_t pathlen, char *errbuf, size_t errlen);

#endif
