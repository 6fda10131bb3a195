/* test_handover.c - restarting the decision API without refusing a request.
 *
 * The test plays the supervisor: it owns the listening socket and hands it
 * to each decision-api process (systemd socket activation), so the socket
 * and the connections queued in it outlive any one process. A new process
 * starts on the socket, reports READY=1, then the old one gets SIGTERM and
 * drains. Under a steady load of posts, no request may fail and every
 * decision must be stored exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"

static dtPg pg;
static int lsock = -1; /* the supervisor's listening socket */
static dtApi apiA, apiB;

/* 127.0.0.1 on a free port; close-on-exec, because the harness hands it to
 * each decision-api as fd 3 and no other child should hold it. */
static int listenSocket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "listen socket: %s\n", strerror(errno));
        return -1;
    }
    return fd;
}

static int suiteSetup(void **state) {
    curl_global_init(CURL_GLOBAL_ALL); /* before any load thread: it is not thread-safe */
    if (!dtPgStart(&pg)) return -1;
    lsock = listenSocket();
    return lsock >= 0 ? 0 : -1;
}

static int suiteTeardown(void **state) {
    if (lsock >= 0) close(lsock);
    dtPgDestroy(&pg);
    curl_global_cleanup();
    return 0;
}

/* A failed test must not leave a process behind for the next one. */
static int testTeardown(void **state) {
    dtApi *apis[] = {&apiA, &apiB};
    for (int i = 0; i < 2; i++) {
        if (apis[i]->pid <= 0) continue;
        kill(apis[i]->pid, SIGCONT); /* in case it was left frozen */
        dtApiStop(apis[i]);
    }
    return 0;
}

static long storedCount(const char *where) {
    char *sql;
    if (asprintf(&sql, "SELECT count(*) FROM decisions%s", where) < 0) return -1;
    char *v = dtPgScalar(&pg, sql);
    long n = v ? atol(v) : -1;
    free(v);
    free(sql);
    return n;
}

/* How many of ids[0..n) are stored (each at most once: decision_id is the
 * primary key). */
static long storedOf(char (*ids)[37], size_t n) {
    size_t cap = 64 + n * 40;
    char *where = malloc(cap), *w = where;
    w += sprintf(w, " WHERE decision_id IN (");
    for (size_t i = 0; i < n; i++) w += sprintf(w, "%s'%s'", i ? "," : "", ids[i]);
    sprintf(w, ")");
    long stored = n ? storedCount(where) : 0;
    free(where);
    return stored;
}

enum { LOADERS = 4, LOAD_INTERVAL_MS = 10 }; /* 4 x 100/s */

/* The count of 201 answers to posts in the metrics of whichever process
 * answers (-1 if unknown). */
static long created201(const dtApi *api) {
    dtResponse r;
    long n = -1;
    static const char key[] = "http_requests_total{route=\"POST /v1/decisions\",status=\"201\"} ";
    if (dtHttp(api, "GET", "/metrics", NULL, NULL, NULL, 0, &r) && r.status == 200) {
        const char *p = strstr(r.body, key);
        if (p) n = atol(p + sizeof(key) - 1);
    }
    dtResponseFree(&r);
    return n;
}

/* Every post answered 201, every posted decision stored once, nothing else. */
static void assertLoadClean(dtLoad *load, long stored_before) {
    size_t n;
    const dtLoadPost *posts = dtLoadPosts(load, &n);
    char why[256];
    long failed = dtLoadFailed(load, why, sizeof(why));
    fprintf(stderr, "handover: %zu posts, %ld failed%s%s\n", n, failed, failed ? ", first: " : "", why);
    assert_int_equal(failed, 0);
    char *list = dtLoadIdList(posts, n), *where;
    assert_true(asprintf(&where, " WHERE decision_id IN (%s)", list) > 0);
    assert_int_equal(storedCount(where), (long)n);
    free(where);
    free(list);
    assert_int_equal(storedCount(""), stored_before + (long)n);
}

/* The rollout step: B starts on A's socket and reports ready, A gets
 * SIGTERM and drains, all under load. */
