/* test_amx.c - the AMX tile path (amx.h, gemm_amx.c) through the emulation of the tile
 * instructions, on any CPU; linked into test_kernels (frnn_test_amx):
 *   - the emulated instructions on hand-made tiles: TDPBF16PS's order (even and odd products
 *     apart, added at the end), DAZ and FTZ, zeroing past a tile's shape; TDPBUSD's u8 x s8
 *     products and 32-bit wrap-around;
 *   - the bf16 tile products (packing, blocking, K tails, 16-column slices of 16- and 32-column
 *     panels) equal, bit for bit, the SDM's order written out per element here; they differ from
 *     bf16.h's VDPBF16PS emulation by at most the bound of two float32 summations of the same
 *     exact products (2 * gamma_n * sum |a_k w_k|, see sdm_bound), and equal it bit for bit when
 *     every sum is exact (small integers) or K <= 2 (one pair: the same single rounding);
 *   - the team product at 1-3 members: the same bits at every thread count;
 *   - the int8 tile products equal the vector / reference int8 path bit for bit (views, column
 *     ranges, K tails, beta, zero and NaN rows).
 * On an AMX CPU the hardware back end is compared with the emulation too. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "amx.h"
#include "bf16.h"
#include "engine.h"

#define TEST_NAME "amx"
#include "test_check.h"

static unsigned SEED = 12345;

static float urnd(void) { return urand(&SEED); }

static void put_bf16(frnn_amx_emu *T, int t, int r, int i, float x)
{
    const uint16_t b = frnn_bf16_from_f32(x);
    memcpy(T->t[t][r] + 2 * i, &b, 2);
}

static float get_f32(const frnn_amx_emu *T, int t, int r, int n)
{
    float x;
    memcpy(&x, T->t[t][r] + 4 * n, 4);
    return x;
}

/* ---- the emulated instructions on hand-made tiles ---- */

