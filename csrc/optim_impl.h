/* optim_impl.h - the typed half of optim.c (included twice: REAL float / double). */

typedef struct {
    const frnn_opt *o;
    size_t n, chunks;
    REAL *p, *g;
    double *part;            /* (chunks) per-chunk sums of squares */
    REAL coef;               /* the norm clip's factor, applied when use_coef */
    int use_coef;
    REAL root_bias2, step;   /* Adam: sqrt(1 - beta2^steps), lr / (1 - beta1^steps), per step */
} F(opt_run);

/* sum of squares of a chunk in double, 8 accumulators (vectorisable; a chunk's boundaries are
 * fixed, so the order is too) */
static double F(chunk_sumsq)(const REAL *a, size_t m)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)a[i + j] * a[i + j];
    for (; i < m; i++) acc[0] += (double)a[i] * a[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void F(grad_sumsq_task)(void *arg, const frnn_par *par)
{
    F(opt_run) *r = arg;
    int c0, c1;
    frnn_split((int)r->chunks, 1, par->tid, par->nth, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        const size_t i0 = (size_t)c * FRNN_OPT_CHUNK, i1 = i0 + FRNN_OPT_CHUNK < r->n ? i0 + FRNN_OPT_CHUNK : r->n;
        r->part[c] = F(chunk_sumsq)(r->g + i0, i1 - i0);
    }
}

/* optim.py's _update of each optimiser over m elements from i0, operation by operation (the
 * comments give its NumPy lines); loop-invariant branches only, so that the loops vectorise */
static void F(sgd)(const F(opt_run) *r, size_t i0, size_t m)
{
    const frnn_opt *o = r->o;
    REAL *restrict p = r->p + i0, *restrict buf = (REAL *)o->state0 + i0;
    const REAL *restrict g = r->g + i0;
    const REAL wd = (REAL)o->weight_decay, mom = (REAL)o->momentum, damp = (REAL)(1 - o->dampening);
    const REAL lr = (REAL)o->lr;
    const int use_mom = o->momentum != 0, first = o->steps == 1, nesterov = o->nesterov;
    for (size_t i = 0; i < m; i++) {
        REAL d = p[i] * wd;                                   /* np.multiply(p, wd, out=d) */
        d = d + g[i];                                         /* d += g */
        if (use_mom) {
            REAL b;
            if (first) b = d;                                 /* buf[...] = d */
            else {
                const REAL t = damp * d;                      /* buf *= momentum */
                b = buf[i] * mom;                             /* buf += (1 - dampening) * d */
                b = b + t;
            }
            buf[i] = b;
            if (nesterov) {
                const REAL t = mom * b;                       /* d += momentum * buf */
                d = d + t;
            } else d = b;                                     /* d[...] = buf */
        }
        const REAL t = lr * d;                                /* p -= lr * d */
        p[i] = p[i] - t;
    }
}

static void F(adagrad)(const F(opt_run) *r, size_t i0, size_t m)
{
    const frnn_opt *o = r->o;
    REAL *restrict p = r->p + i0, *restrict sum = (REAL *)o->state0 + i0;
    const REAL *restrict g = r->g + i0;
    const REAL eps = (REAL)o->eps, lr = (REAL)o->lr;
    for (size_t i = 0; i < m; i++) {
        const REAL gg = g[i] * g[i];
        const REAL s = sum[i] + gg;                           /* sum += g * g */
        sum[i] = s;
        REAL d = SQRT(s);                                     /* np.sqrt(sum, out=d) */
        d = d + eps;                                          /* d += eps */
        d = g[i] / d;                                         /* np.divide(g, d, out=d) */
        const REAL t = lr * d;                                /* p -= lr * d */
        p[i] = p[i] - t;
    }
}

static void F(rmsprop)(const F(opt_run) *r, size_t i0, size_t m)
{
    const frnn_opt *o = r->o;
    REAL *restrict p = r->p + i0, *restrict sq = (REAL *)o->state0 + i0;
    const REAL *restrict g = r->g + i0;
    const REAL a = (REAL)o->alpha, a1 = (REAL)(1 - o->alpha), eps = (REAL)o->eps, lr = (REAL)o->lr;
    for (size_t i = 0; i < m; i++) {
        REAL v = sq[i] * a;                                   /* square_avg *= a */
        REAL d = g[i] * g[i];                                 /* np.multiply(g, g, out=d) */
        const REAL t = a1 * d;                                /* square_avg += (1 - a) * d */
        v = v + t;
        sq[i] = v;
        d = SQRT(v);
        d = d + eps;
        d = g[i] / d;
        const REAL u = lr * d;
        p[i] = p[i] - u;
    }
}

static void F(adam)(const F(opt_run) *r, size_t i0, size_t m)
{
    const frnn_opt *o = r->o;
    REAL *restrict p = r->p + i0, *restrict ea = (REAL *)o->state0 + i0, *restrict eq = (REAL *)o->state1 + i0;
    const REAL *restrict g = r->g + i0;
    const double wd = o->weight_decay;
    const int decay = wd != 0 && o->decoupled, l2 = wd != 0 && !o->decoupled;
    const REAL shrink = (REAL)(1 - o->lr * wd), wdr = (REAL)wd;
    const REAL b1 = (REAL)o->beta1, c1 = (REAL)(1 - o->beta1), b2 = (REAL)o->beta2, c2 = (REAL)(1 - o->beta2);
    const REAL eps = (REAL)o->eps, root = r->root_bias2, step = r->step;
    for (size_t i = 0; i < m; i++) {
        REAL pi = p[i], gi = g[i];
        if (decay) pi = pi * shrink;                          /* AdamW: p *= 1 - lr * wd */
        if (l2) {                                             /* Adam: g = g + wd * p */
            const REAL t = wdr * pi;
            gi = gi + t;
        }
        REAL mi = ea[i] * b1;                                 /* exp_avg *= b1 */
        REAL t = c1 * gi;                                     /* exp_avg += (1 - b1) * g */
        mi = mi + t;
        REAL vi = eq[i] * b2;                                 /* exp_avg_sq *= b2 */
        REAL d = gi * gi;                                     /* np.multiply(g, g, out=d) */
        t = c2 * d;                                           /* exp_avg_sq += (1 - b2) * d */
        vi = vi + t;
        ea[i] = mi, eq[i] = vi;
        d = SQRT(vi);                                         /* np.sqrt(exp_avg_sq, out=d) */
        d = d / root;                                         /* d /= sqrt(bias2) */
        d = d + eps;                                          /* d += eps */
        d = mi / d;                                           /* np.divide(exp_avg, d, out=d) */
        d = d * step;                                         /* d *= lr / bias1 */
        p[i] = pi - d;                                        /* p -= d */
    }
}

static void F(update_task)(void *arg, const frnn_par *par)
{
    F(opt_run) *r = arg;
    const frnn_opt *o = r->o;
    const REAL cv = (REAL)o->clip_value, coef = r->coef;
    int c0, c1;
    frnn_split((int)r->chunks, 1, par->tid, par->nth, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        const size_t i0 = (size_t)c * FRNN_OPT_CHUNK, i1 = i0 + FRNN_OPT_CHUNK < r->n ? i0 + FRNN_OPT_CHUNK : r->n;
        const size_t m = i1 - i0;
        REAL *restrict g = r->g + i0;
        if (r->use_coef) for (size_t i = 0; i < m; i++) g[i] = g[i] * coef;     /* grads *= coef */
        if (o->clip_value != 0)                                                 /* np.clip */
            for (size_t i = 0; i < m; i++) g[i] = g[i] < -cv ? -cv : g[i] > cv ? cv : g[i];
        switch (o->kind) {
        case FRNN_OPT_SGD: F(sgd)(r, i0, m); break;
        case FRNN_OPT_ADAGRAD: F(adagrad)(r, i0, m); break;
        case FRNN_OPT_RMSPROP: F(rmsprop)(r, i0, m); break;
        default: F(adam)(r, i0, m); break;
        }
        r->part[c] = F(chunk_sumsq)(r->p + i0, m);
    }
}

static double F(sum_parts)(const double *part, size_t chunks)
{
    double s = 0;
    for (size_t c = 0; c < chunks; c++) s += part[c];
    return s;
}

int F(frnn_optim_step)(const frnn_opt *o, size_t n, REAL *params, REAL *grads, frnn_step_result *res)
{
    const size_t chunks = (n + FRNN_OPT_CHUNK - 1) / FRNN_OPT_CHUNK;
    F(opt_run) r = {o, n, chunks, params, grads, malloc(sizeof(double) * (chunks ? chunks : 1)), 1, 0, 0, 0};
    if (!r.part) return res->status = -1;
    const int nth = opt_members(n);
    frnn_team_run(nth, F(grad_sumsq_task), &r);
    const double sumsq = F(sum_parts)(r.part, chunks);
    res->grad_sumsq = sumsq;
    /* the Trainer's test is np.dot(g, g) in the gradients' dtype: past REAL_MAX it overflows */
    if (!(sumsq <= REAL_MAX)) {
        free(r.part);
        return res->status = 2;
    }
    if (o->clip != 0) {                                       /* optim.clip_grad_norm */
        const double coef = o->clip / (sqrt(sumsq) + 1e-6);
        if (coef < 1) r.coef = (REAL)coef, r.use_coef = 1;
    }
    const double bias1 = 1 - pow(o->beta1, (double)o->steps), bias2 = 1 - pow(o->beta2, (double)o->steps);
    r.root_bias2 = (REAL)sqrt(bias2), r.step = (REAL)(o->lr / bias1);
    frnn_team_run(nth, F(update_task), &r);
    res->param_sumsq = F(sum_parts)(r.part, chunks);
    free(r.part);
    return res->status = 0;
}
