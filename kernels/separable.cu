// Fused separable resampling: nearest (1 tap per axis), linear (2), cubic B-spline (4, on
// prefiltered coefficients); and gr_table_pass (at the end), one axis with any number of
// taps, which runs the anti-aliasing Gaussian before them.
//
// Summation order. The host passes the three axis tables in pass order A, B, C
// (tables.order): slot A is the first pass of the CPU backend, which sums along A for whole
// planes, then along B, then along C. Every output is exactly
//
//     acc = sum over C taps of wC * p2,   p2 = sum over B taps of wB * p1,
//     p1  = sum over A taps of wA * x,
//
// every product and sum in `Work`, each sum started from its first product and added left
// to right (gr_tap_sum in gr_separable.cuh, whose steps the CPU passes use too), so the
// rounding is the CPU's, pass by pass.
//
// What each thread does. A thread owns one output column: x (threadIdx.x) runs along output
// axis 2, so loads and stores of neighbouring threads coalesce; y is the remaining output
// axis P; the thread then marches along the third output axis M over a run of consecutive
// outputs, and keeps what it computed for the input rows it already read:
//
//   * GR_MARCH_C (M is slot C, the last pass; output axis 2 is slot A or B): for each input
//     row along C the value p2, one number, is the whole 2-D partial sum of that input plane
//     for this thread's A and B outputs. An output reuses the p2 of every row the previous
//     output read, so upsampling by 2 reads each input plane's taps once for two outputs.
//   * GR_MARCH_B (M is slot B; slot C is output axis 2): for each input row along B the
//     p1 values of the thread's C taps (TAPS numbers) are kept and reused the same way.
//
// A value is reused only when it is the very value the CPU computes (it depends on the
// input address alone, and rows are matched by address), so reuse changes no bit: the
// products and sums made for an output are the same operations in the same order as in a
// one-thread-per-output kernel. Every cache index is a compile-time constant after
// unrolling, so the cache lives in registers. Rows repeat for every thread of a block at the
// same time (they share M's table rows), so the reuse branches do not diverge.
//
// Offsets. The host multiplies each table's rows by the source stride along its axis
// (elements), so a tap is one add; Index is int when every source and output offset fits
// in 32 bits (fewer instructions and registers), long long otherwise. Table loads for
// slots that stay fixed during the march are hoisted out of the march loop.
//
// Arguments: the source (any element strides) and output (any element strides); per slot
// A, B, C its offsets (n_out, taps) Index, weights (n_out, taps) Work and taps; extents and
// output element strides of the march axis M, the axis P and axis 2; the outputs per run;
// for GR_MARCH_C whether output axis 2 is slot A (a_is_x = 1) or slot B (0).
// In is the source element type (the working type for cubic coefficients), Work the working
// type, Out the output type, TAPS the interpolation's taps per axis.

#include "gr_separable.cuh"

// Which slot a thread marches along (the host's choice: kernels.py, march_plan).
#define GR_MARCH_B 1
#define GR_MARCH_C 2

// Offsets (elements) and weights of one axis table at output index j; taps beyond `taps`
// (the dummy leading axis of 2-D data has 1) are zero and never read.
template <typename Work, typename Index, int TAPS>
__device__ __forceinline__ void gr_taps_at(const Index* __restrict__ offsets, const Work* __restrict__ weights,
                                           int taps, Index j, Index* off, Work* w)
{
#pragma unroll
    for (int t = 0; t < TAPS; ++t) {
        off[t] = 0;
        w[t] = Work(0);
        if (t < taps) {
            off[t] = __ldg(offsets + j * taps + t);
            w[t] = __ldg(weights + j * taps + t);
        }
    }
}

// p1: the A-pass sum at the source line `line` (its B and C offsets already added).
template <typename Work, typename In, typename Index, int TAPS>
__device__ __forceinline__ Work gr_sum_a(const In* line, const Index* off_a, const Work* w_a, int taps_a)
{
    return gr_tap_sum<TAPS>(w_a, taps_a, [&](int ta) { return gr_load<Work>(line + off_a[ta]); });
}

// p2: the B-pass sum of A-pass sums at C offset off_c (GR_MARCH_C's cached value).
template <typename Work, typename In, typename Index, int TAPS>
__device__ __forceinline__ Work gr_sum_ab(const In* src, Index off_c, const Index* off_a, const Work* w_a, int taps_a,
                                          const Index* off_b, const Work* w_b, int taps_b)
{
    return gr_tap_sum<TAPS>(w_b, taps_b, [&](int tb) {
        return gr_sum_a<Work, In, Index, TAPS>(src + off_c + off_b[tb], off_a, w_a, taps_a);
    });
}

