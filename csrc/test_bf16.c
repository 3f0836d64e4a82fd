/* test_bf16.c - the bf16 numerics (bf16.h) and every bf16 kernel this CPU has (gemm_bf16.c)
 * against the emulation, bit for bit. Linked into test_kernels (frnn_test_bf16). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bf16.h"
#include "engine_bf16.h"

#define TEST_NAME "bf16"
#include "test_check.h"

static int same_bits(float a, float b) { return frnn_f32_bits(a) == frnn_f32_bits(b); }

static void test_conversion(void)
{
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80},   /* a tie: to even (down) */
        {0x3f818000u, 0x3f82},                          /* a tie: to even (up) */
        {0x3f808001u, 0x3f81}, {0x3f807fffu, 0x3f80},   /* just above / below the tie */
        {0xbf818000u, 0xbf82},                          /* negative ties as positive ones */
        {0x7f7fffffu, 0x7f80},                          /* the largest float rounds to +inf */
        {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80},   /* infinities stay */
        {0x7f800001u, 0x7fc0}, {0xff800001u, 0xffc0},   /* signalling NaN -> quiet */
        {0x7fc00000u, 0x7fc0}, {0x7fffffffu, 0x7fff},   /* quiet NaN keeps its top payload */
        {0x00000001u, 0x0000}, {0x807fffffu, 0x8000},   /* denormals read as zero, sign kept */
        {0x00800000u, 0x0080}, {0x80000000u, 0x8000},   /* FLT_MIN, -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint16_t got = frnn_bf16_from_f32(frnn_bits_f32(cases[i].in));
        CHECK(got == cases[i].out, "bf16(0x%08x) = 0x%04x, expected 0x%04x", (unsigned)cases[i].in,
              (unsigned)got, (unsigned)cases[i].out);
        CHECK(frnn_f32_bits(frnn_bf16_to_f32(cases[i].out)) == (uint32_t)cases[i].out << 16,
              "bf16 0x%04x widens to a float's top half", (unsigned)cases[i].out);
    }
}

static void test_fma(void)
{
    const float m = FLT_MIN, t75 = ldexpf(1, -75), t76 = ldexpf(1, -76), t70 = ldexpf(1, -70);
    /* tininess after rounding to 24 bits, unbounded exponent (MXCSR.FTZ as measured) */
    CHECK(same_bits(frnn_bf16_fma(t75, -t75, m), 0.0f), "2^-126 - 2^-150 is flushed");
    CHECK(same_bits(frnn_bf16_fma(t75, -t76, m), m), "2^-126 - 2^-151 rounds to FLT_MIN, kept");
    CHECK(same_bits(frnn_bf16_fma(t70, t70, 0.0f), 0.0f), "a denormal result is flushed");
    CHECK(same_bits(frnn_bf16_fma(t70, -t70, 0.0f), -0.0f), "flushed with the true sign");
    CHECK(same_bits(frnn_bf16_fma(ldexpf(1, -140), 1e30f, 1.0f), 1.0f), "a denormal input is zero");
    CHECK(same_bits(frnn_bf16_fma(1.0f, 1.0f, ldexpf(1, -140)), 1.0f), "a denormal accumulator is zero");
    CHECK(same_bits(frnn_bf16_fma(3.0f, 5.0f, 1.0f), 16.0f), "an ordinary FMA");
    /* the pair order: odd first. With a = (0, 2^-24, 1, 2^-24): odd first, the two 2^-24 meet
     * before the 1 (1 + 2^-23); in k order the 1 comes between them and each 2^-24 is a tie that
     * rounds to even (1). */
    const float a[4] = {0.0f, ldexpf(1, -24), 1.0f, ldexpf(1, -24)};
    const float one[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    CHECK(same_bits(frnn_bf16_dot(4, a, 1, one, 1), 1.0f + ldexpf(1, -23)), "dot: odd then even (%a)",
          frnn_bf16_dot(4, a, 1, one, 1));
    /* an odd K: the last pair's odd element is a zero */
    const float a3[3] = {ldexpf(1, -24), ldexpf(1, -24), 1.0f};
    CHECK(same_bits(frnn_bf16_dot(3, a3, 1, one, 1), 1.0f + ldexpf(1, -23)), "dot: an odd K (%a)",
          frnn_bf16_dot(3, a3, 1, one, 1));
}

