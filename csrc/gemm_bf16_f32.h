/* gemm_bf16_f32.h - the bf16 products of many rows on the float32 micro-kernels (AVX2 CPUs),
 * included by gemm_bf16.c.
 *
 * The AVX2 bf16 kernel (bk_avx2_*) widens every weight pair and rounds A per block of MR <= 5
 * rows: compute-bound products ran slower in bf16 than in float32. The same bits come from the
 * float32 engine's micro-kernels (microkernel.h, frnn_pk_mul), because:
 *   - the product of two bf16 values (8-bit significands) is exact in float32, so bf16.h's
 *     frnn_bf16_fma(a, b, s) is one float32 FMA on the bf16 values with DAZ in and FTZ out
 *     (tininess after rounding): MXCSR.FTZ|DAZ on an x86 FMA (bf16.h; the AVX2 bf16 kernels rely
 *     on the same);
 *   - the float32 kernels compute every element as ONE chain of FMAs in k order from +0
 *     (acc = fma(a[k], w[k], acc), broadcast A times panel, the same operand order as the bf16
 *     kernels), whatever the row tile (micro1..6) or the thread split;
 *   - so with A's rows and the panels holding bf16-rounded values, each pair of k stored (odd,
 *     even) -- position k ^ 1 -- and K padded to an even Kp with a zero pair element, the chain is
 *     frnn_bf16_dot's: from +0, per pair the odd product first, then the even one, each an FMA
 *     under FTZ|DAZ; the zero padding is fma(0, 0, s) in both;
 *   - the K blocks are the bf16 callers' own (FRNN_KC = 256, even, for the team product and the
 *     packed W_ih^T; the whole K for a recurrent product's panels): one kernel call per block,
 *     and C is added after each block as one plain float32 addition with MXCSR restored (the
 *     kernel then writes its sums to a small buffer; a first block, acc 0, stores them to C).
 * Which rows take this path depends on the product's shape only (BF32_MIN_ROWS rows of the whole
 * product, or of the call for a recurrent product), and both paths give the same bits anyway.
 */

#define BF32_MIN_ROWS 8      /* rows from which a bf16 product runs on the float32 kernels */

#if FRNN_BF16_X86
/* This kernel and these panels can use the float32 kernels for M rows. */
static int bf32_on(int kernel, int nr, int M)
{
    return kernel == FRNN_BF16_AVX2 && M >= BF32_MIN_ROWS && nr == frnn_nr() && frnn_isa_active() != FRNN_ISA_NONE;
}

/* out (rows x Kp, row-major) = A's rows [k0 .. k0 + K) read with strides (rsa, csa), rounded to
 * bf16 when `round` (else they are bf16 already), each pair of k stored (odd, even), an odd K's
 * missing odd element 0. One pass over contiguous rows (round and swap 8 lanes at a time: runs
 * from an even k never split a pair); A^T (rsa 1) is first transposed into `out` by 8 x 8 tiles
 * (frnn_transpose), then rounded and swapped in place -- rounding it element by element as read
 * (a stride of a row per k) made the bf16 weight gradients' staging several times dearer. */
__attribute__((target("avx2"))) static void bf32_rows(int rows, int K, int Kp, const float *A, size_t rsa,
                                                      size_t csa, int round, float *out)
{
    if (rsa == 1 && csa != 1 && rows > 1) {
        frnn_transpose(K, rows, A, csa, out, (size_t)Kp);
        A = out, rsa = (size_t)Kp, csa = 1;
    }
    for (int i = 0; i < rows; i++) {
        const float *a = A + (size_t)i * rsa;
        float *o = out + (size_t)i * Kp;
        int k = 0;
        if (csa == 1)
            for (; k + 8 <= K; k += 8) {
                __m256 v = _mm256_loadu_ps(a + k);
                if (round) v = _mm256_castsi256_ps(bg_round8(_mm256_castps_si256(v)));
                _mm256_storeu_ps(o + k, _mm256_permute_ps(v, 0xb1));
            }
        for (; k < Kp; k += 2) {                  /* (in place: both read before either is written) */
            float e = a[(size_t)k * csa], d = k + 1 < K ? a[(size_t)(k + 1) * csa] : 0.0f;
            if (round) e = frnn_bf16_round(e), d = frnn_bf16_round(d);
            o[k] = d, o[k + 1] = e;
        }
    }
}

