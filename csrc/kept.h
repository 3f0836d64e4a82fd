/* kept.h - one memory block a calling thread keeps between its kernel calls (included by
 * kernels.c). A layer call's engine block (the team's pack buffer and the recurrent panels,
 * template.h's engine_setup) was a fresh posix_memalign per call: above glibc's mmap threshold
 * that is a fresh mapping, so every call paid a page fault per 4 KB of it (~380 faults per
 * forward of a (100, 32, 128, 256) LSTM). The block is the thread's own (two Python threads
 * calling at once each have theirs: no lock), used by one call at a time (`busy`; a nested or
 * second user gets a block of its own), kept up to FRNN_KEPT_MAX bytes and freed when the
 * thread exits. */
#include <pthread.h>
#include "glibc_compat.h"     /* pthread symbols bound to the old glibc version */

#ifndef FRNN_KEPT_MAX
#define FRNN_KEPT_MAX ((size_t)32 << 20)
#endif

typedef struct {
    void *mem;
    size_t bytes;
    int busy;
} frnn_kept;

static __thread frnn_kept KEPT;
static pthread_key_t KEPT_KEY;
static pthread_once_t KEPT_ONCE = PTHREAD_ONCE_INIT;

static void frnn_kept_free(void *p)
{
    (void)p;
    free(KEPT.mem);
    KEPT.mem = NULL, KEPT.bytes = 0, KEPT.busy = 0;
}

static void frnn_kept_key(void) { pthread_key_create(&KEPT_KEY, frnn_kept_free); }

/* `bytes` aligned to 64, or NULL when they cannot be allocated; *kept says whether the block
 * is the thread's kept one (give it back with frnn_block_put either way). */
static void *frnn_block_get(size_t bytes, int *kept)
{
    void *p = NULL;
    *kept = 0;
    if (bytes <= FRNN_KEPT_MAX && !KEPT.busy) {
        if (KEPT.bytes < bytes) {
            pthread_once(&KEPT_ONCE, frnn_kept_key);
            free(KEPT.mem);
            KEPT.mem = NULL, KEPT.bytes = 0;
            if (posix_memalign(&p, 64, bytes) != 0) return NULL;
            KEPT.mem = p, KEPT.bytes = bytes;
            pthread_setspecific(KEPT_KEY, &KEPT);      /* non-NULL: the destructor runs at exit */
        }
        KEPT.busy = 1, *kept = 1;
        return KEPT.mem;
    }
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

static void frnn_block_put(void *p, int kept)
{
    if (kept) KEPT.busy = 0;
    else free(p);
}