static void test_instructions(void)
{
    frnn_amx_emu T;
    frnn_amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg.rows[0] = 1, cfg.colsb[0] = 4;       /* C: 1 x 1 fp32 */
    cfg.rows[1] = 1, cfg.colsb[1] = 8;       /* A: 1 x 2 pairs */
    cfg.rows[2] = 2, cfg.colsb[2] = 4;       /* B: 2 pairs x 1 column */
    frnn_amx_emu_config(&T, &cfg);
    /* even products 1 * 1, 1 * 1; odd products 2^24 * 1, 0: TDPBF16PS sums E = 2, O = 2^24 apart,
     * then 2^24 + 2 (exact); VDPBF16PS's chain 2^24 + 1 + 0 + 1 rounds each 1 away: 2^24 */
    const float a[4] = {1, 16777216.0f, 1, 0}, w[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++) put_bf16(&T, 1, 0, i, a[i]), put_bf16(&T, 2, i / 2, i % 2, w[i]);
    frnn_amx_emu_dpbf16ps(&T, 0, 1, 2);
    CHECK(get_f32(&T, 0, 0, 0) == 16777218.0f, "TDPBF16PS order: got %.1f, expected 2^24 + 2", get_f32(&T, 0, 0, 0));
    CHECK(frnn_bf16_dot(4, a, 1, w, 1) == 16777216.0f, "VDPBF16PS order: expected 2^24");
    /* the accumulator is added last: C = 2^24, then + (E + O) = + (1 + 1) */
    const float one[4] = {1, 0, 1, 0};
    frnn_amx_emu_zero(&T, 0);
    memcpy(T.t[0][0], &(float){16777216.0f}, 4);
    for (int i = 0; i < 4; i++) put_bf16(&T, 1, 0, i, one[i]);
    frnn_amx_emu_dpbf16ps(&T, 0, 1, 2);
    CHECK(get_f32(&T, 0, 0, 0) == 16777218.0f, "TDPBF16PS adds (E + O) to C in one step");
    /* DAZ: a denormal bf16 input reads as zero; FTZ: a tiny product is flushed (sign kept) */
    frnn_amx_emu_zero(&T, 0);
    uint16_t den = 0x0001, big = 0x7e80;         /* bf16 denormal; 2^126 */
    memcpy(T.t[1][0], &den, 2), memcpy(T.t[1][0] + 2, &(uint16_t){0}, 2), memset(T.t[1][0] + 4, 0, 4);
    memcpy(T.t[2][0], &big, 2), memset(T.t[2][0] + 2, 0, 2), memset(T.t[2][1], 0, 4);
    frnn_amx_emu_dpbf16ps(&T, 0, 1, 2);
    CHECK(frnn_f32_bits(get_f32(&T, 0, 0, 0)) == 0, "DAZ: a denormal bf16 times 2^126 must give +0");
    frnn_amx_emu_zero(&T, 0);
    put_bf16(&T, 1, 0, 0, -ldexpf(1, -70)), put_bf16(&T, 1, 0, 1, 0), put_bf16(&T, 1, 0, 2, 0), put_bf16(&T, 1, 0, 3, 0);
    put_bf16(&T, 2, 0, 0, ldexpf(1, -70));
    frnn_amx_emu_dpbf16ps(&T, 0, 1, 2);
    CHECK(get_f32(&T, 0, 0, 0) == 0.0f, "FTZ: 2^-140 must be flushed");
    /* loads zero past the configured shape; TDPBUSD: u8 x s8 in 32-bit wrap-around */
    cfg.rows[0] = 2, cfg.colsb[0] = 8;       /* C: 2 x 2 s32 */
    cfg.rows[1] = 2, cfg.colsb[1] = 8;       /* A: 2 x 8 u8 */
    cfg.rows[2] = 2, cfg.colsb[2] = 8;       /* B: 2 quads x 2 columns */
    frnn_amx_emu_config(&T, &cfg);
    uint8_t mem[64];
    memset(mem, 0xff, sizeof mem);
    frnn_amx_emu_load(&T, 1, mem, 8);
    CHECK(T.t[1][0][8] == 0 && T.t[1][2][0] == 0 && T.t[1][1][7] == 0xff, "a load must zero past rows and colsb");
    memset(mem, 0x80, sizeof mem);               /* B: every s8 is -128 */
    frnn_amx_emu_load(&T, 2, mem, 8);
    const int32_t start = INT32_MIN + 1000;
    for (int r = 0; r < 2; r++) memcpy(T.t[0][r], &start, 4), memcpy(T.t[0][r] + 4, &(int32_t){7}, 4);
    frnn_amx_emu_dpbusd(&T, 0, 1, 2);
    int32_t got, got1;
    memcpy(&got, T.t[0][0], 4), memcpy(&got1, T.t[0][1] + 4, 4);
    /* 8 products 255 * -128 = -261120 below INT32_MIN + 1000: wraps to the top */
    const int64_t want = ((int64_t)start - 8 * 32640 + ((int64_t)1 << 32)) ;
    CHECK(got == (int32_t)(uint32_t)(uint64_t)want && got1 == 7 - 8 * 32640,
          "TDPBUSD: got %d and %d", (int)got, (int)got1);
}

/* ---- bf16 products ---- */

/* One element of the tile product as the SDM orders it: 16 pairs of k per instruction, even and
 * odd products in two sums from +0, their sum added to the accumulator (from +0). */
static float sdm_dot(int K, const float *a, const float *w, size_t sw)
{
    const int Kp = K + (K & 1), chunks = (Kp / 2 + 15) / 16;
    float t = 0.0f;
    for (int c = 0; c < chunks; c++) {
        float e = 0.0f, o = 0.0f;
        for (int k = 32 * c; k < 32 * c + 32; k += 2) {
            e = frnn_bf16_fma(k < K ? a[k] : 0.0f, k < K ? w[(size_t)k * sw] : 0.0f, e);
            o = frnn_bf16_fma(k + 1 < K ? a[k + 1] : 0.0f, k + 1 < K ? w[(size_t)(k + 1) * sw] : 0.0f, o);
        }
        t = frnn_bf16_fma(t, 1.0f, frnn_bf16_fma(e, 1.0f, o));
    }
    return t;
}

/* Two float32 summations of the same n exact products in different orders differ by at most
 * 2 gamma_n sum |p| (gamma_n = n u / (1 - n u), u = 2^-24; Higham, Accuracy and Stability, 4.2);
 * n counts every addition of an element (K products, the E + O and tile additions); FTZ may
 * drop at most one value below FLT_MIN per addition. */