// One run of outputs [begin, end) along slot C, the thread's A and B outputs fixed.
template <typename In, typename Work, typename Out, int TAPS, typename Index>
__device__ __forceinline__ void gr_march_c(const In* __restrict__ src, Out* __restrict__ dst,
                                           const Index* off_a, const Work* w_a, int taps_a,
                                           const Index* off_b, const Work* w_b, int taps_b,
                                           const Index* __restrict__ offsets_c, const Work* __restrict__ weights_c,
                                           int taps_c, Index begin, Index end, Index out_base, Index out_stride_m)
{
    Index key[TAPS] = {};   // C offsets of the rows whose p2 is kept
    Work kept[TAPS] = {};
    int filled = 0;
    for (Index j = begin; j < end; ++j) {
        Index off_c[TAPS];
        Work w_c[TAPS];
        gr_taps_at<Work, Index, TAPS>(offsets_c, weights_c, taps_c, j, off_c, w_c);
        Work p2[TAPS] = {};
#pragma unroll
        for (int t = 0; t < TAPS; ++t) {
            if (t < taps_c) {
                bool found = false;
#pragma unroll
                for (int k = 0; k < TAPS; ++k) {
                    if (!found && k < filled && key[k] == off_c[t]) {
                        p2[t] = kept[k];
                        found = true;
                    }
                }
#pragma unroll
                for (int q = 0; q < t; ++q) {
                    if (!found && off_c[q] == off_c[t]) {
                        p2[t] = p2[q];
                        found = true;
                    }
                }
                if (!found) {
                    p2[t] = gr_sum_ab<Work, In, Index, TAPS>(src, off_c[t], off_a, w_a, taps_a, off_b, w_b, taps_b);
                }
            }
        }
        const Work acc = gr_tap_sum<TAPS>(w_c, taps_c, [&](int t) { return p2[t]; });
        gr_store(dst + out_base + j * out_stride_m, acc);
#pragma unroll
        for (int t = 0; t < TAPS; ++t) {
            key[t] = off_c[t];
            kept[t] = p2[t];
        }
        filled = taps_c;
    }
}

// One run of outputs [begin, end) along slot B, the thread's A and C outputs fixed.
template <typename In, typename Work, typename Out, int TAPS, typename Index>
__device__ __forceinline__ void gr_march_b(const In* __restrict__ src, Out* __restrict__ dst,
                                           const Index* off_a, const Work* w_a, int taps_a,
                                           const Index* __restrict__ offsets_b, const Work* __restrict__ weights_b,
                                           int taps_b, const Index* off_c, const Work* w_c, int taps_c,
                                           Index begin, Index end, Index out_base, Index out_stride_m)
{
    Index key[TAPS] = {};         // B offsets of the rows whose p1 values are kept
    Work kept[TAPS][TAPS] = {};   // kept[row][c tap]
    int filled = 0;
    for (Index j = begin; j < end; ++j) {
        Index off_b[TAPS];
        Work w_b[TAPS];
        gr_taps_at<Work, Index, TAPS>(offsets_b, weights_b, taps_b, j, off_b, w_b);
        Work p1[TAPS][TAPS] = {};  // p1[b tap][c tap]
#pragma unroll
        for (int t = 0; t < TAPS; ++t) {
            if (t < taps_b) {
                bool found = false;
#pragma unroll
                for (int k = 0; k < TAPS; ++k) {
                    if (!found && k < filled && key[k] == off_b[t]) {
#pragma unroll
                        for (int tc = 0; tc < TAPS; ++tc) {
                            p1[t][tc] = kept[k][tc];
                        }
                        found = true;
                    }
                }
#pragma unroll
                for (int q = 0; q < t; ++q) {
                    if (!found && off_b[q] == off_b[t]) {
#pragma unroll
                        for (int tc = 0; tc < TAPS; ++tc) {
                            p1[t][tc] = p1[q][tc];
                        }
                        found = true;
                    }
                }
                if (!found) {
#pragma unroll
                    for (int tc = 0; tc < TAPS; ++tc) {
                        if (tc < taps_c) {
                            p1[t][tc] = gr_sum_a<Work, In, Index, TAPS>(src + off_b[t] + off_c[tc], off_a, w_a, taps_a);
                        }
                    }
                }
            }
        }
        const Work acc = gr_tap_sum<TAPS>(w_c, taps_c, [&](int tc) {
            return gr_tap_sum<TAPS>(w_b, taps_b, [&](int tb) { return p1[tb][tc]; });
        });
        gr_store(dst + out_base + j * out_stride_m, acc);
#pragma unroll
        for (int t = 0; t < TAPS; ++t) {
            key[t] = off_b[t];
#pragma unroll
            for (int tc = 0; tc < TAPS; ++tc) {
                kept[t][tc] = p1[t][tc];
            }
        }
        filled = taps_b;
    }
}

