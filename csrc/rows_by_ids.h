/* rows_by_ids.h - a token table's rows picked by ids: the gather of an input's rows and the
 * scatter-add of their gradient (typed: included once per REAL by common.h and
 * head_common_impl.h, no include guard; REAL and F as there). */

/* x's rows r (W values each) = table's row ids[r], for this member's share of the rows. */
static void F(gather_rows_by_ids)(const frnn_par *par, REAL *x, const REAL *table, const int *ids, size_t rows,
                                  int W)
{
    for (size_t r = rows * par->tid / par->nth; r < rows * (par->tid + 1) / par->nth; r++)
        memcpy(x + r * W, table + (size_t)ids[r] * W, sizeof(REAL) * W);
}

/* table's row ids[r] += src's row r, columns [c0, c1), r = 0, 1, ... in order (rows of ld values
 * in both): a token's rows add up in one fixed order whichever member owns the columns, so the
 * bits do not depend on the thread count. */
static void F(add_rows_by_ids)(REAL *table, const int *ids, const REAL *src, size_t rows, int ld, int c0, int c1)
{
    for (size_t r = 0; r < rows && c1 > c0; r++) {
        REAL *t = table + (size_t)ids[r] * ld;
        const REAL *s = src + r * ld;
        for (int j = c0; j < c1; j++) t[j] += s[j];
    }
}
