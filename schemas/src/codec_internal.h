/* codec_internal.h - what the codec's files share: the compiled rule tree of
 * a schema version, the codec itself, and the error/path helpers.
 *
 * A schema version is compiled once at load into a tree of dsRule nodes that
 * mirrors the Avro schema (same record field order, same union branch order,
 * same enum symbol order), so the converters can walk a JSON document, the
 * rule tree and an avro_value_t in lock step and address Avro children by
 * index.
 */
#ifndef DS_CODEC_INTERNAL_H
#define DS_CODEC_INTERNAL_H

#include <regex.h>

#include "ds/codec.h"
#include "ds/compat.h"

typedef enum {
    DSR_NULL,
    DSR_BOOLEAN,
    DSR_INT,
    DSR_LONG,
    DSR_FLOAT,
    DSR_DOUBLE,
    DSR_STRING,
    DSR_RECORD,
    DSR_ENUM,
    DSR_ARRAY,
    DSR_MAP,
    DSR_UNION,
} dsRuleKind;

typedef enum {
    DSR_FORMAT_NONE,
    DSR_FORMAT_UUID,      /* 8-4-4-4-12 hex digits, stored lower case */
    DSR_FORMAT_PRINTABLE, /* no C0 controls, DEL or C1 controls */
} dsRuleFormat;

typedef struct dsRule dsRule;

typedef struct dsRuleField {
    char *name;      /* owned */
    dsRule *type;    /* borrowed from the rule set */
    json_t *def;     /* owned reference; NULL when the field is required */
    bool server_set; /* posted values are ignored; always takes def */
} dsRuleField;

struct dsRule {
    dsRuleKind kind;
    char *fullname; /* owned; named types (record, enum) only */

    /* string (also map keys) */
    size_t min_len, max_len; /* bytes; max_len SIZE_MAX when unbounded */
    char *pattern;           /* owned source text, NULL when none */
    regex_t re;              /* compiled pattern, valid when pattern != NULL */
    dsRuleFormat format;

    /* int, long: bounds default to the type's range */
    bool has_min, has_max;
    int64_t imin, imax;
    /* float, double */
    double dmin, dmax;
    bool timestamp_ms; /* long, logicalType timestamp-millis: RFC 3339 in JSON */
    bool decision_time; /* the top-level decided_at: bounded in time (dsCodecFromJsonPosted) */

    /* array, map */
    size_t max_items; /* SIZE_MAX when unbounded */
    dsRule *items;    /* array items, map values; borrowed */
    dsRule *keys;     /* map keys, always a string rule; borrowed */

    /* record */
    dsRuleField *fields; /* owned array */
    size_t nfields;

    /* enum */
    char **symbols; /* owned */
    size_t nsymbols;
    char *symbol_list; /* owned; "A, B, C" for messages */
    int default_symbol; /* the enum's "default" (what an unknown writer symbol resolves to); -1 when none */

    /* union: exactly "null" plus one other branch */
    dsRule *branch; /* the non-null branch; borrowed */
    int null_index, branch_index;

    dsRule *next_alloc; /* every rule of a set, for freeing */
};

/* The compiled rules of one schema version. */
typedef struct dsRuleSet {
    dsRule *root;   /* the top-level record */
    dsRule *all;    /* allocation chain */
} dsRuleSet;

/* Compiles schema JSON (as parsed by jansson) into *out, checks it against
 * the avro-c schema parsed from the same text, and validates every default.
 * On failure frees what it built and writes the reason (prefixed with
 * origin, e.g. the file name) into errbuf. */
bool dsRulesCompile(const json_t *schema, avro_schema_t avro, const char *origin, dsRuleSet *out,
                    char *errbuf, size_t errlen);
void dsRulesFree(dsRuleSet *rs);

