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