static unsigned seed = 12345u;
static float urnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Random values, some tiny enough that their products fall around FLT_MIN (the FTZ cases), and
 * the odd value that is not bf16 (rounded by the packing / the kernels). */
static float value(int tiny)
{
    const float v = urnd();
    return tiny && (seed >> 4) % 3 == 0 ? ldexpf(v, -62 - (int)((seed >> 12) % 3)) : v;
}

/* bf16 panels nr wide whatever the active ISA (the AVX2 kernels also serve AVX-512's 32). */
static size_t init_nr(frnn_bpk *pk, int K, int N, int seg, void *mem, int nr)
{
    frnn_bpk_init(pk, K, N, seg, mem);
    pk->nr = nr, pk->ppseg = (seg + nr - 1) / nr, pk->panels = (N / seg) * pk->ppseg;
    return (size_t)pk->panels * (pk->Kp / 2) * nr;
}

/* Every kernel usable with the active ISA, on panels 16 and 32 wide, vs frnn_bf16_dot on
 * rounded values. */
static void test_kernels_vs_emulation(const char *isa)
{
    static const int shapes[][4] = {   /* M, K, N, seg */
        {1, 1, 5, 5}, {1, 2, 16, 16}, {1, 33, 96, 48}, {2, 17, 40, 20}, {3, 64, 64, 32},
        {4, 9, 70, 35}, {5, 31, 33, 33}, {7, 8, 128, 64}, {9, 50, 20, 10}, {1, 300, 130, 65},
        {1, 2051, 544, 544}, {2, 1100, 40, 20},   /* one row past the stack buffer and over 32 panels */
        {8, 7, 40, 20}, {12, 77, 50, 25}, {33, 300, 48, 48}, {97, 40, 36, 36},   /* AVX2: the float32 kernels */
        {6, 45, 70, 35}, {24, 513, 64, 32}, {64, 31, 100, 100},   /* AVX512-BF16: 6 rows, 2 x 12, 6 x 11 or 10 */
    };
    for (int kern = 0; kern <= 4; kern++) {
        if (kern == 1 || kern == 3 || !frnn_bf16_kernel_supported(kern)) continue;
        if (frnn_set_bf16_kernel(kern) != kern) continue;       /* not with this ISA's panels */
        for (int nr = 16; nr <= 32; nr += 16)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int tiny = 0; tiny <= 1; tiny++)
                for (int trans = 0; trans <= 1; trans++)
                    for (int round_a = 0; round_a <= 1; round_a++) {
                        const int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2], seg = shapes[s][3];
                        float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N);
                        float *C = malloc(sizeof(float) * M * N), *E = malloc(sizeof(float) * M * N);
                        float *Wr = malloc(sizeof(float) * K * N), *Ar = malloc(sizeof(float) * M * K);
                        frnn_bpk pk;
                        void *mem = malloc(sizeof(float) * init_nr(&pk, K, N, seg, NULL, nr));
                        init_nr(&pk, K, N, seg, mem, nr);
                        if (kern == FRNN_BF16_AVX512BF16 && nr != 32) {   /* its panels are 32 wide */
                            free(A), free(W), free(C), free(E), free(Wr), free(Ar), free(mem);
                            continue;
                        }
                        for (int i = 0; i < M * K; i++) A[i] = value(tiny), Ar[i] = frnn_bf16_round(A[i]);
                        if (!round_a) memcpy(A, Ar, sizeof(float) * M * K);
                        for (int i = 0; i < K * N; i++) W[i] = value(tiny), Wr[i] = frnn_bf16_round(W[i]);
                        for (int i = 0; i < M * N; i++) C[i] = E[i] = urnd();
                        /* op(W) (K, N): W itself, or W (N, K) read transposed */
                        frnn_bpk_pack(&pk, W, trans ? K : N, trans, 0, 0, pk.panels);
                        const int acc = (int)(s & 1);
                        frnn_bpk_mul(&pk, 0, pk.panels, M, A, K, 1, round_a, C, N, acc);
                        int bad = 0;
                        for (int i = 0; i < M; i++)
                            for (int n = 0; n < N; n++) {
                                const float *w = trans ? Wr + (size_t)n * K : Wr + n;
                                const float dot = frnn_bf16_dot(K, Ar + (size_t)i * K, 1, w, trans ? 1 : N);
                                const float e = acc ? E[i * N + n] + dot : dot;
                                bad += !same_bits(C[i * N + n], e);
                            }
                        CHECK(bad == 0, "ISA %s, nr %d, kernel %s: M %d K %d N %d seg %d tiny %d trans %d "
                              "round %d: %d elements differ from the emulation", isa, nr,
                              frnn_bf16_kernel_name(kern), M, K, N, seg, tiny, trans, round_a, bad);
                        free(A), free(W), free(C), free(E), free(Wr), free(Ar), free(mem);
                    }
    }
    frnn_set_bf16_kernel(-1);
}

