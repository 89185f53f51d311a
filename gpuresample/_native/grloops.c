/* gpuresample's CPU loops, compiled ahead of time (see docs/notes-first-call.md).

The same loops as gpuresample/backends/_cpu_loops.py (the Numba fallback), written once as
templates over their dtypes (the grloops_*.h files, included here once per dtype) and called
through ctypes (gpuresample/backends/_native.py): a plain shared library, no Python ABI.

Arithmetic contract (docs/design.md section 2, and kernels/gpuresample.cuh): products and sums
in the working dtype, taps added left to right, no fused multiply-add (built with
-ffp-contract=off), integer outputs rint then clipped, the prefilter in float64. So every
loop gives the Numba loop's result bit for bit (tests/test_native.py).

Threads are created for each call and joined before it returns (no pool survives a call),
so the library is safe to use in a forked child and from several threads at once. Work
items (output planes, lines, column blocks) are handed out one at a time; thread t uses
scratch slice t, as the Numba loops use get_thread_id().

Dtype codes (gr_dtype_code in _native.py): 0 uint8, 1 int8, 2 uint16, 3 int16, 4 uint32,
5 int32, 6 uint64, 7 int64, 8 float32, 9 float64. The working dtype of an input is float32
for float32 and float64 for everything else.
*/

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef GR_SOURCE_HASH
#define GR_SOURCE_HASH "unknown"
#endif

#define GR_EXPORT __attribute__((visibility("default")))
#define GR_CAT3_(a, b, c) a##b##c
#define GR_CAT3(a, b, c) GR_CAT3_(a, b, c)
#define GR_CAT5_(a, b, c, d, e) a##b##c##d##e
#define GR_CAT5(a, b, c, d, e) GR_CAT5_(a, b, c, d, e)
#define GR_RINT(x) _Generic((x), float: rintf, default: rint)(x)
/* The most taps a label voxel scores (2 x 2 x 2 for linear weights; checked by the caller). */
#define GR_LABEL_TAPS 64
/* ABI of the entry points below; _native.py refuses a library of another version. */
#define GR_ABI 1

/* ---- threads --------------------------------------------------------------------- */

typedef void (*gr_task)(void *ctx, int64_t item, int thread);

typedef struct {
    gr_task fn;
    void *ctx;
    int64_t n;
    int64_t next;
} gr_pool;

typedef struct {
    gr_pool *pool;
    int id;
} gr_worker;

static void gr_run(gr_pool *pool, int id)
{
    for (;;) {
        int64_t item = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
        if (item >= pool->n) return;
        pool->fn(pool->ctx, item, id);
    }
}

static void *gr_thread(void *arg)
{
    gr_worker *worker = arg;
    gr_run(worker->pool, worker->id);
    return NULL;
}

/* fn(ctx, item, thread) for item in [0, n) on up to `threads` threads (ids 0 .. threads - 1;
 * the caller's thread is 0). If a thread cannot be created, fewer threads do the work. */
static void gr_parallel(int64_t n, int64_t threads, gr_task fn, void *ctx)
{
    if (n <= 0) return;
    if (threads > n) threads = n;
    gr_pool pool = {fn, ctx, n, 0};
    if (threads <= 1) {
        gr_run(&pool, 0);
        return;
    }
    pthread_t *ids = malloc((size_t)threads * sizeof(pthread_t));
    gr_worker *workers = malloc((size_t)threads * sizeof(gr_worker));
    int64_t started = 0;
    if (ids && workers) {
        for (int64_t t = 1; t < threads; t++) {
            workers[t].pool = &pool;
            workers[t].id = (int)t;
            if (pthread_create(&ids[t], NULL, gr_thread, &workers[t]) != 0) break;
            started = t;
        }
    }
    gr_run(&pool, 0);
    for (int64_t t = 1; t <= started; t++) pthread_join(ids[t], NULL);
    free(ids);
    free(workers);
}

/* ---- the prefilter's constants ---------------------------------------------------- */

/* z ** e for an integer e >= 0 as Numba computes float ** int (square and multiply; its
 * generic pow above 0x10000). */
static double gr_int_power(double a, int64_t e)
{
    if (e > 0x10000) return pow(a, (double)e);
    double r = 1.0;
    while (e != 0) {
        if (e & 1) r *= a;
        e >>= 1;
        a *= a;
    }
    return r;
}

/* (gain, z_last) of the prefilter over an extended line of n_ext rows (_cpu_loops.prefilter_constants). */
static void gr_prefilter_constants(int64_t n_ext, double z, double *gain, double *z_last)
{
    *gain = n_ext > 1 ? (1.0 - z) * (1.0 - 1.0 / z) : 1.0;
    *z_last = gr_int_power(z, n_ext - 1);
}

/* ---- loops, once per dtype -------------------------------------------------------- */

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

