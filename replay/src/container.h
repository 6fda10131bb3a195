/* container.h - a structural check of an Avro Object Container File, and
 * the framing of its blocks, for the archive reader (filereader.h).
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

#define RP_SYNC_LEN 16

typedef struct rpContainerInfo {
    uint64_t blocks;      /* intact blocks, in file order */
    uint64_t records;     /* objects in the intact blocks */
    uint64_t file_bytes;  /* size of the file */
    uint64_t header_bytes; /* the header: where the first block starts */
    uint64_t intact_bytes; /* the header and the intact blocks: where the damage starts */
    uint64_t max_block;   /* largest intact block, bytes */
    uint64_t schema_offset, schema_len; /* where the avro.schema value is in the file */
    unsigned char sync[RP_SYNC_LEN];
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

/* One block's framing. */
typedef struct rpContainerBlock {
    uint64_t offset; /* of the block (its object count) in the file */
    uint64_t count;  /* objects the block declares */
    uint64_t data;   /* offset of its serialized objects */
    uint64_t bytes;  /* their size (compressed, with a codec) */
    uint64_t next;   /* offset just past its sync marker: the next block */
} rpContainerBlock;

/* Reads the framing of the block at offset of the file open on fp (of
 * info's check), leaving fp at the start of its data. false with errbuf
 * ("... at byte N") when it is not an intact block of at most end bytes. */
bool rpContainerBlockAt(FILE *fp, const rpContainerInfo *info, uint64_t offset, uint64_t end, rpContainerBlock *out,
                        char *errbuf, size_t errlen);

#endif