/* One row with the values the row rounding must treat as frnn_bf16_round does (denormals, signed
 * zeros, ties to even both ways, a large value whose product overflows), contiguous (AVX2: 8
 * lanes at a time, then a tail) and strided, for every kernel vs the emulation. */
static void test_row_rounding(void)
{
    static const uint32_t special[] = {0x00000001u, 0x807fffffu, 0x00000000u, 0x80000000u, 0x3f808000u,
                                       0x3f818000u, 0xbf808000u, 0x3f808001u, 0x7f7f7fffu, 0x00800000u,
                                       0x80800001u, 0x3f7fffffu, 0x0001ffffu};
    enum { K = 45, N = 45 };
    float A[2 * K], Ar[K], W[K * N], Wr[K * N], C[N];
    for (int k = 0; k < K; k++) {
        const float v = k % 3 ? frnn_bits_f32(special[k % (sizeof special / sizeof special[0])]) : urnd();
        A[k] = A[K + k] = v, Ar[k] = frnn_bf16_round(v);
    }
    /* op(W) = 2^100 I: C[n] is the rounded a[n] scaled (a denormal rounded up to FLT_MIN shows) */
    for (int i = 0; i < K * N; i++) W[i] = Wr[i] = i % (N + 1) ? 0.0f : 0x1p100f;
    frnn_bpk pk;
    void *mem = malloc(sizeof(float) * frnn_bpk_floats(K, N, N));
    frnn_bpk_init(&pk, K, N, N, mem);
    frnn_bpk_pack(&pk, W, N, 0, 0, 0, pk.panels);
    for (int kern = 0; kern <= 4; kern += 2) {
        if (frnn_set_bf16_kernel(kern) != kern) continue;
        for (int strided = 0; strided <= 1; strided++) {
            float a[2 * K];
            for (int k = 0; k < K; k++) a[2 * k] = a[2 * k + 1] = NAN;      /* only the row's values are read */
            for (int k = 0; k < K; k++) a[strided ? 2 * k : k] = A[k];
            frnn_bpk_mul(&pk, 0, pk.panels, 1, a, K, strided ? 2 : 1, 1, C, N, 0);
            int bad = 0;
            for (int n = 0; n < N; n++) bad += !same_bits(C[n], frnn_bf16_dot(K, Ar, 1, Wr + n, N));
            CHECK(bad == 0, "row rounding, kernel %s, strided %d: %d elements differ", frnn_bf16_kernel_name(kern),
                  strided, bad);
        }
    }
    frnn_set_bf16_kernel(-1);
    free(mem);
}

/* The team product (two blocks of K) at 1-3 members vs the emulation. */
typedef struct {
    frnn_gemm_args g;
    float *pack;
} team_job;

static void team_task(void *arg, const frnn_par *par)
{
    team_job *j = arg;
    frnn_team_gemm_bf16(par, &j->g, j->pack);
}

