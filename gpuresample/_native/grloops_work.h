/* Loops over one working dtype TW (float or double), suffix SW.  Included by grloops.c. */

#define W_(name) GR_CAT3(name, _, SW)

/* _filter_lines: the cubic B-spline prefilter along the rows of a 2-D view, in place.
 * The view holds rows [first, first + n_rows) of the extended line (every data row),
 * m columns; rs and cs are its byte strides. ext: float64 scratch, (n_ext + 1) rows of
 * pitch doubles. Same operations, in the same order, as _cpu_loops._filter_lines. */
static void W_(filter_lines)(char *view, int64_t n_rows, int64_t m, int64_t rs, int64_t cs, int64_t first,
                             int64_t pad_before, int64_t length, int64_t pad_after, double z, double *ext,
                             int64_t pitch)
{
    int64_t n_ext = pad_before + length + pad_after;
    double gain, z_last;
    gr_prefilter_constants(n_ext, z, &gain, &z_last);
    for (int64_t k = 0; k < length; k++) {
        double *row = ext + (pad_before + k) * pitch;
        const char *source = view + (pad_before - first + k) * rs;
        if (cs == (int64_t)sizeof(TW)) {
            const TW *s = (const TW *)source;
            for (int64_t c = 0; c < m; c++) row[c] = (double)s[c] * gain;
        } else {
            for (int64_t c = 0; c < m; c++) row[c] = (double)*(const TW *)(source + c * cs) * gain;
        }
    }
    const double *edge = ext + pad_before * pitch;
    for (int64_t k = 0; k < pad_before; k++) {
        double *row = ext + k * pitch;
        for (int64_t c = 0; c < m; c++) row[c] = edge[c];
    }
    edge = ext + (pad_before + length - 1) * pitch;
    for (int64_t k = 0; k < pad_after; k++) {
        double *row = ext + (pad_before + length + k) * pitch;
        for (int64_t c = 0; c < m; c++) row[c] = edge[c];
    }
    if (n_ext > 1) {
        double *total = ext + n_ext * pitch;
        double *head = ext;
        double *tail = ext + (n_ext - 1) * pitch;
        for (int64_t c = 0; c < m; c++) total[c] = head[c] + z_last * tail[c];
        double z_i = z;
        for (int64_t i = 1; i < n_ext - 1; i++) {
            const double *row = ext + i * pitch;
            const double *mirror = ext + (n_ext - 1 - i) * pitch;
            for (int64_t c = 0; c < m; c++) total[c] += z_i * (row[c] + z_last * mirror[c]);
            z_i *= z;
        }
        for (int64_t c = 0; c < m; c++) head[c] = total[c] / (1.0 - z_last * z_last);
        for (int64_t i = 1; i < n_ext; i++) {
            double *row = ext + i * pitch;
            const double *previous = ext + (i - 1) * pitch;
            for (int64_t c = 0; c < m; c++) row[c] += z * previous[c];
        }
        const double *before = ext + (n_ext - 2) * pitch;
        for (int64_t c = 0; c < m; c++) tail[c] = (z * before[c] + tail[c]) * z / (z * z - 1.0);
        for (int64_t i = n_ext - 2; i >= 0; i--) {
            double *row = ext + i * pitch;
            const double *after = ext + (i + 1) * pitch;
            for (int64_t c = 0; c < m; c++) row[c] = z * (after[c] - row[c]);
        }
    }
    for (int64_t k = 0; k < n_rows; k++) {
        const double *row = ext + (first + k) * pitch;
        char *target = view + k * rs;
        if (cs == (int64_t)sizeof(TW)) {
            TW *t = (TW *)target;
            for (int64_t c = 0; c < m; c++) t[c] = (TW)row[c];
        } else {
            for (int64_t c = 0; c < m; c++) *(TW *)(target + c * cs) = (TW)row[c];
        }
    }
}

/* _filter_plane: in-plane stages (plane axis, first, pad_before, length, pad_after) on a
 * C-contiguous n1 x n2 plane. */
static void W_(filter_plane)(TW *plane, int64_t n1, int64_t n2, const int64_t *stages, int64_t n_stages, double z,
                             double *ext, int64_t pitch)
{
    for (int64_t s = 0; s < n_stages; s++) {
        const int64_t *st = stages + 5 * s;
        if (st[0] == 0)
            W_(filter_lines)((char *)plane, n1, n2, n2 * (int64_t)sizeof(TW), sizeof(TW), st[1], st[2], st[3], st[4],
                             z, ext, pitch);
        else
            W_(filter_lines)((char *)plane, n2, n1, sizeof(TW), n2 * (int64_t)sizeof(TW), st[1], st[2], st[3], st[4],
                             z, ext, pitch);
    }
}

/* spline_filter_axis0: the prefilter along axis 0 of a strided 3-D view, every (b) in parallel. */
typedef struct {
    char *coef;
    int64_t n0, n1, n2, s0, s1, s2, first, pad_before, length, pad_after;
    double z;
    double *lines;
    int64_t line_size, pitch;
} W_(axis0_ctx);

