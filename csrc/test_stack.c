/* test_stack.c - checks of frnn_stack_* (linked into test_kernels.c's program): a stack call
 * gives the same bits at 1, 2 and 3 threads (layer after layer, the wavefront, the two directions
 * side by side), and a unidirectional stack the same bits as its layers called one by one with
 * the dropout masks applied in between. */
#define _POSIX_C_SOURCE 200112L   /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastrnn.h"
#include "test_check.h"

enum { T = 6, B = 26, I = 5, H = 37, MAXL = 3 };   /* big enough steps to be shared; B: chunks
                                                       of the batch split of unequal sizes */

typedef struct {
    int cell, L, D, G, P;
    frnn_dims dims[2 * MAXL];
    frnn_buffers run[2 * MAXL];
    float *params[2 * MAXL][4], *grads[2 * MAXL][4];      /* W_ih W_hh b_ih b_hh and gradients */
    float *acts[MAXL + 1], *dacts[MAXL + 1], *masks[MAXL], *tapes[2 * MAXL];
    float *scratch[2 * MAXL][4];                          /* D == 2: x, y, dy, dx of a direction */
    float *h_T, *c_T, *dh0, *dc0, *dy;
    int lengths[B];
} Stack;

static float *filled(size_t n, unsigned *s, float scale)
{
    float *a = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) a[i] = scale * urand(s);
    return a;
}

static size_t width(const Stack *st, int k) { return k == 0 ? I : (size_t)st->D * st->P; }

static void build(Stack *st, int cell, int L, int D, int train)
{
    unsigned s = 777u + 31u * cell + 7u * L + D;
    memset(st, 0, sizeof *st);
    st->cell = cell, st->L = L, st->D = D, st->G = frnn_gates(cell), st->P = H;
    const size_t GH = (size_t)st->G * H, TB = (size_t)T * B;
    for (int b = 0; b < B; b++) st->lengths[b] = (b * 5) % (T + 1);
    for (int k = 0; k <= L; k++) {
        st->acts[k] = filled(TB * width(st, k), &s, 1);
        st->dacts[k] = calloc(TB * width(st, k), sizeof(float));
    }
    for (int k = 1; k < L; k++) {                 /* inverted dropout with p = 0.5: 0 or 2 */
        st->masks[k] = filled(TB * D * H, &s, 1);
        for (size_t i = 0; i < TB * D * H; i++) st->masks[k][i] = st->masks[k][i] > 0 ? 2 : 0;
    }
    st->h_T = calloc((size_t)L * D * B * H, sizeof(float));
    st->c_T = calloc((size_t)L * D * B * H, sizeof(float));
    st->dh0 = calloc((size_t)L * D * B * H, sizeof(float));
    st->dc0 = calloc((size_t)L * D * B * H, sizeof(float));
    st->dy = filled(TB * D * H, &s, 1);
    for (int i = 0; i < L * D; i++) {
        const int k = i / D, In = (int)width(st, k);
        const size_t n[4] = {GH * In, GH * H, GH, GH};
        st->dims[i] = (frnn_dims){cell, T, B, In, H, H, 0};
        for (int p = 0; p < 4; p++) {
            st->params[i][p] = filled(n[p], &s, 0.4f);
            st->grads[i][p] = calloc(n[p], sizeof(float));
        }
        st->tapes[i] = malloc(sizeof(float) * (train ? frnn_tape_size(&st->dims[i]) : frnn_work_size(&st->dims[i])));
        frnn_buffers *bf = &st->run[i];
        bf->W_ih = st->params[i][0], bf->W_hh = st->params[i][1];
        bf->b_ih = st->params[i][2], bf->b_hh = st->params[i][3];
        bf->dW_ih = st->grads[i][0], bf->dW_hh = st->grads[i][1];
        bf->db_ih = st->grads[i][2], bf->db_hh = st->grads[i][3];
        bf->lengths = st->lengths, bf->tape = st->tapes[i];
        const size_t o = (size_t)i * B * H;
        bf->h_T = st->h_T + o, bf->dh0 = st->dh0 + o;
        if (cell == FRNN_LSTM) bf->c_T = st->c_T + o, bf->dc0 = st->dc0 + o;
        if (D == 2) {
            const size_t sizes[4] = {TB * In, TB * H, TB * H, TB * In};
            for (int q = 0; q < 4; q++) st->scratch[i][q] = calloc(sizes[q], sizeof(float));
            bf->x = i % 2 ? st->scratch[i][0] : st->acts[k];
            bf->y = st->scratch[i][1], bf->dy = st->scratch[i][2], bf->dx = st->scratch[i][3];
        }
    }
    memcpy(st->dacts[L], st->dy, sizeof(float) * TB * D * H);
}

