/* gemm_bf16_512.h - the bf16 products on AVX512-BF16 (Zen 4+, Cooper Lake+), included by
 * gemm_bf16.c after gemm_bf16_f32.h.
 *
 * The first AVX512-BF16 kernel (bk_avx512bf16_*, gone) converted A to bf16 pairs element by element,
 * in scalar code, inside every kernel call and for every panel, and held at most 8 accumulators:
 * it ran bf16 products at a fraction of what vdpbf16ps (two bf16 products per float32 lane, the
 * float32 FMA's rate) allows. As oneDNN's brgemm and BLIS do, the work is split instead into
 *   - staging: A's rows converted ONCE per product (or per step, for all gate segments) to bf16
 *     pairs -- one 32-bit word per pair of k, the layout vdpbf16ps reads -- with VCVTNE2PS2BF16,
 *     whose rounding is frnn_bf16_from_f32's (RNE, denormals read as zero, NaNs quieted);
 *   - panels: op(W) packed with the same conversion, 16 words a vector (frnn_bpk layout);
 *   - micro-kernels of up to 12 rows x 32 columns (24 zmm accumulators): per pair of k two panel
 *     vectors and one broadcast word a row, no conversion in the loop.
 * The bits do not change: every element is still one vdpbf16ps chain over the pairs in k order
 * from +0, and C is added after each block in plain float32 (engine_bf16.h).
 */

#if FRNN_BF16_X86
#define BB_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* 16 floats -> 16 bf16 (VCVTNEPS2BF16) in the low half of each 32-bit lane */
BB_TARGET static inline __m512i bb_cvt16(__m512 x) { return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x)); }

/* Words j of pair rows: lo[n] | hi[n] << 16 for 16 lanes (even element low, as vdpbf16ps reads). */
BB_TARGET static inline __m512i bb_pairs16(__m512 lo, __m512 hi)
{
    return _mm512_or_si512(bb_cvt16(lo), _mm512_slli_epi32(bb_cvt16(hi), 16));
}

/* r[n] = column n of the 16 x 16 word matrix whose rows were r[0..15] (unpacks within 128-bit
 * lanes give 4 x 4 blocks, two rounds of lane shuffles put them in place). */
BB_TARGET static inline void bb_tr16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 8; i++)
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 4; i++) {     /* r[4i + c], lane L: column 4L + c of rows 4i .. 4i + 3 */
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]), r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; c++) {
        const __m512i a88 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88), b88 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
        const __m512i add = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd), bdd = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
        t[c] = _mm512_shuffle_i32x4(a88, b88, 0x88), t[8 + c] = _mm512_shuffle_i32x4(a88, b88, 0xdd);
        t[4 + c] = _mm512_shuffle_i32x4(add, bdd, 0x88), t[12 + c] = _mm512_shuffle_i32x4(add, bdd, 0xdd);
    }
    for (int n = 0; n < 16; n++) r[n] = t[n];
}

/* out[i * ldo + j] = the pair word of A's row i at k = 2j, 2j + 1 for j < ceil(K / 2) (an odd K's
 * missing element 0); A (rows, K) read with strides (rsa, csa). Contiguous rows: 32 floats to 16
 * words per VCVTNE2PS2BF16 (k order kept: bf16 element k sits at half k of the row). A^T (rsa 1):
 * 16 rows at once, two k rows loaded as vectors over i and interleaved into words, then scattered
 * a word a row (the transpose of a word block). */
BB_TARGET static void bb_stage(int rows, int K, const float *A, size_t rsa, size_t csa, uint32_t *out, size_t ldo)
{
    const int Kw = (K + 1) / 2;
    if (csa == 1) {
        for (int i = 0; i < rows; i++) {
            const float *a = A + (size_t)i * rsa;
            uint32_t *o = out + (size_t)i * ldo;
            int k = 0;
            for (; k + 32 <= K; k += 32)
                _mm512_storeu_si512(o + k / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(a + k)));
            if (k < K) {                           /* the tail: masked loads read zeros past K */
                const int n = K - k;
                const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
                const __mmask16 m1 = n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
                const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, a + k + 16), _mm512_maskz_loadu_ps(m0, a + k));
                _mm512_mask_storeu_epi32(o + k / 2, (__mmask16)((1u << (Kw - k / 2)) - 1), w);
            }
        }
        return;
    }
    if (rsa == 1) {
        int i = 0;
        for (; i + 16 <= rows; i += 16)
            for (int j0 = 0; j0 < Kw; j0 += 16) {   /* 16 pair rows x 16 rows of A, transposed */
                const int nj = Kw - j0 < 16 ? Kw - j0 : 16;
                __m512i v[16];
                for (int j = 0; j < 16; j++) {
                    const int k = 2 * (j0 + j);
                    const __m512 lo = j < nj ? _mm512_loadu_ps(A + (size_t)k * csa + i) : _mm512_setzero_ps();
                    const __m512 hi = k + 1 < K && j < nj ? _mm512_loadu_ps(A + (size_t)(k + 1) * csa + i) : _mm512_setzero_ps();
                    v[j] = bb_pairs16(lo, hi);
                }
                bb_tr16(v);
                const __mmask16 m = (__mmask16)((1u << nj) - 1);
                for (int r = 0; r < 16; r++) _mm512_mask_storeu_epi32(out + (size_t)(i + r) * ldo + j0, m, v[r]);
            }
        A += i, out += (size_t)i * ldo, rows -= i;
    }
    for (int i = 0; i < rows; i++)                  /* any strides: element by element */
        for (int j = 0; j < Kw; j++) {
            const float *a = A + (size_t)i * rsa + (size_t)(2 * j) * csa;
            out[(size_t)i * ldo + j] = (uint32_t)frnn_bf16_from_f32(a[0]) | (uint32_t)(2 * j + 1 < K ? frnn_bf16_from_f32(a[csa]) : 0) << 16;
        }
}

