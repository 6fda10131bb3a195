/* harness.h - what the integration tests stand on: a real PostgreSQL cluster
 * (deploy/pg-cluster.sh in a temporary directory, a free port), the decision
 * API as a child process, HTTP through libcurl and SQL through libpq.
 * Waits are conditions polled against a deadline, never fixed sleeps.
 * Paths are relative to the repository root; $BUILD names the build tree. */
#ifndef DT_HARNESS_H
#define DT_HARNESS_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct dtPg {
    char dir[256];
    char conninfo[256];
} dtPg;

bool dtPgStart(dtPg *pg);
bool dtPgStop(dtPg *pg);
bool dtPgRestart(dtPg *pg);
void dtPgDestroy(dtPg *pg);
/* Runs sql and returns the first column of the first row as a malloc'd
 * string (caller frees), or NULL on error (printed). */
char *dtPgScalar(const dtPg *pg, const char *sql);
/* Runs sql, true if it succeeded. */
bool dtPgExec(const dtPg *pg, const char *sql);
/* An LSN as PostgreSQL prints it ("16/B374D848"); 0 for NULL or anything
 * else. */
uint64_t dtLsnParse(const char *s);
/* The LSN sql's first value holds (0 on error or NULL). */
uint64_t dtPgLsn(const dtPg *pg, const char *sql);
/* A decision committed, as a test_decoding slot reports it. */
typedef struct dtCommit {
    char id[37];  /* decision_id */
    uint64_t lsn; /* its transaction's COMMIT: the end LSN, as pgoutput's Commit says */
} dtCommit;
/* The decisions committed since the last call, consuming check_slot (a
 * test_decoding slot the test made), in the slot's order: *n of them,
 * malloc'd, the caller frees. NULL (and *n 0) on an error, printed. */
dtCommit *dtPgTakeCommits(const dtPg *pg, const char *check_slot, size_t *n);
/* Waits until replication slot is confirmed at or past the server's WAL
 * position as it is when called (everything committed before is handled
 * downstream); false after timeout_ms. */
bool dtPgWaitSlotCaughtUp(const dtPg *pg, const char *slot, int timeout_ms);
/* Sets (value non-NULL) or resets a default of the test database
 * (ALTER DATABASE ... SET name = value), as an operator might. */
bool dtPgSetDefault(const dtPg *pg, const char *name, const char *value);
/* A fingerprint of the decisions table: row count and a hash of every row. */
char *dtPgTableFingerprint(const dtPg *pg);

typedef struct dtApi {
    pid_t pid;
    int port;
    char url[64];
    char tokens_file[300];
} dtApi;

/* Test tokens, one role each (the role in the name), written hashed into
 * tokens_file by dtApiStart and by dtWriteTokens. */
#define DT_WRITER_TOKEN "test-writer-token"
#define DT_READER_TOKEN "test-reader-token"
#define DT_LOOKUP_TOKEN "test-lookup-token"
#define DT_INGEST_TOKEN "test-ingest-token"
#define DT_ADMIN_TOKEN "test-admin-token"

/* Writes the test tokens' tokens file (the decision API's and the variable
 * store's format) to path; false if it cannot. */
bool dtWriteTokens(const char *path);

/* Starts $BUILD/bin/decision-api against pg on a free port; extra_env is a
 * NULL-terminated list of "NAME=value" (may be NULL). Waits for /readyz. */
bool dtApiStart(dtApi *api, const dtPg *pg, const char *const *extra_env);
/* Starts it again after dtApiStop(), on the same port, so a client holding
 * its URL (a stream processor learning schemas from it) finds it back. */
bool dtApiRestart(dtApi *api, const dtPg *pg, const char *const *extra_env);
/* SIGTERM, then waits; returns the exit status (-1 if it had to be killed).
 * Only for a process not signalled yet: see dtApiWait. */
int dtApiStop(dtApi *api);
/* Waits for an API the test already sent SIGTERM itself (up to 20 s, then
 * SIGKILL and -1); returns the exit status like dtStop(). Never signals: a
 * daemon closes its signal handler as it finishes, and a second SIGTERM in
 * the moment before it exits (long under ASan) kills it with 143. */
int dtApiWait(dtApi *api);
/* Starts $BUILD/bin/decision-api against pg accepting on fd, a listening
 * socket the test holds as a supervisor would (systemd socket activation):
 * the child gets it as fd 3 with LISTEN_FDS=1 and LISTEN_PID set, and no
 * other descriptor of the test. extra_env as for dtApiStart; it may add
 * "DECISIONS_LISTEN_FD=3" to take the option's path instead of systemd's.
 * Several processes may share the socket, so /readyz cannot tell which one
 * answered: this waits for the child's own READY=1 on NOTIFY_SOCKET. url
 * and port are the socket's. */
bool dtApiStartOnFd(dtApi *api, const dtPg *pg, int fd, const char *const *extra_env);

typedef struct dtResponse {
    long status;
    char *body;       /* NUL-terminated, malloc'd */
    size_t len;
    json_t *json;     /* parsed body, or NULL if not JSON */
    char location[256];
    char retry_after[32];
    char content_type[128];
} dtResponse;

