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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: say which and abort, which both libFuzzer and the
 * replay driver report as a failed input. */
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Set-up that cannot fail for a good build (loading the embedded schemas). */
#define FUZZ_SETUP(cond, ...) FUZZ_CHECK(cond, __VA_ARGS__)

#endif