/* Panels [p0, p1) of blk from rows [k0, k0 + blk->K) of op(W) (engine_bf16.h's layout). */
BB_TARGET static void bb_pack(const frnn_bpk *pk, const float *W, size_t ldw, int trans, int k0, int p0, int p1)
{
    const int K = pk->K, Kw = pk->Kp / 2, nr = pk->nr;
    for (int p = p0; p < p1; p++) {
        uint32_t *panel = pk->data + (size_t)p * Kw * nr;
        const int col = frnn_bpk_col(pk, p), width = frnn_bpk_width(pk, p);
        if (trans) {            /* column n of op(W) is row col + n of W: its pairs are contiguous,
                                   staged as a row of words, then stored a word per pair row */
            for (int h = 0; h < nr; h += 16)        /* 16 columns x 16 pair rows, transposed */
                for (int j0 = 0; j0 < Kw; j0 += 16) {
                    const int nj = Kw - j0 < 16 ? Kw - j0 : 16, k = 2 * j0, kn = K - k < 32 ? K - k : 32;
                    const __mmask16 m0 = kn >= 16 ? 0xffff : (__mmask16)((1u << kn) - 1);
                    const __mmask16 m1 = kn <= 16 ? 0 : kn >= 32 ? 0xffff : (__mmask16)((1u << (kn - 16)) - 1);
                    __m512i v[16];
                    for (int n = 0; n < 16; n++) {
                        const float *w = W + (size_t)(col + h + n) * ldw + k0 + k;
                        v[n] = h + n < width ? (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, w + 16), _mm512_maskz_loadu_ps(m0, w))
                                             : _mm512_setzero_si512();
                    }
                    bb_tr16(v);
                    for (int j = 0; j < nj; j++) _mm512_storeu_si512(panel + (size_t)(j0 + j) * nr + h, v[j]);
                }
            continue;
        }
        for (int h = 0; h < nr; h += 16) {          /* 16 columns at a time, masked past width */
            const int n = width - h;
            const __mmask16 m = n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
            for (int j = 0; j < Kw; j++) {
                const float *w = W + (size_t)(k0 + 2 * j) * ldw + col + h;
                const __m512 lo = _mm512_maskz_loadu_ps(m, w);
                const __m512 hi = 2 * j + 1 < K ? _mm512_maskz_loadu_ps(m, w + ldw) : _mm512_setzero_ps();
                _mm512_storeu_si512(panel + (size_t)j * nr + h, bb_pairs16(lo, hi));
            }
        }
    }
}

/* C[q] (MR rows, width[q] columns) (+)= staged a (MR rows of Kw words, stride lda) @ panel q of
 * NPAN panels at P + q * pstride (32 words a pair row): MR x 2 NPAN accumulators. */
typedef void (*bb_fn)(int Kw, const uint32_t *a, size_t lda, const uint32_t *P, size_t pstride, float *const *C,
                      size_t ldc, const int *width, int acc, const float *const *bias);

