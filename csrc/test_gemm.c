/* test_gemm.c - the float32 engine's packing (gemm.c): frnn_transpose on every tile/edge mix, on
 * AVX2 and on the plain path, and frnn_engine_gemm with A in every layout (rows, A^T, strided)
 * giving the same bits as A in rows, at 1-3 threads, with its kept areas growing between calls;
 * frnn_matmul_bf16 (head.c: the heads' bf16 product; prepacked too) against bf16.h's definition,
 * bit for bit.
 * Linked into test_kernels (frnn_test_gemm). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "bf16.h"
#include "fastrnn.h"

#define TEST_NAME "gemm"
#include "test_check.h"

static unsigned long long SEED = 12345;

static float rnd(void)
{
    SEED = SEED * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((SEED >> 40) & 0xffff) / 32768.0f - 1.0f;
}

/* dst[c * ldd + r] = src[r * lds + c], and nothing else of dst written, on the active ISA. */
static void check_transpose(int R, int C, const char *isa)
{
    const size_t lds = (size_t)C + 3, ldd = (size_t)R + 5;
    float *src = malloc(sizeof(float) * R * lds), *dst = malloc(sizeof(float) * C * ldd);
    for (size_t i = 0; i < R * lds; i++) src[i] = rnd();
    for (size_t i = 0; i < C * ldd; i++) dst[i] = -7.0f;
    frnn_transpose(R, C, src, lds, dst, ldd);
    int bad = 0;
    for (int c = 0; c < C; c++)
        for (size_t r = 0; r < ldd; r++) {
            const float want = (int)r < R ? src[r * lds + c] : -7.0f;
            bad += memcmp(&dst[c * ldd + r], &want, sizeof(float)) != 0;
        }
    CHECK(bad == 0, "transpose %d x %d (%s): %d wrong elements", R, C, isa, bad);
    free(src);
    free(dst);
}

static void test_transpose(void)
{
    static const int sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 24, 37};
    const int n = sizeof sizes / sizeof sizes[0], isa = frnn_isa_active();
    for (int plain = 0; plain <= 1; plain++) {
        if (plain) frnn_set_isa(FRNN_ISA_NONE);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) check_transpose(sizes[i], sizes[j], plain ? "plain" : "active ISA");
    }
    frnn_set_isa(isa);
}

/* C (M, N) = A @ op(W) (+ C) with A stored in `layout` 0: rows (csa 1), 1: A^T (rsa 1), 2: both
 * strides > 1; its bits at `nth` threads into out. */
static void run_gemm(int layout, int M, int N, int K, const float *A, const float *W, int trans_w,
                     int beta, const float *C0, float *out, int nth, float *store)
{
    size_t rsa = K, csa = 1;
    const float *a = A;
    if (layout == 1) {          /* A^T (K, M), row-major */
        for (int i = 0; i < M; i++)
            for (int k = 0; k < K; k++) store[(size_t)k * M + i] = A[(size_t)i * K + k];
        rsa = 1, csa = M, a = store;
    } else if (layout == 2) {   /* A(i, k) at 2 * (i * K + k) */
        for (size_t i = 0; i < (size_t)M * K; i++) store[2 * i] = A[i], store[2 * i + 1] = NAN;
        rsa = 2 * (size_t)K, csa = 2, a = store;
    }
    memcpy(out, C0, sizeof(float) * M * N);
    frnn_gemm_args g = {M, N, K, a, rsa, csa, W, trans_w ? (size_t)K : (size_t)N, trans_w, out, (size_t)N, beta};
    CHECK(frnn_engine_gemm(nth, &g) == 0, "frnn_engine_gemm failed");
}

