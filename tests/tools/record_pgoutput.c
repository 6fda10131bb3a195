/* record_pgoutput.c - records a pgoutput replication stream as C array
 * initializers, for the fixtures of tests/unit/test_pgoutput.c. Not part of
 * the build:
 *
 *   gcc -o /tmp/rec tests/tools/record_pgoutput.c -I/usr/include/postgresql -lpq
 *   /tmp/rec [-t IDLE_SECONDS] [-p PREFIX] [-P PUBLICATION] CONNINFO SLOT > out.h
 *
 * It creates SLOT (a regular, persistent pgoutput slot, so it survives a
 * second run; an existing slot is reused), prints "ready <LSN>" on stderr,
 * then streams with proto_version '1' from the slot and writes every CopyData
 * payload ('w' and 'k') to stdout. It stops once no XLogData arrived for
 * IDLE_SECONDS (default 3) after the first one, or 30 s with none at all.
 * The workload runs in another session while this one streams.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static void die(PGconn *c, const char *what) {
    fprintf(stderr, "record_pgoutput: %s: %s", what, c ? PQerrorMessage(c) : "\n");
    if (c) PQfinish(c);
    exit(1);
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static int64_t nowSince2000(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - 946684800) * 1000000 + ts.tv_nsec / 1000;
}

/* Confirms everything received so far, so the server keeps no WAL for us. */
static void sendStatus(PGconn *c, uint64_t lsn) {
    uint8_t b[34];
    b[0] = 'r';
    put64(b + 1, lsn);
    put64(b + 9, lsn);
    put64(b + 17, lsn);
    put64(b + 25, (uint64_t)nowSince2000());
    b[33] = 0;
    if (PQputCopyData(c, (const char *)b, sizeof(b)) != 1 || PQflush(c) != 0) die(c, "standby status");
}

static void emit(const char *prefix, int n, const uint8_t *b, int len) {
    char what[64] = "";
    if (b[0] == 'w' && len > 25) snprintf(what, sizeof(what), "XLogData, pgoutput '%c'", b[25]);
    else if (b[0] == 'k') snprintf(what, sizeof(what), "keepalive");
    printf("/* %d: %s, %d bytes */\nstatic const uint8_t %s%d[] = {", n, what, len, prefix, n);
    for (int i = 0; i < len; i++) printf("%s0x%02x,", i % 12 ? " " : "\n    ", b[i]);
    printf("\n};\n\n");
}

int main(int argc, char **argv) {
    int idle = 3, opt;
    const char *prefix = "pgoRec", *pub = "decisions_pub";
    while ((opt = getopt(argc, argv, "t:p:P:")) != -1) {
        if (opt == 't') idle = atoi(optarg);
        else if (opt == 'p') prefix = optarg;
        else if (opt == 'P') pub = optarg;
        else return 2;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: %s [-t IDLE_SECONDS] [-p PREFIX] [-P PUBLICATION] CONNINFO SLOT\n", argv[0]);
        return 2;
    }
    char conninfo[1024], sql[512];
    snprintf(conninfo, sizeof(conninfo), "%s replication=database", argv[optind]);
    const char *slot = argv[optind + 1];
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) die(c, "connect");

    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput", slot);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) fprintf(stderr, "ready %s\n", PQgetvalue(r, 0, 1));
    else fprintf(stderr, "ready (slot exists: %s)", PQresultErrorMessage(r));
    PQclear(r);

    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names '%s', messages 'true')",
             slot, pub);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_BOTH) die(c, "START_REPLICATION");
    PQclear(r);

    printf("/* Recorded by tests/tools/record_pgoutput.c from slot %s, publication %s,\n"
           " * server_version %s. Each array is one CopyData payload. */\n\n",
           slot, pub, PQparameterStatus(c, "server_version"));
    int n = 0, nw = 0;
    uint64_t last = 0;
    time_t last_w = time(NULL);
    for (;;) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 1);
        if (len == 0) {
            if (time(NULL) - last_w >= (nw ? idle : 30)) break;
            int fd = PQsocket(c);
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(fd, &rs);
            struct timeval tv = {1, 0};
            if (select(fd + 1, &rs, NULL, NULL, &tv) < 0 && errno != EINTR) die(NULL, "select");
            if (!PQconsumeInput(c)) die(c, "consume");
            continue;
        }
        if (len < 0) die(c, "stream ended");
        const uint8_t *b = (const uint8_t *)buf;
        emit(prefix, n++, b, len);
        if (b[0] == 'w' && len >= 25) {
            nw++;
            last_w = time(NULL);
            if (get64(b + 9) > last) last = get64(b + 9);
        }
        if (b[0] == 'k' && len >= 18 && b[17]) sendStatus(c, last);
        PQfreemem(buf);
    }
    sendStatus(c, last);
    printf("static const struct {\n    const uint8_t *buf;\n    size_t len;\n} %s[] = {\n", prefix);
    for (int i = 0; i < n; i++) printf("    {%s%d, sizeof(%s%d)},\n", prefix, i, prefix, i);
    printf("};\n");
    fprintf(stderr, "recorded %d payloads (%d XLogData)\n", n, nw);
    PQfinish(c);
    return 0;
}
