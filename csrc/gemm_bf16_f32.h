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
/* This thread's areas (kept_area.h: kept between steps and calls, freed when the thread exits;
 * 64-byte aligned; NULL without memory): a recurrent product's staging rows (gemm_bf16_rec.h) and
 * a team product's block of A (it was a malloc per product). */
enum { BF32_AREA, BF32_APK, BF32_TMP, BB_ROWS, BB_APK, FRNN_KEPT_N };   /* BB_*: gemm_bf16_512.h */
#include "kept_area.h"
#include "transpose8_avx2.h"

static float *bf32_area(size_t n) { return frnn_kept_grow(BF32_AREA, sizeof(float) * n); }

/* The staging passes below round with MXCSR.DAZ on (bf32_daz_begin .. bf32_daz_end): there
 * x * 1 turns a denormal into a zero of its sign and a NaN into a quiet NaN of the same sign and
 * payload -- what frnn_bf16_round does to them with 9 of bg_round8's 14 vector operations -- so
 * bf32_round8 is left with the RNE step and a NaN's truncation. `one` is 1.0f hidden from the
 * compiler (x * 1 is not folded away, nor moved above the MXCSR write: it depends on the volatile
 * asm after it); the memory clobber keeps every store before MXCSR is restored. */
__attribute__((target("avx2"), always_inline)) static inline __m256 bf32_daz_begin(unsigned *csr)
{
    *csr = _mm_getcsr();
    _mm_setcsr(*csr | 0x0040u);
    __m256 one = _mm256_set1_ps(1.0f);
    __asm__ volatile("" : "+x"(one));
    return one;
}

static inline void bf32_daz_end(unsigned csr)
{
    __asm__ volatile("" ::: "memory");
    _mm_setcsr(csr);
}

/* frnn_bf16_round of 8 floats, MXCSR.DAZ on (see above): the same bits as bg_round8. */
__attribute__((target("avx2"), always_inline)) static inline __m256 bf32_round8(__m256 x, __m256 one)
{
    const __m256 y = _mm256_mul_ps(x, one);                /* DAZ, NaNs quieted */
    const __m256i u = _mm256_castps_si256(y), top = _mm256_set1_epi32((int)0xffff0000u);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), top);
    return _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_and_si256(u, top)),
                            _mm256_cmp_ps(y, y, _CMP_UNORD_Q));
}

/* This kernel and these panels can use the float32 kernels for M rows. */
static int bf32_on(int kernel, int nr, int M)
{
    return kernel == FRNN_BF16_AVX2 && M >= BF32_MIN_ROWS && nr == frnn_nr() && frnn_isa_active() != FRNN_ISA_NONE;
}

/* dst[c' * ldd + r'] = bf16(src[r * lds + c]) for r < R, c < C, with (r', c') = (r ^ 1, c) when
 * swap_r, else (r, c ^ 1): a transpose that rounds and pair-swaps as it goes, in 8 x 8 tiles held
 * in registers (gemm.c's transpose_avx2 with each loaded row rounded and a row pair's loads or
 * stores exchanged -- even tile origins, so a pair never straddles tiles). It replaces a transpose
 * followed by a second pass rounding and swapping in place. The values and positions are the same. */
