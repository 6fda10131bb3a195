/* fuzz.h - what the fuzz harnesses share.
 *
 * Each tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput() and is
 * built twice: with clang and libFuzzer for `make fuzz`, and with the normal
 * compiler and driver.c for `make test`, which replays the target's seed
 * corpus and regression inputs once each. A harness must not keep state that
 * changes what a later input does (beyond caches the code under test keeps
 * itself), so that a saved input reproduces on its own.
 */
#ifndef DT_FUZZ_H
#define DT_FUZZ_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where a broken property goes when FUZZ_LAX is set (see FUZZ_CHECK): each
 * harness's LLVMFuzzerTestOneInput() starts with FUZZ_ENTRY. */
static jmp_buf fuzzEscape __attribute__((unused));
#define FUZZ_ENTRY                                                                                                     \
    do {                                                                                                               \
        if (setjmp(fuzzEscape) != 0) return 0;                                                                         \
    } while (0)

static inline bool fuzzLax(void) {
    static int lax = -1;
    if (lax < 0) lax = getenv("FUZZ_LAX") != NULL && getenv("FUZZ_LAX")[0] == '1';
    return lax;
}

/* A broken property: say which and abort, which both libFuzzer and the
 * replay driver report as a failed input. With FUZZ_LAX=1 in the environment
 * the input is abandoned instead (what it allocated may leak: run with
 * detect_leaks=0), so a long run can look past a bug already known for
 * crashes, sanitizer reports and other properties. */
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if (fuzzLax()) longjmp(fuzzEscape, 1);                                                                     \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Set-up that cannot fail for a good build (loading the embedded schemas). */
#define FUZZ_SETUP(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: set-up failed: %s: ", __FILE__, __LINE__, #cond);                                  \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* The search target's cursor key (32 bytes), shared with the seed writer
 * (seeds.c) so the signed cursors of the seeds stay valid. */
#define FUZZ_CURSOR_KEY "fuzz-cursor-key-0123456789abcdef"

#endif
