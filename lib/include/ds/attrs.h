/* attrs.h - compiler attributes shared by every module. */
#ifndef DS_ATTRS_H
#define DS_ATTRS_H

/* On a function whose failure result means data lost, sent twice or
 * confirmed too early unless the caller acts on it: with -Werror a call
 * that ignores the result does not build. gcc does not take a (void) cast
 * as acting on it: handle the result, or the function should not carry the
 * attribute. */
#define DS_MUST_CHECK __attribute__((warn_unused_result))

#endif
