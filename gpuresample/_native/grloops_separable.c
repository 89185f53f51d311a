/* The separable loops (separable3, label3, gather_clamped, the prefilter of whole lines and
 * planes), once per dtype, and their entry points. See grloops.h. */

#include "grloops.h"

#define TW float
#define SW f32
#include "grloops_work.h"
#undef TW
#undef SW

#define TW double
#define SW f64
#include "grloops_work.h"
#undef TW
#undef SW

#define TI uint8_t
#define SI u8
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI int8_t
#define SI i8
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI uint16_t
#define SI u16
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI int16_t
#define SI i16
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI uint32_t
#define SI u32
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI int32_t
#define SI i32
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI uint64_t
#define SI u64
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI int64_t
#define SI i64
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI float
#define SI f32
#define TW float
#define SW f32
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TI double
#define SI f64
#define TW double
#define SW f64
#include "grloops_in.h"
#undef TI
#undef SI
#undef TW
#undef SW

#define TW float
#define SW f32
#define TO uint8_t
#define SO u8
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO int8_t
#define SO i8
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO uint16_t
#define SO u16
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO int16_t
#define SO i16
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO uint32_t
#define SO u32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO int32_t
#define SO i32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO uint64_t
#define SO u64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO int64_t
#define SO i64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO float
#define SO f32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW float
#define SW f32
#define TO double
#define SO f64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO uint8_t
#define SO u8
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO int8_t
#define SO i8
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO uint16_t
#define SO u16
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO int16_t
#define SO i16
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO uint32_t
#define SO u32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO int32_t
#define SO i32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO uint64_t
#define SO u64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO int64_t
#define SO i64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO float
#define SO f32
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TW double
#define SW f64
#define TO double
#define SO f64
#include "grloops_out.h"
#undef TW
#undef SW
#undef TO
#undef SO

#define TL uint8_t
#define SL u8
#include "grloops_label.h"
#undef TL
#undef SL

#define TL int8_t
#define SL i8
#include "grloops_label.h"
#undef TL
#undef SL

#define TL uint16_t
#define SL u16
#include "grloops_label.h"
#undef TL
#undef SL

#define TL int16_t
#define SL i16
#include "grloops_label.h"
#undef TL
#undef SL

#define TL uint32_t
#define SL u32
#include "grloops_label.h"
#undef TL
#undef SL

#define TL int32_t
#define SL i32
#include "grloops_label.h"
#undef TL
#undef SL

#define TL uint64_t
#define SL u64
#include "grloops_label.h"
#undef TL
#undef SL

#define TL int64_t
#define SL i64
#include "grloops_label.h"
#undef TL
#undef SL

#define TL float
#define SL f32
#include "grloops_label.h"
#undef TL
#undef SL

#define TL double
#define SL f64
#include "grloops_label.h"
#undef TL
#undef SL

/* ---- entry points (dtype codes in, 0 on success, -1 for a dtype without a loop) ---- */

GR_EXPORT int gr_abi(void) { return GR_ABI; }

GR_EXPORT const char *gr_source_hash(void) { return GR_SOURCE_HASH; }

/* Float64-working input dtypes (every code but 8, float32). */
#define GR_F64_INPUTS(X) X(0, u8) X(1, i8) X(2, u16) X(3, i16) X(4, u32) X(5, i32) X(6, u64) X(7, i64) X(9, f64)