static void test_team_gemm(int M)
{
    const int N = 45, K = FRNN_KC + 37;
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K);
    float *C = malloc(sizeof(float) * M * N), *C0 = malloc(sizeof(float) * M * N);
    float *pack = malloc(sizeof(float) * frnn_team_gemm_floats(N));
    for (int i = 0; i < M * K; i++) A[i] = value(1);
    for (int i = 0; i < N * K; i++) W[i] = value(1);
    for (int i = 0; i < M * N; i++) C0[i] = urnd();
    for (int nth = 1; nth <= 3; nth++)
        for (int beta = 0; beta <= 1; beta++) {
            memcpy(C, C0, sizeof(float) * M * N);
            /* C = A @ W^T (+ C): A row-major (M, K); W (N, K) transposed */
            team_job j = {{M, N, K, A, (size_t)K, 1, W, (size_t)K, 1, C, (size_t)N, beta}, pack};
            frnn_team_run(nth, team_task, &j);
            int bad = 0;
            for (int i = 0; i < M; i++)
                for (int n = 0; n < N; n++) {
                    float ar[FRNN_KC + 37], wr[FRNN_KC + 37];
                    for (int k = 0; k < K; k++)
                        ar[k] = frnn_bf16_round(A[i * K + k]), wr[k] = frnn_bf16_round(W[n * K + k]);
                    float e = beta ? C0[i * N + n] : 0.0f;
                    for (int k0 = 0; k0 < K; k0 += FRNN_KC) {  /* blocks of K, added in float32 */
                        const float s = frnn_bf16_dot(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, ar + k0, 1, wr + k0, 1);
                        e = beta || k0 ? e + s : s;
                    }
                    bad += !same_bits(C[i * N + n], e);
                }
            CHECK(bad == 0, "team product of %d rows at %d members, beta %d, kernel %s: %d elements differ", M, nth,
                  beta, frnn_bf16_kernel_name(frnn_bf16_kernel()), bad);
        }
    free(A), free(W), free(C), free(C0), free(pack);
}

/* Products of many rows (on AVX2 the float32 kernels run them) whose sums fall around FLT_MIN:
 * the pair order and FTZ decide the bits. Columns 0-3 of op(W) against rows whose pair (0, 1) is
 * (2^-75, 2^-63): the odd product 2^-126 first, then 2^-126 - 2^-150 (flushed to +0), 2^-126 -
 * 2^-151 (kept: FLT_MIN), a denormal product alone (flushed, with its sign); then C, some of it
 * denormal, is added in plain float32 (a denormal C + 0 stays). Both K blocks of the team product
 * and the packed W_ih^T (FRNN_KC) get the pattern. frnn_bpk_mul, frnn_bkpk_mul and the team product
 * at 1-3 members vs the emulation. */
static void bf_expected(int M, int N, int K, int kc, const float *Ar, const float *Wr, const float *C0, int acc,
                        float *E)
{
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            float e = acc ? C0[i * N + n] : 0.0f, w[FRNN_KC + 8];
            for (int k0 = 0; k0 < K; k0 += kc) {
                const int kb = K - k0 < kc ? K - k0 : kc;
                for (int k = 0; k < kb; k++) w[k] = Wr[(size_t)(k0 + k) * N + n];
                const float s = frnn_bf16_dot(kb, Ar + (size_t)i * K + k0, 1, w, 1);
                e = acc || k0 ? e + s : s;
            }
            E[i * N + n] = e;
        }
}

static void bkpk_task(void *arg, const frnn_par *par)
{
    void **v = arg;
    const int *d = v[0];   /* M, K, N, beta */
    frnn_bkpk_mul(par, v[1], d[1], d[2], d[0], v[2], (size_t)d[1], v[3], (size_t)d[2], d[3]);
}

