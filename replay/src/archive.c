/* archive.c - archive file naming and atomic, durable writes. */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct rpArchiveFile {
    FILE *fp;
    int lockfd; /* holds the temporary file's lock until it is renamed or removed */
    avro_file_writer_t writer;
    avro_schema_t schema; /* borrowed (see rpArchiveOpen) */
    size_t records;
    char dir[1024];
    char tmp[1200];
    char final[1200];
};

/* dir and file name parts of a path. */
static bool archiveNames(char *dir, size_t dlen, char *name, size_t nlen, const char *root, int64_t ms,
                         int32_t partition, int64_t first_offset) {
    if (ms < 0 || partition < 0 || first_offset < 0) return false;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999) return false;
    int d = snprintf(dir, dlen, "%s/decisions/dt=%04d-%02d-%02d/hour=%02d", root, tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour);
    int n = snprintf(name, nlen, "decisions+%d+%020lld.avro", partition, (long long)first_offset);
    return d > 0 && (size_t)d < dlen && n > 0 && (size_t)n < nlen;
}

bool rpArchivePath(char *out, size_t len, const char *root, int64_t decided_at_ms, int32_t partition,
                   int64_t first_offset) {
    char dir[1024], name[128];
    if (!archiveNames(dir, sizeof(dir), name, sizeof(name), root, decided_at_ms, partition, first_offset)) return false;
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n > 0 && (size_t)n < len;
}

/* One directory, RP_ARCHIVE_DIR_MODE whatever the umask if it is made
 * here; one that exists is left as it is (the operator's root). */
static bool archiveMkdir(const char *dir) {
    if (mkdir(dir, RP_ARCHIVE_DIR_MODE) != 0) return errno == EEXIST;
    return chmod(dir, RP_ARCHIVE_DIR_MODE) == 0;
}

/* mkdir -p */
static bool archiveMkdirs(const char *path, char *errbuf, size_t errlen) {
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (!archiveMkdir(buf)) goto failed;
        *p = '/';
    }
    if (archiveMkdir(buf)) return true;
failed:
    snprintf(errbuf, errlen, "cannot create directory %s: %s", buf, strerror(errno));
    return false;
}

/* Opens path with flags and takes its lock (flock LOCK_EX) without
 * waiting: the descriptor, or -1 with errno EWOULDBLOCK when a live
 * process holds the lock, ENOENT when the path no longer names the file
 * locked (its holder renamed or removed it meanwhile). Only a lock holder
 * renames or removes a temporary file, so the path stays this file's until
 * the descriptor is closed. */
static int archiveLock(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, RP_ARCHIVE_FILE_MODE);
    if (fd < 0) return -1;
    struct stat held, named;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 && lstat(path, &named) == 0) {
        if (held.st_dev == named.st_dev && held.st_ino == named.st_ino) return fd;
        errno = ENOENT;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Creates (or empties) the temporary file path, RP_ARCHIVE_FILE_MODE
 * whatever the umask, locked on *lockfd: another archiver's start-up sweep
 * leaves it alone, and a second archiver holding the partition during a
 * rebalance cannot write it at the same time (NULL, errno EWOULDBLOCK).
 * The FILE has a descriptor of its own, so the lock outlives its fclose()
 * until *lockfd is closed, after the rename. */
static FILE *archiveCreate(const char *path, int *lockfd) {
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 8; tries++)
        if ((fd = archiveLock(path, O_WRONLY | O_CREAT)) < 0 && errno != ENOENT) return NULL;
    if (fd < 0) return NULL;
    int w = -1;
    FILE *fp = NULL;
    if (ftruncate(fd, 0) == 0 && fchmod(fd, RP_ARCHIVE_FILE_MODE) == 0 && (w = dup(fd)) >= 0)
        fp = fdopen(w, "wb");
    if (fp == NULL) {
        int e = errno;
        if (w >= 0) close(w);
        unlink(path);
        close(fd);
        errno = e;
        return NULL;
    }
    *lockfd = fd;
    return fp;
}

static bool archiveFsyncPath(const char *path, int flags, char *errbuf, size_t errlen) {
    int fd = open(path, flags);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(errbuf, errlen, "fsync %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return false;
    }
    close(fd);
    return true;
}

