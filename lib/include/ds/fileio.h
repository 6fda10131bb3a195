/* fileio.h - whole small files (manifests, schemas, configuration) read
 * into memory. */
#ifndef DS_FILEIO_H
#define DS_FILEIO_H

#include <stddef.h>

/* The whole file at path, NUL-terminated (the NUL not counted in *len);
 * the caller frees it with free(). NULL with "PATH: reason" in errbuf when
 * it cannot be opened or read, or memory runs out. */
char *dsFileRead(const char *path, size_t *len, char *errbuf, size_t errlen);

#endif