static void test_flush_rows(void)
{
    enum { M = 13, N = 20 };
    static const int Ks[] = {7, FRNN_KC + 7};
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
        const int K = Ks[ki];
        float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N), *Wt = malloc(sizeof(float) * K * N);
        float *Ar = malloc(sizeof(float) * M * K), *Wr = malloc(sizeof(float) * K * N), *At = malloc(sizeof(float) * M * K);
        float C0[M * N], C[M * N], E[M * N];
        for (int i = 0; i < M * K; i++) A[i] = value(1);
        for (int i = 0; i < K * N; i++) W[i] = value(1);
        for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
            for (int i = 0; i < M; i += 2) A[i * K + k0] = ldexpf(1, -75), A[i * K + k0 + 1] = ldexpf(1, -63);
            const float w1[4] = {ldexpf(1, -63), ldexpf(1, -63), 0.0f, 0.0f};
            const float w0[4] = {-ldexpf(1, -75), -ldexpf(1, -76), ldexpf(1, -70), -ldexpf(1, -70)};
            for (int n = 0; n < 4; n++) {
                for (int k = k0; k < K && k < k0 + FRNN_KC; k++) W[k * N + n] = 0.0f;
                W[(k0 + 1) * N + n] = w1[n], W[k0 * N + n] = w0[n];
            }
        }
        for (int i = 0; i < M * K; i++) Ar[i] = frnn_bf16_round(A[i]);
        for (int i = 0; i < K * N; i++) Wr[i] = frnn_bf16_round(W[i]);
        for (int k = 0; k < K; k++)
            for (int n = 0; n < N; n++) Wt[n * K + k] = W[k * N + n];
        for (int k = 0; k < K; k++)
            for (int i = 0; i < M; i++) At[k * M + i] = A[i * K + k];
        for (int i = 0; i < M * N; i++) C0[i] = i % 3 == 0 ? ldexpf(1, -140) : i % 3 == 1 ? urnd() : -0.0f;
        const char *kern = frnn_bf16_kernel_name(frnn_bf16_kernel());
        for (int acc = 0; acc <= 1; acc++) {
            int bad = 0;
            if (K <= FRNN_KC) {          /* one panel set of the whole K */
                frnn_bpk pk;
                void *mem = malloc(sizeof(float) * frnn_bpk_floats(K, N, N));
                frnn_bpk_init(&pk, K, N, N, mem);
                frnn_bpk_pack(&pk, W, N, 0, 0, 0, pk.panels);
                memcpy(C, C0, sizeof C);
                frnn_bpk_mul(&pk, 0, pk.panels, M, A, K, 1, 1, C, N, acc);
                bf_expected(M, N, K, K, Ar, Wr, C0, acc, E);
                for (int i = 0; i < M * N; i++) bad += !same_bits(C[i], E[i]);
                CHECK(bad == 0, "flush rows, frnn_bpk_mul, kernel %s, K %d, acc %d: %d elements differ", kern, K, acc, bad);
                free(mem);
            }
            bf_expected(M, N, K, FRNN_KC, Ar, Wr, C0, acc, E);
            void *kpk = malloc(sizeof(float) * frnn_bkpk_floats(K, N));
            frnn_bkpk_pack(kpk, K, N, Wt, K, 1);
            float *pack = malloc(sizeof(float) * frnn_team_gemm_floats(N));
            for (int nth = 1; nth <= 3; nth++) {
                const int dims[4] = {M, K, N, acc};
                void *args[4] = {(void *)dims, kpk, A, C};
                memcpy(C, C0, sizeof C);
                frnn_team_run(nth, bkpk_task, args);
                bad = 0;
                for (int i = 0; i < M * N; i++) bad += !same_bits(C[i], E[i]);
                CHECK(bad == 0, "flush rows, frnn_bkpk_mul, kernel %s, K %d, acc %d, %d members: %d elements differ",
                      kern, K, acc, nth, bad);
                for (int trans = 0; trans <= 3; trans++) {     /* bit 0: W^T; bit 1: A^T read in place */
                    memcpy(C, C0, sizeof C);
                    const int at = trans >> 1;
                    team_job j = {{M, N, K, at ? At : A, at ? 1 : (size_t)K, at ? (size_t)M : 1, trans & 1 ? Wt : W,
                                   (size_t)(trans & 1 ? K : N), trans & 1, C, (size_t)N, acc}, pack};
                    frnn_team_run(nth, team_task, &j);
                    bad = 0;
                    for (int i = 0; i < M * N; i++) bad += !same_bits(C[i], E[i]);
                    CHECK(bad == 0, "flush rows, team product, kernel %s, K %d, acc %d, trans %d, %d members: %d elements "
                          "differ", kern, K, acc, trans, nth, bad);
                }
            }
            free(kpk), free(pack);
        }
        /* the pattern is what it claims: column 0 flushed, column 1 FLT_MIN (rows 0, 2, ...; acc 0) */
        bf_expected(M, N, K, FRNN_KC, Ar, Wr, C0, 0, E);
        if (K < FRNN_KC)
            CHECK(same_bits(E[0], 0.0f) && same_bits(E[1], FLT_MIN) && same_bits(E[2], 0.0f) && E[3] == 0.0f,
                  "flush rows: the expected sums are %a %a %a %a", E[0], E[1], E[2], E[3]);
        free(A), free(W), free(Wt), free(Ar), free(Wr), free(At);
    }
}