static void test_restart_under_load_refuses_nothing(void **state) {
    assert_true(dtApiStartOnFd(&apiA, &pg, lsock, NULL)); /* systemd's LISTEN_FDS */
    long before = storedCount(""); /* A has migrated the database */
    json_t *doc = dtFixture("decision.json");
    dtLoad *load = dtLoadStart(&apiA, LOADERS, LOAD_INTERVAL_MS, doc, 0);
    json_decref(doc);
    assert_non_null(load);
    bool on_a = dtLoadAdvance(load, 50);
    static const char *const viaOption[] = {"DECISIONS_LISTEN_FD=3", NULL};
    bool b_ready = on_a && dtApiStartOnFd(&apiB, &pg, lsock, viaOption);
    bool on_both = b_ready && dtLoadAdvance(load, 50);
    int a_exit = on_both ? dtApiStop(&apiA) : -2;
    bool on_b = a_exit == 0 && dtLoadAdvance(load, 50);
    dtLoadStop(load);
    assert_true(on_a);
    assert_true(b_ready);
    assert_true(on_both);
    assert_int_equal(a_exit, 0);
    assert_true(on_b);
    assertLoadClean(load, before);
    /* both processes served: B not everything, A not everything */
    size_t posted;
    dtLoadPosts(load, &posted);
    long by_b = created201(&apiB);
    fprintf(stderr, "handover: B answered %ld of %zu\n", by_b, posted);
    assert_true(by_b > 0 && by_b < (long)posted);
    dtLoadFree(load);
    assert_int_equal(dtApiStop(&apiB), 0);
}

/* ---- raw HTTP/1.1 clients: the test decides when each byte goes out ---- */

/* Connects to the shared socket: the kernel completes the handshake and
 * queues the connection whether or not a process is accepting. */
static int rawConnect(void) {
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    getsockname(lsock, (struct sockaddr *)&a, &alen);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "connect: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool rawSend(int fd, const char *text) {
    size_t len = strlen(text);
    return send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len; /* a few hundred bytes: one send */
}

/* Sends a post of a new decision (its id into id) on fd; Connection: close,
 * so the answer ends with the connection. */
static bool rawPost(int fd, char id[37]) {
    json_t *d = dtFixture("decision.json");
    dtUuid(id);
    json_object_set_new(d, "decision_id", json_string(id));
    char *body = json_dumps(d, JSON_COMPACT), *req;
    json_decref(d);
    int n = asprintf(&req,
                     "POST /v1/decisions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     DT_WRITER_TOKEN, strlen(body), body);
    free(body);
    bool ok = n > 0 && rawSend(fd, req);
    free(req);
    return ok;
}

/* Reads until the server closes (or 30 s pass); returns the status of the
 * first response, 0 if none came (the connection was cut off). */
static long rawStatus(int fd) {
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0) len += (size_t)n;
    buf[len] = '\0';
    long status = 0;
    if (sscanf(buf, "HTTP/1.1 %ld", &status) != 1) status = 0;
    return status;
}

/* Reads one whole response on a keep-alive connection (headers, then
 * Content-Length bytes of body); false if the connection ended first. */
static bool rawReadResponse(int fd) {
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0) return false;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "content-length:");
        if (end && cl && (size_t)(end + 4 - buf) + (size_t)atol(cl + 15) <= len) return true;
        if (len == sizeof(buf) - 1) return false;
    }
}

/* Connections handshaken but not yet accepted: a listening socket's
 * TCP_INFO reports its accept queue length in tcpi_unacked. */
static bool queueHolds(void *arg) {
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    return getsockopt(lsock, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && (long)ti.tcpi_unacked == *(long *)arg;
}

/* The server closed the connection (EOF or reset), without sending anything. */
static bool closedByServer(void *arg) {
    struct pollfd p = {*(int *)arg, POLLIN, 0};
    char c;
    return poll(&p, 1, 0) == 1 && recv(*(int *)arg, &c, 1, MSG_DONTWAIT) <= 0;
}

/* A connection that the one process accepting (pid; any other is frozen)
 * has accepted: pid is frozen while it queues, so that "queue empty" below
 * cannot be seen before the connection has even arrived. -1 on failure. */
static int connectAcceptedBy(pid_t pid) {
    long one = 1, none = 0;
    kill(pid, SIGSTOP);
    int fd = rawConnect();
    bool queued = fd >= 0 && dtWaitFor(queueHolds, &one, 10000);
    kill(pid, SIGCONT);
    if (queued && dtWaitFor(queueHolds, &none, 10000)) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

enum { QUEUED = 16 };

/* Connections waiting in the backlog when the old process stops accepting
 * are answered (by whichever process accepts them), never reset: A and B
 * are frozen while the connections queue up, A gets SIGTERM and resumes
 * and exits, only then does B resume. */
static void test_queued_connections_are_answered_not_reset(void **state) {
    assert_true(dtApiStartOnFd(&apiA, &pg, lsock, NULL));
    assert_true(dtApiStartOnFd(&apiB, &pg, lsock, NULL));
    long before = storedCount("");
    kill(apiB.pid, SIGSTOP);
    kill(apiA.pid, SIGSTOP);
    int fds[QUEUED];
    char ids[QUEUED][37];
    for (int i = 0; i < QUEUED; i++) {
        assert_true((fds[i] = rawConnect()) >= 0);
        assert_true(rawPost(fds[i], ids[i]));
    }
    long queued = QUEUED;
    bool all_queued = dtWaitFor(queueHolds, &queued, 10000);
    kill(apiA.pid, SIGTERM);
    kill(apiA.pid, SIGCONT);
    int a_exit = dtApiWait(&apiA);
    kill(apiB.pid, SIGCONT);
    long answered201 = 0;
    for (int i = 0; i < QUEUED; i++) {
        long status = rawStatus(fds[i]);
        if (status != 201) fprintf(stderr, "queued post %d: status %ld\n", i, status);
        answered201 += status == 201;
        close(fds[i]);
    }
    assert_true(all_queued);
    assert_int_equal(a_exit, 0);
    assert_int_equal(answered201, QUEUED);
    assert_int_equal(storedOf(ids, QUEUED), QUEUED);
    assert_int_equal(storedCount(""), before + QUEUED);
    assert_int_equal(dtApiStop(&apiB), 0);
}

typedef struct holder {
    pid_t pid;
    ino_t socket; /* lsock's inode */
} holder;

/* Whether h->pid no longer holds the shared socket as its fd 3 (where the
 * harness put it): uv_close on the listener closes it at once. */
static bool socketReleased(void *arg) {
    const holder *h = arg;
    char path[64], link[64], want[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/3", (int)h->pid);
    snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)h->socket);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) return true;
    link[n] = '\0';
    return strcmp(link, want) != 0;
}

