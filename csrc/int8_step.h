/* int8_step.h - int8 inference inside the float32 time loop (template piece, float32 only,
 * included by template.h): a forward with frnn_buffers.q8 set runs every cell's own step functions
 * unchanged, but its recurrent operands are the layer's int8 matrices -- F(rec_mul) then quantizes
 * h_{t-1} (or GRU reset-before's r * h, MGU's f * h, the LSTM's m before the projection) row by row
 * and runs frnn_q8_mul -- and the input projection is frnn_q8_input_projection (template.h's
 * chunk_forward). Gates, cell states and biases stay float32. */

/* Point the two forward operands (template.h's F(operands)) at the int8 weights: W_hh's rows of
 * op[0] and op[1] (cells that split W_hh), or W_hr. The engine keeps its shared pack buffer for
 * nothing but the team's bookkeeping; no float panels are made. Returns the block to free. */
static void *F(q8_setup)(frnn_ctx *cx, const frnn_dims *d, const frnn_buffers *bf, const F(operand) op[2],
                         F(recmat) rec[2])
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
    return block;
}