/* float32 panels [p0, p1) of blk (blk->K = Kp) from rows [k0, k0 + K) of op(W), rounded to bf16
 * and pair-swapped (row k of op(W) at panel row k ^ 1), zero padded. */
__attribute__((target("avx2"))) static void bf32_pack(const frnn_pk *blk, int K, const float *W, size_t ldw,
                                                      int trans, int k0, int p0, int p1)
{
    const int nr = blk->nr, Kp = blk->K;
    for (int p = p0; p < p1; p++) {
        float *panel = blk->data + (size_t)p * Kp * nr;
        const int col = frnn_pk_col(blk, p), width = frnn_pk_width(blk, p);
        memset(panel, 0, sizeof(float) * (size_t)Kp * nr);
        if (trans) {        /* op(W)[k][n] = W[n][k]: 8 x 8 transposes, then each pair of panel
                               rows rounded and swapped (the zero padding rounds to zero) */
            frnn_transpose(width, K, W + (size_t)col * ldw + k0, ldw, panel, (size_t)nr);
            for (int k = 0; k < Kp; k += 2)
                for (int v = 0; v < nr; v += 8) {
                    float *r0 = panel + (size_t)k * nr + v, *r1 = r0 + nr;
                    const __m256i x = bg_round8(_mm256_loadu_si256((const __m256i *)r0));
                    _mm256_storeu_si256((__m256i *)r0, bg_round8(_mm256_loadu_si256((const __m256i *)r1)));
                    _mm256_storeu_si256((__m256i *)r1, x);
                }
        } else
            for (int k = 0; k < K; k++) bg_round_avx2(W + (size_t)(k0 + k) * ldw + col, 1, width, panel + (size_t)(k ^ 1) * nr);
    }
}

/* A bf16 panel (Kp / 2 pair rows of nr words) as the float32 panel bf32_pack makes: row 2j the odd
 * elements (the high halves), row 2j + 1 the even ones (a 16-bit shift). */
__attribute__((target("avx2"))) static void bf32_widen(const uint32_t *P, int Kp, int nr, float *out)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int j = 0; j < Kp / 2; j++)
        for (int v = 0; v < nr; v += 8) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(P + (size_t)j * nr + v));
            _mm256_storeu_si256((__m256i *)(out + (size_t)2 * j * nr + v), _mm256_and_si256(w, hi));
            _mm256_storeu_si256((__m256i *)(out + (size_t)(2 * j + 1) * nr + v), _mm256_slli_epi32(w, 16));
        }
}

__attribute__((target("avx2"))) static inline void bf32_add8(float *c, const float *s)
{
    _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), _mm256_loadu_ps(s)));
}

/* C[0:rows, 0:width) (+)= a (rows x Kp, swapped) @ one float32 panel: the float32 kernels under
 * FTZ|DAZ, then C's addition in plain float32 (tmp: rows x nr floats). */
static void bf32_run(int rows, int Kp, const float *a, const float *panel, int nr, float *C, size_t ldc,
                     int width, int acc, float *tmp)
{
    frnn_pk pk = {Kp, width, width, 1, 1, nr, (float *)panel};
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
    frnn_pk_mul(&pk, 0, 1, rows, a, (size_t)Kp, 1, acc ? tmp : C, acc ? (size_t)nr : ldc, 0);
    _mm_setcsr(csr);
    if (acc)
        for (int i = 0; i < rows; i++) {
            float *c = C + (size_t)i * ldc;
            const float *s = tmp + (size_t)i * nr;
            int j = 0;
            for (; j + 8 <= width; j += 8) bf32_add8(c + j, s + j);
            for (; j < width; j++) c[j] = c[j] + s[j];
        }
}