/* One schema version as loaded from the manifest. */
typedef struct dsCodecVersion {
    int version, id;
    char *text; /* the .avsc bytes, NUL-terminated; owned copy */
    avro_schema_t schema;
    dsRuleSet rules;
    avro_value_iface_t *iface; /* generic class of schema; owned reference */
    /* Where dsCodecSetServerFields() writes; a version without both fields
     * as serverSet long/int cannot have them set (only the current version
     * must have them). */
    bool has_server_fields;
    size_t recorded_at_index, schema_version_index;
    /* dsCodecDecodeWire() decodes an older writer's record here before
     * resolving it; made on first use, so unused versions cost nothing. */
    avro_value_t scratch;
    bool has_scratch;
} dsCodecVersion;

struct dsCodec {
    char *subject;
    dsCompatMode compatibility; /* the manifest's */
    const dsEmbeddedFile *files; /* the manifest and schema files; borrowed, only while loading */
    size_t nfiles;
    dsCodecVersion *versions; /* owned, nversions entries */
    size_t nversions;
    dsCodecVersion *current; /* points into versions */
};

/* The version whose schema s is: by identity, else the first structurally
 * equal one (avro_schema_equal ignores docs, defaults and rule attributes,
 * which container-file headers lack), the current version preferred. NULL
 * when none. */
dsCodecVersion *dsCodecFindSchema(const dsCodec *c, avro_schema_t s);

/* One step of the JSON path down to the node a walk is at. */
typedef enum { DS_STEP_FIELD, DS_STEP_KEY, DS_STEP_INDEX } dsWalkStepKind;
typedef struct dsWalkStep {
    const char *s; /* the field name (NUL-terminated) or the map key; borrowed; NULL for an index */
    size_t n;      /* the key's length, or the array index */
    dsWalkStepKind kind;
} dsWalkStep;

/* The longest path, its NUL included: an error's field. */
#define DS_WALK_PATH_MAX sizeof(((dsCodecError *)0)->field)
/* Each step adds at least one byte to the path until it is full, so no
 * more steps than that can show in it. */
#define DS_WALK_STEPS DS_WALK_PATH_MAX

/* The state of a walk over a document or a value: dsCodecFromJson() and
 * the load-time check of schema defaults (JSON -> Avro), dsCodecResolve(),
 * dsCodecValidate() (a value against its rules). The path is kept as the
 * steps taken, pointing at names and keys that live as long as the walk,
 * and rendered as text only for an error: the walks push a step for every
 * node they visit, and most visits end well. Initialize with
 * dsWalkInit() (the steps need no zeroing). */
typedef struct dsWalk {
    dsCodecError *err;
    bool from_default; /* converting a schema default: timestamps are integers (Avro's encoding) */
    bool bound_future;  /* decided_at must not be after latest_ms (a posted document only) */
    int64_t latest_ms;
    size_t depth;       /* steps taken; the first DS_WALK_STEPS are kept */
    dsWalkStep steps[DS_WALK_STEPS];
} dsWalk;

static inline void dsWalkInit(dsWalk *w, dsCodecError *err) {
    w->err = err;
    w->from_default = w->bound_future = false;
    w->latest_ms = 0;
    w->depth = 0;
}

/* Bounds decided_at to now_ms + max_skew_ms (a negative skew counts as 0;
 * the sum saturates). */
static inline void dsWalkBoundFuture(dsWalk *w, int64_t now_ms, int64_t max_skew_ms) {
    if (max_skew_ms < 0) max_skew_ms = 0;
    w->bound_future = true;
    w->latest_ms = now_ms > 0 && max_skew_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + max_skew_ms;
}

/* Fills w->err (code, the current path, and "<path> <fmt...>" as the
 * message; "the document" at the top) and returns false. */