/* The team product with A^T read in place (the weight gradients' dG^T) and W^T (the input
 * projection's W_ih^T) at shapes with partial 8 x 8 tiles, odd K, panels narrower than nr, two
 * row blocks (FRNN_MC) and two K blocks: on AVX2 both are rounded and pair-swapped while being
 * transposed (gemm_bf16_f32.h: bf32_trans). Inputs include RNE ties, denormals (read as zero)
 * and values that are not bf16; 1-3 members, beta 0/1, vs the emulation bit for bit. */
static float edge_value(void)
{
    const float v = value(1);
    switch ((seed >> 20) % 11) {
    case 0: return frnn_bits_f32((frnn_f32_bits(v) & 0xffff0000u) | 0x8000u);   /* a tie */
    case 1: return ldexpf(v, -130);                                             /* denormal */
    default: return v;
    }
}

static void test_team_transposed(void)
{
    static const int shapes[][3] = {{9, 13, 7}, {40, 45, 19}, {101, 70, 64}, {17, 33, FRNN_KC + 37}, {8, 16, 2}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        float *A = malloc(sizeof(float) * M * K), *At = malloc(sizeof(float) * M * K), *Ar = malloc(sizeof(float) * M * K);
        float *W = malloc(sizeof(float) * K * N), *Wt = malloc(sizeof(float) * K * N), *Wr = malloc(sizeof(float) * K * N);
        float *C0 = malloc(sizeof(float) * M * N), *C = malloc(sizeof(float) * M * N), *E = malloc(sizeof(float) * M * N);
        float *pack = malloc(sizeof(float) * frnn_team_gemm_floats(N));
        for (int i = 0; i < M * K; i++) A[i] = edge_value(), Ar[i] = frnn_bf16_round(A[i]);
        for (int i = 0; i < K * N; i++) W[i] = edge_value(), Wr[i] = frnn_bf16_round(W[i]);
        for (int k = 0; k < K; k++) {
            for (int n = 0; n < N; n++) Wt[n * K + k] = W[k * N + n];
            for (int i = 0; i < M; i++) At[k * M + i] = A[i * K + k];
        }
        for (int i = 0; i < M * N; i++) C0[i] = urnd();
        for (int beta = 0; beta <= 1; beta++) {
            bf_expected(M, N, K, FRNN_KC, Ar, Wr, C0, beta, E);
            for (int nth = 1; nth <= 3; nth++)
                for (int trans = 0; trans <= 3; trans++) {     /* bit 0: W^T; bit 1: A^T read in place */
                    const int at = trans >> 1;
                    memcpy(C, C0, sizeof(float) * M * N);
                    team_job j = {{M, N, K, at ? At : A, at ? 1 : (size_t)K, at ? (size_t)M : 1, trans & 1 ? Wt : W,
                                   (size_t)(trans & 1 ? K : N), trans & 1, C, (size_t)N, beta}, pack};
                    frnn_team_run(nth, team_task, &j);
                    int bad = 0;
                    for (int i = 0; i < M * N; i++) bad += !same_bits(C[i], E[i]);
                    CHECK(bad == 0, "team product (%d, %d, %d), trans %d, beta %d, %d members, kernel %s: %d elements "
                          "differ", M, N, K, trans, beta, nth, frnn_bf16_kernel_name(frnn_bf16_kernel()), bad);
                }
        }
        free(A), free(At), free(Ar), free(W), free(Wt), free(Wr), free(C0), free(C), free(E), free(pack);
    }
}