static double sdm_bound(int K, double sum_abs)
{
    const double n = K + 2.0 * ((K + 1) / 32 + 1) + 2, u = ldexp(1.0, -24), g = n * u / (1 - n * u);
    return 2 * g * sum_abs + 2 * n * FLT_MIN;
}

/* C (+)= A @ op(W) for one shape on the tiles, vs the SDM order, bf16.h's emulation and float64. */
static void bf16_case(int M, int K, int N, int seg, int nr, int trans, int acc, int small_ints)
{
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * K * N);
    float *Ar = malloc(sizeof(float) * M * K), *Wr = malloc(sizeof(float) * K * N);   /* op(W) (K, N) rounded */
    float *C0 = malloc(sizeof(float) * M * N), *Ct = malloc(sizeof(float) * M * N), *Cv = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = small_ints ? (float)((int)(urnd() * 8)) : urnd() * (i % 7 == 0 ? 100.0f : 1.0f);
    for (int i = 0; i < K * N; i++) W[i] = small_ints ? (float)((int)(urnd() * 8)) : urnd();
    for (int i = 0; i < M * K; i++) Ar[i] = frnn_bf16_round(A[i]);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) Wr[k * N + n] = frnn_bf16_round(trans ? W[n * K + k] : W[k * N + n]);
    for (int i = 0; i < M * N; i++) C0[i] = small_ints ? (float)(int)(urnd() * 50) : urnd();
    frnn_bpk pk;                                  /* panels of nr columns (32: two tile slices) */
    frnn_bpk_init(&pk, K, N, seg, NULL);
    pk.nr = nr, pk.ppseg = (seg + nr - 1) / nr, pk.panels = (N / seg) * pk.ppseg;
    float *mem = calloc((size_t)pk.panels * (pk.Kp / 2) * nr + 1, sizeof(float));
    pk.data = (uint32_t *)mem;
    frnn_bpk_pack(&pk, W, trans ? K : N, trans, 0, 0, pk.panels);
    memcpy(Ct, C0, sizeof(float) * M * N), memcpy(Cv, C0, sizeof(float) * M * N);
    frnn_set_amx_mode(FRNN_AMX_EMULATED);
    CHECK(frnn_amx_bf16_rows(M) && !frnn_amx_bf16_rows(15), "bf16: the tiles must run for >= 16 rows only");
    frnn_bpk_mul(&pk, 0, pk.panels, M, A, K, 1, 1, Ct, N, acc);         /* M >= 16: the tiles */
    frnn_set_amx_mode(FRNN_AMX_OFF);
    frnn_bpk_mul(&pk, 0, pk.panels, M, A, K, 1, 1, Cv, N, acc);         /* the vector kernels */
    int bad_sdm = 0, bad_vec = 0, bad_bits = 0, bad_exact = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            const float s = sdm_dot(K, Ar + (size_t)i * K, Wr + n, (size_t)N);
            const float e = acc ? C0[i * N + n] + s : s;
            const float t = Ct[i * N + n], v = Cv[i * N + n];
            bad_sdm += frnn_f32_bits(t) != frnn_f32_bits(e);
            double exact = acc ? C0[i * N + n] : 0, sum_abs = 0;
            for (int k = 0; k < K; k++) {
                exact += (double)Ar[i * K + k] * Wr[k * N + n];
                sum_abs += fabs((double)Ar[i * K + k] * Wr[k * N + n]);
            }
            const double extra = acc ? ldexp(fabs(exact) + sum_abs + fabs(C0[i * N + n]), -23) : 0;
            bad_vec += !(fabs((double)t - v) <= sdm_bound(K, sum_abs) + extra);
            bad_exact += !(fabs((double)t - exact) <= sdm_bound(K, sum_abs) / 2 + extra);
            if (small_ints || K <= 2) bad_bits += t != v;     /* +0 and -0 may differ */
        }
    CHECK(bad_sdm == 0, "bf16 tiles vs the SDM order (M %d K %d N %d seg %d nr %d trans %d acc %d): %d differ", M, K,
          N, seg, nr, trans, acc, bad_sdm);
    CHECK(bad_vec == 0, "bf16 tiles vs the VDPBF16PS emulation beyond the bound (M %d K %d N %d): %d", M, K, N, bad_vec);
    CHECK(bad_exact == 0, "bf16 tiles vs float64 beyond the bound (M %d K %d N %d): %d", M, K, N, bad_exact);
    CHECK(bad_bits == 0, "bf16 tiles vs the emulation, exact sums or one pair (M %d K %d N %d): %d differ", M, K, N,
          bad_bits);
    free(A), free(W), free(Ar), free(Wr), free(C0), free(Ct), free(Cv), free(mem);
}

