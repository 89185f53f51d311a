/* The prefilter's recursion along axis 0 in segments and from slab states (the streamed
 * cubic engine and the pre-pass), once per dtype, and their entry points. See grloops.h. */

#include "grloops.h"

#define TS uint8_t
#define SS u8
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint8_t
#define SS u8
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int8_t
#define SS i8
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int8_t
#define SS i8
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint16_t
#define SS u16
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint16_t
#define SS u16
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int16_t
#define SS i16
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int16_t
#define SS i16
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint32_t
#define SS u32
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint32_t
#define SS u32
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int32_t
#define SS i32
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int32_t
#define SS i32
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint64_t
#define SS u64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint64_t
#define SS u64
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int64_t
#define SS i64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int64_t
#define SS i64
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS float
#define SS f32
#include "grloops_source.h"
#undef TS
#undef SS

#define TS float
#define SS f32
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS float
#define SS f32
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS double
#define SS f64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS double
#define SS f64
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

/* ---- entry points (dtype codes in, 0 on success, -1 for a dtype without a loop) ---- */

#define GR_INITIAL_CASE(i, s)                                                                                  \
    case i: causal_initial_sum_##s(source, rs, front, back, n_rows, i_start, n_ext, z, powers, acc, n, block,  \
                                   threads);                                                                   \
        return 0;

/* causal_initial_sum: pass 1 over rows i_start + q (source rows front[q] and back[q]). */
GR_EXPORT int gr_causal_initial_sum(int ts, const char *source, int64_t rs, const int64_t *front,
                                    const int64_t *back, int64_t n_rows, int64_t i_start, int64_t n_ext, double z,
                                    const double *powers, double *acc, int64_t n, int64_t block, int64_t threads)
{
    switch (ts) {
        GR_DTYPES(GR_INITIAL_CASE)
    default: return -1;
    }
}

#define GR_SEGMENT_CASE(i, s)                                                                                  \
    case i: causal_segment_##s(source, rs, rows, n_rows, i_start, n_ext, z, acc, c_in, c_out, n, lines,        \
                               threads, line_rows, pitch, block);                                              \
        return 0;

/* causal_segment: pass 2 over one segment; its last causal value goes to c_out. */
GR_EXPORT int gr_causal_segment(int ts, const char *source, int64_t rs, const int64_t *rows, int64_t n_rows,
                                int64_t i_start, int64_t n_ext, double z, const double *acc, const double *c_in,
                                double *c_out, int64_t n, double *lines, int64_t threads, int64_t line_rows,
                                int64_t pitch, int64_t block)
{
    switch (ts) {
        GR_DTYPES(GR_SEGMENT_CASE)
    default: return -1;
    }
}

#define GR_ANTICAUSAL_ARGS                                                                                     \
    (source, rs, rows, n_rows, i_start, n_ext, z, acc, c_in, y_next, n, lines, threads, line_rows, pitch, block, dest, \
     dest_rs, dest_rows)
#define GR_ANTICAUSAL_CASE(i, s) case i: anticausal_segment_##s##_f64 GR_ANTICAUSAL_ARGS; return 0;

/* anticausal_segment: pass 3 over one segment. dest is float64 (td 9), or float32 (td 8) for
 * a float32 source: the destinations the engines use (their working dtype, or the states). */
GR_EXPORT int gr_anticausal_segment(int ts, int td, const char *source, int64_t rs, const int64_t *rows,
                                    int64_t n_rows, int64_t i_start, int64_t n_ext, double z, const double *acc,
                                    const double *c_in, double *y_next, int64_t n, double *lines, int64_t threads,
                                    int64_t line_rows, int64_t pitch, int64_t block, char *dest, int64_t dest_rs,
                                    const int64_t *dest_rows)
{
    if (td == 8 && ts == 8) {
        anticausal_segment_f32_f32 GR_ANTICAUSAL_ARGS;
        return 0;
    }
    if (td != 9) return -1;
    switch (ts) {
        GR_DTYPES(GR_ANTICAUSAL_CASE)
    default: return -1;
    }
}

#define GR_STATES_ARGS                                                                                         \
    (source, rs, rows, n_rows, n_ext, z, causal_first, anticausal_last, dest, dest_rs, n, lines, threads, line_rows, \
     pitch, block)
#define GR_STATES_CASE(i, s) case i: filter_from_states_##s##_f64 GR_STATES_ARGS; return 0;

/* filter_from_states: a cut line's prefilter from the whole line's states (dest as for
 * anticausal_segment: float64, or float32 for a float32 source). */
GR_EXPORT int gr_filter_from_states(int ts, int td, const char *source, int64_t rs, const int64_t *rows,
                                    int64_t n_rows, int64_t n_ext, double z, const double *causal_first,
                                    const double *anticausal_last, char *dest, int64_t dest_rs, int64_t n,
                                    double *lines, int64_t threads, int64_t line_rows, int64_t pitch, int64_t block)
{
    if (td == 8 && ts == 8) {
        filter_from_states_f32_f32 GR_STATES_ARGS;
        return 0;
    }
    if (td != 9) return -1;
    switch (ts) {
        GR_DTYPES(GR_STATES_CASE)
    default: return -1;
    }
}