static frnn_stack view(Stack *st)
{
    frnn_stack v = {st->L, st->D, st->dims, st->run, (void **)st->acts, (void **)st->dacts,
                    (const void **)st->masks, 0};
    return v;
}

static void release(Stack *st)
{
    for (int k = 0; k <= st->L; k++) free(st->acts[k]), free(st->dacts[k]);
    for (int k = 1; k < st->L; k++) free(st->masks[k]);
    for (int i = 0; i < st->L * st->D; i++) {
        for (int p = 0; p < 4; p++) free(st->params[i][p]), free(st->grads[i][p]);
        for (int q = 0; q < 4; q++) free(st->scratch[i][q]);
        free(st->tapes[i]);
    }
    free(st->h_T), free(st->c_T), free(st->dh0), free(st->dc0), free(st->dy);
}

/* Everything a stack call computed, concatenated (the caller frees it). */
static float *results(const Stack *st, size_t *n)
{
    const size_t TB = (size_t)T * B, S = (size_t)st->L * st->D * B * H;
    size_t total = TB * st->D * H + TB * I + 4 * S;
    for (int i = 0; i < st->L * st->D; i++)
        total += (size_t)st->G * H * (st->dims[i].In + H + 2);
    float *out = malloc(sizeof(float) * total), *at = out;
#define PUT(src, cnt) (memcpy(at, (src), sizeof(float) * (cnt)), at += (cnt))
    PUT(st->acts[st->L], TB * st->D * H);
    PUT(st->dacts[0], TB * I);
    PUT(st->h_T, S); PUT(st->c_T, S); PUT(st->dh0, S); PUT(st->dc0, S);
    for (int i = 0; i < st->L * st->D; i++) {
        const size_t GH = (size_t)st->G * H;
        PUT(st->grads[i][0], GH * st->dims[i].In); PUT(st->grads[i][1], GH * H);
        PUT(st->grads[i][2], GH); PUT(st->grads[i][3], GH);
    }
#undef PUT
    *n = total;
    return out;
}

static float *run_stack(const frnn_blas *blas, int cell, int L, int D, int threads, int train, size_t *n)
{
    Stack st;
    build(&st, cell, L, D, train);
    frnn_stack v = view(&st);
    frnn_set_threads(threads);
    int rc = frnn_stack_forward_f32(blas, &v, train);
    if (train && rc == 0) rc = frnn_stack_backward_f32(blas, &v);
    frnn_set_threads(0);
    float *r = rc == 0 ? results(&st, n) : NULL;
    release(&st);
    return r;
}

/* The same unidirectional stack through one-layer calls, masks applied in between. */
static float *run_layers(const frnn_blas *blas, int cell, int L, size_t *n)
{
    Stack st;
    build(&st, cell, L, 1, 1);
    const size_t TB = (size_t)T * B;
    for (int k = 0; k < L; k++) {
        if (k > 0) for (size_t i = 0; i < TB * H; i++) st.acts[k][i] *= st.masks[k][i];
        frnn_buffers *bf = &st.run[k];
        bf->x = st.acts[k], bf->y = st.acts[k + 1];
        frnn_forward_f32(blas, &st.dims[k], bf, 1);
    }
    for (int k = L - 1; k >= 0; k--) {
        frnn_buffers *bf = &st.run[k];
        if (k < L - 1) for (size_t i = 0; i < TB * H; i++) st.dacts[k + 1][i] *= st.masks[k + 1][i];
        bf->dy = st.dacts[k + 1], bf->dx = st.dacts[k];
        frnn_backward_f32(blas, &st.dims[k], bf);
    }
    float *r = results(&st, n);
    release(&st);
    return r;
}

int frnn_test_stack(const frnn_blas *blas)
{
    const int cells[] = {FRNN_RNN_TANH, FRNN_GRU, FRNN_GRU_RESET_BEFORE, FRNN_LSTM, FRNN_MGU};
    int failures = 0;
    /* the inference calls below (train 0, D 1) at 2 and 3 threads run as the batch split's
     * inference chunks (decomp_model.h frnn_infer_chunks) wherever the engine runs: one member's bits */
    const frnn_dims probe = {FRNN_LSTM, T, B, I, H, H};
    if (frnn_engine_enabled() && (frnn_decomposition(&probe, 1, 1, 2, 0, FRNN_PRECISION_F32) != 2
                                  || frnn_decomposition(&probe, 1, 1, 2, 1, FRNN_PRECISION_F32) == 2)) {
        fprintf(stderr, "FAIL stack: an inference call of the test's shape is not the batch split, or a "
                "training call is\n");
        failures++;
    }
    for (int ci = 0; ci < 5; ci++)
        for (int D = 1; D <= 2; D++)
            for (int L = 1; L <= MAXL; L++)
                for (int train = 0; train <= 1; train++) {
                    size_t n1, n;
                    float *one = run_stack(blas, cells[ci], L, D, 1, train, &n1);
                    for (int threads = 2; threads <= 3; threads++) {
                        float *r = run_stack(blas, cells[ci], L, D, threads, train, &n);
                        if (!one || !r || n != n1 || memcmp(one, r, sizeof(float) * n)) {
                            fprintf(stderr, "FAIL stack: cell %d L %d D %d train %d: %d threads differ "
                                    "from one\n", cells[ci], L, D, train, threads);
                            failures++;
                        }
                        free(r);
                    }
                    if (D == 1 && train) {
                        float *r = run_layers(blas, cells[ci], L, &n);
                        if (!one || n != n1 || memcmp(one, r, sizeof(float) * n)) {
                            fprintf(stderr, "FAIL stack: cell %d L %d differs from its layers one "
                                    "by one\n", cells[ci], L);
                            failures++;
                        }
                        free(r);
                    }
                    free(one);
                }
    return failures;
}