#define BB_KERNEL(MR, NPAN)                                                                        \
    BB_TARGET static void bb_##MR##_##NPAN(int Kw, const uint32_t *a, size_t lda, const uint32_t *P, \
                                           size_t pstride, float *const *C, size_t ldc, const int *width, int acc, \
                                           const float *const *bias)                                   \
    {                                                                                              \
        enum { NV = 2 * NPAN };                                                                    \
        __m512 c[MR][NV];                                                                          \
        for (int i = 0; i < MR; i++)                                                               \
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();                            \
        for (int q = 0; q < NPAN; q++)          /* C is read and written after the k loop */        \
            for (int i = 0; i < MR; i++) __builtin_prefetch(C[q] + (size_t)i * ldc, 1, 3);         \
        for (int j = 0; j < Kw; j++) {                                                             \
            __m512i wv[NV];                                                                        \
            for (int v = 0; v < NV; v++)                                                           \
                wv[v] = _mm512_loadu_si512((const void *)(P + (size_t)(v / 2) * pstride + (size_t)j * 32 + (v % 2) * 16)); \
            for (int i = 0; i < MR; i++) {                                                         \
                const __m512i x = _mm512_set1_epi32((int)a[(size_t)i * lda + j]);                 \
                for (int v = 0; v < NV; v++) c[i][v] = _mm512_dpbf16_ps(c[i][v], (__m512bh)x, (__m512bh)wv[v]); \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < NPAN; q++) {                                                           \
            const int w = width[q];                                                                \
            const __mmask16 m0 = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1);                    \
            const __mmask16 m1 = w >= 32 ? 0xffff : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1); \
            for (int i = 0; i < MR; i++) {                                                         \
                float *cq = C[q] + (size_t)i * ldc;                                                \
                __m512 s0 = c[i][2 * q], s1 = c[i][2 * q + 1];                                     \
                /* the bias row in place of C's (the value C held: the same sum) */                \
                const float *add = bias ? bias[q] : acc ? cq : NULL;                               \
                if (add) {                     /* plain float32 (MXCSR as the caller has it) */      \
                    s0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, add), s0);                        \
                    s1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, add + 16), s1);                   \
                }                                                                                  \
                _mm512_mask_storeu_ps(cq, m0, s0);                                                 \
                _mm512_mask_storeu_ps(cq + 16, m1, s1);                                            \
            }                                                                                      \
        }                                                                                          \
    }

BB_KERNEL(1, 1) BB_KERNEL(2, 1) BB_KERNEL(3, 1) BB_KERNEL(4, 1) BB_KERNEL(5, 1) BB_KERNEL(6, 1)
BB_KERNEL(7, 1) BB_KERNEL(8, 1) BB_KERNEL(9, 1) BB_KERNEL(10, 1) BB_KERNEL(11, 1) BB_KERNEL(12, 1)
BB_KERNEL(1, 2) BB_KERNEL(2, 2) BB_KERNEL(3, 2) BB_KERNEL(4, 2) BB_KERNEL(5, 2) BB_KERNEL(6, 2)
BB_KERNEL(1, 4) BB_KERNEL(2, 4)

#define BB_MR 12                           /* rows of the one-panel tiles */
static const bb_fn BB_ONE[BB_MR + 1] = {0, bb_1_1, bb_2_1, bb_3_1, bb_4_1, bb_5_1, bb_6_1,
                                        bb_7_1, bb_8_1, bb_9_1, bb_10_1, bb_11_1, bb_12_1};
static const bb_fn BB_TWO[7] = {0, bb_1_2, bb_2_2, bb_3_2, bb_4_2, bb_5_2, bb_6_2};
static const bb_fn BB_FOUR[3] = {0, bb_1_4, bb_2_4};

/* Panels [p0, p1) of C (M rows) (+)= a (M rows of pk->Kp / 2 staged words, stride lda) @ pk.
 * Up to 6 rows: the panels in groups (2 or 4 at a time, 16-24 accumulators); more: each panel
 * sweeps the rows in tiles of 12 while it stays in L1. */
