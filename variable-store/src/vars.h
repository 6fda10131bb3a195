/* vars.h - the variables file: which entities the store keeps, which
 * variables it computes for them, and what that means for storage.
 *
 * The file (variable-store/variables.json, README "The variables file"):
 *
 *   {"entities": [
 *     {"name": "customer", "key": "customer_id", "variables": [
 *       {"name": "approved_count_30d", "aggregation": "count",
 *        "where": {"outcome": "APPROVED"}, "window": "30d"}, ...]}]}
 *
 * Field paths ("amount.value", "attributes.channel") are checked against the
 * current decision schema when the file is loaded, so a typo is a start-up
 * error naming the variable, never a variable that silently stays zero.
 *
 * From the declarations follows the storage layout (vsEntity.fields,
 * retention_ms, the running variables). Its text (vsVars.layout) is saved
 * with the state: a changed layout means the stored state cannot answer the
 * new file and must be rebuilt; a change that keeps the layout (a new
 * window or filter over fields already stored) needs no rebuild, since
 * windows and filters are applied when a variable is read.
 */
#ifndef VS_VARS_H
#define VS_VARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/codec.h"

#define VS_MAX_FIELDS 64 /* fields one entity's variables may read */

typedef enum { VS_AGG_COUNT, VS_AGG_SUM, VS_AGG_MIN, VS_AGG_MAX, VS_AGG_LAST, VS_AGG_DISTINCT } vsAggKind;

typedef enum { VS_VAL_NULL = 0, VS_VAL_LONG = 1, VS_VAL_DOUBLE = 2, VS_VAL_STRING = 3, VS_VAL_BOOL = 4 } vsValType;

/* A scalar taken from a decision. Strings are borrowed (from the decision,
 * the stored bytes or the variables file) and not NUL-terminated. */
typedef struct vsValue {
    vsValType type;
    union {
        int64_t l;
        double d;
        bool b;
        struct {
            const char *s;
            size_t len;
        } str;
    } u;
} vsValue;

/* A path into the decision: record fields, optional (null-union) records
 * and map keys, ending at a scalar. */
typedef struct vsPath {
    char *text;   /* "amount.value" */
    char **parts; /* {"amount", "value"} */
    size_t nparts;
    vsValType type; /* the scalar type at the end (enums read as strings) */
} vsPath;

/* One "field": [values...] of a where clause: the decision matches if the
 * field equals any of the values (numbers compare by value). */
typedef struct vsCondition {
    int field; /* index into vsEntity.fields */
    vsValue *any;
    size_t nany;
} vsCondition;

typedef struct vsVariable {
    char *name;
    vsAggKind agg;
    int field; /* index into vsEntity.fields; -1 for count */
    vsCondition *where;
    size_t nwhere;
    int64_t window_ms; /* 0: all time */
    int running;       /* >= 0: an all-time min, max or last, kept as one running
                        * value (index into the entity's running state); -1: computed
                        * from the stored events when read */
} vsVariable;

typedef struct vsEntity {
    char *name; /* "customer" */
    vsPath key; /* a string field of the decision */
    vsPath *fields; /* every field a variable of this entity reads, in order of first use;
                     * each stored event carries them all */
    size_t nfields;
    vsVariable *vars;
    size_t nvars;
    size_t nrunning;
    int64_t retention_ms; /* events are kept this long (by decided_at): the longest window of
                           * the variables read from events; INT64_MAX if one of them is all
                           * time; 0 if none needs events */
} vsEntity;

typedef struct vsVars {
    vsEntity *entities;
    size_t nentities;
    char *layout; /* the storage layout as compact JSON text, saved with the state */
} vsVars;

/* Parses and checks a variables file's text against codec's current schema.
 * NULL with errbuf naming the entity, variable and rule on any error. The
 * result owns every string; free it with vsVarsFree(). codec is borrowed. */
vsVars *vsVarsParse(const char *text, size_t len, dsCodec *codec, char *errbuf, size_t errlen);
/* The same from a file; errbuf names the file. */
vsVars *vsVarsLoad(const char *path, dsCodec *codec, char *errbuf, size_t errlen);
void vsVarsFree(vsVars *v);

/* The entity of that name, or NULL. */
const vsEntity *vsVarsEntity(const vsVars *v, const char *name, size_t len);

/* Parses a window: "all", or a positive number with s, m, h or d ("30d").
 * false if malformed. */
bool vsVarsParseWindow(const char *s, int64_t *ms);

/* Whether a and b are equal as filter values: same type, or two numbers of
 * equal value. */
bool vsValueEqual(const vsValue *a, const vsValue *b);
/* Orders values: null < bool < numbers (by value) < strings (by bytes). */
int vsValueCompare(const vsValue *a, const vsValue *b);

#endif