/* Every decomposition (FASTRNN_DECOMP, csrc/decomp.h) of stacks and of one-layer calls: the same
 * bits at 1, 2 and 3 threads; units, pipeline, directions and one the same bits as each other
 * (bidirectional: units runs the directions in turn on the whole team, directions side by side --
 * each direction's maths the same as its one-member run); the batch
 * split (its weight gradients summed chunk by chunk) equal to them within float rounding. */
static int close_to(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float d = a[i] - b[i], m = b[i] < 0 ? -b[i] : b[i];
        if (!(d <= 1e-4f * (1 + m) && -d <= 1e-4f * (1 + m))) return 0;
    }
    return 1;
}

int frnn_test_decomp(const frnn_blas *blas)
{
    static const char *names[] = {"units", "batch", "pipeline", "one", "directions"};
    const int cells[] = {FRNN_RNN_RELU, FRNN_GRU, FRNN_GRU_SIMPLIFIED, FRNN_LSTM, FRNN_MGU};
    int failures = 0;
    for (int ci = 0; ci < 5; ci++)
        for (int D = 1; D <= 2; D++)
            for (int L = 1; L <= 2; L++) {
                size_t nref, n, n1;
                setenv("FASTRNN_DECOMP", "units", 1);
                float *ref = run_stack(blas, cells[ci], L, D, 1, 1, &nref);
                for (int k = 0; k < 5; k++) {
                    if (k == 4 && D == 1) continue;      /* directions on one direction: units */
                    setenv("FASTRNN_DECOMP", names[k], 1);
                    float *first = run_stack(blas, cells[ci], L, D, 1, 1, &n1);
                    const int batch = k == 1, sized = ref && first && n1 == nref;
                    if (!sized || (batch ? !close_to(first, ref, n1) : memcmp(first, ref, sizeof(float) * n1))) {
                        fprintf(stderr, "FAIL decomp %s: cell %d L %d D %d: %s\n", names[k], cells[ci], L, D,
                                batch ? "not within rounding of units" : "other bits than units");
                        failures++;
                    }
                    for (int threads = 2; threads <= 3; threads++) {
                        float *r = run_stack(blas, cells[ci], L, D, threads, 1, &n);
                        if (!first || !r || n != n1 || memcmp(first, r, sizeof(float) * n)) {
                            fprintf(stderr, "FAIL decomp %s: cell %d L %d D %d: %d threads differ from "
                                    "one\n", names[k], cells[ci], L, D, threads);
                            failures++;
                        }
                        free(r);
                    }
                    /* the wavefront's balance (stack.h balance_pulls/pushes) forced on and off:
                     * the same bits (its automatic choice ran above) */
                    for (int pull = 0; k == 2 && D == 1 && L == 2 && pull < 2; pull++) {
                        setenv("FASTRNN_PULL", pull ? "1" : "0", 1);
                        for (int threads = 2; threads <= 3; threads++) {
                            float *r = run_stack(blas, cells[ci], L, D, threads, 1, &n);
                            if (!first || !r || n != n1 || memcmp(first, r, sizeof(float) * n)) {
                                fprintf(stderr, "FAIL decomp pipeline, FASTRNN_PULL=%d: cell %d: %d threads "
                                        "differ\n", pull, cells[ci], threads);
                                failures++;
                            }
                            free(r);
                        }
                        unsetenv("FASTRNN_PULL");
                    }
                    if (D == 1) {                  /* one-layer calls give the stack's bits */
                        float *r = run_layers(blas, cells[ci], L, &n);
                        if (!first || !r || n != n1 || memcmp(first, r, sizeof(float) * n)) {
                            fprintf(stderr, "FAIL decomp %s: cell %d L %d: layers one by one differ from "
                                    "the stack\n", names[k], cells[ci], L);
                            failures++;
                        }
                        free(r);
                    }
                    free(first);
                }
                free(ref);
            }
    unsetenv("FASTRNN_DECOMP");
    return failures;
}
