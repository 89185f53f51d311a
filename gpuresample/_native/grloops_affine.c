/* The loops for oblique targets (SPEC section 8): one source position per output voxel,
 * u_i = ((m[i][0] j0 + m[i][1] j1) + m[i][2] j2) + m[i][3] in float64, evaluated in exactly this
 * order; a voxel outside [-0.5 - band_atol, n_i - 0.5 + band_atol] on any axis gets `fill`.
 * The same operations, in the same order, as gpuresample/backends/_affine_loops.py (Numba) and
 * kernels/affine.cu. See grloops.h for the library as a whole. */

#include "grloops.h"

typedef void (*gr_store_fn)(char *target, double value, int round_to_int, double lo, double hi);

/* Items read the context into a local copy first: the compiler then keeps its fields in
 * registers (stores into the output, a char-typed buffer, could alias the shared one). */
typedef struct {
    const char *src;
    int64_t s[3];
    double m[12];
    int64_t n[3], first[3], pads[3];
    int64_t j0_start;
    double low, high[3];
    double fill;
    char *out;
    int64_t o[3];
    int64_t n1o, n2o;
    int round_to_int;
    double lo, hi;
    gr_store_fn store;
} gr_affine_ctx;

/* The first two terms of each axis's position along the output line (j0, j1). */
static inline void gr_line_start(const gr_affine_ctx *c, int64_t j0, int64_t j1, double p[3])
{
    double J0 = (double)(j0 + c->j0_start), J1 = (double)j1;
    p[0] = c->m[0] * J0 + c->m[1] * J1;
    p[1] = c->m[4] * J0 + c->m[5] * J1;
    p[2] = c->m[8] * J0 + c->m[9] * J1;
}

/* The source position of output voxel j2 of that line: ((m0 j0 + m1 j1) + m2 j2) + m3 per axis. */
static inline void gr_position(const gr_affine_ctx *c, const double p[3], int64_t j2, double u[3])
{
    double J2 = (double)j2;
    u[0] = (p[0] + c->m[2] * J2) + c->m[3];
    u[1] = (p[1] + c->m[6] * J2) + c->m[7];
    u[2] = (p[2] + c->m[10] * J2) + c->m[11];
}

/* Whether a position lies outside the band on any axis (its voxel gets fill). */
static inline int gr_outside(const gr_affine_ctx *c, double u0, double u1, double u2)
{
    return u0 < c->low || u0 > c->high[0] || u1 < c->low || u1 > c->high[1] || u2 < c->low || u2 > c->high[2];
}

static inline int64_t gr_nearest_row(double u, int64_t n, int64_t first)
{
    int64_t i = (int64_t)floor(u + 0.5);
    i = i < 0 ? 0 : i;
    i = i < n - 1 ? i : n - 1;
    return i - first;
}

/* The source voxel nearest to (u0, u1, u2): floor(u + 0.5) per axis, clamped to the volume. */
static inline const char *gr_nearest_at(const gr_affine_ctx *c, double u0, double u1, double u2)
{
    return c->src + gr_nearest_row(u0, c->n[0], c->first[0]) * c->s[0] + gr_nearest_row(u1, c->n[1], c->first[1]) * c->s[1]
           + gr_nearest_row(u2, c->n[2], c->first[2]) * c->s[2];
}

/* (i0, i1, frac) of a linear tap pair (global rows): the position clamped to [0, n - 1], the
 * zero-weight tap pointed at i0. */
static inline void gr_linear_taps(double u, int64_t n, int64_t *i0, int64_t *i1, double *frac)
{
    double clamped = u > 0.0 ? u : 0.0;
    double top = (double)n - 1.0;
    clamped = clamped < top ? clamped : top;
    double base = floor(clamped);
    *frac = clamped - base;
    *i0 = (int64_t)base;
    *i1 = (*i0 + 1 < n && *frac != 0.0) ? *i0 + 1 : *i0;
}

/* A float64 result as written to each output dtype: rint then clip for integers (see
 * grloops_out.h), else converted. */

