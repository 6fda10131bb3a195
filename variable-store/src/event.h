/* event.h - a decision as the variable store keeps it.
 *
 * For each entity of the variables file a decision becomes one event:
 *   key   [u8 id length][entity id][decided_at: 8 bytes][decision_id: 16 bytes]
 *   value the entity's fields (vsEntity.fields), each a tagged value
 * decided_at is big-endian with the sign bit flipped, so that the stored
 * keys sort by entity, then by time, then by decision: a window is one range
 * of keys, and the same decision always has the same key, which is what
 * makes counting it twice impossible (see store.h).
 *
 * A prepared decision (vsEventPrepare) is every entity's event in one byte
 * string, built where the decision was decoded (the Kafka consumer thread or
 * the HTTP thread) and applied by the store in its write transaction.
 */
#ifndef VS_EVENT_H
#define VS_EVENT_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vars.h"

#define VS_ID_MAX 255     /* longest entity id stored (the schema allows 128) */
#define VS_EVENT_SUFFIX 24 /* decided_at and decision_id after the entity prefix */
#define VS_KEY_MAX (1 + VS_ID_MAX + VS_EVENT_SUFFIX)

/* A growable byte string. Zero-initialize; the owner frees it with vsBufFree. */
typedef struct vsBuf {
    uint8_t *data;
    size_t len, cap;
} vsBuf;

bool vsBufAppend(vsBuf *b, const void *p, size_t n);
void vsBufFree(vsBuf *b);

/* One entity's event inside a prepared decision; pointers into it. */
typedef struct vsEventRef {
    bool present; /* false: the decision has no id for this entity (a null key) */
    const uint8_t *key;
    size_t keylen;
    const uint8_t *val;
    size_t vallen;
} vsEventRef;

/* Appends the prepared form of decision (a value of the codec's current
 * schema, borrowed) to out: one event per entity of v, in order. false, with
 * errbuf naming the field, if the decision cannot be stored (an entity id
 * over VS_ID_MAX bytes, a decision_id that is not a UUID); out is then
 * restored to its length on entry. */
bool vsEventPrepare(const vsVars *v, avro_value_t *decision, vsBuf *out, char *errbuf, size_t errlen);

/* Walks a prepared decision: call with *p at its start, once per entity of
 * v in order. false if the bytes are malformed. */
bool vsEventNext(const uint8_t **p, const uint8_t *end, vsEventRef *out);

/* The entity prefix of a key: [u8 length][id]. Returns its length;
 * idlen must be <= VS_ID_MAX. */
size_t vsEventPrefix(uint8_t *out, const char *id, size_t idlen);
/* decided_at (ms since the epoch) of an event key. */
int64_t vsEventKeyTime(const uint8_t *key, size_t keylen);
/* Writes the 8 key bytes of a time (for range starts). */
void vsEventTimeBytes(int64_t ms, uint8_t out[8]);

/* Decodes the nfields tagged values of an event value into out; strings
 * point into val. false if the bytes are malformed or hold another number
 * of fields. */
bool vsEventFields(const uint8_t *val, size_t vallen, vsValue *out, size_t nfields);
/* Appends one tagged value (the same encoding; running state uses it). */
bool vsEventPutValue(vsBuf *b, const vsValue *v);
/* Reads one tagged value at *p, advancing it; false if malformed. */
bool vsEventGetValue(const uint8_t **p, const uint8_t *end, vsValue *out);

#endif
