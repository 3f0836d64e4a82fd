/* cells.h - THE cell table: one row per cell (fields in fastrnn.h's frnn_cell_row). The tape
 * layout, the operands of the per-step products, frnn_gates and the binding's cell list are all
 * read from here; each cell's pointwise forward and backward step live in its own C file (rnn.c,
 * gru.c, lstm.c, mgu.c), listed in the same order in template.h's F(CELL_STEPS). Included once,
 * by kernels.c.
 *
 * Adding a cell: a frnn_cell enum value, a row here, its step file, its line in F(CELL_STEPS). */
static const frnn_cell_row FRNN_CELL_TABLE[FRNN_NUM_CELLS] = {
    /* name                gates has_c aux copy first folded barriers */
    [FRNN_RNN_TANH]         = {"rnn_tanh",         1, 0, 0, 0, 0, 1, 1},
    [FRNN_RNN_RELU]         = {"rnn_relu",         1, 0, 0, 0, 0, 1, 1},
    [FRNN_GRU]              = {"gru",              3, 0, 1, 1, 0, 2, 1},
    [FRNN_GRU_RESET_BEFORE] = {"gru_reset_before", 3, 0, 1, 0, 2, 3, 2},
    [FRNN_GRU_SIMPLIFIED]   = {"gru_simplified",   2, 0, 0, 0, 0, 2, 1},
    [FRNN_LSTM]             = {"lstm",             4, 1, 0, 0, 0, 4, 1},
    [FRNN_MGU]              = {"mgu",              2, 0, 1, 0, 1, 2, 2},
};

const frnn_cell_row *frnn_cell_info(int cell)
{
    return cell >= 0 && cell < FRNN_NUM_CELLS ? &FRNN_CELL_TABLE[cell] : NULL;
}

int frnn_gates(int cell)
{
    const frnn_cell_row *row = frnn_cell_info(cell);
    return row ? row->gates : 0;
}
