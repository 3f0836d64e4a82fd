/* amx_kernels.h - the tile kernels of gemm_amx.c, written once over amx.h's tile API and included
 * once per back end with AMX_NAME(x) (the function's name), AMX_ATTR (its target attribute),
 * AMX_STAGE_A (A's rows to bf16: amx_stage_a's arguments and values) and the TILE_* macros defined.
 *
 * Tiles: 0-3 accumulators (2 row blocks x 2 column blocks), 4-5 the two row blocks of A, 6-7
 * the two column blocks of B.
 *   bf16: every tile 16 rows x 64 bytes; A holds 16 rows x 32 bf16 (16 pairs of k), B 16 pairs of
 *         k x 16 columns -- a 16-column slice of a frnn_bpk panel as it is packed (a pair of k per
 *         32-bit word, the layout TDPBF16PS reads), loaded with the panel's row stride; the last
 *         chunk of an odd-sized K is copied to a zero-padded buffer (the panel ends there).
 *   int8: A 16 rows x 64 u8, B 16 groups of 4 k x 8 columns = one frnn_q8_mat panel (32 bytes a
 *         group, loaded with stride 32), accumulators 16 x 8 s32. Half-width tiles: int8.h's
 *         8-column panels are used as packed (no second copy of the weights).
 */

/* C[0:M, panels p0..p1) (+)= bf16(A) @ panels. abuf: 32 x kpad bf16 for a row block's A (NULL:
 * staged a chunk at a time instead, the same values); one accumulator tile per row block and
 * 16-column slice, zeroed, then one TDPBF16PS per chunk of 32 values of k; the tile then goes
 * to C with one float32 addition (or a copy), as every bf16 kernel ends a block of K. */
AMX_ATTR static void AMX_NAME(bf16_mul)(const frnn_bpk *pk, int p0, int p1, int M, const float *A, size_t rsa,
                                        size_t csa, float *C, size_t ldc, int acc, uint16_t *abuf)
{
    const int nr = pk->nr, tpp = nr / 16, pairs = pk->Kp / 2, kt = (pairs + 15) / 16, kpad = kt * 32;
    const size_t pstride = (size_t)pairs * nr;
    uint16_t chunk[32 * 32] __attribute__((aligned(64)));
    uint32_t tail[2][16 * 16] __attribute__((aligned(64)));
    float out[4][16 * 16] __attribute__((aligned(64)));
    frnn_amx_cfg cfg;
    amx_cfg_bf16(&cfg);
    TILE_BEGIN(&cfg);
    const int nidx = (p1 - p0) * tpp;
    for (int i0 = 0; i0 < M; i0 += 32) {
        const int mr = M - i0 < 32 ? M - i0 : 32, na = mr > 16 ? 2 : 1;
        const float *a = A + (size_t)i0 * rsa;
        if (abuf) AMX_STAGE_A(a, rsa, csa, mr, pk->K, 0, kpad, abuf, kpad);
        for (int idx = 0; idx < nidx;) {
            int tp[2], ts[2], nb = 0;
            for (; idx < nidx && nb < 2; idx++) {
                const int p = p0 + idx / tpp, s = idx % tpp;
                if (s * 16 < frnn_bpk_width(pk, p)) tp[nb] = p, ts[nb] = s, nb++;
            }
            if (nb == 0) break;
            TILE_ZERO(0);
            TILE_ZERO(1);
            TILE_ZERO(2);
            TILE_ZERO(3);
            for (int kc = 0; kc < kt; kc++) {
                const uint16_t *as = abuf ? abuf + kc * 32 : chunk;
                const size_t astride = abuf ? (size_t)kpad * 2 : 64;
                if (!abuf) AMX_STAGE_A(a, rsa, csa, mr, pk->K, kc * 32, kc * 32 + 32, chunk, 32);
                TILE_LOAD(4, as, astride);
                if (na > 1) TILE_LOAD(5, as + (size_t)16 * (astride / 2), astride);
                const uint32_t *bs[2];
                size_t bstride = (size_t)nr * 4;
                for (int b = 0; b < nb; b++) {
                    bs[b] = pk->data + (size_t)tp[b] * pstride + (size_t)kc * 16 * nr + ts[b] * 16;
                    if (kc * 16 + 16 > pairs) {           /* the panel ends inside this chunk */
                        memset(tail[b], 0, sizeof tail[b]);
                        for (int j = 0; j < pairs - kc * 16; j++) memcpy(tail[b] + j * 16, bs[b] + (size_t)j * nr, 64);
                        bs[b] = tail[b];
                    }
                }
                if (kc * 16 + 16 > pairs) bstride = 64;
                TILE_LOAD(6, bs[0], bstride);
                TILE_DPBF16PS(0, 4, 6);
                if (na > 1) TILE_DPBF16PS(2, 5, 6);
                if (nb > 1) {
                    TILE_LOAD(7, bs[1], bstride);
                    TILE_DPBF16PS(1, 4, 7);
                    if (na > 1) TILE_DPBF16PS(3, 5, 7);
                }
            }
            TILE_STORE(0, out[0], 64);
            TILE_STORE(1, out[1], 64);
            TILE_STORE(2, out[2], 64);
            TILE_STORE(3, out[3], 64);
            for (int ra = 0; ra < na; ra++)
                for (int b = 0; b < nb; b++) {
                    const int col = frnn_bpk_col(pk, tp[b]) + ts[b] * 16, w0 = frnn_bpk_width(pk, tp[b]) - ts[b] * 16;
                    const int w = w0 < 16 ? w0 : 16, rows = mr - ra * 16 < 16 ? mr - ra * 16 : 16;
                    for (int r = 0; r < rows; r++) {
                        float *c = C + (size_t)(i0 + ra * 16 + r) * ldc + col;
                        const float *o = out[ra * 2 + b] + r * 16;
                        for (int j = 0; j < w; j++) c[j] = acc ? c[j] + o[j] : o[j];
                    }
                }
        }
    }
    TILE_END();
}

