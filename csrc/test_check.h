/* test_check.h - what the C test files (test_*.c, linked into test_kernels) share: the failure
 * count and CHECK, which says a failure on stderr and goes on, for a file that defines TEST_NAME
 * ("gemm") before including it; urand, the random values most of them draw. */
#include <stdio.h>

#ifdef TEST_NAME
static int fails;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL " TEST_NAME ": " __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                                                 \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)
#endif

/* Uniform in [-1, 1) on a grid of 2^-15 (exact in float and double alike), from the LCG state *s. */
static inline float urand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}