#define GR_SEPARABLE(SW, PASS0_SWITCH)                                                                         \
    do {                                                                                                       \
        GR_CAT3(sep_ctx, _, SW) c = {NULL, NULL, src, shape[1], shape[2], strides[0], strides[1], strides[2], \
                                     i0, i1, i2, w0, w1, w2, t0, n1o, t1, n2o, t2, out, out_strides[0],      \
                                     out_strides[1], out_strides[2], round_to_int, lo, hi, planes, planes2}; \
        PASS0_SWITCH                                                                                           \
        switch (tout) {                                                                                        \
            GR_DTYPES(GR_PASS2_CASE_##SW)                                                                      \
        default: return -1;                                                                                    \
        }                                                                                                      \
        gr_parallel(n0o, threads, GR_CAT3(sep_item, _, SW), &c);                                               \
    } while (0)
#define GR_PASS2_CASE_f32(i, s) case i: c.pass2 = sep_pass2_f32_##s; break;
#define GR_PASS2_CASE_f64(i, s) case i: c.pass2 = sep_pass2_f64_##s; break;
#define GR_PASS0_CASE(i, s) case i: c.pass0 = sep_pass0_##s; break;

/* separable3: out[j0, j1, j2] = sum_c w2 * (sum_b w1 * (sum_a w0 * src[a, b, c])); w* and the
 * planes in the input's working dtype; planes (threads, n1, n2), planes2 (threads, n1o, n2). */
GR_EXPORT int gr_separable3(int tin, int tout, const char *src, const int64_t *shape, const int64_t *strides,
                            const int64_t *i0, const void *w0, int64_t n0o, int64_t t0, const int64_t *i1,
                            const void *w1, int64_t n1o, int64_t t1, const int64_t *i2, const void *w2, int64_t n2o,
                            int64_t t2, char *out, const int64_t *out_strides, int round_to_int, double lo, double hi,
                            void *planes, void *planes2, int64_t threads)
{
    if (tin == 8) {
        GR_SEPARABLE(f32, c.pass0 = sep_pass0_f32;);
    } else {
        GR_SEPARABLE(f64, switch (tin) {
            GR_F64_INPUTS(GR_PASS0_CASE)
        default: return -1;
        });
    }
    return 0;
}

#define GR_LABEL_CASE(i, s)                                                                                   \
    case i: label3_##s(src, strides, i0, w0, n0o, t0, i1, w1, n1o, t1, i2, w2, n2o, t2, out, out_strides, threads); \
        return 0;

/* label3: labels of dtype code t (see grloops_label.h); t0 * t1 * t2 <= GR_LABEL_TAPS. */
GR_EXPORT int gr_label3(int t, const char *src, const int64_t *strides, const int64_t *i0, const double *w0,
                        int64_t n0o, int64_t t0, const int64_t *i1, const double *w1, int64_t n1o, int64_t t1,
                        const int64_t *i2, const double *w2, int64_t n2o, int64_t t2, char *out,
                        const int64_t *out_strides, int64_t threads)
{
    if (t0 * t1 * t2 > GR_LABEL_TAPS) return -1;
    switch (t) {
        GR_DTYPES(GR_LABEL_CASE)
    default: return -1;
    }
}

#define GR_GATHER_CASE(i, s)                                                                                   \
    case i: gather_clamped_##s(src, strides, m0, n0, m1, n1, m2, n2, out, threads); return 0;

/* gather_clamped: out (C-contiguous, the input's working dtype) = src[m0][:, m1][:, :, m2]. */
GR_EXPORT int gr_gather_clamped(int tin, const char *src, const int64_t *strides, const int64_t *m0, int64_t n0,
                                const int64_t *m1, int64_t n1, const int64_t *m2, int64_t n2, void *out,
                                int64_t threads)
{
    switch (tin) {
        GR_DTYPES(GR_GATHER_CASE)
    default: return -1;
    }
}

/* spline_filter_axis0: the prefilter along axis 0 of a strided 3-D view of working dtype tw
 * (8 or 9); lines: float64 scratch (threads, line_rows, pitch). */
GR_EXPORT int gr_spline_filter_axis0(int tw, char *coef, const int64_t *shape, const int64_t *strides,
                                     int64_t first, int64_t pad_before, int64_t length, int64_t pad_after, double z,
                                     double *lines, int64_t threads, int64_t line_rows, int64_t pitch)
{
    if (tw == 8)
        spline_filter_axis0_f32(coef, shape, strides, first, pad_before, length, pad_after, z, lines, threads,
                                line_rows, pitch);
    else if (tw == 9)
        spline_filter_axis0_f64(coef, shape, strides, first, pad_before, length, pad_after, z, lines, threads,
                                line_rows, pitch);
    else
        return -1;
    return 0;
}

#define GR_PLANES_CASE(i, s)                                                                                   \
    case i: gather_planes_##s(src, strides, rows, slots, n_rows, map1, n1, map2, n2, run_lo, run_hi, planes,  \
                              stages, n_stages, z, lines, threads, line_rows, pitch);                          \
        return 0;

/* gather_planes: planes[slots[q]] = src[rows[q]][map1][:, map2] (working dtype), then the
 * in-plane stages (rows of 5 int64). */
GR_EXPORT int gr_gather_planes(int tin, const char *src, const int64_t *strides, const int64_t *rows,
                               const int64_t *slots, int64_t n_rows, const int64_t *map1, int64_t n1,
                               const int64_t *map2, int64_t n2, int64_t run_lo, int64_t run_hi, void *planes,
                               const int64_t *stages, int64_t n_stages, double z, double *lines, int64_t threads,
                               int64_t line_rows, int64_t pitch)
{
    switch (tin) {
        GR_DTYPES(GR_PLANES_CASE)
    default: return -1;
    }
}

/* filter_planes: the in-plane stages on planes[slots[q]] (working dtype tw). */
GR_EXPORT int gr_filter_planes(int tw, void *planes, int64_t n1, int64_t n2, const int64_t *slots, int64_t n_slots,
                               const int64_t *stages, int64_t n_stages, double z, double *lines, int64_t threads,
                               int64_t line_rows, int64_t pitch)
{
    if (tw == 8)
        filter_planes_f32(planes, n1, n2, slots, n_slots, stages, n_stages, z, lines, threads, line_rows, pitch);
    else if (tw == 9)
        filter_planes_f64(planes, n1, n2, slots, n_slots, stages, n_stages, z, lines, threads, line_rows, pitch);
    else
        return -1;
    return 0;
}
