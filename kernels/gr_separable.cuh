// gpuresample: the separable resampling sum, shared by the CUDA kernels
// (kernels/separable.cu) and the CPU loops (gpuresample/_native/separable.cpp).
//
// Along one axis an output is sum_t w[t] * x[t] over the axis table's taps: each product
// and sum in the working type Work, the sum started from the first product and added left
// to right (docs/design.md section 2). The CPU adds tap by tap over whole rows
// (gr_tap_first, then gr_tap_next per tap); a GPU thread sums one output (gr_tap_sum). Both
// are the same operations in the same order.

#ifndef GR_SEPARABLE_CUH
#define GR_SEPARABLE_CUH

#include "gpuresample.cuh"

// gr_tap_sum's bound for a table whose taps are known only at run time (the CPU's tables,
// antialiasing kernels included).
#define GR_ANY_TAPS 0

// sum over t < taps of w[t] * value(t), left to right (taps >= 1). MAX_TAPS > 0: taps is at
// most MAX_TAPS and the loop unrolls; GR_ANY_TAPS: any number of taps.
template <int MAX_TAPS, typename Work, typename Value>
__device__ __forceinline__ Work gr_tap_sum(const Work* w, int taps, const Value& value)
{
    Work acc = gr_tap_first(w[0], value(0));
    if (MAX_TAPS > 0) {
#pragma unroll
        for (int t = 1; t < (MAX_TAPS > 0 ? MAX_TAPS : 1); ++t) {
            if (t < taps) {
                acc = gr_tap_next(acc, w[t], value(t));
            }
        }
    } else {
        for (int t = 1; t < taps; ++t) {
            acc = gr_tap_next(acc, w[t], value(t));
        }
    }
    return acc;
}

#endif  // GR_SEPARABLE_CUH
