/* gemm_bf16_rec.h - the bf16 recurrent operands of a call of many rows on float32 panels
 * (engine_bf16.h: frnn_bf32_*), included by gemm_bf16.c after gemm_bf16_f32.h.
 *
 * A time step multiplies the same op(W) (W_hh, W_hr) by new rows: h_{t-1} forward, dG_t backward.
 * Through frnn_bpk_mul every step widened each bf16 panel to float32 again (bf32_bpk_mul), rounded
 * A again per gate segment, and allocated its buffers: callgrind, 10 steps of M 32, K 256, N 1024:
 * float32 27.2 M instructions, bf16 35.2 M. Here op(W) is packed ONCE per call into float32 panels
 * of bf16-rounded, pair-swapped values (bf32_pack, or widened from a prepacked bf16 operand), and a
 * step rounds and swaps its rows of A once (bf32_rows, into a per-thread area kept between calls)
 * for every segment, then runs each panel on the float32 micro-kernels (bf32_run: FTZ|DAZ, then
 * C's addition in plain float32). The bits are gemm_bf16_f32.h's, i.e. the emulation's.
 * Without the float32 kernels (no AVX2, or no memory for the area) the same panels go through
 * bf16.h's arithmetic element by element: slow, exact.
 */

int frnn_bf32_rows(int M) { return !frnn_amx_bf16_rows(M) && bf32_on(frnn_bf16_kernel(), frnn_nr(), M); }

size_t frnn_bf32_floats(int K, int N, int seg) { return frnn_pk_floats(K + (K & 1), N, seg); }

void frnn_bf32_init(frnn_pk *pk, int K, int N, int seg, float *mem) { frnn_pk_init(pk, K + (K & 1), N, seg, mem); }

void frnn_bf32_pack(const frnn_pk *pk, int K, const float *W, size_t ldw, int trans, int p0, int p1)
{
#if FRNN_BF16_X86
    if (frnn_bf16_kernel_supported(FRNN_BF16_AVX2)) { bf32_pack(pk, K, W, ldw, trans, 0, p0, p1); return; }
#endif
    const int Kp = pk->K, nr = pk->nr;
    for (int p = p0; p < p1; p++) {
        float *panel = pk->data + (size_t)p * Kp * nr;
        const int col = frnn_pk_col(pk, p), width = frnn_pk_width(pk, p);
        memset(panel, 0, sizeof(float) * (size_t)Kp * nr);
        for (int k = 0; k < K; k++)
            for (int j = 0; j < width; j++)
                panel[(size_t)(k ^ 1) * nr + j] = frnn_bf16_round(trans ? W[(size_t)(col + j) * ldw + k] : W[(size_t)k * ldw + col + j]);
    }
}

void frnn_bf32_widen(const frnn_pk *pk, const frnn_bpk *src, int p0, int p1)
{
    const int Kp = pk->K, nr = pk->nr;
    for (int p = p0; p < p1; p++) {
        const uint32_t *w = src->data + (size_t)p * (Kp / 2) * nr;
        float *out = pk->data + (size_t)p * Kp * nr;
#if FRNN_BF16_X86
        if (frnn_bf16_kernel_supported(FRNN_BF16_AVX2)) { bf32_widen(w, Kp, nr, out); continue; }
#endif
        for (int j = 0; j < Kp / 2; j++)
            for (int v = 0; v < nr; v++) {
                out[(size_t)2 * j * nr + v] = frnn_bits_f32(w[(size_t)j * nr + v] & 0xffff0000u);
                out[(size_t)(2 * j + 1) * nr + v] = frnn_bits_f32(w[(size_t)j * nr + v] << 16);
            }
    }
}


#if FRNN_BF16_X86
/* Panels of the segments' columns [u0, u1) of C (M rows) (+)= a @ op(W), a (M x Kp) staged as
 * bf32_rows stages it; tmp (M x nr floats) takes the kernel's sums when C accumulates. */
static void bf32_mul_rows(const frnn_pk *pk, int u0, int u1, int M, const float *a, float *tmp, float *C,
                          size_t ldc, int accumulate)
{
    const int Kp = pk->K, nr = pk->nr, nq = pk->N / pk->seg;
    for (int q = 0; q < nq; q++) {
        int p0, p1;
        frnn_pk_units(pk, q, u0, u1, &p0, &p1);
        for (int p = p0; p < p1; p++) {
            float *c = C + frnn_pk_col(pk, p);
            if (accumulate)    /* a step's C (the gates, projected long before) arrives while the
                                  kernel runs -- it writes tmp; the float32 kernel prefetches its C */
                for (int i = 0; i < M; i++) {
                    __builtin_prefetch(c + (size_t)i * ldc, 1, 3);
                    __builtin_prefetch(c + (size_t)i * ldc + frnn_pk_width(pk, p) - 1, 1, 3);
                }
            bf32_run(M, Kp, a, pk->data + (size_t)p * Kp * nr, nr, c, ldc, frnn_pk_width(pk, p), accumulate, tmp);
        }
    }
}
#endif

