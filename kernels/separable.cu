// Fused separable resampling: nearest (1 tap per axis), linear (2), cubic B-spline (4, on
// prefiltered coefficients). One thread per output voxel.
//
// The host passes the three axis tables in pass order A, B, C (tables.order): slot A is
// the first pass of the CPU backend, which sums along A for whole planes, then along B,
// then along C. A thread computes exactly those numbers for its voxel:
//
//     for each C tap:  for each B tap:  p1 = sum over A taps of wA * x
//                                       p2 = sum over B taps of wB * p1
//                      acc = sum over C taps of wC * p2
//
// every product and sum in `Work`, each sum started from its first product and added
// left to right, so the rounding is the CPU's, pass by pass.
//
// Arguments: the source (any element strides) and output (any element strides, extents
// n0, n1, n2 in original axis order); per slot A, B, C its table (see gr_row_offsets), the
// source stride along the slot's axis and which output axis (0, 1, 2) the slot is.
// In is the source element type (double for cubic coefficients), Work the working type,
// Out the output type, TAPS the interpolation's taps per axis.

#include "gpuresample.cuh"

// Per-thread row offsets (elements) and weights of one axis table at output index j.
//   index  (n_out, taps) int32: rows of the sampled line, counted from the block's first row
//   weight (n_out, taps) in the working type
//   taps   the table's taps: TAPS, or 1 for the dummy leading axis of 2-D data
//   stride element stride of the sampled line in the source
template <typename Work, int TAPS>
__device__ __forceinline__ void gr_row_offsets(const int* __restrict__ index, const Work* __restrict__ weight,
                                               int taps, gr_offset j, gr_offset stride,
                                               gr_offset* offsets, Work* weights)
{
#pragma unroll
    for (int t = 0; t < TAPS; ++t) {
        if (t < taps) {
            offsets[t] = static_cast<gr_offset>(__ldg(index + j * taps + t)) * stride;
            weights[t] = __ldg(weight + j * taps + t);
        }
    }
}

template <typename In, typename Work, typename Out, int TAPS>
__global__ void gr_separable(const In* __restrict__ src, Out* __restrict__ dst,
                             const int* __restrict__ index_a, const Work* __restrict__ weight_a,
                             int taps_a, gr_offset stride_a, int axis_a,
                             const int* __restrict__ index_b, const Work* __restrict__ weight_b,
                             int taps_b, gr_offset stride_b, int axis_b,
                             const int* __restrict__ index_c, const Work* __restrict__ weight_c,
                             int taps_c, gr_offset stride_c, int axis_c,
                             gr_offset n0, gr_offset n1, gr_offset n2,
                             gr_offset out_stride0, gr_offset out_stride1, gr_offset out_stride2)
{
    const gr_offset j2 = gr_first_x();
    if (j2 >= n2) {
        return;
    }
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {
            gr_offset off_a[TAPS] = {}, off_b[TAPS] = {}, off_c[TAPS] = {};
            Work w_a[TAPS] = {}, w_b[TAPS] = {}, w_c[TAPS] = {};
            gr_row_offsets<Work, TAPS>(index_a, weight_a, taps_a, gr_pick(axis_a, j0, j1, j2), stride_a, off_a, w_a);
            gr_row_offsets<Work, TAPS>(index_b, weight_b, taps_b, gr_pick(axis_b, j0, j1, j2), stride_b, off_b, w_b);
            gr_row_offsets<Work, TAPS>(index_c, weight_c, taps_c, gr_pick(axis_c, j0, j1, j2), stride_c, off_c, w_c);
            Work acc = Work(0);
#pragma unroll
            for (int tc = 0; tc < TAPS; ++tc) {
                if (tc < taps_c) {
                    Work p2 = Work(0);
#pragma unroll
                    for (int tb = 0; tb < TAPS; ++tb) {
                        if (tb < taps_b) {
                            const In* line = src + off_b[tb] + off_c[tc];
                            Work p1 = gr_mul(w_a[0], gr_load<Work>(line + off_a[0]));
#pragma unroll
                            for (int ta = 1; ta < TAPS; ++ta) {
                                if (ta < taps_a) {
                                    p1 = gr_add(p1, gr_mul(w_a[ta], gr_load<Work>(line + off_a[ta])));
                                }
                            }
                            p2 = (tb == 0) ? gr_mul(w_b[0], p1) : gr_add(p2, gr_mul(w_b[tb], p1));
                        }
                    }
                    acc = (tc == 0) ? gr_mul(w_c[0], p2) : gr_add(acc, gr_mul(w_c[tc], p2));
                }
            }
            gr_store(dst + j0 * out_stride0 + j1 * out_stride1 + j2 * out_stride2, acc);
        }
    }
}