static void test_bf16_products(void)
{
    static const int Ms[] = {16, 17, 32, 45}, Ks[] = {1, 2, 3, 31, 32, 33, 64, 97};
    static const int NS[][2] = {{5, 5}, {16, 16}, {37, 37}, {48, 16}, {70, 35}};
    for (int nr = 16; nr <= 32; nr += 16)
        for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
            for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++)
                for (size_t n = 0; n < sizeof NS / sizeof *NS; n++) {
                    const int trans = (int)((m + k + n) & 1), acc = (int)((m + n + nr / 16) & 1);
                    bf16_case(Ms[m], Ks[k], NS[n][0], NS[n][1], nr, trans, acc, 0);
                    if (k == 7) bf16_case(Ms[m], Ks[k], NS[n][0], NS[n][1], nr, trans, acc, 1);
                }
}

/* The team product with the tiles at 1-3 members (M 40: 27/13 or 14/13/13 rows a member, so some
 * members have fewer than 16 rows): the same bits, and the SDM order per block of FRNN_KC. */
typedef struct {
    frnn_gemm_args g;
    float *pack;
} team_job;

static void team_task(void *arg, const frnn_par *par)
{
    team_job *j = arg;
    frnn_team_gemm_bf16(par, &j->g, j->pack);
}

static void test_team(void)
{
    const int M = 40, N = 45, K = FRNN_KC + 37;
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K);
    float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
    float *C0 = malloc(sizeof(float) * M * N), *pack = malloc(sizeof(float) * frnn_team_gemm_floats(N));
    for (int i = 0; i < M * K; i++) A[i] = urnd();
    for (int i = 0; i < N * K; i++) W[i] = urnd();
    for (int i = 0; i < M * N; i++) C0[i] = urnd();
    frnn_set_amx_mode(FRNN_AMX_EMULATED);
    for (int beta = 0; beta <= 1; beta++)
        for (int nth = 1; nth <= 3; nth++) {
            memcpy(C, C0, sizeof(float) * M * N);
            team_job j = {{M, N, K, A, (size_t)K, 1, W, (size_t)K, 1, C, (size_t)N, beta}, pack};
            frnn_team_run(nth, team_task, &j);
            if (nth == 1) {
                memcpy(C1, C, sizeof(float) * M * N);
                int bad = 0;
                for (int i = 0; i < M; i++)
                    for (int n = 0; n < N; n++) {
                        float ar[FRNN_KC + 37], wr[FRNN_KC + 37], e = beta ? C0[i * N + n] : 0.0f;
                        for (int k = 0; k < K; k++) ar[k] = frnn_bf16_round(A[i * K + k]), wr[k] = frnn_bf16_round(W[n * K + k]);
                        for (int k0 = 0; k0 < K; k0 += FRNN_KC) {
                            const float s = sdm_dot(K - k0 < FRNN_KC ? K - k0 : FRNN_KC, ar + k0, wr + k0, 1);
                            e = beta || k0 ? e + s : s;
                        }
                        bad += frnn_f32_bits(e) != frnn_f32_bits(C[i * N + n]);
                    }
                CHECK(bad == 0, "team product on the tiles vs the SDM order, beta %d: %d differ", beta, bad);
            }
            CHECK(memcmp(C, C1, sizeof(float) * M * N) == 0, "team product on the tiles: %d members differ from 1",
                  nth);
        }
    frnn_set_amx_mode(-1);
    free(A), free(W), free(C), free(C1), free(C0), free(pack);
}

/* ---- int8 products ---- */