__attribute__((target("avx2"))) static void bf32_trans(int R, int C, const float *src, size_t lds, float *dst,
                                                       size_t ldd, int swap_r)
{
    const int R8 = R & ~7, C8 = C & ~7, sr = swap_r ? 1 : 0, sc = swap_r ? 0 : 1;
    unsigned csr;
    const __m256 one = bf32_daz_begin(&csr);
    for (int r = 0; r < R8; r += 8)
        for (int c = 0; c < C8; c += 8) {
            const float *s = src + (size_t)r * lds + c;
            __m256 x[8];
            for (int j = 0; j < 8; j++)
                x[j] = bf32_round8(_mm256_loadu_ps(s + (size_t)(j ^ sr) * lds), one);
            frnn_transpose8x8(x);
            float *d = dst + (size_t)c * ldd + r;
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + (size_t)(j ^ sc) * ldd, x[j]);
        }
    bf32_daz_end(csr);
    for (int r = 0; r < R; r++)           /* the rows below the tiles, the columns right of them */
        for (int c = r < R8 ? C8 : 0; c < C; c++)
            dst[(size_t)(c ^ sc) * ldd + (r ^ sr)] = frnn_bf16_round(src[(size_t)r * lds + c]);
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
    if (rsa == 1 && csa != 1 && rows > 1 && round) {   /* A^T: one rounding, swapping transpose */
        bf32_trans(K, rows, A, csa, out, (size_t)Kp, 1);
        if (K & 1)
            for (int i = 0; i < rows; i++) out[(size_t)i * Kp + K - 1] = 0.0f;   /* the missing odd element */
        return;
    }
    if (rsa == 1 && csa != 1 && rows > 1) {
        frnn_transpose(K, rows, A, csa, out, (size_t)Kp);
        A = out, rsa = (size_t)Kp, csa = 1;
    }
    unsigned csr;
    const __m256 one = bf32_daz_begin(&csr);
    for (int i = 0; i < rows; i++) {
        const float *a = A + (size_t)i * rsa;
        float *o = out + (size_t)i * Kp;
        int k = 0;
        if (csa == 1)
            for (; k + 8 <= K; k += 8) {
                __m256 v = _mm256_loadu_ps(a + k);
                if (round) v = bf32_round8(v, one);
                _mm256_storeu_ps(o + k, _mm256_permute_ps(v, 0xb1));
            }
        for (; k < Kp; k += 2) {                  /* (in place: both read before either is written) */
            float e = a[(size_t)k * csa], d = k + 1 < K ? a[(size_t)(k + 1) * csa] : 0.0f;
            if (round) e = frnn_bf16_round(e), d = frnn_bf16_round(d);
            o[k] = d, o[k + 1] = e;
        }
    }
    bf32_daz_end(csr);
}

/* For rows i < M: o_i[c ^ 1] = bf16(x_i[c]) for c in [c0, c1 - (c1 - c0) % 8), c0 even (row i of x
 * at x + i * ldx, of o at o + i * ldo): runs of 8 from an even column never split a pair
 * (frnn_bf32_stage; the rest is its scalar loop). */
