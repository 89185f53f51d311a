/* Loops for oblique targets (a position per output voxel) reading a source of dtype TS
 * (suffix SS) with working dtype TW; GR_AFFINE_CUBIC also defines the cubic loop (for the
 * float dtypes, whose coefficients it reads). Included once per dtype by grloops_affine.c.
 * The same operations, in the same order, as the loops of the same names in
 * gpuresample/backends/_affine_loops.py. */

#define A_(name) GR_CAT3(name, _, SS)

static double A_(load)(const char *p) { return (double)*(const TS *)p; }

/* A float64 result written to this dtype (gr_store_* for the source's own dtype). */
static inline void A_(store_same)(char *target, double v, int round_to_int, double lo, double hi)
{
    if (round_to_int) {
        v = rint(v);
        v = v < lo ? lo : (v > hi ? hi : v);
    }
    *(TS *)target = (TS)v;
}

/* affine_nearest, values copied as they are (same dtype; float16 and bool as their bits). */
static void A_(nearest_copy_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    const gr_affine_ctx local = *(const gr_affine_ctx *)p, *c = &local;
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        double p[3], u[3];
        gr_line_start(c, j0, j1, p);
        char *line = c->out + j0 * c->o[0] + j1 * c->o[1];
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            gr_position(c, p, j2, u);
            double u0 = u[0], u1 = u[1], u2 = u[2];
            TS *target = (TS *)(line + j2 * c->o[2]);
            if (gr_outside(c, u0, u1, u2)) {
                *target = (TS)c->fill;
                continue;
            }
            *target = *(const TS *)gr_nearest_at(c, u0, u1, u2);
        }
    }
}

/* affine_nearest into another dtype: through float64, stored by c->store. */
static void A_(nearest_convert_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    const gr_affine_ctx local = *(const gr_affine_ctx *)p, *c = &local;
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        double p[3], u[3];
        gr_line_start(c, j0, j1, p);
        char *line = c->out + j0 * c->o[0] + j1 * c->o[1];
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            gr_position(c, p, j2, u);
            double u0 = u[0], u1 = u[1], u2 = u[2];
            char *target = line + j2 * c->o[2];
            if (gr_outside(c, u0, u1, u2)) {
                c->store(target, c->fill, 0, 0.0, 0.0);
                continue;
            }
            c->store(target, A_(load)(gr_nearest_at(c, u0, u1, u2)), c->round_to_int, c->lo, c->hi);
        }
    }
}

/* affine_linear: trilinear over the 2x2x2 taps, weights rounded to the working dtype,
 * axis 0 first, then 1, then 2. */
static inline void A_(linear_body)(void *p, int64_t j0, gr_store_fn store)
{
    const gr_affine_ctx local = *(const gr_affine_ctx *)p, *c = &local;
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        double p[3], u[3];
        gr_line_start(c, j0, j1, p);
        char *line = c->out + j0 * c->o[0] + j1 * c->o[1];
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            gr_position(c, p, j2, u);
            double u0 = u[0], u1 = u[1], u2 = u[2];
            char *target = line + j2 * c->o[2];
            if (gr_outside(c, u0, u1, u2)) {
                store(target, c->fill, 0, 0.0, 0.0);
                continue;
            }
            int64_t a[3], b[3];
            double f[3];
            gr_linear_taps(u0, c->n[0], &a[0], &b[0], &f[0]);
            gr_linear_taps(u1, c->n[1], &a[1], &b[1], &f[1]);
            gr_linear_taps(u2, c->n[2], &a[2], &b[2], &f[2]);
            const char *s = c->src;
            int64_t a0 = (a[0] - c->first[0]) * c->s[0], b0 = (b[0] - c->first[0]) * c->s[0];
            int64_t a1 = (a[1] - c->first[1]) * c->s[1], b1 = (b[1] - c->first[1]) * c->s[1];
            int64_t a2 = (a[2] - c->first[2]) * c->s[2], b2 = (b[2] - c->first[2]) * c->s[2];
            TW w0 = (TW)(1.0 - f[0]), w1 = (TW)f[0], w2 = (TW)(1.0 - f[1]), w3 = (TW)f[1];
            TW w4 = (TW)(1.0 - f[2]), w5 = (TW)f[2];
#define X(i, j, k) ((TW) * (const TS *)(s + (i) + (j) + (k)))
            TW x00 = w0 * X(a0, a1, a2) + w1 * X(b0, a1, a2);
            TW x10 = w0 * X(a0, b1, a2) + w1 * X(b0, b1, a2);
            TW x01 = w0 * X(a0, a1, b2) + w1 * X(b0, a1, b2);
            TW x11 = w0 * X(a0, b1, b2) + w1 * X(b0, b1, b2);
#undef X
            TW y0 = w2 * x00 + w3 * x10;
            TW y1 = w2 * x01 + w3 * x11;
            TW acc = w4 * y0 + w5 * y1;
            store(target, (double)acc, c->round_to_int, c->lo, c->hi);
        }
    }
}

static void A_(linear_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    A_(linear_body)(p, j0, ((const gr_affine_ctx *)p)->store);
}

/* The output in the source's own dtype: the store inlined. */
static void A_(linear_same_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    A_(linear_body)(p, j0, A_(store_same));
}

/* affine_label: per-label float64 weights (w0 * w1) * w2 over the 2x2x2 taps in tap order,
 * arg-max, ties to the lower label (as label3). */
