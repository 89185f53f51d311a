/* The prefilter's recursion along axis 0 over rows of a 2-D source of dtype TS (suffix SS):
 * rows are planes flattened (row stride rs bytes, contiguous columns), every column one
 * line; columns are split into blocks run in parallel. Included once per source dtype.
 * Same operations in the same order as the loops of the same names in _cpu_loops. */

#define S_(name) GR_CAT3(name, _, SS)

typedef struct {
    const char *source;
    int64_t rs;
    const int64_t *front, *back, *rows;
    int64_t n_rows, i_start, n_ext, n, block;
    double z, gain, z_last;
    const double *powers, *acc, *c_in;
    double *total, *c_out, *lines;
    int64_t line_size, pitch;
} S_(rec_ctx);

/* pass 1: the causal initial value's sum over rows i_start + q. */
static void S_(initial_item)(void *p, int64_t blk, int thread)
{
    (void)thread;
    S_(rec_ctx) *c = p;
    int64_t lo = blk * c->block, hi = lo + c->block < c->n ? lo + c->block : c->n;
    double *total = c->total + lo;
    double gain = c->gain, z_last = c->z_last;
    for (int64_t q = 0; q < c->n_rows; q++) {
        int64_t i = c->i_start + q;
        const TS *f = (const TS *)(c->source + c->front[q] * c->rs) + lo;
        const TS *b = (const TS *)(c->source + c->back[q] * c->rs) + lo;
        if (i == 0) {
            for (int64_t k = 0; k < hi - lo; k++) total[k] = (double)f[k] * gain + z_last * ((double)b[k] * gain);
        } else if (i <= c->n_ext - 2) {
            double z_i = c->powers[i];
            for (int64_t k = 0; k < hi - lo; k++)
                total[k] += z_i * ((double)f[k] * gain + z_last * ((double)b[k] * gain));
        }
    }
}

static void S_(causal_initial_sum)(const char *source, int64_t rs, const int64_t *front, const int64_t *back,
                                   int64_t n_rows, int64_t i_start, int64_t n_ext, double z, const double *powers,
                                   double *acc, int64_t n, int64_t block, int64_t threads)
{
    S_(rec_ctx) c = {0};
    c.source = source, c.rs = rs, c.front = front, c.back = back, c.n_rows = n_rows, c.i_start = i_start;
    c.n_ext = n_ext, c.n = n, c.block = block, c.z = z, c.powers = powers, c.total = acc;
    gr_prefilter_constants(n_ext, z, &c.gain, &c.z_last);
    gr_parallel((n + block - 1) / block, threads, S_(initial_item), &c);
}

/* Causal values of rows i_start + q (source row rows[q]) into causal[q][0 .. hi - lo). */
static void S_(causal_rows)(const S_(rec_ctx) *c, int64_t lo, int64_t hi, double *causal)
{
    int64_t m = hi - lo;
    double z = c->z, gain = c->gain;
    for (int64_t q = 0; q < c->n_rows; q++) {
        int64_t i = c->i_start + q;
        double *row = causal + q * c->pitch;
        const TS *values = (const TS *)(c->source + c->rows[q] * c->rs) + lo;
        if (i == 0) {
            const double *start = c->acc + lo;
            for (int64_t k = 0; k < m; k++) row[k] = start[k] / (1.0 - c->z_last * c->z_last);
        } else {
            const double *prev = q == 0 ? c->c_in + lo : causal + (q - 1) * c->pitch;
            for (int64_t k = 0; k < m; k++) row[k] = (double)values[k] * gain + z * prev[k];
        }
    }
}

/* pass 2: the causal recursion over a segment; its last value goes to c_out. */
static void S_(segment_item)(void *p, int64_t blk, int thread)
{
    S_(rec_ctx) *c = p;
    int64_t lo = blk * c->block, hi = lo + c->block < c->n ? lo + c->block : c->n;
    double *causal = c->lines + thread * c->line_size;
    S_(causal_rows)(c, lo, hi, causal);
    const double *row = causal + (c->n_rows - 1) * c->pitch;
    for (int64_t k = 0; k < hi - lo; k++) c->c_out[lo + k] = row[k];
}

static void S_(causal_segment)(const char *source, int64_t rs, const int64_t *rows, int64_t n_rows, int64_t i_start,
                               int64_t n_ext, double z, const double *acc, const double *c_in, double *c_out,
                               int64_t n, double *lines, int64_t threads, int64_t line_rows, int64_t pitch,
                               int64_t block)
{
    S_(rec_ctx) c = {0};
    c.source = source, c.rs = rs, c.rows = rows, c.n_rows = n_rows, c.i_start = i_start, c.n_ext = n_ext;
    c.n = n, c.block = block, c.z = z, c.acc = acc, c.c_in = c_in, c.c_out = c_out, c.lines = lines;
    c.line_size = line_rows * pitch, c.pitch = pitch;
    gr_prefilter_constants(n_ext, z, &c.gain, &c.z_last);
    gr_parallel((n + block - 1) / block, threads, S_(segment_item), &c);
}

#undef S_
