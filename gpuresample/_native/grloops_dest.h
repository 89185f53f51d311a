/* Recursion loops that store results of dtype TD (suffix SD) from a source of dtype TS
 * (suffix SS). Included once per (source, destination) pair; see grloops_source.h. */

#define S_(name) GR_CAT3(name, _, SS)
#define D_(name) GR_CAT5(name, _, SS, _, SD)

typedef struct {
    S_(rec_ctx) rec;
    double *y_next;
    char *dest;
    int64_t dest_rs;
    const int64_t *dest_rows;
    const double *causal_first, *anticausal_last;
} D_(dest_ctx);

/* pass 3 over one segment: causal values again from c_in, then the anti-causal ones; row
 * i_start + q is stored in dest row dest_rows[q] where that is >= 0. */
static void D_(anticausal_item)(void *p, int64_t blk, int thread)
{
    D_(dest_ctx) *d = p;
    const S_(rec_ctx) *c = &d->rec;
    int64_t lo = blk * c->block, hi = lo + c->block < c->n ? lo + c->block : c->n;
    int64_t m = hi - lo;
    double z = c->z;
    double *causal = c->lines + thread * c->line_size;
    S_(causal_rows)(c, lo, hi, causal);
    double *y = d->y_next + lo;
    for (int64_t q = c->n_rows - 1; q >= 0; q--) {
        int64_t i = c->i_start + q;
        const double *row = causal + q * c->pitch;
        if (i == c->n_ext - 1) {
            const double *before = q == 0 ? c->c_in + lo : causal + (q - 1) * c->pitch;
            for (int64_t k = 0; k < m; k++) y[k] = (z * before[k] + row[k]) * z / (z * z - 1.0);
        } else {
            for (int64_t k = 0; k < m; k++) y[k] = z * (y[k] - row[k]);
        }
        if (d->dest_rows[q] >= 0) {
            TD *target = (TD *)(d->dest + d->dest_rows[q] * d->dest_rs) + lo;
            for (int64_t k = 0; k < m; k++) target[k] = (TD)y[k];
        }
    }
}

static void D_(anticausal_segment)(const char *source, int64_t rs, const int64_t *rows, int64_t n_rows,
                                   int64_t i_start, int64_t n_ext, double z, const double *acc, const double *c_in,
                                   double *y_next, int64_t n, double *lines, int64_t threads, int64_t line_rows,
                                   int64_t pitch, int64_t block, char *dest, int64_t dest_rs,
                                   const int64_t *dest_rows)
{
    D_(dest_ctx) d = {.dest_rows = NULL};
    S_(rec_ctx) *c = &d.rec;
    c->source = source, c->rs = rs, c->rows = rows, c->n_rows = n_rows, c->i_start = i_start, c->n_ext = n_ext;
    c->n = n, c->block = block, c->z = z, c->acc = acc, c->c_in = c_in, c->lines = lines;
    c->line_size = line_rows * pitch, c->pitch = pitch;
    gr_prefilter_constants(n_ext, z, &c->gain, &c->z_last);
    d.y_next = y_next, d.dest = dest, d.dest_rs = dest_rs, d.dest_rows = dest_rows;
    gr_parallel((n + block - 1) / block, threads, D_(anticausal_item), &d);
}

/* filter_from_states: the prefilter of kept rows q = 0 .. n_rows - 1 of a line cut from a
 * longer one, from the whole line's causal value at row 0 and anti-causal value at the last. */
static void D_(states_item)(void *p, int64_t blk, int thread)
{
    D_(dest_ctx) *d = p;
    const S_(rec_ctx) *c = &d->rec;
    int64_t lo = blk * c->block, hi = lo + c->block < c->n ? lo + c->block : c->n;
    int64_t m = hi - lo, kept = c->n_rows;
    double z = c->z, gain = c->gain;
    double *causal = c->lines + thread * c->line_size;
    for (int64_t k = 0; k < m; k++) causal[k] = d->causal_first[lo + k];
    for (int64_t q = 1; q < kept; q++) {
        double *row = causal + q * c->pitch;
        const double *prev = causal + (q - 1) * c->pitch;
        const TS *values = (const TS *)(c->source + c->rows[q] * c->rs) + lo;
        for (int64_t k = 0; k < m; k++) row[k] = (double)values[k] * gain + z * prev[k];
    }
    double *y = causal + (kept - 1) * c->pitch;
    for (int64_t k = 0; k < m; k++) y[k] = d->anticausal_last[lo + k];
    TD *target = (TD *)(d->dest + (kept - 1) * d->dest_rs) + lo;
    for (int64_t k = 0; k < m; k++) target[k] = (TD)y[k];
    for (int64_t q = kept - 2; q >= 0; q--) {
        double *row = causal + q * c->pitch;
        target = (TD *)(d->dest + q * d->dest_rs) + lo;
        for (int64_t k = 0; k < m; k++) {
            row[k] = z * (y[k] - row[k]);
            target[k] = (TD)row[k];
        }
        y = row;
    }
}

static void D_(filter_from_states)(const char *source, int64_t rs, const int64_t *rows, int64_t n_rows, int64_t n_ext,
                                   double z, const double *causal_first, const double *anticausal_last, char *dest,
                                   int64_t dest_rs, int64_t n, double *lines, int64_t threads, int64_t line_rows,
                                   int64_t pitch, int64_t block)
{
    D_(dest_ctx) d = {.dest_rows = NULL};
    S_(rec_ctx) *c = &d.rec;
    c->source = source, c->rs = rs, c->rows = rows, c->n_rows = n_rows, c->n_ext = n_ext, c->n = n;
    c->block = block, c->z = z, c->lines = lines, c->line_size = line_rows * pitch, c->pitch = pitch;
    gr_prefilter_constants(n_ext, z, &c->gain, &c->z_last);
    d.causal_first = causal_first, d.anticausal_last = anticausal_last, d.dest = dest, d.dest_rs = dest_rs;
    gr_parallel((n + block - 1) / block, threads, D_(states_item), &d);
}

#undef S_
#undef D_