static void test_layouts(void)
{
    static const int shapes[][3] = {{8, 16, 8}, {13, 17, 5}, {100, 40, 300}, {97, 33, 600}, {200, 20, 257}, {9, 64, 1},
                                    /* <= 96 rows, K > 256: split by columns at 2+ members */
                                    {65, 40, 600}, {96, 20, 513}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N);
        float *C0 = malloc(sizeof(float) * M * N), *ref = malloc(sizeof(float) * M * N);
        float *got = malloc(sizeof(float) * M * N), *store = malloc(sizeof(float) * 2 * M * K);
        for (int i = 0; i < M * K; i++) A[i] = rnd();
        for (int i = 0; i < K * N; i++) W[i] = rnd();
        for (int i = 0; i < M * N; i++) C0[i] = rnd();
        for (int trans_w = 0; trans_w <= 1; trans_w++)
            for (int beta = 0; beta <= 1; beta++) {
                run_gemm(0, M, N, K, A, W, trans_w, beta, C0, ref, 1, store);
                double err = 0;        /* against double sums */
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double sum = beta ? C0[(size_t)i * N + j] : 0;
                        for (int k = 0; k < K; k++)
                            sum += (double)A[(size_t)i * K + k] *
                                   W[trans_w ? (size_t)j * K + k : (size_t)k * N + j];
                        err = fmax(err, fabs(sum - ref[(size_t)i * N + j]));
                    }
                CHECK(err < 1e-4 * (K + 1), "%d x %d x %d trans_w %d beta %d: error %g", M, N, K, trans_w, beta, err);
                for (int layout = 0; layout <= 2; layout++)
                    for (int nth = 1; nth <= 3; nth++) {
                        run_gemm(layout, M, N, K, A, W, trans_w, beta, C0, got, nth, store);
                        CHECK(!memcmp(got, ref, sizeof(float) * M * N),
                              "%d x %d x %d trans_w %d beta %d, A layout %d at %d threads: bits differ from rows "
                              "at 1 thread", M, N, K, trans_w, beta, layout, nth);
                    }
            }
        free(A), free(W), free(C0), free(ref), free(got), free(store);
    }
}

/* frnn_matmul_bf16 in every transposition, with and without C, at 1-3 threads: per element the
 * bf16 dot product of each FRNN_KC block of k (bf16.h: VDPBF16PS order), added to C in float32 */
static void test_matmul_bf16(void)
{
    static const int shapes[][3] = {{5, 7, 3}, {9, 33, 64}, {40, 17, 300}, {3, 50, 513}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N), *C0 = malloc(sizeof(float) * M * N);
        float *got = malloc(sizeof(float) * M * N), *a = malloc(sizeof(float) * K), *w = malloc(sizeof(float) * K);
        for (int i = 0; i < M * K; i++) A[i] = rnd();
        for (int i = 0; i < K * N; i++) W[i] = rnd();
        for (int i = 0; i < M * N; i++) C0[i] = rnd();
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                for (int beta = 0; beta <= 1; beta++)
                    for (int nth = 1; nth <= 3; nth++) {
                        /* A read as (M, K) or A^T's storage (K, M); W as (K, N) or W^T's (N, K) */
                        frnn_set_threads(nth);
                        memcpy(got, C0, sizeof(float) * M * N);
                        CHECK(frnn_matmul_bf16(ta, tb, M, N, K, A, ta ? M : K, W, tb ? K : N, beta, got, N) == 0,
                              "frnn_matmul_bf16 failed");
                        int bad = 0;
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                for (int k = 0; k < K; k++) {
                                    a[k] = frnn_bf16_round(ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k]);
                                    w[k] = frnn_bf16_round(tb ? W[(size_t)j * K + k] : W[(size_t)k * N + j]);
                                }
                                float c = C0[(size_t)i * N + j];
                                for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
                                    const float d = frnn_bf16_dot(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, a + k0, 1, w + k0, 1);
                                    c = beta || k0 ? c + d : d;
                                }
                                bad += memcmp(&c, &got[(size_t)i * N + j], sizeof c) != 0;
                            }
                        CHECK(bad == 0, "bf16 %d x %d x %d ta %d tb %d beta %d at %d threads: %d elements differ",
                              M, N, K, ta, tb, beta, nth, bad);
                        if (!ta && tb) {      /* a head's prepacked W: the same bits */
                            float *pk = malloc(sizeof(float) * frnn_head_bf16_floats(N, K)), *c2 = malloc(sizeof(float) * M * N);
                            frnn_head_bf16_pack(pk, N, K, W, K);
                            memcpy(c2, C0, sizeof(float) * M * N);
                            CHECK(frnn_matmul_bf16_packed(pk, M, N, K, A, K, beta, c2, N) == 0, "packed: not run");
                            CHECK(!memcmp(c2, got, sizeof(float) * M * N), "bf16 packed %d x %d x %d beta %d at %d "
                                  "threads: bits differ", M, N, K, beta, nth);
                            free(pk), free(c2);
                        }
                    }
        free(A), free(W), free(C0), free(got), free(a), free(w);
    }
    frnn_set_threads(0);
}

int frnn_test_gemm(void)
{
    fails = 0;
    test_transpose();
    test_matmul_bf16();
    if (frnn_isa_supported(FRNN_ISA_AVX2) || frnn_isa_supported(FRNN_ISA_AVX512))
        test_layouts();         /* the engine's products (no micro-kernels elsewhere) */
    return fails;
}
