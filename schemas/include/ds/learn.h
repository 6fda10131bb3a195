/* learn.h - teaches a codec a schema version it was not built with, from a
 * Confluent-compatible schema registry (the decision API serves one, see
 * CONTRACT §3), so an old binary keeps working while a newer decision API
 * writes a newer version (issue 6).
 *
 * Consumers call it rarely (once per new id or version) but from event
 * loops, and each call blocks for up to two short HTTP requests, so the
 * timeouts are a few seconds. Not thread-safe: one learner per thread, on
 * the codec's thread.
 *
 * The result is three-way, because the caller's next step differs:
 *   DS_LEARN_OK         the codec knows the version now (or knew it already);
 *   DS_LEARN_TRANSIENT  the registry could not answer now (connection
 *                       refused, timeout, 5xx, 429, an answer that is no
 *                       registry's): try again later, and do NOT skip the
 *                       record that needs the version;
 *   DS_LEARN_PERMANENT  the registry answered that it cannot help: the id or
 *                       version does not exist (404, Confluent 40401, 40402,
 *                       40403), it is not registered under the codec's
 *                       subject, or the codec refuses the schema (an unknown
 *                       rule, a version or id that clashes with a known
 *                       one). Retrying will not help until the registry
 *                       changes; this project's programs still wait (see
 *                       dsLearnWire()).
 * errbuf names which and why, with the registry URL.
 */
#ifndef DS_LEARN_H
#define DS_LEARN_H

#include <stddef.h>

#include "ds/codec.h"

typedef enum dsLearnResult {
    DS_LEARN_OK = 0,
    DS_LEARN_TRANSIENT,
    DS_LEARN_PERMANENT,
} dsLearnResult;

/* Short, since the callers run event loops: to connect, and for a request. */
#define DS_LEARN_CONNECT_TIMEOUT_MS 2000L
#define DS_LEARN_TIMEOUT_MS 4000L

typedef struct dsLearner dsLearner;

/* A learner asking the registry at registry_url (http(s)://HOST[:PORT],
 * optionally with a path prefix; copied). It keeps one HTTP connection
 * alive between calls. NULL with errbuf filled for a URL that is not a base
 * URL (what names the option in the message, e.g. "--registry-url") or
 * out of memory. Freed with dsLearnerFree(). */
dsLearner *dsLearnerNew(const char *registry_url, const char *what, char *errbuf, size_t errlen);
void dsLearnerFree(dsLearner *l);

/* Makes the codec know the schema registered under id, for a consumer that
 * meets an unknown id in the wire format: GET {url}/schemas/ids/{id} for
 * the text, GET {url}/schemas/ids/{id}/versions for the version under
 * dsCodecSubject(c), then dsCodecAddVersion(). OK at once if the codec
 * knows the id. c is borrowed and changed. */
dsLearnResult dsLearnId(dsLearner *l, dsCodec *c, int id, char *errbuf, size_t errlen);

/* Makes the codec know a version of its subject, for a producer that holds
 * data of that version (the stream processor, a row's schema_version):
 * GET {url}/subjects/{subject}/versions/{version} for the id and the text,
 * then dsCodecAddVersion(). The registry's version numbers must be the
 * manifest's, as the decision API serves them and as `decision-schemas
 * register` creates them in a fresh subject. OK at once if the codec knows
 * the version. c is borrowed and changed. */
dsLearnResult dsLearnVersion(dsLearner *l, dsCodec *c, int version, char *errbuf, size_t errlen);

/* The writer's version of a framed record (the wire format, codec.h), for a
 * consumer that decodes every record it reads: the codec's version for the
 * record's schema id, learned first with dsLearnId() if the codec does not
 * know it. PERMANENT only for a buf that is not in the wire format. An id
 * it cannot learn is TRANSIENT, whatever dsLearnId() said, and also when l
 * is NULL (no registry configured): the record's producer knew the id, so
 * a registry that does not is most likely older than that producer (an old
 * decision API still answering during a handover, or a rollback), and
 * passing the record over would lose a decision for this consumer. The
 * caller waits and asks again; errbuf says why, for the log. *version is
 * set on OK only. */
dsLearnResult dsLearnWire(dsLearner *l, dsCodec *c, const void *buf, size_t len, int *version, char *errbuf,
                          size_t errlen);

#endif
