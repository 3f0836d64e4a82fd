/* generate.h - token-by-token generation from a language model in one call (template, included
 * by template.h): per token, layer 0's input row (an embedding row, or the token's column of
 * W_ih_l0 for a one-hot input), one inference step of every layer on its packed weights, the head
 * (logits = h @ W_head^T + b_head) and the choice of the next token (sampling.h) -- the same
 * products in the same order as the Python loop of fastrnn.sample, so greedy text is identical. */

/* One step of the stack for every row: the rows' tokens in, the state (g->h, g->c) advanced. */
static void F(gen_advance)(const frnn_blas *blas, const frnn_gen *g, const int *tokens)
{
    const int B = g->B, F0 = g->dims[0].In;
    REAL *x = g->x;
    for (int b = 0; b < B; b++)          /* (B, F0) = table[tokens] */
        memcpy(x + (size_t)b * F0, (const REAL *)g->table + (size_t)tokens[b] * F0, sizeof(REAL) * F0);
    const REAL *in = x;
    REAL *h = g->h, *c = g->c;
    for (int k = 0; k < g->L; k++) {
        const frnn_dims *d = &g->dims[k];
        frnn_buffers r = g->run[k];
        REAL *hk = h, *ck = c;
        for (int j = 0; j < k; j++) {                 /* layer k's slice of the state */
            hk += (size_t)B * g->dims[j].P;
            if (ck) ck += (size_t)B * g->dims[j].H;
        }
        r.x = in, r.y = NULL;
        r.h0 = r.h_T = hk;                            /* updated in place */
        r.c0 = r.c_T = d->cell == FRNN_LSTM ? ck : NULL;
        F(frnn_forward)(blas, d, &r, 0);
        in = hk;
    }
}

/* logits (B, V) = h_last (B, P) @ W_head^T + b_head: the product, then the bias (as nn.Linear);
 * NULL when out of memory (a bf16 head's pack buffer). */
static const REAL *F(gen_head)(const frnn_blas *blas, const frnn_gen *g)
{
    const int B = g->B, V = g->V, L = g->L, P = g->dims[L - 1].P;
    const REAL *h = g->h;
    for (int j = 0; j < L - 1; j++) h += (size_t)B * g->dims[j].P;
    REAL *logits = g->logits;
#if FRNN_F32
    if (g->head_q8)       /* a quantized head (int8.h): the rows of h quantized as Linear's are */
        frnn_q8_mul(g->head_q8, V, 0, V, B, h, (size_t)P, 0, logits, (size_t)V);
    else if (!g->head_bf16)
        frnn_matmul_f32(blas, 0, 1, B, V, P, h, P, g->W_head, P, 0, logits, V);
    else if ((!g->head_bf16_pack || frnn_matmul_bf16_packed(g->head_bf16_pack, B, V, P, h, P, 0, logits, V))
             && frnn_matmul_bf16(0, 1, B, V, P, h, P, g->W_head, P, 0, logits, V) != 0)
        return NULL;      /* out of memory */
#else
    frnn_gemm_f64(blas, 0, 1, B, V, P, 1.0, h, P, g->W_head, P, 0.0, logits, V);
#endif
    if (g->b_head)
        for (int b = 0; b < B; b++)
            for (int v = 0; v < V; v++) logits[(size_t)b * V + v] += ((const REAL *)g->b_head)[v];
    return logits;
}

/* row b drew tok: eos ends the row; else tok is written out and fed next, and the row ends at
 * max_len or when a stop string completes */
static void F(gen_take)(const frnn_gen *g, const frnn_stop_rule *rule, int b, int tok)
{
    const int B = g->B;
    if (tok == g->eos) {
        g->done[b] = 1;
        return;
    }
    g->out[(size_t)g->n_out[b] * B + b] = tok;
    g->token[b] = tok;
    g->n_out[b]++;
    if (g->n_out[b] >= g->max_len || frnn_stopped(rule, g->out + b, (size_t)B, g->n_out[b]))
        g->done[b] = 1;
}

#include "generate_team.h"

int F(frnn_generate)(const frnn_blas *blas, const frnn_gen *g, const int *feed, int steps, const double *u)
{
#if FRNN_F32
    const int team = F(gen_team)(blas, g, feed, steps, u);     /* the whole call as one team task */
    if (team != FRNN_GEN_NOT_RUN) return team;
#endif
    const int B = g->B, V = g->V;
    if (feed) {                                       /* advance the state over given tokens */
        for (int s = 0; s < steps; s++) F(gen_advance)(blas, g, feed + (size_t)s * B);
        return steps;
    }
    const frnn_pick_scratch pick = {g->scratch, g->scratch + V, g->iscratch, g->iscratch + V};
    const frnn_stop_rule rule = {g->text, g->offsets, g->word, g->eos, g->stop, g->stop_len,
                                 g->stop_window, g->stop_buf};
    int s = 0;
    for (; s < steps; s++) {
        int live = 0;
        for (int b = 0; b < B; b++) live += !g->done[b];
        if (!live) break;
        F(gen_advance)(blas, g, g->token);
        const REAL *logits = F(gen_head)(blas, g);
        if (logits == NULL) return FRNN_GEN_NO_MEMORY;
        for (int b = 0; b < B; b++) {
            if (g->done[b]) continue;
            double *z = g->z;
            for (int v = 0; v < V; v++) z[v] = logits[(size_t)b * V + v];
            const int tok = frnn_choose(z, V, g->temperature, g->top_k, g->top_p,
                                        g->argmax ? -1.0 : u[(size_t)s * B + b], &pick);
            if (tok < 0) return -1 - b;
            F(gen_take)(g, &rule, b, tok);
        }
    }
    return s;
}
