/* sampling.h - choosing the next token from a row of logits, in double precision, and the
 * stop-string test of the generation loop (generate.h). Included once by kernels.c.
 *
 * The maths follows fastrnn.sample.next_token_probs: z = logits / temperature, p = exp(z - max z),
 * top-k keeps the k largest p (ties at the k-th value kept), top-p keeps the shortest prefix of p
 * sorted from most to least likely (stable) whose mass reaches top_p; the draw takes the first
 * token whose running sum of p exceeds u * sum(p), u in [0, 1) given by the caller.
 */
#include <math.h>

/* Below this a temperature means "argmax" (logits / temperature could overflow a double). */
#define FRNN_MIN_TEMPERATURE 1e-30

/* The k-th largest of v[0..n) (1 <= k <= n), reordering v: quickselect. */
static double frnn_kth_largest(double *v, int n, int k)
{
    int lo = 0, hi = n - 1, want = k - 1;       /* index of the answer in descending order */
    while (lo < hi) {
        const double pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                const double t = v[i]; v[i] = v[j]; v[j] = t;
                i++, j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;                              /* v[want] == pivot */
    }
    return v[want];
}

/* order[0..n) = indices sorted by p descending, ties by index (a stable sort): merge sort with
 * tmp as scratch. */
static void frnn_sort_desc(int *order, int *tmp, const double *p, int n)
{
    for (int i = 0; i < n; i++) order[i] = i;
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            const int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = p[order[j]] > p[order[i]] ? order[j++] : order[i++];
            while (i < mid) tmp[k++] = order[i++];
            while (j < hi) tmp[k++] = order[j++];
        }
        memcpy(order, tmp, sizeof(int) * n);
    }
}

/* Scratch of frnn_choose: p (V doubles), then V doubles and 2 V ints for top-k/top-p. */
typedef struct {
    double *p, *sel;
    int *order, *tmp;
} frnn_pick_scratch;

/* The next token from z (V) = logits as doubles: argmax (the first maximum) when u < 0, else a draw
 * with u in [0, 1). Returns -1 for NaN or all -inf logits (a model with non-finite parameters). */
static int frnn_choose(const double *z_in, int V, double temperature, int top_k, double top_p, double u,
                       const frnn_pick_scratch *s)
{
    int best = 0, finite = 0;
    for (int v = 0; v < V; v++) {
        if (z_in[v] != z_in[v]) return -1;
        if (z_in[v] > -INFINITY) finite = 1;
        if (z_in[v] > z_in[best]) best = v;
    }
    if (!finite) return -1;
    if (u < 0) return best;
    double *p = s->p;
    const double t = temperature > FRNN_MIN_TEMPERATURE ? temperature : FRNN_MIN_TEMPERATURE;
    double zmax = -INFINITY;
    int overflow = 0;
    for (int v = 0; v < V; v++) {
        p[v] = z_in[v] / t;
        if (p[v] == INFINITY) overflow = 1;
        if (p[v] > zmax) zmax = p[v];
    }
    if (temperature < FRNN_MIN_TEMPERATURE || overflow) {
        /* the limit T -> 0: the mass on the maxima (of the logits, or of the overflowing z) */
        const double *top = temperature < FRNN_MIN_TEMPERATURE ? z_in : p;
        const double m = temperature < FRNN_MIN_TEMPERATURE ? z_in[best] : zmax;
        for (int v = 0; v < V; v++) s->sel[v] = top[v] == m ? 1.0 : 0.0;
        memcpy(p, s->sel, sizeof(double) * V);
    } else {
        for (int v = 0; v < V; v++) p[v] = exp(p[v] - zmax);
    }
    if (top_k > 0 && top_k < V) {
        memcpy(s->sel, p, sizeof(double) * V);
        const double kth = frnn_kth_largest(s->sel, V, top_k);
        for (int v = 0; v < V; v++)
            if (p[v] < kth) p[v] = 0;
    }
    if (top_p > 0) {                 /* as next_token_probs: even top_p 1 drops a 1e-12 tail */
        double total = 0, mass = 0;
        for (int v = 0; v < V; v++) total += p[v];
        frnn_sort_desc(s->order, s->tmp, p, V);
        int keep = V;
        for (int i = 0; i < V; i++) {
            mass += p[s->order[i]];
            if (mass / total >= top_p - 1e-12) { keep = i + 1; break; }  /* with rounding slack */
        }
        for (int i = keep; i < V; i++) p[s->order[i]] = 0;
    }
    double total = 0;
    for (int v = 0; v < V; v++) total += p[v];
    const double target = u * total;
    double run = 0;
    for (int v = 0; v < V; v++) {
        run += p[v];
        if (run > target && p[v] > 0) return v;
    }
    for (int v = V - 1; v >= 0; v--)     /* rounding left target at the very top: the last kept token */
        if (p[v] > 0) return v;
    return best;
}

/* The text of one generated sequence's last `window` tokens, as fastrnn's Vocab.decode builds it
 * (char level: the tokens' texts joined; word level: joined by spaces, <eos> as a newline),
 * contains `stop`? text/offsets: every token's UTF-8 bytes (token v is text[offsets[v]:offsets[v+1]]).
 * ids: the sequence's tokens, stride apart; buf: scratch of window * (longest token + 1) bytes. */
typedef struct {
    const char *text;        /* every token's UTF-8 bytes, back to back */
    const int *offsets;      /* (V + 1) */
    int word;                /* word level: spaces between tokens, eos as "\n" */
    int eos;                 /* the <eos> id, or -1 */
    const char *stop;        /* the stop string's UTF-8 bytes; NULL or stop_len 0: none */
    int stop_len;
    int window;              /* tokens to decode: the stop string's length in characters */
    char *buf;
} frnn_stop_rule;

static int frnn_stopped(const frnn_stop_rule *r, const int *ids, size_t stride, int n)
{
    if (r->stop == NULL || r->stop_len == 0 || n == 0) return 0;
    const int first = n > r->window ? n - r->window : 0;
    size_t len = 0;
    int prev_eos = 1;                               /* no space before the first token */
    for (int i = first; i < n; i++) {
        const int id = ids[(size_t)i * stride];
        if (r->word && id == r->eos) {
            r->buf[len++] = '\n';
            prev_eos = 1;
            continue;
        }
        if (r->word && !prev_eos) r->buf[len++] = ' ';
        const int a = r->offsets[id], b = r->offsets[id + 1];
        memcpy(r->buf + len, r->text + a, (size_t)(b - a));
        len += (size_t)(b - a);
        prev_eos = 0;
    }
    for (size_t i = 0; i + (size_t)r->stop_len <= len; i++)
        if (memcmp(r->buf + i, r->stop, (size_t)r->stop_len) == 0) return 1;
    return 0;
}
