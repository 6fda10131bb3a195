/* fakehttp.h - a tiny HTTP/1.1 server on a thread of the test, standing in
 * for a peer (a schema registry) whose answers a test chooses: each request
 * is read whole (headers, then Content-Length bytes), handed to the test's
 * answer function, answered and the connection closed. One request at a
 * time; good for clients under test, not for load. */
#ifndef DT_FAKEHTTP_H
#define DT_FAKEHTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct dtFakeRequest {
    char method[16];
    char path[256];
    char content_type[128];
    const char *body; /* NUL-terminated; borrowed for the answer call only */
    size_t len;
} dtFakeRequest;

/* Writes the answer's body (NUL-terminated, at most cap bytes with the NUL)
 * and returns its status. Runs on the server thread: no cmocka assertions
 * there; record what the test checks later instead. */
typedef int dtFakeAnswer(void *arg, const dtFakeRequest *req, char *body, size_t cap);

typedef struct dtFakeHttp {
    int fd, port; /* listening on 127.0.0.1:port */
    dtFakeAnswer *answer;
    void *arg;   /* borrowed: must outlive dtFakeHttpStop() */
    atomic_bool stop;
    pthread_t thread;
} dtFakeHttp;

/* Listens on a free port of 127.0.0.1 and starts serving; false on failure
 * (printed). Answers carry Content-Type application/vnd.schemaregistry.v1+json. */
bool dtFakeHttpStart(dtFakeHttp *h, dtFakeAnswer *answer, void *arg);
/* Stops serving, waits for the thread and closes the socket, so its port
 * then refuses connections. Call only once the client under test has its
 * answers. */
void dtFakeHttpStop(dtFakeHttp *h);

#endif
