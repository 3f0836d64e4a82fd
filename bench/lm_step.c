/* lm_step.c - the fused language-model training step (csrc/head.c) through the C API, phase by
 * phase, for timing on a quiet machine and callgrind instruction counts anywhere:
 *
 *   cc -O3 -std=c99 -pthread -fno-math-errno -fno-trapping-math -Icsrc bench/lm_step.c \
 *      csrc/kernels.c csrc/gemm.c csrc/team.c csrc/gemm_int8.c csrc/gemm_bf16.c csrc/gemm_amx.c csrc/optim.c \
 *      -lm -o /tmp/lm_step
 *   /tmp/lm_step [cell L H threads reps [drop]]  # default: 5 (FRNN_LSTM) 2 128 1 20 1; B 50, T 50, V 65
 *                                               # drop 0: no dropout masks (the targets' LMs: the layers'
 *                                               # outputs are then read from the tapes, acts_on_tapes.h)
 *   valgrind --tool=callgrind --toggle-collect=frnn_train_step_f32 /tmp/lm_step 2 2 128 1 1
 *
 * One-hot input, no optimiser (frnn_train_step's forward + backward): prints the median time of
 * each phase over `reps` steps (after one warm-up) and the share of the head passes.
 * Built with -DFRNN_TEAM_STATS as well, it prints per phase and member (summed over the reps)
 * the CPU time of work (in tasks, not waiting) and of waiting, the wall time waiting, and the
 * waits: a load-independent view of where a 2-thread step loses against twice one thread (the
 * members' work against the 1-thread run's, and its imbalance between members). */
#define _GNU_SOURCE
#include <time.h>

static double lm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double MARK_LAST, MARK_T[10];
static unsigned long SYNC_LAST, SYNC_N[10];
#ifdef FRNN_TEAM_STATS
#define NM 4                                  /* members reported */
void frnn_team_stats(int n, double *out);
static double ST_LAST[NM * 5], ST_SUM[10][NM * 5];
static void lm_stats(int k)
{
    double now[NM * 5];
    frnn_team_stats(NM, now);
    for (int i = 0; i < NM * 5; i++) ST_SUM[k][i] += now[i] - ST_LAST[i], ST_LAST[i] = now[i];
}
#else
#define lm_stats(k) ((void)0)
#endif
#define FRNN_HEAD_MARK(k) (MARK_T[k] = lm_now() - MARK_LAST, MARK_LAST = lm_now(), lm_stats(k), \
                           SYNC_N[k] = frnn_sync_count() - SYNC_LAST, SYNC_LAST = frnn_sync_count())
#include "../csrc/head.c"
#include "../csrc/test_train.c"

static const char *PHASES[10] = {"zero grads", "gather", "stack forward", "logits gemm", "softmax + loss",
                                 "dW_head gemm", "db_head", "dy gemm", "stack backward", "scatter"};

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int cell = argc > 1 ? atoi(argv[1]) : FRNN_LSTM, L = argc > 2 ? atoi(argv[2]) : 2;
    const int H = argc > 3 ? atoi(argv[3]) : 128, nth = argc > 4 ? atoi(argv[4]) : 1;
    const int reps = argc > 5 ? atoi(argv[5]) : 20;
    if (L < 1 || L > MAXL || H < 1 || nth < 1 || reps < 1) return fprintf(stderr, "bad arguments\n"), 2;
    const frnn_blas blas = {NULL, NULL};     /* float32 on the engine: BLAS is never called */
    frnn_set_threads(nth);
    Model m;
    build(&m, 0, cell, L, 50, 50, 65, 0, H, 7u);
    if (argc > 6 && atoi(argv[6]) == 0)
        for (int k = 0; k < L; k++) free(m.masks[k]), m.masks[k] = NULL;
    double *t = malloc(sizeof(double) * 10 * reps);
    frnn_step_result r;
    MARK_LAST = lm_now();
    step(&blas, &m, NULL, &r);                 /* warm-up: team started, pages touched */
#ifdef FRNN_TEAM_STATS
    memset(ST_SUM, 0, sizeof ST_SUM);
#endif
    for (int i = 0; i < reps; i++) {
        MARK_LAST = lm_now(), SYNC_LAST = frnn_sync_count();
        step(&blas, &m, NULL, &r);
        for (int k = 0; k < 10; k++) t[k * reps + i] = MARK_T[k];
    }
    printf("cell %d, L %d, H %d, B 50, T 50, V 65, %d thread(s), loss %.6f\n", cell, L, H, nth, r.loss);
    double all = 0, head = 0;
    for (int k = 0; k < 10; k++) {
        qsort(t + k * reps, reps, sizeof(double), cmp);
        const double med = t[k * reps + reps / 2];
        all += med;
        if (k != 2 && k != 8) head += med;
        printf("  %-15s %8.3f ms %6lu barriers\n", PHASES[k], 1e3 * med, SYNC_N[k]);
    }
#ifdef FRNN_TEAM_STATS
    printf("  per member, ms a step: work cpu / wait cpu / wait wall / waits\n");
    double tot[NM] = {0}, wt[NM] = {0};
    for (int k = 0; k < 10; k++) {
        printf("  %-15s", PHASES[k]);
        for (int j = 0; j < nth && j < NM; j++) {
            const double *s = ST_SUM[k] + 5 * j;
            const double work = s[1] - s[3];
            tot[j] += work, wt[j] += s[2];
            printf(" | m%d %8.3f %7.3f %7.3f %6.0f", j, 1e-6 * work / reps, 1e-6 * s[3] / reps,
                   1e-6 * s[2] / reps, s[4] / reps);
        }
        printf("\n");
    }
    printf("  %-15s", "all phases");
    for (int j = 0; j < nth && j < NM; j++) printf(" | m%d work %8.3f wait wall %8.3f", j, 1e-6 * tot[j] / reps, 1e-6 * wt[j] / reps);
    printf("\n");
#endif
    unsigned long long hash = 1469598103934665603ull;     /* FNV-1a of the gradients' bytes */
    for (size_t i = 0; i < m.n * m.elem; i++) hash = (hash ^ (unsigned char)m.grads[i]) * 1099511628211ull;
    printf("  gradients' hash %016llx\n", hash);
    printf("  %-15s %8.3f ms (head, loss, gather, scatter, zero: %.3f ms)\n", "sum", 1e3 * all, 1e3 * head);
    free(t);
    release(&m);
    return 0;
}
