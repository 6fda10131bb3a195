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

/* JSON -> Avro walk shared by dsCodecFromJson() and the load-time check of
 * schema defaults. path is the JSON path built while descending. */
typedef struct dsWalk {
    dsCodecError *err;
    bool from_default; /* converting a schema default: timestamps are integers (Avro's encoding) */
    bool bound_future;  /* decided_at must not be after latest_ms (a posted document only) */
    int64_t latest_ms;
    size_t plen;
    char path[sizeof(((dsCodecError *)0)->field)];
} dsWalk;

/* Appends to w->path (printf-style); returns the length to restore with
 * dsWalkPopPath(). A path that no longer fits is cut at a character
 * boundary: it is only for error reports. */
size_t dsWalkPushPath(dsWalk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dsWalkPopPath(dsWalk *w, size_t saved);

/* Converts j under rule r into v. v may be NULL to validate only (used at
 * load for the schema's defaults). */
bool dsWalkValue(dsWalk *w, const dsRule *r, const json_t *j, avro_value_t *v);

/* Truncates s (NUL-terminated) so it does not end in a partial UTF-8
 * sequence, which snprintf may leave when it cuts a string short. */
void dsUtf8TrimPartial(char *s);

#endif
