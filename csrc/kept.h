/* kept.h - one memory block a calling thread keeps between its kernel calls (included by
 * kernels.c). A layer call's engine block (the team's pack buffer and the recurrent panels,
 * template.h's engine_setup) was a fresh posix_memalign per call: above glibc's mmap threshold
 * that is a fresh mapping, so every call paid a page fault per 4 KB of it (~380 faults per
 * forward of a (100, 32, 128, 256) LSTM). The block is a kept area (kept_area.h): the thread's
 * own, used by one call at a time (a nested or second user gets a block of its own), kept up to
 * FRNN_KEPT_MAX bytes and freed when the thread exits. A stack call's layers keep one each. */
#define FRNN_KEPT_LAYERS 8          /* a stack call's layers (x directions) with a kept block each */
/* KEPT_ROWS: a member's copy of its rows in an inference batch split (decomp.h) */
enum { KEPT_BLOCK, KEPT_ROWS, KEPT_LAYER, FRNN_KEPT_N = KEPT_LAYER + FRNN_KEPT_LAYERS };
#include "kept_area.h"

#ifndef FRNN_KEPT_MAX
#define FRNN_KEPT_MAX ((size_t)32 << 20)
#endif
/* all of a thread's layer blocks together: a stack call's engine blocks (stack.h) were fresh
 * allocations per call too, ~3000 page faults per step of a 2x512 LSTM language model */
#ifndef FRNN_KEPT_LAYERS_MAX
#define FRNN_KEPT_LAYERS_MAX ((size_t)96 << 20)
#endif

/* The kept slot of a stack call's layer `i` (its engine block), or -1 past the slots. */
static inline int frnn_layer_slot(int i) { return i >= 0 && i < FRNN_KEPT_LAYERS ? KEPT_LAYER + i : -1; }

/* `bytes` aligned to 64, or NULL when they cannot be allocated: the calling thread's kept area
 * `slot` (KEPT_BLOCK for a layer call, frnn_layer_slot for a stack call's layer) when it is free
 * and the size fits the caps, else a block of the call's own (slot < 0, a nested or second user,
 * a bigger one). *kept is slot + 1 when the block is the kept one, else 0; give it back with
 * frnn_block_put either way. */
static void *frnn_block_get(int slot, size_t bytes, int *kept)
{
    int got = 0;
    void *p = NULL;
    *kept = 0;
    if (slot >= KEPT_LAYER) {
        size_t held = bytes;
        for (int s = KEPT_LAYER; s < FRNN_KEPT_N; s++) held += s == slot ? 0 : KEPT[s].bytes;
        if (held > FRNN_KEPT_LAYERS_MAX) slot = -1;
    }
    if (slot < 0) return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
    p = frnn_kept_get(slot, bytes, FRNN_KEPT_MAX, &got);
    *kept = got ? slot + 1 : 0;
    return p;
}

static void frnn_block_put(void *p, int kept) { frnn_kept_put(kept - 1, p, kept != 0); }
