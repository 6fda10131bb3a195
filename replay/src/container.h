/* container.h - a structural check of an Avro Object Container File before
 * avro-c reads it.
 *
 * avro-c trusts the block sizes it reads: a corrupt size makes it allocate
 * that much, or read a block that runs past the end of the file, and it
 * cannot say where in the file the damage is. This walks the header and
 * the block framing (object count, byte size, sync marker) without
 * decompressing anything, so the reader knows beforehand how many blocks
 * and records are intact, and every error names the byte offset.
 */
#ifndef RP_CONTAINER_H
#define RP_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rpContainerInfo {
    uint64_t blocks;      /* intact blocks, in file order */
    uint64_t records;     /* objects in the intact blocks */
    uint64_t file_bytes;  /* size of the file */
    uint64_t intact_bytes; /* the header and the intact blocks: where the damage starts */
    uint64_t max_block;   /* largest intact block, bytes */
    char codec[16];       /* "null", "deflate", ... ("null" when absent) */
    bool damaged;         /* false: the whole file is intact */
    char error[256];      /* when damaged: what is wrong and at which byte offset */
} rpContainerInfo;

/* Checks the file open on fp (read from its start; the position is left
 * unspecified). Returns false only when not even the header is intact
 * (info->error says why); a file whose header is intact but whose blocks are
 * damaged or truncated returns true with info->damaged set and the intact
 * prefix counted. */
bool rpContainerCheck(FILE *fp, rpContainerInfo *info);

#endif