#define GR_DEFINE_STORE(s, t)                                                                      \
    static void gr_store_##s(char *target, double v, int round_to_int, double lo, double hi)               \
    {                                                                                                      \
        if (round_to_int) {                                                                                \
            v = rint(v);                                                                                   \
            v = v < lo ? lo : (v > hi ? hi : v);                                                           \
        }                                                                                                  \
        *(t *)target = (t)v;                                                                               \
    }
GR_CTYPES(GR_DEFINE_STORE)

#define TS uint8_t
#define SS u8
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS int8_t
#define SS i8
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS uint16_t
#define SS u16
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS int16_t
#define SS i16
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS uint32_t
#define SS u32
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS int32_t
#define SS i32
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS uint64_t
#define SS u64
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS int64_t
#define SS i64
#define TW double
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW

#define TS float
#define SS f32
#define TW float
#define GR_AFFINE_CUBIC
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW
#undef GR_AFFINE_CUBIC

#define TS double
#define SS f64
#define TW double
#define GR_AFFINE_CUBIC
#include "grloops_affine.h"
#undef TS
#undef SS
#undef TW
#undef GR_AFFINE_CUBIC

/* ---- entry point ------------------------------------------------------------------ */

enum { GR_AFFINE_NEAREST_COPY, GR_AFFINE_NEAREST, GR_AFFINE_LINEAR, GR_AFFINE_CUBIC_KIND, GR_AFFINE_LABEL };

#define GR_STORE_CASE(i, s) case i: c.store = gr_store_##s; break;
#define GR_AFFINE_ITEM_CASE(i, s)                                                                              \
    case i:                                                                                                    \
        item = kind == GR_AFFINE_NEAREST_COPY ? nearest_copy_item_##s                                          \
               : kind == GR_AFFINE_NEAREST    ? nearest_convert_item_##s                                       \
               : kind == GR_AFFINE_LINEAR     ? (tout == ts ? linear_same_item_##s : linear_item_##s)          \
               : kind == GR_AFFINE_LABEL      ? label_item_##s                                                 \
                                              : NULL;                                                          \
        break;

/* One oblique block: kind 0 nearest (same dtype, copied), 1 nearest (into dtype tout),
 * 2 linear, 3 cubic (src: the float coefficients), 4 label (out of src's dtype). m: the 3x4
 * matrix, row major; n, first, pads: per axis; out_shape (n0o, n1o, n2o). */
GR_EXPORT int gr_affine(int kind, int ts, int tout, const char *src, const int64_t *strides, const double *m,
                        const int64_t *n, const int64_t *first, const int64_t *pads, int64_t j0_start, double band_atol,
                        double fill, char *out, const int64_t *out_shape, const int64_t *out_strides,
                        int round_to_int, double lo, double hi, int64_t threads)
{
    gr_affine_ctx c;
    c.src = src;
    for (int k = 0; k < 3; k++) {
        c.s[k] = strides[k];
        c.n[k] = n[k];
        c.first[k] = first[k];
        c.pads[k] = pads[k];
        c.o[k] = out_strides[k];
        c.high[k] = ((double)n[k] - 0.5) + band_atol;
    }
    for (int k = 0; k < 12; k++) c.m[k] = m[k];
    c.low = -0.5 - band_atol;
    c.j0_start = j0_start, c.fill = fill, c.out = out, c.n1o = out_shape[1], c.n2o = out_shape[2];
    c.round_to_int = round_to_int, c.lo = lo, c.hi = hi, c.store = NULL;
    switch (tout) {
        GR_DTYPES(GR_STORE_CASE)
    default: return -1;
    }
    gr_task item = NULL;
    if (kind == GR_AFFINE_CUBIC_KIND) {
        item = ts == 8 ? (tout == 8 ? cubic_same_item_f32 : cubic_item_f32)
               : ts == 9 ? (tout == 9 ? cubic_same_item_f64 : cubic_item_f64) : NULL;
    } else {
        switch (ts) {
            GR_DTYPES(GR_AFFINE_ITEM_CASE)
        default: return -1;
        }
    }
    if (item == NULL) return -1;
    gr_parallel(out_shape[0], threads, item, &c);
    return 0;
}