rpArchiveFile *rpArchiveOpen(const char *root, int64_t decided_at_ms, int32_t partition, int64_t first_offset,
                             avro_schema_t schema, size_t block_size, char *errbuf, size_t errlen) {
    rpArchiveFile *f = calloc(1, sizeof(*f));
    char name[128];
    if (f == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    if (!archiveNames(f->dir, sizeof(f->dir), name, sizeof(name), root, decided_at_ms, partition, first_offset)) {
        snprintf(errbuf, errlen, "no archive path for partition %d offset %lld at %lld ms", partition,
                 (long long)first_offset, (long long)decided_at_ms);
        errno = EINVAL;
        goto failed;
    }
    snprintf(f->final, sizeof(f->final), "%s/%s", f->dir, name);
    snprintf(f->tmp, sizeof(f->tmp), "%s/.%s.tmp", f->dir, name);
    if (!archiveMkdirs(f->dir, errbuf, errlen)) goto failed;
    if ((f->fp = archiveCreate(f->tmp, &f->lockfd)) == NULL) {
        if (errno == EWOULDBLOCK)
            snprintf(errbuf, errlen, "%s is being written by another process (an archiver still holding partition %d)",
                     f->tmp, partition);
        else
            snprintf(errbuf, errlen, "cannot create %s: %s", f->tmp, strerror(errno));
        goto failed;
    }
    /* Our own FILE*, not closed by avro-c, so it can be fsynced before close. */
    if (avro_file_writer_create_with_codec_fp(f->fp, f->tmp, 0, schema, &f->writer, "deflate", block_size) != 0) {
        snprintf(errbuf, errlen, "cannot start Avro file %s: %s", f->tmp, avro_strerror());
        fclose(f->fp);
        unlink(f->tmp);
        close(f->lockfd);
        errno = EIO;
        goto failed;
    }
    f->schema = schema;
    return f;

failed:;
    int e = errno;
    free(f);
    errno = e;
    return NULL;
}

bool rpArchiveAppend(rpArchiveFile *f, avro_value_t *record, char *errbuf, size_t errlen) {
    /* avro-c writes any value's encoding under the file's header schema
     * without comparing them; a value of another version would leave a
     * file that no reader can decode. */
    avro_schema_t vs = avro_value_get_schema(record);
    if (vs != f->schema && !avro_schema_equal(vs, f->schema)) {
        snprintf(errbuf, errlen, "cannot append to %s: the record is of another schema than the file", f->tmp);
        return false;
    }
    if (avro_file_writer_append_value(f->writer, record) != 0) {
        snprintf(errbuf, errlen, "cannot append to %s: %s", f->tmp, avro_strerror());
        return false;
    }
    f->records++;
    return true;
}

size_t rpArchiveRecords(const rpArchiveFile *f) {
    return f->records;
}

bool rpArchiveCommit(rpArchiveFile *f, char *errbuf, size_t errlen) {
    return rpArchiveCommitSized(f, NULL, errbuf, errlen);
}

bool rpArchiveCommitSized(rpArchiveFile *f, uint64_t *bytes, char *errbuf, size_t errlen) {
    bool ok = true;
    struct stat st;
    /* avro_file_writer_flush() only fflush()es: the fsync is ours. */
    if (avro_file_writer_flush(f->writer) != 0 || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) {
        snprintf(errbuf, errlen, "cannot write %s: %s", f->tmp, errno ? strerror(errno) : avro_strerror());
        ok = false;
    }
    if (ok && bytes) *bytes = fstat(fileno(f->fp), &st) == 0 ? (uint64_t)st.st_size : 0;
    avro_file_writer_close(f->writer);
    if (fclose(f->fp) != 0 && ok) {
        snprintf(errbuf, errlen, "cannot close %s: %s", f->tmp, strerror(errno));
        ok = false;
    }
    if (ok && rename(f->tmp, f->final) != 0) {
        snprintf(errbuf, errlen, "cannot rename %s: %s", f->tmp, strerror(errno));
        ok = false;
    }
    /* The rename is durable only once the directory is. */
    if (ok) ok = archiveFsyncPath(f->dir, O_RDONLY | O_DIRECTORY, errbuf, errlen);
    if (!ok) unlink(f->tmp);
    close(f->lockfd);
    free(f);
    return ok;
}

void rpArchiveAbort(rpArchiveFile *f) {
    if (f == NULL) return;
    avro_file_writer_close(f->writer);
    fclose(f->fp);
    unlink(f->tmp);
    close(f->lockfd);
    free(f);
}

/* Removes a temporary file no live process holds (one a crash left). */
static bool archiveRemoveAbandoned(const char *path) {
    int fd = archiveLock(path, O_RDONLY);
    if (fd < 0) return false;
    bool removed = unlink(path) == 0;
    close(fd);
    return removed;
}

static int archiveSweepDir(const char *dir, char *errbuf, size_t errlen) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return 0;
        snprintf(errbuf, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    int removed = 0;
    struct dirent *e;
    while (removed >= 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t n = strlen(e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            int r = archiveSweepDir(path, errbuf, errlen);
            removed = r < 0 ? -1 : removed + r;
        } else if (e->d_name[0] == '.' && n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0 &&
                   archiveRemoveAbandoned(path)) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

int rpArchiveSweep(const char *root, char *errbuf, size_t errlen) {
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/decisions", root);
    int a = archiveSweepDir(dir, errbuf, errlen);
    snprintf(dir, sizeof(dir), "%s/" RP_QUARANTINE_DIR, root);
    int b = a < 0 ? -1 : archiveSweepDir(dir, errbuf, errlen);
    return b < 0 ? -1 : a + b;
}

/* Writes len bytes as dir/name, atomically and durably (as a file is
 * committed): a temporary name, fsync, rename, fsync of dir. */
static bool archiveWriteWhole(const char *dir, const char *name, const void *data, size_t len, char *errbuf,
                              size_t errlen) {
    char tmp[1200], final[1200];
    snprintf(final, sizeof(final), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    int lockfd;
    FILE *fp = archiveCreate(tmp, &lockfd);
    if (fp == NULL) return snprintf(errbuf, errlen, "cannot create %s: %s", tmp, strerror(errno)), false;
    bool ok = fwrite(data, 1, len, fp) == len && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    if (!ok) snprintf(errbuf, errlen, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(fp) != 0 && ok) ok = false, snprintf(errbuf, errlen, "cannot close %s: %s", tmp, strerror(errno));
    if (ok && rename(tmp, final) != 0) ok = false, snprintf(errbuf, errlen, "cannot rename %s: %s", tmp, strerror(errno));
    if (ok) ok = archiveFsyncPath(dir, O_RDONLY | O_DIRECTORY, errbuf, errlen);
    if (!ok) unlink(tmp);
    close(lockfd);
    return ok;
}

bool rpArchiveQuarantine(const char *root, int32_t partition, int64_t offset, const void *value, size_t len,
                         const char *reason, char *path, size_t pathlen, char *errbuf, size_t errlen) {
    char dir[1024], name[128], why[1200];
    int d = snprintf(dir, sizeof(dir), "%s/" RP_QUARANTINE_DIR, root);
    if (d <= 0 || (size_t)d >= sizeof(dir)) return snprintf(errbuf, errlen, "archive root too long"), false;
    if (!archiveMkdirs(dir, errbuf, errlen)) return false;
    /* the reason first: a value file is never there without it */
    snprintf(name, sizeof(name), "decisions+%d+%020lld.reason", partition, (long long)offset);
    int n = snprintf(why, sizeof(why), "partition %d offset %lld: %s\n", partition, (long long)offset, reason);
    if (n < 0 || (size_t)n >= sizeof(why)) n = (int)sizeof(why) - 1;
    if (!archiveWriteWhole(dir, name, why, (size_t)n, errbuf, errlen)) return false;
    snprintf(name, sizeof(name), "decisions+%d+%020lld.value", partition, (long long)offset);
    if (!archiveWriteWhole(dir, name, value, len, errbuf, errlen)) return false;
    snprintf(path, pathlen, "%s/%s", dir, name);
    return true;
}
