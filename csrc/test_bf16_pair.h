/* test_bf16_pair.h - frnn_team_gemm_bf16_pair (two products sharing A, staged once: dW_hh and
 * dW_ih from dG^T) vs the emulation, bit for bit. Included by test_bf16.c (its helpers). */

typedef struct {
    frnn_gemm_args g[2];
    float *pack;
} pair_job;

static void pair_task(void *arg, const frnn_par *par)
{
    pair_job *j = arg;
    frnn_team_gemm_bf16_pair(par, j->g, j->pack);
}

/* A^T read in place (the weight gradients' dG^T), W as given, shapes with odd K (below and above
 * FRNN_KC: the float32 path and the fallback), two K blocks, N of partial panels; beta 0/1; 1-3
 * members; inputs with RNE ties, denormals and non-bf16 values. */
static void test_team_pair(void)
{
    static const int shapes[][4] = {{9, 13, 6, 7}, {40, 45, 19, 33}, {101, 70, 64, 17}, {17, 33, FRNN_KC + 37, 5},
                                    {64, 16, 2 * FRNN_KC, 40}, {8, 16, 2, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int M = shapes[si][0], N[2] = {shapes[si][1], shapes[si][3]}, K = shapes[si][2];
        float *A = malloc(sizeof(float) * M * K), *At = malloc(sizeof(float) * M * K), *Ar = malloc(sizeof(float) * M * K);
        float *W[2], *Wr[2], *C0[2], *C[2], *E[2];
        for (int i = 0; i < M * K; i++) A[i] = edge_value(), Ar[i] = frnn_bf16_round(A[i]);
        for (int k = 0; k < K; k++)
            for (int i = 0; i < M; i++) At[k * M + i] = A[i * K + k];
        for (int q = 0; q < 2; q++) {
            W[q] = malloc(sizeof(float) * K * N[q]), Wr[q] = malloc(sizeof(float) * K * N[q]);
            C0[q] = malloc(sizeof(float) * M * N[q]), C[q] = malloc(sizeof(float) * M * N[q]);
            E[q] = malloc(sizeof(float) * M * N[q]);
            for (int i = 0; i < K * N[q]; i++) W[q][i] = edge_value(), Wr[q][i] = frnn_bf16_round(W[q][i]);
            for (int i = 0; i < M * N[q]; i++) C0[q][i] = urnd();
        }
        float *pack = malloc(sizeof(float) * (frnn_team_gemm_floats(N[0]) + frnn_team_gemm_floats(N[1])));
        for (int beta = 0; beta <= 1; beta++)
            for (int nth = 1; nth <= 3; nth++) {
                pair_job j;
                for (int q = 0; q < 2; q++) {
                    bf_expected(M, N[q], K, FRNN_KC, Ar, Wr[q], C0[q], beta, E[q]);
                    memcpy(C[q], C0[q], sizeof(float) * M * N[q]);
                    const frnn_gemm_args g = {M, N[q], K, At, 1, (size_t)M, W[q], (size_t)N[q], 0, C[q], (size_t)N[q], beta};
                    j.g[q] = g;
                }
                j.pack = pack;
                frnn_team_run(nth, pair_task, &j);
                for (int q = 0; q < 2; q++) {
                    int bad = 0;
                    for (int i = 0; i < M * N[q]; i++) bad += !same_bits(C[q][i], E[q][i]);
                    CHECK(bad == 0, "pair product %d of (%d, %d|%d, %d), beta %d, %d members, kernel %s: %d elements "
                          "differ", q, M, N[0], N[1], K, beta, nth, frnn_bf16_kernel_name(frnn_bf16_kernel()), bad);
                }
            }
        for (int q = 0; q < 2; q++) free(W[q]), free(Wr[q]), free(C0[q]), free(C[q]), free(E[q]);
        free(A), free(At), free(Ar), free(pack);
    }
}

/* Rounding by the float32-panel staging (bf32_round8 under MXCSR.DAZ: frnn_bf32_stage, and
 * frnn_bf32_pack from W and from W^T) on special values -- signed zeros, denormals, ties, the
 * RNE overflow to infinity, infinities, signalling and quiet NaNs with full payloads -- vs
 * frnn_bf16_round, bit for bit. */
static float special_value(int i)
{
    static const uint32_t sp[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u, 0x3f808000u,
                                  0x3f818000u, 0x7f7fffffu, 0xff7f8000u, 0x7f800000u, 0xff800000u, 0x7f800001u,
                                  0x7fbfffffu, 0x7fc00000u, 0x7fffffffu, 0xffffffffu, 0xff800001u, 0x7f80ffffu};
    const int n = sizeof sp / sizeof sp[0];
    return i % 3 == 0 ? urnd() : frnn_bits_f32(sp[(i / 3) % n]);
}

static void test_round_specials(void)
{
    const int M = 5, K = 67, N = 40, lda = K + 1, Kp = K + (K & 1);
    float *A = malloc(sizeof(float) * M * lda), *S = malloc(sizeof(float) * M * Kp);
    float *W = malloc(sizeof(float) * K * N), *Wt = malloc(sizeof(float) * K * N);
    float *mem = malloc(sizeof(float) * frnn_bf32_floats(K, N, N));
    for (int i = 0; i < M * lda; i++) A[i] = special_value(i * 7 + 1);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) W[k * N + n] = Wt[n * K + k] = special_value(k * N + n);
    for (int c0 = 0; c0 <= 2; c0 += 2) {      /* the 8-lane runs start at c0 */
        int bad = 0;
        frnn_bf32_stage(M, K, A, (size_t)lda, c0, K, S);
        for (int i = 0; i < M; i++)
            for (int c = c0; c < K; c++) bad += !same_bits(S[i * Kp + (c ^ 1)], frnn_bf16_round(A[i * lda + c]));
        CHECK(bad == 0, "frnn_bf32_stage from column %d, kernel %s: %d special values rounded differently", c0,
              frnn_bf16_kernel_name(frnn_bf16_kernel()), bad);
    }
    for (int trans = 0; trans <= 1; trans++) {
        frnn_pk pk;
        frnn_bf32_init(&pk, K, N, N, mem);
        frnn_bf32_pack(&pk, K, trans ? Wt : W, (size_t)(trans ? K : N), trans, 0, pk.panels);
        int bad = 0;
        for (int p = 0; p < pk.panels; p++)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < frnn_pk_width(&pk, p); j++)
                    bad += !same_bits(pk.data[(size_t)p * pk.K * pk.nr + (size_t)(k ^ 1) * pk.nr + j],
                                      frnn_bf16_round(W[k * N + frnn_pk_col(&pk, p) + j]));
        CHECK(bad == 0, "frnn_bf32_pack (trans %d), kernel %s: %d special values rounded differently", trans,
              frnn_bf16_kernel_name(frnn_bf16_kernel()), bad);
    }
    free(A), free(S), free(W), free(Wt), free(mem);
}