/* The moment that matters in a handover: the old process has stopped
 * accepting but is still draining, and connections keep arriving. They
 * wait in the shared socket's backlog, and the new process answers them.
 * B is frozen while they queue so that none is accepted early; A is kept
 * draining by a connection it accepted whose request has not come yet. */
static void test_connections_queued_while_old_drains_go_to_new(void **state) {
    assert_true(dtApiStartOnFd(&apiA, &pg, lsock, NULL));
    assert_true(dtApiStartOnFd(&apiB, &pg, lsock, NULL));
    long before = storedCount("");
    kill(apiB.pid, SIGSTOP);
    int pending = connectAcceptedBy(apiA.pid);
    long queued = QUEUED;
    assert_true(pending >= 0);
    struct stat st;
    fstat(lsock, &st);
    holder a = {apiA.pid, st.st_ino};
    kill(apiA.pid, SIGTERM);
    assert_true(dtWaitFor(socketReleased, &a, 10000));
    int fds[QUEUED];
    char ids[QUEUED][37], id[37];
    for (int i = 0; i < QUEUED; i++) assert_true((fds[i] = rawConnect()) >= 0 && rawPost(fds[i], ids[i]));
    bool all_queued = dtWaitFor(queueHolds, &queued, 10000);
    bool a_alive = waitpid(apiA.pid, NULL, WNOHANG) == 0;
    kill(apiB.pid, SIGCONT);
    long answered201 = 0;
    for (int i = 0; i < QUEUED; i++) {
        answered201 += rawStatus(fds[i]) == 201;
        close(fds[i]);
    }
    bool sent = rawPost(pending, id);
    long pending_status = rawStatus(pending);
    close(pending);
    assert_true(all_queued);
    assert_true(a_alive);
    assert_int_equal(answered201, QUEUED);
    assert_int_equal(created201(&apiB), QUEUED); /* all of them by B */
    assert_true(sent);
    assert_int_equal(pending_status, 201);       /* by A, still draining */
    assert_int_equal(dtApiWait(&apiA), 0);
    assert_int_equal(storedOf(ids, QUEUED), QUEUED);
    assert_int_equal(storedCount(""), before + QUEUED + 1);
    assert_int_equal(dtApiStop(&apiB), 0);
}

/* A connection the old process accepted just before SIGTERM, whose request
 * has not arrived yet, is not an idle keep-alive connection: closing it
 * would cut off a request the client has every right to send. The drain
 * closes the idle connection (proof that it ran) and answers the other. */