/* bf16.h's arithmetic on the same panels, A rounded (and swapped) as frnn_bf32_mul stages it:
 * `staged` 0: A (M, K) as given; 1: A (M x Kp) staged already (a[k ^ 1] holds A's k). */
static void bf32_mul_plain(const frnn_pk *pk, int K, int u0, int u1, int M, const float *A, size_t lda,
                           int staged, float *C, size_t ldc, int accumulate)
{
    const int Kp = pk->K, nr = pk->nr, nq = pk->N / pk->seg;
    for (int q = 0; q < nq; q++) {
        int p0, p1;
        frnn_pk_units(pk, q, u0, u1, &p0, &p1);
        for (int p = p0; p < p1; p++)
            for (int i = 0; i < M; i++) {
                const float *a = A + (size_t)i * lda;
                float *c = C + (size_t)i * ldc + frnn_pk_col(pk, p);
                for (int j = 0; j < frnn_pk_width(pk, p); j++) {
                    const float *w = pk->data + (size_t)p * Kp * nr + j;
                    float s = 0.0f;
                    for (int k = 0; k < Kp; k += 2) {   /* panel row k holds op(W)'s row k + 1 */
                        const float ao = staged ? a[k] : k + 1 < K ? frnn_bf16_round(a[k + 1]) : 0.0f;
                        s = frnn_bf16_fma(ao, w[(size_t)k * nr], s);
                        s = frnn_bf16_fma(staged ? a[k + 1] : frnn_bf16_round(a[k]), w[(size_t)(k + 1) * nr], s);
                    }
                    c[j] = accumulate ? c[j] + s : s;
                }
            }
    }
}

void frnn_bf32_mul(const frnn_pk *pk, int K, int u0, int u1, int M, const float *A, size_t lda, float *C,
                   size_t ldc, int accumulate)
{
    if (u1 <= u0 || M <= 0) return;
#if FRNN_BF16_X86
    const int Kp = pk->K, nr = pk->nr;
    float *a = frnn_isa_active() != FRNN_ISA_NONE && nr == frnn_nr() ? bf32_area((size_t)M * (Kp + nr)) : NULL;
    if (a != NULL) {
        bf32_rows(M, K, Kp, A, lda, 1, 1, a);     /* once for every segment */
        bf32_mul_rows(pk, u0, u1, M, a, a + (size_t)M * Kp, C, ldc, accumulate);
        return;
    }
#endif
    bf32_mul_plain(pk, K, u0, u1, M, A, lda, 0, C, ldc, accumulate);
}

void frnn_bf32_stage(int M, int K, const float *A, size_t lda, int c0, int c1, float *out)
{
    const int Kp = K + (K & 1);
    if (c1 > c0 && c1 == K && (K & 1))
        for (int i = 0; i < M; i++) out[(size_t)i * Kp + K - 1] = 0.0f;   /* the missing odd element */
    int cv = c0;                               /* columns [c0, cv) of every row staged 8 lanes at a time */
#if FRNN_BF16_X86
    if (frnn_bf16_kernel_supported(FRNN_BF16_AVX2) && !(c0 & 1)) {
        bf32_stage_rows(M, A, lda, c0, c1, out, (size_t)Kp);   /* whole pairs from an even column */
        cv = c1 - ((c1 - c0) & 7);
    }
#endif
    for (int i = 0; i < M; i++) {
        const float *x = A + (size_t)i * lda;
        float *o = out + (size_t)i * Kp;
        for (int c = cv; c < c1; c++) o[c ^ 1] = frnn_bf16_round(x[c]);
    }
}

void frnn_bf32_mul_staged(const frnn_pk *pk, int u0, int u1, int M, const float *a, float *C, size_t ldc,
                          int accumulate)
{
    if (u1 <= u0 || M <= 0) return;
#if FRNN_BF16_X86
    const int kernel = frnn_isa_active() != FRNN_ISA_NONE && pk->nr == frnn_nr();
    float *tmp = kernel && accumulate ? frnn_kept_grow(BF32_TMP, sizeof(float) * (size_t)M * pk->nr) : NULL;
    if (kernel && (tmp != NULL || !accumulate)) {
        bf32_mul_rows(pk, u0, u1, M, a, tmp, C, ldc, accumulate);
        return;
    }
#endif
    bf32_mul_plain(pk, pk->K, u0, u1, M, a, (size_t)pk->K, 1, C, ldc, accumulate);
}