/* frnn_q8_mul on the tiles: rows quantized 32 at a time into qa (32 x Kp, rows past the group's
 * end hold 64s: computed, never stored), then for every pair of panels one TDPBUSD per 64 values
 * of k and per row block, and int8.h's epilogue (amx_q8_epilogue). */
AMX_ATTR static void AMX_NAME(q8_mul)(const frnn_q8_mat *W, int seg, int u0, int u1, int M, const float *A,
                                      size_t lda, int beta, float *C, size_t ldc, uint8_t *qa)
{
    const int Kp = W->Kp, kt = Kp / 64;
    const int8_t *wp = W->w;
    int32_t acc[4][16 * 8] __attribute__((aligned(64)));
    float sa[32];
    frnn_amx_cfg cfg;
    amx_cfg_q8(&cfg);
    TILE_BEGIN(&cfg);
    for (int g0 = 0; g0 < M; g0 += 32) {
        const int gr = M - g0 < 32 ? M - g0 : 32, na = gr > 16 ? 2 : 1;
        for (int i = 0; i < gr; i++) sa[i] = frnn_q8_quantize_row(A + (size_t)(g0 + i) * lda, W->K, Kp, qa + (size_t)i * Kp);
        memset(qa + (size_t)gr * Kp, 64, (size_t)(na * 16 - gr) * Kp);
        for (int q = 0; q < W->N / seg; q++) {
            const int c0 = q * seg + u0, c1 = q * seg + u1;        /* view columns */
            for (int p = (W->n0 + c0) / 8; p * 8 < W->n0 + c1; p += 2) {
                const int nb = (p + 1) * 8 < W->n0 + c1 ? 2 : 1;
                TILE_ZERO(0);
                TILE_ZERO(1);
                TILE_ZERO(2);
                TILE_ZERO(3);
                for (int kc = 0; kc < kt; kc++) {
                    const int8_t *b0 = wp + (size_t)p * Kp * 8 + (size_t)kc * 16 * 32;
                    TILE_LOAD(4, qa + kc * 64, (size_t)Kp);
                    if (na > 1) TILE_LOAD(5, qa + (size_t)16 * Kp + kc * 64, (size_t)Kp);
                    TILE_LOAD(6, b0, 32);
                    TILE_DPBUSD(0, 4, 6);
                    if (na > 1) TILE_DPBUSD(2, 5, 6);
                    if (nb > 1) {
                        TILE_LOAD(7, b0 + (size_t)Kp * 8, 32);
                        TILE_DPBUSD(1, 4, 7);
                        if (na > 1) TILE_DPBUSD(3, 5, 7);
                    }
                }
                TILE_STORE(0, acc[0], 32);
                TILE_STORE(1, acc[1], 32);
                TILE_STORE(2, acc[2], 32);
                TILE_STORE(3, acc[3], 32);
                for (int ra = 0; ra < na; ra++)
                    for (int b = 0; b < nb; b++) {
                        const int cb = (p + b) * 8 - W->n0;          /* view column of the panel's first */
                        const int lo = cb > c0 ? cb : c0, hi = cb + 8 < c1 ? cb + 8 : c1;
                        const int rows = gr - ra * 16 < 16 ? gr - ra * 16 : 16;
                        amx_q8_epilogue(W, acc[ra * 2 + b], rows, sa + ra * 16, cb, lo, hi, beta,
                                        C + (size_t)(g0 + ra * 16) * ldc, ldc);
                    }
            }
        }
    }
    TILE_END();
}
