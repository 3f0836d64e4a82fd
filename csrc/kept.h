/* kept.h - one memory block a calling thread keeps between its kernel calls (included by
 * kernels.c). A layer call's engine block (the team's pack buffer and the recurrent panels,
 * template.h's engine_setup) was a fresh posix_memalign per call: above glibc's mmap threshold
 * that is a fresh mapping, so every call paid a page fault per 4 KB of it (~380 faults per
 * forward of a (100, 32, 128, 256) LSTM). The block is a kept area (kept_area.h): the thread's
 * own, used by one call at a time (a nested or second user gets a block of its own), kept up to
 * FRNN_KEPT_MAX bytes and freed when the thread exits. */
enum { KEPT_BLOCK, FRNN_KEPT_N };
#include "kept_area.h"

#ifndef FRNN_KEPT_MAX
#define FRNN_KEPT_MAX ((size_t)32 << 20)
#endif

/* `bytes` aligned to 64, or NULL when they cannot be allocated; *kept says whether the block
 * is the thread's kept one (give it back with frnn_block_put either way). */
static void *frnn_block_get(size_t bytes, int *kept)
{
    return frnn_kept_get(KEPT_BLOCK, bytes, FRNN_KEPT_MAX, kept);
}

static void frnn_block_put(void *p, int kept) { frnn_kept_put(KEPT_BLOCK, p, kept); }