static void bb_mul(const frnn_bpk *pk, int p0, int p1, int M, const uint32_t *a, size_t lda, float *C, size_t ldc,
                   int acc, const float *bias)
{
    const int Kw = pk->Kp / 2;
    const size_t pstride = (size_t)Kw * pk->nr;
    if (M <= 0) return;
    if (M <= 6) {
        const int np = M <= 2 ? 4 : 2;
        const bb_fn wide = np == 4 ? BB_FOUR[M] : BB_TWO[M];
        int p = p0;
        for (; p + np <= p1; p += np) {
            float *out[4];
            const float *bz[4];
            int width[4];
            for (int q = 0; q < np; q++) {
                out[q] = C + frnn_bpk_col(pk, p + q), width[q] = frnn_bpk_width(pk, p + q);
                bz[q] = bias ? bias + frnn_bpk_col(pk, p + q) : NULL;
            }
            wide(Kw, a, lda, pk->data + (size_t)p * pstride, pstride, out, ldc, width, acc, bias ? bz : NULL);
        }
        for (; p < p1; p++) {
            float *out[1] = {C + frnn_bpk_col(pk, p)};
            const float *bz[1] = {bias ? bias + frnn_bpk_col(pk, p) : NULL};
            const int width[1] = {frnn_bpk_width(pk, p)};
            BB_ONE[M](Kw, a, lda, pk->data + (size_t)p * pstride, pstride, out, ldc, width, acc, bias ? bz : NULL);
        }
        return;
    }
    const int nt = (M + BB_MR - 1) / BB_MR, base = M / nt, extra = M % nt;   /* balanced tiles: 64 rows are
                                                                              6 x 11 or 10, not 5 x 12 + 4 */
    for (int p = p0; p < p1; p++) {
        const int width[1] = {frnn_bpk_width(pk, p)};
        const float *bz[1] = {bias ? bias + frnn_bpk_col(pk, p) : NULL};
        for (int t = 0, i = 0; t < nt; t++) {
            const int mr = base + (t < extra);
            float *out[1] = {C + (size_t)i * ldc + frnn_bpk_col(pk, p)};
            BB_ONE[mr](Kw, a + (size_t)i * lda, lda, pk->data + (size_t)p * pstride, pstride, out, ldc, width, acc,
                       bias ? bz : NULL);
            i += mr;
        }
    }
}

/* This product runs on these kernels (the bf16 panels of the AVX-512 engine). */
static int bb_on(int kernel, int nr) { return kernel == FRNN_BF16_AVX512BF16 && nr == 32; }

/* frnn_bpk_mul on these kernels: A staged once into this thread's area. Returns 0 (nothing done)
 * without memory. */
static int bb_bpk_mul(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa, size_t csa, float *C,
                      size_t ldc, int acc, const float *bias)
{
    const size_t lda = (size_t)pk->Kp / 2;
    uint32_t *a = frnn_kept_grow(BB_ROWS, sizeof(uint32_t) * (size_t)M * lda);
    if (a == NULL) return 0;
    bb_stage(M, pk->K, A, rsa, csa, a, lda);
    bb_mul(pk, p0, p1, M, a, lda, C, ldc, acc, bias);
    return 1;
}

/* frnn_team_gemm_bf16 on these kernels (the same splits and barriers; g->K > 0) for ng products
 * sharing A (ng 1, or 2 for frnn_team_gemm_bf16_pair): each op(W) packed per block of FRNN_KC
 * (`pack` holds the products' blocks one after the other), each member's rows of A staged ONCE
 * per block of FRNN_MC rows for all the products; a panel sweeps a block's rows in L1. */
static void bb_team_gemm(const frnn_par *par, const frnn_gemm_args *g, int ng, float *pack)
{
    int m0, m1;
    frnn_split(g->M, FRNN_MR, par->tid, par->nth, &m0, &m1);
    const int Kc = g->K < FRNN_KC ? g->K : FRNN_KC, mc = FRNN_MC;
    const size_t lda = (size_t)(Kc + 1) / 2;
    uint32_t small[BB_MR * (FRNN_KC / 2)];
    uint32_t *apk = m1 > m0 ? frnn_kept_grow(BB_APK, sizeof(uint32_t) * mc * lda) : NULL;
    const int rows_at_once = apk != NULL ? mc : BB_MR;          /* without memory: a tile at a time */
    uint32_t *ab = apk != NULL ? apk : small;
    for (int k0 = 0; k0 < g->K; k0 += FRNN_KC) {
        const int K = g->K - k0 < FRNN_KC ? g->K - k0 : FRNN_KC;
        frnn_bpk blk[2];
        float *at = pack;
        for (int j = 0; j < ng; j++) {
            frnn_bpk_init(&blk[j], K, g[j].N, g[j].N, at);
            at += frnn_bpk_floats(K, g[j].N, g[j].N);
            int q0, q1;
            frnn_split(blk[j].panels, 1, par->tid, par->nth, &q0, &q1);
            bb_pack(&blk[j], g[j].W, g[j].ldw, g[j].trans_w, k0, q0, q1);
        }
        frnn_sync(par);
        for (int i0 = m0; i0 < m1; i0 += rows_at_once) {
            const int rows = m1 - i0 < rows_at_once ? m1 - i0 : rows_at_once;
            bb_stage(rows, K, g->A + (size_t)k0 * g->csa + (size_t)i0 * g->rsa, g->rsa, g->csa, ab, lda);
            for (int j = 0; j < ng; j++)
                bb_mul(&blk[j], 0, blk[j].panels, rows, ab, lda, g[j].C + (size_t)i0 * g[j].ldc, g[j].ldc,
                       g[j].beta || k0 > 0, NULL);
        }
        frnn_sync(par);                                   /* the pack buffer is reused next */
    }
}
#endif