bool dsWalkFail(dsWalk *w, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Takes a step down and returns what dsWalkPopPath() restores: a record
 * field ("name", ".name" below the top), a map entry (".key": len bytes of
 * key, up to a NUL) or an array item ("[i]"). name and key must outlive
 * the step. */
static inline size_t dsWalkPushStep(dsWalk *w, const char *s, size_t n, dsWalkStepKind kind) {
    size_t saved = w->depth;
    if (saved < DS_WALK_STEPS) w->steps[saved] = (dsWalkStep){s, n, kind};
    w->depth = saved + 1;
    return saved;
}
static inline size_t dsWalkPushField(dsWalk *w, const char *name) { return dsWalkPushStep(w, name, 0, DS_STEP_FIELD); }
static inline size_t dsWalkPushKey(dsWalk *w, const char *key, size_t len) {
    return dsWalkPushStep(w, key, len, DS_STEP_KEY);
}
static inline size_t dsWalkPushIndex(dsWalk *w, size_t i) { return dsWalkPushStep(w, NULL, i, DS_STEP_INDEX); }
static inline void dsWalkPopPath(dsWalk *w, size_t saved) { w->depth = saved; }

/* The path as text ("checks[3].outcome", "" at the top). One that does not
 * fit is cut at a character boundary: it is only for error reports. */
void dsWalkPath(const dsWalk *w, char out[DS_WALK_PATH_MAX]);

/* ---- the per-rule checks (check.c) ----
 *
 * Shared by the JSON walk (from_json.c) and the value walk (validate.c):
 * each takes one node's value in C form and the rule, and on failure fills
 * w->err at w's current path and returns false, so both walks refuse the
 * same things with the same error. */

/* A string rule: UTF-8, no NUL, no control characters (format printable),
 * byte lengths, format uuid (either case; the lower-case form is written
 * into uuid), pattern. s[len] must be NUL. */
bool dsCheckString(dsWalk *w, const dsRule *r, const char *s, size_t len, char uuid[37]);
/* A key of map under map->keys' string rules; reported at the entry's
 * path ("attributes.<key>"), the message naming the map. */
bool dsCheckMapKey(dsWalk *w, const dsRule *map, const char *key, size_t len);
/* An int or long: the decided_at bounds (unless w->from_default), then the
 * rule's minimum and maximum. */
bool dsCheckInteger(dsWalk *w, const dsRule *r, int64_t n);
/* A timestamp-millis long given as a number (a value, a default): within
 * what dsTimeFormat() renders, as dsTimeParse() holds a string to. */
bool dsCheckTimestampRange(dsWalk *w, int64_t ms);
/* A float or double: not NaN, within the rule's bounds (the type's finite
 * range by default, so no infinity). */
bool dsCheckReal(dsWalk *w, const dsRule *r, double d);
/* The index of the symbol s (len bytes) of enum r; -1 if none. */
int dsRuleEnumIndex(const dsRule *r, const char *s, size_t len);
/* An enum index: one of r's symbols (-1 for none is refused). */
bool dsCheckEnum(dsWalk *w, const dsRule *r, int index);
/* The element count of an array or map rule against its maxItems. */
bool dsCheckItems(dsWalk *w, const dsRule *r, size_t n);

/* One entry of a map, for putting its keys in byte order: the codec stores
 * a map's keys sorted, so documents differing only in key order give the
 * same Avro bytes and the same canonical JSON. val is the JSON value (a map
 * read from JSON), index the Avro entry's (a map read from Avro); key is
 * borrowed from the map. */
typedef struct dsMapEntry {
    const char *key;
    size_t len;
    size_t index;
    json_t *val;
} dsMapEntry;
/* qsort() order of dsMapEntry: the keys' bytes, a prefix first. */
int dsMapEntryCompare(const void *a, const void *b);

/* Converts j under rule r into v. v may be NULL to validate only (used at
 * load for the schema's defaults). */
bool dsWalkValue(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v);

/* Truncates s (NUL-terminated) so it does not end in a partial UTF-8
 * sequence, which snprintf may leave when it cuts a string short. */
void dsUtf8TrimPartial(char *s);

#endif
