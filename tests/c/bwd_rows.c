/* bwd_rows.c - the LSTM and GRU pointwise rows of csrc/lstm.c and csrc/gru.c (backward rows, and
 * GRU's forward passes) against a straightforward scalar transcription of their formulas in the
 * same order: bit for bit, float32 and float64, with and without peepholes, odd H, member unit
 * ranges [j0, j1) that start off a vector boundary, finished rows (lengths). It includes kernels.c
 * to reach the static row functions; built by tests/test_bwd_rows.py. */
#include "kernels.c"
#include <stdio.h>

static unsigned rs = 12345;
static double rnd(void) { rs = rs * 1103515245u + 12345u; return ((rs >> 8) & 0xffff) / 65536.0 * 2 - 1; }
static int fails = 0;

static int t_done(const int *lengths, int b) { return 2 >= lengths[b]; }

#define DEFINE_CHECKS(R, S)                                                                                   \
static R *fill_##S(size_t n, double lo, double hi)                                                            \
{                                                                                                             \
    R *p = malloc(sizeof(R) * (n ? n : 1));                                                                   \
    for (size_t i = 0; i < n; i++) p[i] = (R)(lo + (hi - lo) * (rnd() + 1) / 2);                              \
    return p;                                                                                                 \
}                                                                                                             \
static R *dup_##S(const R *p, size_t n) { R *q = malloc(sizeof(R) * (n ? n : 1)); memcpy(q, p, sizeof(R) * n); return q; } \
static void same_##S(const char *what, const R *a, const R *b, size_t n, int H, int j0, int j1)               \
{                                                                                                             \
    if (memcmp(a, b, sizeof(R) * n)) {                                                                        \
        if (fails < 20) fprintf(stderr, "%s %s H %d [%d, %d): bits differ\n", #S, what, H, j0, j1);                         \
        fails++;                                                                                              \
    }                                                                                                         \
}                                                                                                             \
/* lstm_cell_backward as the formulas read (the loop it replaced) */                                          \
static void lstm_ref_##S(R *dGt, R *dc, const R *dm, const R *g, const R *cprev, const R *c, const R *tc,     \
                         const R *wp, R *dwp, const int *lengths, int t, int B, int H, int j0, int j1)        \
{                                                                                                             \
    for (int b = 0; b < B; b++) {                                                                             \
        R *dg = dGt + (size_t)b * 4 * H, *dcb = dc + (size_t)b * H;                                           \
        if (lengths && t >= lengths[b]) {                                                                     \
            for (int q = 0; q < 4; q++) for (int j = j0; j < j1; j++) dg[q * H + j] = 0;                      \
            continue;                                                                                         \
        }                                                                                                     \
        const R *gb = g + (size_t)b * 4 * H, *cp = cprev + (size_t)b * H, *cb = c + (size_t)b * H;           \
        const R *tcb = tc + (size_t)b * H, *dmb = dm + (size_t)b * H;                                         \
        for (int j = j0; j < j1; j++) {                                                                       \
            R i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];                                \
            R do_pre = dmb[j] * tcb[j] * o * (1 - o);                                                         \
            R dct = dcb[j] + dmb[j] * o * (1 - tcb[j] * tcb[j]);                                              \
            if (wp) dct += do_pre * wp[2 * H + j];                                                            \
            R di_pre = dct * gg * i * (1 - i), df_pre = dct * cp[j] * f * (1 - f);                            \
            dg[j] = di_pre, dg[H + j] = df_pre, dg[2 * H + j] = dct * i * (1 - gg * gg), dg[3 * H + j] = do_pre; \
            R dcn = dct * f;                                                                                  \
            if (wp) {                                                                                         \
                dcn += di_pre * wp[j] + df_pre * wp[H + j];                                                   \
                dwp[j] += di_pre * cp[j], dwp[H + j] += df_pre * cp[j], dwp[2 * H + j] += do_pre * cb[j];     \
            }                                                                                                 \
            dcb[j] = dcn;                                                                                     \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
static void gru_ref_##S(int cell, R *dGt, R *dGht, R *direct, const R *dh, const R *g, const R *aux,          \
                        const R *hprev, const int *lengths, int t, int B, int H, int j0, int j1)              \
{                                                                                                             \
    const int G = frnn_gates(cell), GH = G * H, zo = cell == FRNN_GRU_SIMPLIFIED ? 0 : H;                     \
    const int no = cell == FRNN_GRU_SIMPLIFIED ? H : 2 * H;                                                   \
    for (int b = 0; b < B; b++) {                                                                             \
        R *dg = dGt + (size_t)b * GH, *dr = direct + (size_t)b * H;                                           \
        if (lengths && t >= lengths[b]) {                                                                     \
            for (int j = j0; j < j1; j++) {                                                                   \
                for (int q = 0; q < G; q++) { dg[q * H + j] = 0; if (dGht) dGht[(size_t)b * GH + q * H + j] = 0; } \
                dr[j] = 0;                                                                                    \
            }                                                                                                 \
            continue;                                                                                         \
        }                                                                                                     \
        const R *gb = g + (size_t)b * GH, *hp = hprev + (size_t)b * H, *d = dh + (size_t)b * H;             \
        for (int j = j0; j < j1; j++) {                                                                       \
            R z = gb[zo + j], nn = gb[no + j];                                                                \
            R dn_pre = d[j] * (1 - z) * (1 - nn * nn);                                                        \
            dg[zo + j] = d[j] * (hp[j] - nn) * z * (1 - z);                                                   \
            dg[no + j] = dn_pre;                                                                              \
            dr[j] = d[j] * z;                                                                                 \
            if (cell == FRNN_GRU) {                                                                           \
                R r = gb[j], *dgh = dGht + (size_t)b * GH;                                                    \
                dg[j] = dn_pre * aux[(size_t)b * H + j] * r * (1 - r);                                        \
                dgh[j] = dg[j], dgh[H + j] = dg[H + j], dgh[2 * H + j] = dn_pre * r;                          \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
}                                                                                                             \
static void check_##S(int B, int H, int j0, int j1)                                                           \
{                                                                                                             \
    int lengths[64];                                                                                          \
    for (int b = 0; b < B; b++) lengths[b] = b % 3 ? 3 : 1;      /* at t = 2 rows b % 3 == 0 are done */     \
    const size_t BH = (size_t)B * H, G4 = 4 * BH, G3 = 3 * BH;                                                \
    for (int peep = 0; peep < 2; peep++)                                                                      \
        for (int packed = 0; packed < 2; packed++) {                                                          \
            const int *len = packed ? lengths : NULL;                                                         \
            R *g = fill_##S(G4, 0.01, 0.99), *cp = fill_##S(BH, -2, 2), *c = fill_##S(BH, -2, 2);             \
            R *tc = fill_##S(BH, -0.99, 0.99), *dm = fill_##S(BH, -1, 1), *wp = fill_##S(3 * H, -1, 1);       \
            for (size_t i = 2 * (size_t)H; i < G4; i += 4 * (size_t)H)                                        \
                for (int j = 0; j < H; j++) g[i + j] = (R)(2 * g[i + j] - 1);   /* g = tanh in (-1, 1) */     \
            R *dG = fill_##S(G4, -9, 9), *dc = fill_##S(BH, -1, 1), *dwp = fill_##S(3 * H, -1, 1);            \
            R *dG2 = dup_##S(dG, G4), *dc2 = dup_##S(dc, BH), *dwp2 = dup_##S(dwp, 3 * H);                    \
            lstm_cell_backward_##S(dG, dc, dm, g, cp, c, tc, peep ? wp : NULL, peep ? dwp : NULL, len, 2,  \
                                      B, H, j0, j1);                                                          \
            lstm_ref_##S(dG2, dc2, dm, g, cp, c, tc, peep ? wp : NULL, dwp2, len, 2, B, H, j0, j1);           \
            same_##S(peep ? "lstm backward, peepholes" : "lstm backward", dG, dG2, G4, H, j0, j1);            \
            same_##S("lstm dc", dc, dc2, BH, H, j0, j1);                                                      \
            same_##S("lstm dw_peep", dwp, dwp2, 3 * H, H, j0, j1);                                            \
            free(g), free(cp), free(c), free(tc), free(dm), free(wp), free(dG), free(dc), free(dwp);          \
            free(dG2), free(dc2), free(dwp2);                                                                 \
            if (peep) continue;                                                                               \
            const int cells[3] = {FRNN_GRU, FRNN_GRU_RESET_BEFORE, FRNN_GRU_SIMPLIFIED};                      \
            for (int k = 0; k < 3; k++) {                                                                     \
                const int cell = cells[k];                                                                    \
                R *gg = fill_##S(G3, 0.01, 0.99), *aux = fill_##S(BH, -2, 2), *hp = fill_##S(BH, -1, 1);      \
                R *dh = fill_##S(BH, -1, 1), *dGt = fill_##S(G3, -9, 9), *dGh = fill_##S(G3, -9, 9);          \
                R *dr = fill_##S(BH, -9, 9), *dGt2 = dup_##S(dGt, G3), *dGh2 = dup_##S(dGh, G3);              \
                R *dr2 = dup_##S(dr, BH);                                                                     \
                gru_cell_backward_##S(cell, dGt, cell == FRNN_GRU ? dGh : NULL, dr, dh, gg, aux, hp, len, 2, \
                                         B, H, j0, j1);                                                       \
                gru_ref_##S(cell, dGt2, cell == FRNN_GRU ? dGh2 : NULL, dr2, dh, gg, aux, hp, len, 2, B, H, j0, j1); \
                same_##S("gru backward dG", dGt, dGt2, (size_t)frnn_gates(cell) * BH, H, j0, j1);             \
                same_##S("gru backward dGh", dGh, dGh2, G3, H, j0, j1);                                       \
                same_##S("gru backward direct", dr, dr2, BH, H, j0, j1);                                      \
                free(gg), free(aux), free(hp), free(dh), free(dGt), free(dGh), free(dr), free(dGt2);          \
                free(dGh2), free(dr2);                                                                        \
            }                                                                                                 \
        }                                                                                                     \
    /* GRU's forward passes (FRNN_GRU, with and without b_hh): the loops they replaced */                    \
    for (int bias = 0; bias < 2; bias++) {                                                                    \
        R *g = fill_##S(G3, -3, 3), *hg = fill_##S(G3, -3, 3), *bhh = fill_##S(3 * H, -1, 1);                 \
        R *hp = fill_##S(BH, -1, 1), *aux = fill_##S(BH, -1, 1), *h = fill_##S(BH, -1, 1);                    \
        R *g2 = dup_##S(g, G3), *aux2 = dup_##S(aux, BH), *h2 = dup_##S(h, BH);                               \
        for (size_t i = 2 * (size_t)H; i < G3; i += 5) hg[i] = (R)-0.0;    /* -0 + 0 must stay +0 */          \
        gru_cell_##S(FRNN_GRU, g, hg, bias ? bhh : NULL, aux, hp, h, lengths, 2, B, H, j0, j1);            \
        for (int b = 0; b < B; b++) {                                                                         \
            if (t_done(lengths, b)) continue;                                                                 \
            R *gb = g2 + (size_t)b * 3 * H, *hn = aux2 + (size_t)b * H, *hb = h2 + (size_t)b * H;             \
            const R *hgb = hg + (size_t)b * 3 * H, *hpb = hp + (size_t)b * H;                                 \
            for (int j = j0; j < j1; j++) {                                                                   \
                gb[j] += hgb[j], gb[H + j] += hgb[H + j];                                                     \
                sigmoid_inplace_##S(gb + j, 1), sigmoid_inplace_##S(gb + H + j, 1);       \
                hn[j] = hgb[2 * H + j] + (bias ? bhh[2 * H + j] : 0);                                         \
                gb[2 * H + j] += gb[j] * hn[j];                                                               \
                tanh_inplace_##S(gb + 2 * H + j, 1);                                          \
                R z = gb[H + j], nn = gb[2 * H + j];                                                          \
                hb[j] = (1 - z) * nn + z * hpb[j];                                                            \
            }                                                                                                 \
        }                                                                                                     \
        /* the activations one value at a time: their bits do not depend on the split (sweep_activations.c) */ \
        same_##S("gru forward gates", g, g2, G3, H, j0, j1);                                                  \
        same_##S("gru forward hn", aux, aux2, BH, H, j0, j1);                                                 \
        same_##S("gru forward h", h, h2, BH, H, j0, j1);                                                      \
        free(g), free(hg), free(bhh), free(hp), free(aux), free(h), free(g2), free(aux2), free(h2);           \
    }                                                                                                         \
}


DEFINE_CHECKS(float, f32)
DEFINE_CHECKS(double, f64)

int main(void)
{
    const int Hs[] = {1, 3, 8, 13, 16, 37, 64, 67, 128};
    for (size_t k = 0; k < sizeof Hs / sizeof Hs[0]; k++) {
        const int H = Hs[k], B = 7;
        const int ranges[4][2] = {{0, H}, {0, H / 2}, {H / 3, H}, {H > 2 ? 1 : 0, H > 2 ? H - 1 : H}};
        for (int r = 0; r < 4; r++) {
            check_f32(B, H, ranges[r][0], ranges[r][1]);
            check_f64(B, H, ranges[r][0], ranges[r][1]);
        }
    }
    if (fails) return printf("bwd_rows: %d mismatches\n", fails), 1;
    printf("bwd_rows: LSTM/GRU rows bit-identical to the scalar formulas: passed\n");
    return 0;
}