static void test_connection_accepted_before_stop_is_answered(void **state) {
    assert_true(dtApiStartOnFd(&apiA, &pg, lsock, NULL));
    long before = storedCount("");
    int idle = rawConnect();
    assert_true(idle >= 0);
    assert_true(rawSend(idle, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"));
    assert_true(rawReadResponse(idle));
    int fresh = connectAcceptedBy(apiA.pid);
    assert_true(fresh >= 0);
    kill(apiA.pid, SIGTERM);
    assert_true(dtWaitFor(closedByServer, &idle, 10000));
    char id[37];
    assert_true(rawPost(fresh, id));
    long status = rawStatus(fresh);
    close(idle);
    close(fresh);
    assert_int_equal(status, 201);
    assert_int_equal(dtApiWait(&apiA), 0);
    assert_int_equal(storedCount(""), before + 1);
}

/* Runs decision-api with --listen-fd fd (inherited through the shell) and
 * returns its output and exit status ("...exit=N"); caller frees. */
static char *runWithListenFd(int fd) {
    const char *build = getenv("BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "DECISIONS_DSN='%s' DECISIONS_LOG_LEVEL=warn %s/bin/decision-api --tokens-file /dev/null "
             "--listen-fd %d 2>&1; echo exit=$?",
             pg.conninfo, build && build[0] ? build : "build", fd);
    return dtCapture(cmd);
}

static void assertRefused(const char *out, const char *reason) {
    bool ok = strstr(out, reason) != NULL && strstr(out, "exit=1") != NULL;
    if (!ok) fprintf(stderr, "expected \"%s\" and exit 1, got:\n%s", reason, out);
    assert_true(ok);
}

/* A descriptor that is not a listening TCP socket is refused at start,
 * saying why, before any wait for PostgreSQL. */
static void test_listen_fd_must_be_a_listening_socket(void **state) {
    int tcp = socket(AF_INET, SOCK_STREAM, 0); /* no close-on-exec: the child inherits it */
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    char *out_tcp = runWithListenFd(tcp), *out_udp = runWithListenFd(udp), *out_none = runWithListenFd(1000);
    close(tcp);
    close(udp);
    char want[128];
    snprintf(want, sizeof(want), "listen fd %d is a TCP socket but not listening", tcp);
    assertRefused(out_tcp, want);
    snprintf(want, sizeof(want), "listen fd %d is not a TCP socket", udp);
    assertRefused(out_udp, want);
    assertRefused(out_none, "listen fd 1000 is not a socket: Bad file descriptor");
    free(out_tcp);
    free(out_udp);
    free(out_none);
}

/* A model of a daemon under ASan: writes 'r' on the pipe once its SIGTERM
 * handler is in place; on SIGTERM it closes the handler (the default action
 * is back), writes 'x', and takes a while to exit, as ASan's leak check
 * does. Exits 0 unless a second SIGTERM kills it. */
static volatile sig_atomic_t termed;
static void onTerm(int sig) {
    termed = 1;
}

static pid_t slowExiter(int *released) {
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(p[1]);
        *released = p[0];
        return pid;
    }
    close(p[0]);
    struct sigaction sa = {.sa_handler = onTerm};
    sigaction(SIGTERM, &sa, NULL);
    /* SIGTERM held until sigsuspend: one arriving between the test of
     * termed and a pause() would leave the model waiting for ever */
    sigset_t term, before;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &before);
    if (write(p[1], "r", 1) != 1) _exit(2);
    while (!termed) sigsuspend(&before);
    sigprocmask(SIG_SETMASK, &before, NULL);
    signal(SIGTERM, SIG_DFL);
    if (write(p[1], "x", 1) != 1) _exit(2);
    struct timespec ts = {0, 500 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    _exit(0);
}

/* The next byte from the model, within 10 s; 0 if none. */
static char slowExiterSays(int fd) {
    char c = 0;
    if (poll(&(struct pollfd){fd, POLLIN, 0}, 1, 10000) != 1 || read(fd, &c, 1) != 1) return 0;
    return c;
}

/* The harness's wait after a test's own SIGTERM: the process exits cleanly,
 * whatever moment of its exit the wait begins in; dtStop there would send
 * the second SIGTERM that killed the API with 143 under ASan. One that does
 * not exit by the deadline is killed, and the wait says it failed. */
static void test_wait_after_sigterm_sends_no_second_signal(void **state) {
    int released;
    pid_t pid = slowExiter(&released);
    assert_true(pid > 0);
    assert_int_equal(slowExiterSays(released), 'r');
    kill(pid, SIGTERM);
    assert_int_equal(slowExiterSays(released), 'x'); /* its handler is gone, it is exiting */
    close(released);
    assert_int_equal(dtWaitExit(pid, 20000), 0);

    pid = slowExiter(&released); /* never signalled: it does not exit */
    assert_true(pid > 0);
    assert_int_equal(slowExiterSays(released), 'r');
    close(released);
    assert_int_equal(dtWaitExit(pid, 200), -1);
    assert_int_equal(kill(pid, 0), -1); /* killed and reaped */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_restart_under_load_refuses_nothing, testTeardown),
        cmocka_unit_test_teardown(test_queued_connections_are_answered_not_reset, testTeardown),
        cmocka_unit_test_teardown(test_connections_queued_while_old_drains_go_to_new, testTeardown),
        cmocka_unit_test_teardown(test_connection_accepted_before_stop_is_answered, testTeardown),
        cmocka_unit_test(test_listen_fd_must_be_a_listening_socket),
        cmocka_unit_test(test_wait_after_sigterm_sends_no_second_signal),
    };
    return cmocka_run_group_tests(tests, suiteSetup, suiteTeardown);
}
