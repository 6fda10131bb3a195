/* fileio.h - whole small files (manifests, schemas, configuration) read
 * into memory. */
#ifndef DS_FILEIO_H
#define DS_FILEIO_H

#include <stddef.h>

/* Caps for dsFileRead: a configuration file named by an option, and one
 * secret (a key or a token). */
#define DS_FILE_MAX_CONFIG (16u << 20)
#define DS_FILE_MAX_SECRET (64u << 10)

/* The whole file at path, NUL-terminated (the NUL not counted in *len);
 * the caller frees it with free(). NULL with "PATH: reason" in errbuf when
 * it cannot be opened or read (a directory among them), holds more than max
 * bytes, or memory runs out. The cap is what makes an option naming
 * /dev/zero, /dev/urandom or a huge file an error rather than a start-up
 * that reads until memory runs out; pipes (--token-file <(...)) still work. */
char *dsFileRead(const char *path, size_t max, size_t *len, char *errbuf, size_t errlen);

#endif