/* Performs one request. token and content_type may be NULL (header
 * omitted). Returns false only when no HTTP answer came. */
bool dtHttp(const dtApi *api, const char *method, const char *path, const char *token, const char *content_type,
            const char *body, size_t len, dtResponse *out);
void dtResponseFree(dtResponse *r);

/* Posts body over HTTP/2 (prior knowledge), drives the transfer until
 * until(arg) is true, then hangs up without reading the answer: a client
 * that goes away while its request is pending. HTTP/2 because h2o 2.2
 * notices a vanished HTTP/1 client only when it writes the response. */
bool dtHttp2PostAndHangUp(const dtApi *api, const char *path, const char *token, const char *body,
                          bool (*until)(void *), void *arg, int timeout_ms);

/* Polls cond every 20 ms until it is true or timeout_ms passed. */
bool dtWaitFor(bool (*cond)(void *), void *arg, int timeout_ms);

/* Loads a JSON file under tests/fixtures/ (new reference, NULL on error). */
json_t *dtFixture(const char *name);
/* Posts the decision.json fixture through api as the writer, with a fresh
 * decision_id (written into id) and customer_id customer (NULL: the
 * fixture's); true on 201. */
bool dtPostFixture(const dtApi *api, char id[37], const char *customer);
/* Starts $BUILD/bin/<program> with args (NULL-terminated, without argv[0])
 * and extra environment ("NAME=value", NULL-terminated, may be NULL).
 * Returns the pid, or -1. */
pid_t dtSpawn(const char *program, const char *const *args, const char *const *env);
/* Sends sig once and waits up to 20 s (dtWaitExit); returns the exit status,
 * 128+signal if it died of a signal, -1 if it had to be SIGKILLed. */
int dtStop(pid_t pid, int sig);
/* Waits up to timeout_ms for pid, a child, to exit, without signalling it;
 * past the deadline it is SIGKILLed, the harness says so on stderr and the
 * result is -1. Otherwise the exit status as dtStop() returns it. */
int dtWaitExit(pid_t pid, int timeout_ms);
/* Runs a shell command; returns its whole standard output (malloc'd). */
char *dtCapture(const char *cmd);
/* Runs a shell command with its stderr joined to its stdout, both into *out
 * (malloc'd, always set); returns its exit status, -1 if it did not exit. */
int dtRun(const char *cmd, char **out);

/* A dev-kafka broker on free ports: port is the bootstrap port, control the
 * fault-injection endpoint (only its url is used). */
typedef struct dtKafka {
    pid_t pid;
    int port;
    dtApi control;
} dtKafka;

/* Starts $BUILD/bin/dev-kafka and waits for its control endpoint. A group's
 * first member gets its partitions after 200 ms, not Kafka's 3 s. */
bool dtKafkaStart(dtKafka *k);
/* SIGTERM; returns the exit status like dtStop(). */
int dtKafkaStop(dtKafka *k);
/* Takes all three mock brokers "down" or brings them "up". */
bool dtKafkaBrokers(dtKafka *k, const char *state);
/* A librdkafka producer bootstrapped from k. conf: the test's own settings
 * (a delivery callback, ...), taken in every case, or NULL. NULL (printed)
 * if it cannot be made. The caller destroys it. */
rd_kafka_t *dtKafkaProducer(const dtKafka *k, rd_kafka_conf_t *conf);

/* The stream processor against pg and a dev-kafka broker, its metrics
 * endpoint on a free port (http: only the url is used). */
typedef struct dtStream {
    pid_t pid;
    dtApi http;
    char env[3][400]; /* database, brokers, metrics port: putenv keeps pointers */
} dtStream;

/* Starts $BUILD/bin/stream-processor (STREAM_LOG_LEVEL=warn unless extra_env,
 * NULL-terminated "NAME=value" or NULL, says otherwise) and waits for its
 * /readyz. */
bool dtStreamStart(dtStream *s, const dtPg *pg, const dtKafka *k, const char *const *extra_env);
/* The same against any Kafka: brokers is the bootstrap list, or NULL when
 * extra_env names it (STREAM_BROKERS, as dtBrokerClientEnv() writes it). */
bool dtStreamStartOn(dtStream *s, const dtPg *pg, const char *brokers, const char *const *extra_env);
/* SIGTERM; returns the exit status like dtStop(). */
int dtStreamStop(dtStream *s);

/* Waits until at's /readyz answers 200 (any of the daemons); false after
 * timeout_ms. */
bool dtWaitReady(const dtApi *at, int timeout_ms);

/* The value of an unlabelled metric on at's /metrics; -1 if absent. */
double dtMetric(const dtApi *at, const char *name);
/* Waits until that metric is at least min; false after timeout_ms. */
bool dtWaitMetric(const dtApi *at, const char *name, double min, int timeout_ms);

/* A TCP port free on 127.0.0.1 right now. */
int dtFreePort(void);

/* A fresh random UUID, lower case. */
void dtUuid(char out[37]);

#endif
