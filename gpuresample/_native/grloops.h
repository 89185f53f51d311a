/* gpuresample's CPU loops, compiled ahead of time (see docs/notes-first-call.md).

The same loops as gpuresample/backends/_cpu_loops.py (the Numba fallback), written once as
templates over their dtypes (the grloops_*.h files, included once per dtype by the two
translation units grloops_separable.c and grloops_recursion.c, compiled in parallel) and
called through ctypes (gpuresample/backends/_native.py): a plain shared library, no Python ABI.

Arithmetic contract (docs/design.md section 2, and kernels/gpuresample.cuh): products and sums
in the working dtype, taps added left to right, no fused multiply-add (built with
-ffp-contract=off), integer outputs rint then clipped, the prefilter in float64. So every
loop gives the Numba loop's result bit for bit (tests/test_native.py).

Threads are created for each call and joined before it returns (no pool survives a call),
so the library is safe to use in a forked child and from several threads at once. Work
items (output planes, lines, column blocks) are handed out one at a time; thread t uses
scratch slice t, as the Numba loops use get_thread_id().

Dtype codes (_CODES in _native.py): 0 uint8, 1 int8, 2 uint16, 3 int16, 4 uint32,
5 int32, 6 uint64, 7 int64, 8 float32, 9 float64. The working dtype of an input is float32
for float32 and float64 for everything else.
*/

/* What both translation units share: includes, macros, the thread helper and the
 * prefilter's constants, all static (each unit has its own copy). */
#ifndef GRLOOPS_H
#define GRLOOPS_H


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
static inline double gr_int_power(double a, int64_t e)
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
static inline void gr_prefilter_constants(int64_t n_ext, double z, double *gain, double *z_last)
{
    *gain = n_ext > 1 ? (1.0 - z) * (1.0 - 1.0 / z) : 1.0;
    *z_last = gr_int_power(z, n_ext - 1);
}

/* Each dtype's suffix and C type. */
#define GR_CTYPES(X)                                                                                           \
    X(u8, uint8_t) X(i8, int8_t) X(u16, uint16_t) X(i16, int16_t) X(u32, uint32_t) X(i32, int32_t) X(u64, uint64_t) \
    X(i64, int64_t) X(f32, float) X(f64, double)

/* The label of highest score among a voxel's taps: each label's score is the sum of its taps'
 * weights in tap order (from its first tap), ties go to the lower label (as add_label_score
 * and best_label in _cpu_loops.py). taps and weights in tap order; n <= 64. */
#define GR_DEFINE_PICK_LABEL(s, t)                                                                             \
    static inline t gr_pick_label_##s(const t *taps, const double *weights, int64_t n)                        \
    {                                                                                                          \
        t labels[GR_LABEL_TAPS];                                                                               \
        double scores[GR_LABEL_TAPS];                                                                          \
        int64_t count = 0;                                                                                     \
        for (int64_t k = 0; k < n; k++) {                                                                      \
            int64_t q = 0;                                                                                     \
            while (q < count && !(labels[q] == taps[k])) q++;                                                  \
            if (q < count) {                                                                                   \
                scores[q] += weights[k];                                                                       \
            } else {                                                                                           \
                labels[count] = taps[k];                                                                       \
                scores[count] = weights[k];                                                                    \
                count++;                                                                                       \
            }                                                                                                  \
        }                                                                                                      \
        int64_t best = 0;                                                                                      \
        for (int64_t q = 1; q < count; q++)                                                                    \
            if (scores[q] > scores[best] || (scores[q] == scores[best] && labels[q] < labels[best])) best = q; \
        return labels[best];                                                                                   \
    }
GR_CTYPES(GR_DEFINE_PICK_LABEL)

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

#endif