#include "test_bf16_pair.h"

/* The recurrent operands of many rows on float32 panels (frnn_bf32_*: float32 kernels on AVX2,
 * bf16.h's arithmetic without them): op(W) packed from W or W^T, or widened from bf16 panels,
 * each "member" packing and multiplying its own units of every segment as the time loop does
 * (1-3 members); A read with a row stride past K, or staged first by the members' column ranges
 * (frnn_bf32_stage, odd boundaries; frnn_bf32_mul_staged); C (partly denormal, -0) overwritten or
 * added to; the flush pattern of test_flush_rows in columns 0-3 -- vs frnn_bf16_dot, bit for bit. */
static void test_recurrent_f32_panels(const char *isa)
{
    static const int shapes[][4] = {   /* M, K, N, seg */
        {8, 37, 80, 20}, {13, 256, 96, 48}, {32, 263, 64, 32}, {9, 600, 40, 40}, {5, 20, 32, 16}, {50, 2, 34, 17},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2], seg = shapes[s][3], lda = K + 3;
        float *A = malloc(sizeof(float) * M * lda), *Ar = malloc(sizeof(float) * M * K);
        float *W = malloc(sizeof(float) * K * N), *Wt = malloc(sizeof(float) * K * N), *Wr = malloc(sizeof(float) * K * N);
        float *col = malloc(sizeof(float) * K), *C0 = malloc(sizeof(float) * M * N), *C = malloc(sizeof(float) * M * N);
        float *E = malloc(sizeof(float) * M * N), *S = malloc(sizeof(float) * M * (K + (K & 1)));
        for (int i = 0; i < M * lda; i++) A[i] = value(1);
        for (int i = 0; i < K * N; i++) W[i] = value(1);
        for (int i = 0; i < M; i += 2) A[(size_t)i * lda] = ldexpf(1, -75), A[(size_t)i * lda + 1] = ldexpf(1, -63);
        const float w1[4] = {ldexpf(1, -63), ldexpf(1, -63), 0.0f, 0.0f};
        const float w0[4] = {-ldexpf(1, -75), -ldexpf(1, -76), ldexpf(1, -70), -ldexpf(1, -70)};
        for (int n = 0; n < 4; n++) {
            for (int k = 2; k < K; k++) W[k * N + n] = 0.0f;
            W[N + n] = w1[n], W[n] = w0[n];
        }
        for (int i = 0; i < M; i++)
            for (int k = 0; k < K; k++) Ar[i * K + k] = frnn_bf16_round(A[(size_t)i * lda + k]);
        for (int k = 0; k < K; k++)
            for (int n = 0; n < N; n++) Wr[k * N + n] = frnn_bf16_round(W[k * N + n]), Wt[n * K + k] = W[k * N + n];
        for (int i = 0; i < M * N; i++) C0[i] = i % 3 == 0 ? ldexpf(1, -140) : i % 3 == 1 ? urnd() : -0.0f;
        frnn_pk pk;
        frnn_bpk bpk;
        float *mem = malloc(sizeof(float) * frnn_bf32_floats(K, N, seg));
        void *bmem = malloc(sizeof(float) * frnn_bpk_floats(K, N, seg));
        frnn_bf32_init(&pk, K, N, seg, mem);
        frnn_bpk_init(&bpk, K, N, seg, bmem);
        for (int from = 0; from < 3; from++) {             /* W, W^T, bf16 panels (of W^T) */
            const int trans = from != 0;
            if (from == 2) frnn_bpk_pack(&bpk, Wt, K, 1, 0, 0, bpk.panels);
            memset(mem, 0xff, sizeof(float) * frnn_bf32_floats(K, N, seg));   /* NaN: a panel not packed shows */
            for (int nth = 1; nth <= 3; nth++)
                for (int acc = 0; acc <= 1; acc++)
                for (int staged = 0; staged <= 1; staged++) {   /* A staged by column ranges (rec_stage) */
                    memcpy(C, C0, sizeof(float) * M * N);
                    memset(S, 0xff, sizeof(float) * M * (K + (K & 1)));      /* NaN: an element not staged shows */
                    for (int m = 0; m < nth && staged; m++)     /* (odd boundaries: K * m / nth) */
                        frnn_bf32_stage(M, K, A, lda, K * m / nth, K * (m + 1) / nth, S);
                    for (int m = 0; m < nth; m++) {
                        int u0, u1;
                        frnn_split(seg, pk.nr, m, nth, &u0, &u1);
                        for (int q = 0; q < N / seg && u1 > u0; q++) {
                            int p0, p1;
                            frnn_pk_units(&pk, q, u0, u1, &p0, &p1);
                            if (from == 2) frnn_bf32_widen(&pk, &bpk, p0, p1);
                            else frnn_bf32_pack(&pk, K, trans ? Wt : W, trans ? K : N, trans, p0, p1);
                        }
                        if (staged) frnn_bf32_mul_staged(&pk, u0, u1, M, S, C, N, acc);
                        else frnn_bf32_mul(&pk, K, u0, u1, M, A, lda, C, N, acc);
                    }
                    int bad = 0;
                    for (int n = 0; n < N; n++) {
                        for (int k = 0; k < K; k++) col[k] = Wr[k * N + n];
                        for (int i = 0; i < M; i++) {
                            const float dot = frnn_bf16_dot(K, Ar + (size_t)i * K, 1, col, 1);
                            bad += !same_bits(C[i * N + n], acc ? C0[i * N + n] + dot : dot);
                        }
                    }
                    CHECK(bad == 0, "recurrent float32 panels, ISA %s, M %d K %d N %d seg %d, from %d, %d members, "
                          "acc %d, staged %d: %d elements differ from the emulation", isa, M, K, N, seg, from, nth, acc,
                          staged, bad);
                }
        }
        free(A), free(Ar), free(W), free(Wt), free(Wr), free(col), free(C0), free(C), free(E), free(S), free(mem), free(bmem);
    }
    /* which calls take them: many rows with the AVX2 kernel, never one row (a batch-1 step) */
    const int on = frnn_bf16_kernel() == FRNN_BF16_AVX2 && frnn_isa_active() != FRNN_ISA_NONE;
    CHECK(!frnn_bf32_rows(1) && !frnn_bf32_rows(7) && frnn_bf32_rows(8) == on,
          "frnn_bf32_rows: ISA %s, kernel %s", isa, frnn_bf16_kernel_name(frnn_bf16_kernel()));
}

int frnn_test_bf16(void)
{
    test_conversion();
    test_fma();
    const int isa = frnn_isa_active();
    static const int isas[] = {FRNN_ISA_AVX512, FRNN_ISA_AVX2, FRNN_ISA_NONE};
    static const char *names[] = {"avx512", "avx2", "none"};
    for (int i = 0; i < 3; i++) {
        if (!frnn_isa_supported(isas[i])) continue;
        frnn_set_isa(isas[i]);
        test_kernels_vs_emulation(names[i]);
        test_row_rounding();
        test_team_gemm(5);
        test_team_gemm(23);
        test_team_gemm(100);
        test_flush_rows();
        test_team_transposed();
        test_team_pair();
        test_round_specials();
        test_recurrent_f32_panels(names[i]);
    }
    frnn_set_isa(isa);
    if (!frnn_bf16_kernel_supported(FRNN_BF16_AVX512BF16))
        printf("bf16: no AVX512-BF16 on this CPU: the vdpbf16ps kernel was not run\n");
    return fails;
}