static void A_(label_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    const gr_affine_ctx local = *(const gr_affine_ctx *)p, *c = &local;
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        double p[3], u[3];
        gr_line_start(c, j0, j1, p);
        char *line = c->out + j0 * c->o[0] + j1 * c->o[1];
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            gr_position(c, p, j2, u);
            double u0 = u[0], u1 = u[1], u2 = u[2];
            TS *target = (TS *)(line + j2 * c->o[2]);
            if (gr_outside(c, u0, u1, u2)) {
                *target = (TS)c->fill;
                continue;
            }
            int64_t r[3][2];
            double w[3][2];
            for (int k = 0; k < 3; k++) {
                int64_t a, b;
                double f;
                gr_linear_taps(u[k], c->n[k], &a, &b, &f);
                r[k][0] = (a - c->first[k]) * c->s[k];
                r[k][1] = (b - c->first[k]) * c->s[k];
                w[k][0] = 1.0 - f;
                w[k][1] = f;
            }
            TS taps[8];
            double weights[8];
            int same = 1;
            for (int t = 0; t < 8; t++) {
                taps[t] = *(const TS *)(c->src + r[0][t >> 2] + r[1][(t >> 1) & 1] + r[2][t & 1]);
                same &= taps[t] == taps[0];
            }
            if (same) { /* one label among the taps: it wins (as label3) */
                *target = taps[0];
                continue;
            }
            for (int a = 0; a < 2; a++) {
                for (int b = 0; b < 2; b++) {
                    double wab = w[0][a] * w[1][b];
                    for (int k = 0; k < 2; k++) weights[4 * a + 2 * b + k] = wab * w[2][k];
                }
            }
            *target = GR_CAT3(gr_pick_label, _, SS)(taps, weights, 8);
        }
    }
}

#ifdef GR_AFFINE_CUBIC
/* Cubic B-spline taps (byte offsets of kept coefficient rows) and weights (rounded to TW)
 * of position u along an axis of n_ext extended rows (as _cubic_axis). */
static void A_(cubic_axis)(double u, int64_t n_ext, int64_t pad, int64_t first, int64_t stride, TW *w,
                           int64_t *taps)
{
    if (n_ext == 1) { /* the length-1 axis added to 2-D data: one tap of weight 1 */
        w[0] = (TW)1.0;
        for (int q = 0; q < 4; q++) taps[q] = -first * stride;
        for (int q = 1; q < 4; q++) w[q] = (TW)0.0;
        return;
    }
    double padded = u + (double)pad;
    double base = floor(padded);
    double t = padded - base;
    double s = 1.0 - t;
    w[0] = (TW)(s * s * s / 6.0);
    w[1] = (TW)((3.0 * t * t * (t - 2.0) + 4.0) / 6.0);
    w[2] = (TW)((3.0 * s * s * (s - 2.0) + 4.0) / 6.0);
    w[3] = (TW)(t * t * t / 6.0);
    int64_t b = (int64_t)base;
    for (int q = 0; q < 4; q++) {
        int64_t row = b - 1 + q;
        row = row < 0 ? 0 : (row > n_ext - 1 ? n_ext - 1 : row);
        taps[q] = (row - first) * stride;
    }
    if (t == 0.0) taps[3] = taps[1]; /* the only weight that can be zero: the largest tap */
}

/* affine_cubic over the prefiltered coefficients (this dtype is the working one). */
static inline void A_(cubic_body)(void *p, int64_t j0, gr_store_fn store)
{
    const gr_affine_ctx local = *(const gr_affine_ctx *)p, *c = &local;
    TW w[12];
    int64_t ix[12];
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        double p[3], u[3];
        gr_line_start(c, j0, j1, p);
        char *line = c->out + j0 * c->o[0] + j1 * c->o[1];
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            gr_position(c, p, j2, u);
            double u0 = u[0], u1 = u[1], u2 = u[2];
            char *target = line + j2 * c->o[2];
            if (gr_outside(c, u0, u1, u2)) {
                store(target, c->fill, 0, 0.0, 0.0);
                continue;
            }
            A_(cubic_axis)(u0, c->n[0] + 2 * c->pads[0], c->pads[0], c->first[0], c->s[0], w, ix);
            A_(cubic_axis)(u1, c->n[1] + 2 * c->pads[1], c->pads[1], c->first[1], c->s[1], w + 4, ix + 4);
            A_(cubic_axis)(u2, c->n[2] + 2 * c->pads[2], c->pads[2], c->first[2], c->s[2], w + 8, ix + 8);
            TW acc = 0;
            for (int k = 0; k < 4; k++) {
                TW plane = 0;
                for (int b = 0; b < 4; b++) {
                    const char *row = c->src + ix[4 + b] + ix[8 + k];
                    TW x = w[0] * *(const TS *)(row + ix[0]);
                    for (int a = 1; a < 4; a++) x += w[a] * *(const TS *)(row + ix[a]);
                    plane = b == 0 ? w[4] * x : plane + w[4 + b] * x;
                }
                acc = k == 0 ? w[8] * plane : acc + w[8 + k] * plane;
            }
            store(target, (double)acc, c->round_to_int, c->lo, c->hi);
        }
    }
}

static void A_(cubic_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    A_(cubic_body)(p, j0, ((const gr_affine_ctx *)p)->store);
}

static void A_(cubic_same_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    A_(cubic_body)(p, j0, A_(store_same));
}
#endif

#undef A_
