/* label3 for one label dtype TL (suffix SL). Included by grloops.c once per dtype. */

#define L_(name) GR_CAT3(name, _, SL)

/* Per-label linear weights over a voxel's taps, arg-max, ties to the lower label: only the
 * labels present among the taps are scored; weights (w0 * w1) * w2 in float64, summed per
 * label in tap order (as _cpu_loops.label3). A voxel whose taps all hold one label gets it
 * without scoring (the scores could only pick it). */
typedef struct {
    const char *src;
    int64_t s0, s1, s2;
    const int64_t *i0, *i1, *i2;
    const double *w0, *w1, *w2;
    int64_t t0, t1, t2, n1o, n2o;
    char *out;
    int64_t o0, o1, o2;
} L_(label_ctx);

static void L_(label_item)(void *p, int64_t j0, int thread)
{
    (void)thread;
    const L_(label_ctx) local = *(const L_(label_ctx) *)p, *c = &local;
    TL taps[GR_LABEL_TAPS]; /* t0 * t1 * t2 <= GR_LABEL_TAPS, checked by the caller */
    for (int64_t j1 = 0; j1 < c->n1o; j1++) {
        for (int64_t j2 = 0; j2 < c->n2o; j2++) {
            int64_t t = 0, same = 1;
            for (int64_t a = 0; a < c->t0; a++) {
                for (int64_t b = 0; b < c->t1; b++) {
                    const char *line = c->src + c->i0[j0 * c->t0 + a] * c->s0 + c->i1[j1 * c->t1 + b] * c->s1;
                    for (int64_t k = 0; k < c->t2; k++, t++) {
                        taps[t] = *(const TL *)(line + c->i2[j2 * c->t2 + k] * c->s2);
                        same &= taps[t] == taps[0];
                    }
                }
            }
            TL *target = (TL *)(c->out + j0 * c->o0 + j1 * c->o1 + j2 * c->o2);
            if (same) { /* one label among the taps (the common case inside a region): it wins */
                *target = taps[0];
                continue;
            }
            double weights[GR_LABEL_TAPS];
            t = 0;
            for (int64_t a = 0; a < c->t0; a++) {
                for (int64_t b = 0; b < c->t1; b++) {
                    double wab = c->w0[j0 * c->t0 + a] * c->w1[j1 * c->t1 + b];
                    for (int64_t k = 0; k < c->t2; k++, t++) weights[t] = wab * c->w2[j2 * c->t2 + k];
                }
            }
            *target = GR_CAT3(gr_pick_label, _, SL)(taps, weights, t);
        }
    }
}

static void L_(label3)(const char *src, const int64_t *strides, const int64_t *i0, const double *w0, int64_t n0o,
                       int64_t t0, const int64_t *i1, const double *w1, int64_t n1o, int64_t t1, const int64_t *i2,
                       const double *w2, int64_t n2o, int64_t t2, char *out, const int64_t *out_strides,
                       int64_t threads)
{
    L_(label_ctx) c = {src, strides[0], strides[1], strides[2], i0, i1, i2, w0, w1, w2, t0, t1, t2, n1o, n2o,
                       out, out_strides[0], out_strides[1], out_strides[2]};
    gr_parallel(n0o, threads, L_(label_item), &c);
}

#undef L_
