/* canonical.h - Avro's Parsing Canonical Form of a schema, computed with
 * jansson alone.
 *
 * Two schemas with the same canonical form read and write the same bytes:
 * the form keeps only what matters for that (type, name as a fullname,
 * fields, symbols, items, values, size, in that order, without whitespace)
 * and drops docs, defaults, aliases, logical types and this project's rule
 * attributes. It is how untrusted schema text (the registry lookup's) is
 * compared with the known versions without handing it to avro-c, whose
 * parser leaks on some invalid input (a named type defined twice).
 *
 * The schema is checked on the way: a named type defined twice, a
 * reference to a name not yet defined, a missing or mistyped attribute, an
 * invalid name or a nesting deeper than DS_CANONICAL_MAX_DEPTH makes it
 * invalid.
 */
#ifndef DS_CANONICAL_H
#define DS_CANONICAL_H

#include <jansson.h>
#include <stddef.h>

#define DS_CANONICAL_MAX_DEPTH 64

/* The canonical form of a parsed schema (borrowed), as a malloc'd string
 * the caller frees. NULL with the reason in errbuf when the schema is not a
 * valid Avro schema (or memory ran out). */
char *dsCanonicalForm(const json_t *schema, char *errbuf, size_t errlen);

/* The same from schema text (len bytes, need not be NUL-terminated). */
char *dsCanonicalFormText(const char *text, size_t len, char *errbuf, size_t errlen);

#endif