static void W_(axis0_item)(void *p, int64_t b, int thread)
{
    W_(axis0_ctx) *c = p;
    W_(filter_lines)(c->coef + b * c->s1, c->n0, c->n2, c->s0, c->s2, c->first, c->pad_before, c->length,
                     c->pad_after, c->z, c->lines + thread * c->line_size, c->pitch);
}

static void W_(spline_filter_axis0)(char *coef, const int64_t *shape, const int64_t *strides, int64_t first,
                                    int64_t pad_before, int64_t length, int64_t pad_after, double z, double *lines,
                                    int64_t threads, int64_t line_rows, int64_t pitch)
{
    W_(axis0_ctx) c = {coef, shape[0], shape[1], shape[2], strides[0], strides[1], strides[2], first, pad_before,
                       length, pad_after, z, lines, line_rows * pitch, pitch};
    gr_parallel(shape[1], threads, W_(axis0_item), &c);
}

/* filter_planes: in-plane stages on planes[slots[q]]. */
typedef struct {
    TW *planes;
    int64_t n1, n2;
    const int64_t *slots, *stages;
    int64_t n_stages;
    double z;
    double *lines;
    int64_t line_size, pitch;
} W_(filter_ctx);

static void W_(filter_planes_item)(void *p, int64_t q, int thread)
{
    W_(filter_ctx) *c = p;
    W_(filter_plane)(c->planes + c->slots[q] * c->n1 * c->n2, c->n1, c->n2, c->stages, c->n_stages, c->z,
                     c->lines + thread * c->line_size, c->pitch);
}

static void W_(filter_planes)(TW *planes, int64_t n1, int64_t n2, const int64_t *slots, int64_t n_slots,
                              const int64_t *stages, int64_t n_stages, double z, double *lines, int64_t threads,
                              int64_t line_rows, int64_t pitch)
{
    W_(filter_ctx) c = {planes, n1, n2, slots, stages, n_stages, z, lines, line_rows * pitch, pitch};
    gr_parallel(n_slots, threads, W_(filter_planes_item), &c);
}

/* separable3, second pass: plane2[c, b] = sum_t w1[c, t] * plane[i1[c, t], b] (contiguous planes). */
static void W_(sep_pass1)(const TW *plane, int64_t n2, const int64_t *i1, const TW *w1, int64_t n1o, int64_t t1,
                          TW *plane2)
{
    for (int64_t c = 0; c < n1o; c++) {
        TW *out = plane2 + c * n2;
        const TW *row = plane + i1[c * t1] * n2;
        TW wt = w1[c * t1];
        for (int64_t b = 0; b < n2; b++) out[b] = wt * row[b];
        for (int64_t t = 1; t < t1; t++) {
            row = plane + i1[c * t1 + t] * n2;
            wt = w1[c * t1 + t];
            for (int64_t b = 0; b < n2; b++) out[b] += wt * row[b];
        }
    }
}

#undef W_

#define W_(name) GR_CAT3(name, _, SW)

/* separable3 for one working dtype: pass 0 (input dtype) and pass 2 (output dtype) come in
 * as function pointers, pass 1 is the working dtype's own. */
typedef void (*W_(pass0_fn))(const char *src, int64_t n1, int64_t n2, int64_t s0, int64_t s1, int64_t s2,
                             const int64_t *i0, const TW *w0, int64_t t0, TW *plane);
typedef void (*W_(pass2_fn))(const TW *plane2, int64_t n2, int64_t n1o, const int64_t *i2, const TW *w2,
                             int64_t n2o, int64_t t2, char *out, int64_t os1, int64_t os2, int round_to_int,
                             double lo, double hi);

typedef struct {
    W_(pass0_fn) pass0;
    W_(pass2_fn) pass2;
    const char *src;
    int64_t n1, n2, s0, s1, s2;
    const int64_t *i0, *i1, *i2;
    const TW *w0, *w1, *w2;
    int64_t t0, n1o, t1, n2o, t2;
    char *out;
    int64_t os0, os1, os2;
    int round_to_int;
    double lo, hi;
    TW *planes, *planes2;
} W_(sep_ctx);

static void W_(sep_item)(void *p, int64_t j0, int thread)
{
    W_(sep_ctx) *c = p;
    TW *plane = c->planes + (int64_t)thread * c->n1 * c->n2;
    TW *plane2 = c->planes2 + (int64_t)thread * c->n1o * c->n2;
    c->pass0(c->src, c->n1, c->n2, c->s0, c->s1, c->s2, c->i0 + j0 * c->t0, c->w0 + j0 * c->t0, c->t0, plane);
    W_(sep_pass1)(plane, c->n2, c->i1, c->w1, c->n1o, c->t1, plane2);
    c->pass2(plane2, c->n2, c->n1o, c->i2, c->w2, c->n2o, c->t2, c->out + j0 * c->os0, c->os1, c->os2,
             c->round_to_int, c->lo, c->hi);
}

#undef W_