/* frnn_bpk_mul on the float32 kernels: the bf16 panels widened once per block of FRNN_MC rows.
 * Returns 0 (nothing done) without memory. */
static int bf32_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                        int round_a, float *C, size_t ldc, int acc)
{
    const int Kp = pk->Kp, nr = pk->nr, mc = M < FRNN_MC ? M : FRNN_MC;
    float *a = malloc(sizeof(float) * ((size_t)mc * Kp + (size_t)Kp * nr + (size_t)mc * nr));
    if (a == NULL) return 0;
    float *panel = a + (size_t)mc * Kp, *tmp = panel + (size_t)Kp * nr;
    const size_t pstride = (size_t)(Kp / 2) * nr;
    for (int i0 = 0; i0 < M; i0 += mc) {
        const int rows = M - i0 < mc ? M - i0 : mc;
        bf32_rows(rows, pk->K, Kp, A + (size_t)i0 * rsa, rsa, csa, round_a, a);
        for (int p = p0; p < p1; p++) {
            bf32_widen(pk->data + (size_t)p * pstride, Kp, nr, panel);
            bf32_run(rows, Kp, a, panel, nr, C + (size_t)i0 * ldc + frnn_bpk_col(pk, p), ldc, frnn_bpk_width(pk, p),
                     acc, tmp);
        }
    }
    free(a);
    return 1;
}

/* frnn_team_gemm_bf16 on the float32 kernels (same splits and barriers; g->K > 0): op(W) packed in
 * float32 panels of rounded, swapped values per block of FRNN_KC (`pack` holds
 * frnn_team_gemm_floats(N) floats), each member's rows of A rounded and swapped per block. */
static void bf32_team_gemm(const frnn_par *par, const frnn_gemm_args *g, float *pack)
{
    int m0, m1;
    frnn_split(g->M, FRNN_MR, par->tid, par->nth, &m0, &m1);
    const int nr = frnn_nr();
    float small[FRNN_MR * FRNN_KC], tmp[FRNN_MC * 32];
    float *apk = m1 > m0 ? malloc(sizeof(float) * FRNN_MC * FRNN_KC) : NULL;
    const int mc = apk != NULL ? FRNN_MC : FRNN_MR;     /* without memory: one tile at a time */
    float *ab = apk != NULL ? apk : small;
    for (int k0 = 0; k0 < g->K; k0 += FRNN_KC) {
        const int K = g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC, Kp = K + (K & 1);
        frnn_pk blk;
        frnn_pk_init(&blk, Kp, g->N, g->N, pack);
        int q0, q1;
        frnn_split(blk.panels, 1, par->tid, par->nth, &q0, &q1);
        bf32_pack(&blk, K, g->W, g->ldw, g->trans_w, k0, q0, q1);
        frnn_sync(par);
        const int acc = g->beta || k0 > 0;
        for (int i0 = m0; i0 < m1; i0 += mc) {
            const int rows = m1 - i0 < mc ? m1 - i0 : mc;
            bf32_rows(rows, K, Kp, g->A + (size_t)k0 * g->csa + (size_t)i0 * g->rsa, g->rsa, g->csa, 1, ab);
            for (int p = 0; p < blk.panels; p++)
                bf32_run(rows, Kp, ab, blk.data + (size_t)p * Kp * nr, nr, g->C + (size_t)i0 * g->ldc + frnn_pk_col(&blk, p),
                         g->ldc, frnn_pk_width(&blk, p), acc, tmp);
        }
        frnn_sync(par);                                   /* the pack buffer is reused next */
    }
    free(apk);
}
#else
static int bf32_on(int kernel, int nr, int M) { (void)kernel, (void)nr, (void)M; return 0; }
static int bf32_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa,
                        int round_a, float *C, size_t ldc, int acc)
{
    (void)pk, (void)p0, (void)p1, (void)M, (void)A, (void)rsa, (void)csa, (void)round_a, (void)C, (void)ldc, (void)acc;
    return 0;
}
#endif
