/* int8_step.h - int8 inference inside the float32 time loop (template piece, float32 only,
 * included by template.h): a forward with frnn_buffers.q8 set runs every cell's own step functions
 * unchanged, but its recurrent operands are the layer's int8 matrices -- F(rec_mul) then quantizes
 * h_{t-1} (or GRU reset-before's r * h, MGU's f * h, the LSTM's m before the projection) row by row
 * and runs frnn_q8_mul -- and the input projection is frnn_q8_input_projection (template.h's
 * chunk_forward). Gates, cell states and biases stay float32.
 *
 * Static rows (int8.h): in inference, when the layer asks for them (frnn_q8_layer.hstatic), its cell
 * keeps |h_t| <= 1 (tanh RNN, the GRUs and MGU -- convex mixes of tanh and h_{t-1} -- and the LSTM
 * without projection: o * tanh(c)) and |h0| <= 1, the u8 rows of h_{t-1} live next to the two
 * float h buffers: h0's are made here, and each member quantizes the columns of h_t it has just
 * computed (F(q8_emit), after the gate maths and the finished-rows copy, before the step's
 * barrier), so W_hh's product reads bytes (frnn_q8_mul_static): no range pass, each value
 * quantized once instead of once per member. Unbounded h (relu, projection, |h0| > 1) keeps the
 * dynamic rows; so do the other operands (r*h, f*h, the projection's m) and the input projection. */

/* Point the two forward operands (template.h's F(operands)) at the int8 weights: W_hh's rows of
 * op[0] and op[1] (cells that split W_hh), or W_hr. The engine keeps its shared pack buffer for
 * nothing but the team's bookkeeping; no float panels are made. Returns the block to free. */
static void *F(q8_setup)(frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, const F(operand) op[2],
                         F(recmat) rec[2], int train)
{
    const frnn_cell_row *row = frnn_cell_info(d->cell);
    F(operand) bare[2] = {op[0], op[1]};
    bare[0].N = bare[1].N = 0;                       /* nothing to pack */
    void *block = F(engine_setup)(cx, d, 0, bare, NULL, rec);
    for (int i = 0; i < 2; i++) {
        F(recmat_init)(&rec[i], cx, 1, op[i].N, op[i].K, op[i].W, op[i].ldw, op[i].seg, NULL);
        rec[i].q8_on = op[i].N > 0;
    }
    rec[0].q8 = frnn_q8_rows(&bf->q8->hh, 0, op[0].N);
    if (op[1].N) rec[1].q8 = row->first_gates ? frnn_q8_rows(&bf->q8->hh, op[0].N, op[1].N) : bf->q8->hr;
    /* static rows of h_{t-1}: bounded cells, inference, |h0| <= 1 */
    const size_t BP = (size_t)d->B * d->P;
    int bounded = bf->q8->hstatic && !train && d->cell != FRNN_RNN_RELU && d->P == d->H && BP > 0;
    for (size_t i = 0; bounded && bf->h0 && i < BP; i++) bounded = !(fabsf(((const float *)bf->h0)[i]) > 1.0f);
    if (!bounded) return block;
    const size_t Kp = (size_t)rec[0].q8.Kp, slot = (size_t)d->B * Kp;
    const size_t pack = block ? sizeof(float) * F(aligned)(F(team_pack_floats)(d, 0, cx->bf16)) : 0;
    void *both = NULL;
    if (posix_memalign(&both, 64, pack + 2 * slot) != 0) return block;   /* no memory: dynamic rows */
    free(block);                                     /* the team's pack area moves to the new block */
    if (pack) cx->pack = both;
    uint8_t *qh = (uint8_t *)both + pack;
    memset(qh, 64, 2 * slot);                        /* the padding past P stays 64 (zero) */
    const frnn_layout L = frnn_tape_layout(d, 0);
    rec[0].q8h = qh, rec[0].q8slot = slot;
    rec[0].q8src[0] = (const REAL *)bf->h_T, rec[0].q8src[1] = (const REAL *)bf->tape + L.scratch;
    for (int b = 0; b < d->B; b++)                   /* h0 (zeros when absent): the first step's rows */
        if (bf->h0) frnn_q8_quantize_static((const float *)bf->h0 + (size_t)b * d->P, d->P, qh + b * Kp);
    return both;
}

/* After step t's gate maths: the member's columns [p0, p1) of h_t into the static rows of its
 * buffer (nothing when the layer runs dynamic rows). */
static void F(q8_emit)(const F(recmat) *r, const REAL *h, int B, int P, int p0, int p1)
{
    if (r->q8h == NULL || p1 <= p0) return;
    uint8_t *q = (uint8_t *)r->q8h + (h == r->q8src[0] ? 0 : r->q8slot);
    for (int b = 0; b < B; b++)
        frnn_q8_quantize_static(h + (size_t)b * P + p0, p1 - p0, q + (size_t)b * r->q8.Kp + p0);
}