#define TS uint8_t
#define SS u8
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint8_t
#define SS u8
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint8_t
#define SS u8
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL int8_t
#define SL i8
#include "grloops_label.h"
#undef TL
#undef SL

#define TS int8_t
#define SS i8
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int8_t
#define SS i8
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int8_t
#define SS i8
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL uint16_t
#define SL u16
#include "grloops_label.h"
#undef TL
#undef SL

#define TS uint16_t
#define SS u16
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint16_t
#define SS u16
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint16_t
#define SS u16
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL int16_t
#define SL i16
#include "grloops_label.h"
#undef TL
#undef SL

#define TS int16_t
#define SS i16
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int16_t
#define SS i16
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int16_t
#define SS i16
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL uint32_t
#define SL u32
#include "grloops_label.h"
#undef TL
#undef SL

#define TS uint32_t
#define SS u32
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint32_t
#define SS u32
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint32_t
#define SS u32
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL int32_t
#define SL i32
#include "grloops_label.h"
#undef TL
#undef SL

#define TS int32_t
#define SS i32
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int32_t
#define SS i32
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int32_t
#define SS i32
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL uint64_t
#define SL u64
#include "grloops_label.h"
#undef TL
#undef SL

#define TS uint64_t
#define SS u64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS uint64_t
#define SS u64
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS uint64_t
#define SS u64
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL int64_t
#define SL i64
#include "grloops_label.h"
#undef TL
#undef SL

#define TS int64_t
#define SS i64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS int64_t
#define SS i64
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TS int64_t
#define SS i64
#define TD double
#define SD f64
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

#define TL float
#define SL f32
#include "grloops_label.h"
#undef TL
#undef SL

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

#define TL double
#define SL f64
#include "grloops_label.h"
#undef TL
#undef SL

#define TS double
#define SS f64
#include "grloops_source.h"
#undef TS
#undef SS

#define TS double
#define SS f64
#define TD float
#define SD f32
#include "grloops_dest.h"
#undef TS
#undef SS
#undef TD
#undef SD

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

#define GR_DTYPES(X) \
    X(0, u8) \
    X(1, i8) \
    X(2, u16) \
    X(3, i16) \
    X(4, u32) \
    X(5, i32) \
    X(6, u64) \
    X(7, i64) \
    X(8, f32) \
    X(9, f64)

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

#define GR_ANTICAUSAL_CASE(i, s)                                                                               \
    case i:                                                                                                    \
        if (td == 8)                                                                                           \
            anticausal_segment_##s##_f32(source, rs, rows, n_rows, i_start, n_ext, z, acc, c_in, y_next, n,    \
                                         lines, threads, line_rows, pitch, block, dest, dest_rs, dest_rows);   \
        else if (td == 9)                                                                                      \
            anticausal_segment_##s##_f64(source, rs, rows, n_rows, i_start, n_ext, z, acc, c_in, y_next, n,    \
                                         lines, threads, line_rows, pitch, block, dest, dest_rs, dest_rows);   \
        else                                                                                                   \
            return -1;                                                                                         \
        return 0;

/* anticausal_segment: pass 3 over one segment (dest of dtype td, 8 or 9). */
GR_EXPORT int gr_anticausal_segment(int ts, int td, const char *source, int64_t rs, const int64_t *rows,
                                    int64_t n_rows, int64_t i_start, int64_t n_ext, double z, const double *acc,
                                    const double *c_in, double *y_next, int64_t n, double *lines, int64_t threads,
                                    int64_t line_rows, int64_t pitch, int64_t block, char *dest, int64_t dest_rs,
                                    const int64_t *dest_rows)
{
    switch (ts) {
        GR_DTYPES(GR_ANTICAUSAL_CASE)
    default: return -1;
    }
}

#define GR_STATES_CASE(i, s)                                                                                   \
    case i:                                                                                                    \
        if (td == 8)                                                                                           \
            filter_from_states_##s##_f32(source, rs, rows, n_rows, n_ext, z, causal_first, anticausal_last,    \
                                         dest, dest_rs, n, lines, threads, line_rows, pitch, block);           \
        else if (td == 9)                                                                                      \
            filter_from_states_##s##_f64(source, rs, rows, n_rows, n_ext, z, causal_first, anticausal_last,    \
                                         dest, dest_rs, n, lines, threads, line_rows, pitch, block);           \
        else                                                                                                   \
            return -1;                                                                                         \
        return 0;

/* filter_from_states: a cut line's prefilter from the whole line's states (dest of dtype td). */
GR_EXPORT int gr_filter_from_states(int ts, int td, const char *source, int64_t rs, const int64_t *rows,
                                    int64_t n_rows, int64_t n_ext, double z, const double *causal_first,
                                    const double *anticausal_last, char *dest, int64_t dest_rs, int64_t n,
                                    double *lines, int64_t threads, int64_t line_rows, int64_t pitch, int64_t block)
{
    switch (ts) {
        GR_DTYPES(GR_STATES_CASE)
    default: return -1;
    }
}