__attribute__((target("avx2"))) static void bf32_stage_rows(int M, const float *x, size_t ldx, int c0, int c1, float *o,
                                                            size_t ldo)
{
    unsigned csr;
    const __m256 one = bf32_daz_begin(&csr);
    for (int i = 0; i < M; i++)
        for (int c = c0; c + 8 <= c1; c += 8)
            _mm256_storeu_ps(o + (size_t)i * ldo + c,
                             _mm256_permute_ps(bf32_round8(_mm256_loadu_ps(x + (size_t)i * ldx + c), one), 0xb1));
    bf32_daz_end(csr);
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
        /* zeros where no value lands: the columns past width, an odd K's row K - 1 (op(W)'s
           missing row K, pair-swapped) */
        if (width < nr) memset(panel, 0, sizeof(float) * (size_t)Kp * nr);
        else if (K & 1) memset(panel + (size_t)(K - 1) * nr, 0, sizeof(float) * nr);
        if (trans)          /* op(W)[k][n] = W[n][k]: 8 x 8 transposes rounding as they load, row k
                               of op(W) stored at panel row k ^ 1 */
            bf32_trans(width, K, W + (size_t)col * ldw + k0, ldw, panel, (size_t)nr, 0);
        else if (width == nr) { /* whole panels: 8 lanes at a time, inline (a call per row and panel cost
                                   more than the rounding of its two vectors) */
            unsigned csr;
            const __m256 one = bf32_daz_begin(&csr);
            for (int k = 0; k < K; k++) {
                const float *w = W + (size_t)(k0 + k) * ldw + col;
                float *o = panel + (size_t)(k ^ 1) * nr;
                for (int v = 0; v < nr; v += 8) _mm256_storeu_ps(o + v, bf32_round8(_mm256_loadu_ps(w + v), one));
            }
            bf32_daz_end(csr);
        }
        else
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

/* C[0:rows, 0:width) += S (rows x nr), plain float32 (MXCSR as the caller has it). */
__attribute__((target("avx2"))) static void bf32_add(int rows, int width, int nr, const float *S, float *C, size_t ldc)
{
    if (width == 16 && nr == 16) {      /* a whole panel of the AVX2 engine: no inner loop */
        for (int i = 0; i < rows; i++, C += ldc, S += 16) {
            _mm256_storeu_ps(C, _mm256_add_ps(_mm256_loadu_ps(C), _mm256_loadu_ps(S)));
            _mm256_storeu_ps(C + 8, _mm256_add_ps(_mm256_loadu_ps(C + 8), _mm256_loadu_ps(S + 8)));
        }
        return;
    }
    const int w8 = width & ~7;
    for (int i = 0; i < rows; i++) {
        float *c = C + (size_t)i * ldc;
        const float *s = S + (size_t)i * nr;
        for (int j = 0; j < w8; j += 8) _mm256_storeu_ps(c + j, _mm256_add_ps(_mm256_loadu_ps(c + j), _mm256_loadu_ps(s + j)));
        for (int j = w8; j < width; j++) c[j] = c[j] + s[j];
    }
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
    if (acc) bf32_add(rows, width, nr, tmp, C, ldc);
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

/* frnn_team_gemm_bf16 on the float32 kernels (same splits and barriers; g->K > 0) for ng products
 * sharing A (the same M, K, A, rsa, csa; ng 1, or 2 for frnn_team_gemm_bf16_pair): each op(W)
 * packed in float32 panels of rounded, swapped values per block of FRNN_KC (`pack` holds
 * frnn_team_gemm_floats(N) floats per product, one after the other), each member's rows of A
 * rounded and swapped ONCE per block for all the products. Every element of C is the same chain
 * as in a product of its own. */
static void bf32_team_gemm(const frnn_par *par, const frnn_gemm_args *g, int ng, float *pack)
{
    int m0, m1;
    frnn_split(g->M, FRNN_MR, par->tid, par->nth, &m0, &m1);
    const int nr = frnn_nr();
    float small[FRNN_MR * FRNN_KC], tmp[FRNN_MC * 32];
    float *apk = m1 > m0 ? frnn_kept_grow(BF32_APK, sizeof(float) * FRNN_MC * FRNN_KC) : NULL;
    const int mc = apk != NULL ? FRNN_MC : FRNN_MR;     /* without memory: one tile at a time */
    float *ab = apk != NULL ? apk : small;
    for (int k0 = 0; k0 < g->K; k0 += FRNN_KC) {
        const int K = g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC, Kp = K + (K & 1);
        frnn_pk blk[2];
        float *at = pack;
        for (int j = 0; j < ng; j++) {
            frnn_pk_init(&blk[j], Kp, g[j].N, g[j].N, at);
            at += frnn_pk_floats(Kp, g[j].N, g[j].N);
            int q0, q1;
            frnn_split(blk[j].panels, 1, par->tid, par->nth, &q0, &q1);
            bf32_pack(&blk[j], K, g[j].W, g[j].ldw, g[j].trans_w, k0, q0, q1);
        }
        frnn_sync(par);
        for (int i0 = m0; i0 < m1; i0 += mc) {
            const int rows = m1 - i0 < mc ? m1 - i0 : mc;
            bf32_rows(rows, K, Kp, g->A + (size_t)k0 * g->csa + (size_t)i0 * g->rsa, g->rsa, g->csa, 1, ab);
            for (int j = 0; j < ng; j++)
                for (int p = 0; p < blk[j].panels; p++)
                    bf32_run(rows, Kp, ab, blk[j].data + (size_t)p * Kp * nr, nr,
                             g[j].C + (size_t)i0 * g[j].ldc + frnn_pk_col(&blk[j], p), g[j].ldc, frnn_pk_width(&blk[j], p),
                             g[j].beta || k0 > 0, tmp);
        }
        frnn_sync(par);                                   /* the pack buffer is reused next */
    }
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
