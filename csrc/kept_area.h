/* kept_area.h - memory areas a thread keeps between its kernel calls (gemm.c's pack areas,
 * kept.h's engine block, gemm_bf16_rec.h's staging rows). A fresh allocation per call above
 * glibc's mmap threshold is a fresh mapping, so every call paid a page fault per 4 KB of it.
 * Each area is the thread's own (two Python threads calling at once each have theirs: no lock),
 * grows to the largest request it has met and is freed when the thread exits (one pthread key
 * per including file).
 *
 * The including file defines _POSIX_C_SOURCE >= 200112L (posix_memalign) and names its areas
 * first: enum { MY_AREA, ..., FRNN_KEPT_N }; */
#include <stdlib.h>
#include <pthread.h>
#include "glibc_compat.h"     /* pthread symbols bound to the old glibc version */

typedef struct {
    void *mem;
    size_t bytes;
    int busy;                 /* frnn_kept_get handed it out and it is not back yet */
} frnn_kept;

static __thread frnn_kept KEPT[FRNN_KEPT_N];
static pthread_key_t KEPT_KEY;
static pthread_once_t KEPT_ONCE = PTHREAD_ONCE_INIT;

static void frnn_kept_free(void *p)
{
    (void)p;
    for (int i = 0; i < FRNN_KEPT_N; i++) {
        free(KEPT[i].mem);
        KEPT[i].mem = NULL, KEPT[i].bytes = 0, KEPT[i].busy = 0;
    }
}

static void frnn_kept_key(void) { pthread_key_create(&KEPT_KEY, frnn_kept_free); }

/* At least `bytes` (aligned to 64) of this thread's area `i`, or NULL when they cannot be
 * allocated. For an area only one user at a time can reach (no busy flag). */
static inline void *frnn_kept_grow(int i, size_t bytes)
{
    frnn_kept *k = &KEPT[i];
    if (k->bytes >= bytes) return k->mem;
    void *p = NULL;
    pthread_once(&KEPT_ONCE, frnn_kept_key);
    free(k->mem);
    k->mem = NULL, k->bytes = 0;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    k->mem = p, k->bytes = bytes;
    pthread_setspecific(KEPT_KEY, KEPT);          /* non-NULL: the destructor runs at exit */
    return p;
}

/* `bytes` aligned to 64, or NULL when they cannot be allocated: area `i` when `bytes` <= `max`
 * and no one holds it (*kept = 1), else a block of the call's own (a nested or second user).
 * Give it back with frnn_kept_put either way. */
static inline void *frnn_kept_get(int i, size_t bytes, size_t max, int *kept)
{
    void *p = NULL;
    *kept = 0;
    if (bytes <= max && !KEPT[i].busy) {
        if ((p = frnn_kept_grow(i, bytes)) != NULL) KEPT[i].busy = 1, *kept = 1;
        return p;
    }
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

static inline void frnn_kept_put(int i, void *p, int kept)
{
    if (kept) KEPT[i].busy = 0;
    else free(p);
}
