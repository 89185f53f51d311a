/* separable3's last pass from a working dtype TW (suffix SW) into an output dtype TO
 * (suffix SO). Included by grloops.c once per (working, output) pair. */

#define O_(name) GR_CAT5(name, _, SW, _, SO)

/* out[c, k] = round_clip(sum_t w2[k, t] * plane2[c, i2[k, t]]): a float result as written to
 * an integer output is rint, then clipped to [lo, hi] in float64 (as Numba's round_clip). */
static void O_(sep_pass2)(const TW *plane2, int64_t n2, int64_t n1o, const int64_t *i2, const TW *w2, int64_t n2o,
                          int64_t t2, char *out, int64_t os1, int64_t os2, int round_to_int, double lo, double hi)
{
    for (int64_t c = 0; c < n1o; c++) {
        const TW *row = plane2 + c * n2;
        char *line = out + c * os1;
        for (int64_t k = 0; k < n2o; k++) {
            const int64_t *ik = i2 + k * t2;
            const TW *wk = w2 + k * t2;
            TW acc = wk[0] * row[ik[0]];
            for (int64_t t = 1; t < t2; t++) acc += wk[t] * row[ik[t]];
            TO *target = (TO *)(line + k * os2);
            if (round_to_int) {
                double v = (double)GR_RINT(acc);
                if (v < lo)
                    v = lo;
                else if (v > hi)
                    v = hi;
                *target = (TO)v;
            } else {
                *target = (TO)acc;
            }
        }
    }
}

#undef O_