template <typename In, typename Work, typename Out, int TAPS, int MARCH, typename Index>
__global__ void gr_separable(const In* __restrict__ src, Out* __restrict__ dst,
                             const Index* __restrict__ offsets_a, const Work* __restrict__ weights_a, int taps_a,
                             const Index* __restrict__ offsets_b, const Work* __restrict__ weights_b, int taps_b,
                             const Index* __restrict__ offsets_c, const Work* __restrict__ weights_c, int taps_c,
                             Index n_m, Index n_p, Index n_x, Index out_stride_m, Index out_stride_p,
                             Index out_stride_x, Index run, int a_is_x)
{
    const Index jx = static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
    if (jx >= n_x) {
        return;
    }
    const Index step_p = static_cast<Index>(gridDim.y) * static_cast<Index>(blockDim.y);
    const Index step_m = static_cast<Index>(gridDim.z) * run;
    for (Index jp = static_cast<Index>(blockIdx.y) * static_cast<Index>(blockDim.y) + static_cast<Index>(threadIdx.y);
         jp < n_p; jp += step_p) {
        const Index out_base = jp * out_stride_p + jx * out_stride_x;
        Index off_a[TAPS], off_other[TAPS];
        Work w_a[TAPS], w_other[TAPS];
        if (MARCH == GR_MARCH_C) {
            gr_taps_at<Work, Index, TAPS>(offsets_a, weights_a, taps_a, a_is_x ? jx : jp, off_a, w_a);
            gr_taps_at<Work, Index, TAPS>(offsets_b, weights_b, taps_b, a_is_x ? jp : jx, off_other, w_other);
        } else {
            gr_taps_at<Work, Index, TAPS>(offsets_a, weights_a, taps_a, jp, off_a, w_a);
            gr_taps_at<Work, Index, TAPS>(offsets_c, weights_c, taps_c, jx, off_other, w_other);
        }
        for (Index begin = static_cast<Index>(blockIdx.z) * run; begin < n_m; begin += step_m) {
            const Index end = n_m - begin < run ? n_m : begin + run;
            if (MARCH == GR_MARCH_C) {
                gr_march_c<In, Work, Out, TAPS, Index>(src, dst, off_a, w_a, taps_a, off_other, w_other, taps_b,
                                                       offsets_c, weights_c, taps_c, begin, end, out_base,
                                                       out_stride_m);
            } else {
                gr_march_b<In, Work, Out, TAPS, Index>(src, dst, off_a, w_a, taps_a, offsets_b, weights_b, taps_b,
                                                       off_other, w_other, taps_c, begin, end, out_base,
                                                       out_stride_m);
            }
        }
    }
}

// One separable pass along one axis with any number of taps: the anti-aliasing Gaussian's
// tables (smoothing_table in gpuresample/tables.py), run axis by axis before sampling, as the
// CPU loops run them through separable3 and the array code through its passes. One thread
// per output voxel sums its taps left to right in Work (gr_tap_sum, GR_ANY_TAPS): the same
// operations in the same order as theirs, so the smoothed values agree bit for bit.
//
// Arguments: the source (any element strides: stride0, stride1, stride2), the output (Work,
// C-contiguous, extents n0, n1, n2), the table of output axis `axis` as offsets (n_out, taps)
// (rows times the source stride along `axis`) and weights (n_out, taps) in Work, its taps.
template <typename In, typename Work>
__global__ void gr_table_pass(const In* __restrict__ src, Work* __restrict__ dst,
                              const gr_offset* __restrict__ offsets, const Work* __restrict__ weights, int taps,
                              int axis, gr_offset n0, gr_offset n1, gr_offset n2, gr_offset stride0,
                              gr_offset stride1, gr_offset stride2)
{
    const gr_offset j2 = gr_first_x();
    if (j2 >= n2) {
        return;
    }
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {
            const gr_offset j = gr_pick(axis, j0, j1, j2);
            const In* line = src + (axis == 0 ? 0 : j0 * stride0) + (axis == 1 ? 0 : j1 * stride1)
                             + (axis == 2 ? 0 : j2 * stride2);
            const gr_offset* row = offsets + j * taps;
            const Work acc = gr_tap_sum<GR_ANY_TAPS>(weights + j * taps, taps,
                                                     [&](int t) { return gr_load<Work>(line + __ldg(row + t)); });
            dst[(j0 * n1 + j1) * n2 + j2] = acc;
        }
    }
}