static void q8_case(int M, int N, int K, int r0, int seg, int u0, int u1, int beta)
{
    const int Kp = (K + FRNN_Q8_ALIGN - 1) / FRNN_Q8_ALIGN * FRNN_Q8_ALIGN, NT = N + r0;
    int8_t *q = calloc((size_t)NT * Kp, 1), *packed = malloc(frnn_q8_packed_bytes(NT, Kp));
    float *scale = malloc(sizeof(float) * NT), *A = malloc(sizeof(float) * M * K);
    int32_t *comp = malloc(sizeof(int32_t) * NT);
    float *C0 = malloc(sizeof(float) * M * N), *Ct = malloc(sizeof(float) * M * N), *Cr = malloc(sizeof(float) * M * N);
    for (int n = 0; n < NT; n++) {
        int32_t sum = 0;
        for (int k = 0; k < K; k++) sum += q[(size_t)n * Kp + k] = (int8_t)(urnd() * 127.9f);
        comp[n] = 64 * sum, scale[n] = 0.01f + 0.001f * n;
    }
    q[0] = -127, q[1] = 127;                     /* the extremes (comp recomputed) */
    for (int n = 0; n < NT; n++) {
        int32_t sum = 0;
        for (int k = 0; k < K; k++) sum += q[(size_t)n * Kp + k];
        comp[n] = 64 * sum;
    }
    frnn_q8_pack(q, (size_t)Kp, NT, K, Kp, packed);
    const frnn_q8_mat whole = {packed, scale, comp, NT, K, Kp, 0, (int)(frnn_q8_packed_bytes(NT, Kp) / Kp)};
    const frnn_q8_mat W = frnn_q8_rows(&whole, r0, N);
    for (int i = 0; i < M * K; i++) A[i] = 2 * urnd();
    if (M > 3) {
        memset(A + K, 0, sizeof(float) * K);      /* a zero row */
        A[2 * K + K / 2] = NAN;                  /* a NaN row */
    }
    for (int i = 0; i < M * N; i++) C0[i] = urnd();
    memcpy(Ct, C0, sizeof(float) * M * N), memcpy(Cr, C0, sizeof(float) * M * N);
    frnn_set_amx_mode(FRNN_AMX_EMULATED);
    CHECK(frnn_amx_q8_mul(&W, seg, u0, u1, M, A, (size_t)K, beta, Ct, (size_t)N), "int8: the tiles did not run");
    frnn_set_amx_mode(FRNN_AMX_OFF);
    frnn_q8_mul(&W, seg, u0, u1, M, A, (size_t)K, beta, Cr, (size_t)N);
    CHECK(memcmp(Ct, Cr, sizeof(float) * M * N) == 0,
          "int8 tiles vs the vector path (M %d N %d K %d view %d seg %d cols %d..%d beta %d): bits differ", M, N, K, r0,
          seg, u0, u1, beta);
    int untouched = 1;                             /* columns outside [u0, u1) of a segment stay */
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++)
            if (n % seg < u0 || n % seg >= u1) untouched &= frnn_f32_bits(Ct[i * N + n]) == frnn_f32_bits(C0[i * N + n]);
    CHECK(untouched, "int8 tiles wrote columns outside their range (M %d N %d)", M, N);
    free(q), free(packed), free(scale), free(A), free(comp), free(C0), free(Ct), free(Cr);
}

static void test_q8_products(void)
{
    const int isa = frnn_q8_isa_active();
    for (int path = 0; path <= 1; path++) {        /* vs the reference, and vs the CPU's own path */
        frnn_q8_set_isa(path == 0 ? FRNN_Q8_REF : isa);
        static const int Ms[] = {16, 17, 33, 40}, Ks[] = {1, 64, 65, 200};
        for (size_t m = 0; m < 4; m++)
            for (size_t k = 0; k < 4; k++) {
                const int beta = (int)((m + k) & 1);
                q8_case(Ms[m], 40, Ks[k], 0, 40, 0, 40, beta);
                q8_case(Ms[m], 13, Ks[k], 3, 13, 0, 13, beta);         /* a view, mid-panel */
                q8_case(Ms[m], 70, Ks[k], 0, 35, 5, 29, beta);         /* two segments, some columns */
                q8_case(Ms[m], 8, Ks[k], 8, 8, 1, 7, beta);
            }
    }
    frnn_q8_set_isa(isa);
}

int frnn_test_amx(void)
{
    test_instructions();
    test_bf16_products();
    test_team();
    test_q8_products();
    frnn_set_amx_mode(-1);
    printf("amx: the tile path run through the emulation%s\n",
           frnn_amx_supported() ? " (this CPU has AMX: see tests/test_amx.py for the hardware)" : " (no AMX here)");
    return fails;
}
