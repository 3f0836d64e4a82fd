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

static void F(grad_sumsq_task)(void *arg, const frnn_par *par)
{
    F(opt_run) *r = arg;
    int c0, c1;
    frnn_split((int)r->chunks, 1, par->tid, par->nth, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        const size_t i0 = (size_t)c * FRNN_OPT_CHUNK, i1 = i0 + FRNN_OPT_CHUNK < r->n ? i0 + FRNN_OPT_CHUNK : r->n;
        double s = 0;
        for (size_t i = i0; i < i1; i++) s += (double)r->g[i] * r->g[i];
        r->part[c] = s;
    }
}

/* One element of optim.py's _update (the comments give its NumPy lines). */
static inline REAL F(update_one)(const F(opt_run) *r, size_t i, REAL p, REAL g)
{
    const frnn_opt *o = r->o;
    REAL *s0 = o->state0, *s1 = o->state1, d;
    switch (o->kind) {
    case FRNN_OPT_SGD: {
        d = p * (REAL)o->weight_decay;                        /* np.multiply(p, wd, out=d) */
        d = d + g;                                            /* d += g */
        if (o->momentum != 0) {
            REAL buf;
            if (o->steps == 1) buf = d;
            else {
                buf = s0[i] * (REAL)o->momentum;              /* buf *= momentum */
                const REAL t = (REAL)(1 - o->dampening) * d;  /* buf += (1 - dampening) * d */
                buf = buf + t;
            }
            s0[i] = buf;
            if (o->nesterov) {
                const REAL t = (REAL)o->momentum * buf;       /* d += momentum * buf */
                d = d + t;
            } else d = buf;
        }
        const REAL t = (REAL)o->lr * d;                       /* p -= lr * d */
        return p - t;
    }
    case FRNN_OPT_ADAGRAD: {
        const REAL gg = g * g;
        const REAL sum = s0[i] + gg;                          /* sum += g * g */
        s0[i] = sum;
        d = SQRT(sum);
        d = d + (REAL)o->eps;
        d = g / d;
        const REAL t = (REAL)o->lr * d;
        return p - t;
    }
    case FRNN_OPT_RMSPROP: {
        REAL sq = s0[i] * (REAL)o->alpha;                     /* square_avg *= a */
        d = g * g;
        const REAL t = (REAL)(1 - o->alpha) * d;              /* square_avg += (1 - a) * d */
        sq = sq + t;
        s0[i] = sq;
        d = SQRT(sq);
        d = d + (REAL)o->eps;
        d = g / d;
        const REAL u = (REAL)o->lr * d;
        return p - u;
    }
    default: {                                                /* Adam, AdamW */
        const double wd = o->weight_decay;
        if (wd != 0 && o->decoupled) p = p * (REAL)(1 - o->lr * wd);      /* p *= 1 - lr * wd */
        if (wd != 0 && !o->decoupled) {                                   /* g = g + wd * p */
            const REAL t = (REAL)wd * p;
            g = g + t;
        }
        const double b1 = o->beta1, b2 = o->beta2;
        REAL m = s0[i] * (REAL)b1;
        REAL t = (REAL)(1 - b1) * g;
        m = m + t;
        REAL v = s1[i] * (REAL)b2;
        d = g * g;
        t = (REAL)(1 - b2) * d;
        v = v + t;
        s0[i] = m, s1[i] = v;
        d = SQRT(v);
        d = d / r->root_bias2;                                /* d /= sqrt(bias2) */
        d = d + (REAL)o->eps;
        d = m / d;
        d = d * r->step;                                      /* d *= lr / bias1 */
        return p - d;
    }
    }
}

static void F(update_task)(void *arg, const frnn_par *par)
{
    F(opt_run) *r = arg;
    const frnn_opt *o = r->o;
    const REAL cv = (REAL)o->clip_value;
    int c0, c1;
    frnn_split((int)r->chunks, 1, par->tid, par->nth, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        const size_t i0 = (size_t)c * FRNN_OPT_CHUNK, i1 = i0 + FRNN_OPT_CHUNK < r->n ? i0 + FRNN_OPT_CHUNK : r->n;
        double s = 0;
        for (size_t i = i0; i < i1; i++) {
            REAL g = r->g[i];
            if (r->use_coef) g = g * r->coef;                 /* grads *= coef */
            if (o->clip_value != 0) g = g < -cv ? -cv : g > cv ? cv : g;   /* np.clip */
            r->g[i] = g;
            const REAL p = F(update_one)(r, i, r->p[i], g);
            r->p[i] = p;
            s += (double)p * p;
        }
        r->part[c] = s;
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
