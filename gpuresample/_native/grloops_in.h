/* Loops from an input dtype TI (suffix SI) into its working dtype TW (suffix SW).
 * Included by grloops.c once per input dtype. */

#define I_(name) GR_CAT3(name, _, SI)
#define W_(name) GR_CAT3(name, _, SW)

/* separable3, first pass: plane[a, b] = sum_t w0[t] * src[i0[t], a, b]. */
static void I_(sep_pass0)(const char *src, int64_t n1, int64_t n2, int64_t s0, int64_t s1, int64_t s2,
                          const int64_t *i0, const TW *w0, int64_t t0, TW *plane)
{
    for (int64_t a = 0; a < n1; a++) {
        TW *out = plane + a * n2;
        for (int64_t t = 0; t < t0; t++) {
            const char *line = src + i0[t] * s0 + a * s1;
            TW wt = w0[t];
            if (s2 == (int64_t)sizeof(TI)) {
                const TI *x = (const TI *)line;
                if (t == 0)
                    for (int64_t b = 0; b < n2; b++) out[b] = wt * (TW)x[b];
                else
                    for (int64_t b = 0; b < n2; b++) out[b] += wt * (TW)x[b];
            } else {
                if (t == 0)
                    for (int64_t b = 0; b < n2; b++) out[b] = wt * (TW)*(const TI *)(line + b * s2);
                else
                    for (int64_t b = 0; b < n2; b++) out[b] += wt * (TW)*(const TI *)(line + b * s2);
            }
        }
    }
}

/* gather_clamped: out[a, b, c] = src[m0[a], m1[b], m2[c]] in the working dtype (out C-contiguous). */
typedef struct {
    const char *src;
    int64_t s0, s1, s2;
    const int64_t *m0, *m1, *m2;
    int64_t n1, n2;
    TW *out;
} I_(gather_ctx);

static void I_(gather_item)(void *p, int64_t a, int thread)
{
    (void)thread;
    I_(gather_ctx) *c = p;
    TW *out = c->out + a * c->n1 * c->n2;
    for (int64_t b = 0; b < c->n1; b++) {
        const char *line = c->src + c->m0[a] * c->s0 + c->m1[b] * c->s1;
        for (int64_t k = 0; k < c->n2; k++) out[b * c->n2 + k] = (TW)*(const TI *)(line + c->m2[k] * c->s2);
    }
}

static void I_(gather_clamped)(const char *src, const int64_t *strides, const int64_t *m0, int64_t n0,
                               const int64_t *m1, int64_t n1, const int64_t *m2, int64_t n2, TW *out,
                               int64_t threads)
{
    I_(gather_ctx) c = {src, strides[0], strides[1], strides[2], m0, m1, m2, n1, n2, out};
    gr_parallel(n0, threads, I_(gather_item), &c);
}

/* gather_planes: planes[slots[q]] = src[rows[q]][map1][:, map2], then the in-plane stages. */
typedef struct {
    const char *src;
    int64_t s0, s1, s2;
    const int64_t *rows, *slots, *map1, *map2;
    int64_t n1, n2, run_lo, run_hi;
    TW *planes;
    const int64_t *stages;
    int64_t n_stages;
    double z;
    double *lines;
    int64_t line_size, pitch;
} I_(gather_planes_ctx);

static void I_(gather_planes_item)(void *p, int64_t q, int thread)
{
    I_(gather_planes_ctx) *c = p;
    int64_t n1 = c->n1, n2 = c->n2, s2 = c->s2;
    int64_t shift = c->run_hi > c->run_lo ? c->map2[c->run_lo] - c->run_lo : 0;
    TW *plane = c->planes + c->slots[q] * n1 * n2;
    for (int64_t a = 0; a < n1; a++) {
        const char *line = c->src + c->rows[q] * c->s0 + c->map1[a] * c->s1;
        TW *target = plane + a * n2;
        for (int64_t b = 0; b < c->run_lo; b++) target[b] = (TW)*(const TI *)(line + c->map2[b] * s2);
        if (s2 == (int64_t)sizeof(TI)) {
            const TI *x = (const TI *)line + shift;
            for (int64_t b = c->run_lo; b < c->run_hi; b++) target[b] = (TW)x[b];
        } else {
            for (int64_t b = c->run_lo; b < c->run_hi; b++) target[b] = (TW)*(const TI *)(line + (shift + b) * s2);
        }
        for (int64_t b = c->run_hi; b < n2; b++) target[b] = (TW)*(const TI *)(line + c->map2[b] * s2);
    }
    if (c->n_stages > 0)
        W_(filter_plane)(plane, n1, n2, c->stages, c->n_stages, c->z, c->lines + thread * c->line_size, c->pitch);
}

static void I_(gather_planes)(const char *src, const int64_t *strides, const int64_t *rows, const int64_t *slots,
                              int64_t n_rows, const int64_t *map1, int64_t n1, const int64_t *map2, int64_t n2,
                              int64_t run_lo, int64_t run_hi, TW *planes, const int64_t *stages, int64_t n_stages,
                              double z, double *lines, int64_t threads, int64_t line_rows, int64_t pitch)
{
    I_(gather_planes_ctx) c = {src, strides[0], strides[1], strides[2], rows, slots, map1, map2, n1, n2, run_lo, run_hi,
                        planes, stages, n_stages, z, lines, line_rows * pitch, pitch};
    gr_parallel(n_rows, threads, I_(gather_planes_item), &c);
}

#undef I_
#undef W_
