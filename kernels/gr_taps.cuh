// gpuresample: the taps and weights of one position along one axis, per interpolation.
//
// What the per-axis sampling tables (gpuresample/tables.py) hold for an output index,
// computed here for a single position u (in input voxels) as the oblique targets need it
// (docs/design.md §1 "Onto another grid", §2): positions clamped to the edge, nearest
// floor(u + 0.5), weights computed in double, a zero-weight tap pointed at the heaviest tap.
// Included by the CUDA kernels (kernels/affine.cu) and the CPU loops
// (gpuresample/_native/affine*.cpp) alike; inline functions only, no standard headers.

#ifndef GPURESAMPLE_GR_TAPS_CUH
#define GPURESAMPLE_GR_TAPS_CUH

#include "gpuresample.cuh"

// Full unrolling of a short loop of constant trip count, asked of every compiler that
// builds these headers (nvcc and NVRTC, g++, clang), so the taps' weights and rows stay in
// registers.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(__clang__)
#define GR_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define GR_UNROLL _Pragma("GCC unroll 16")
#else
#define GR_UNROLL
#endif

// Taps of the cubic B-spline along one axis.
#define GR_CUBIC_TAPS 4

// floor(x) as an integer, exactly (for |x| < 2**63): the truncation, one less where it
// rounded up. The same number as static_cast<gr_offset>(floor(x)), without a libm call.
__device__ __forceinline__ gr_offset gr_floor_index(double x)
{
    const gr_offset t = static_cast<gr_offset>(x);
    return x < static_cast<double>(t) ? t - 1 : t;
}

// Row i clamped to [0, n - 1].
__device__ __forceinline__ gr_offset gr_clamp_row(gr_offset i, gr_offset n)
{
    return i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
}

// Nearest: the row floor(u + 0.5) (ties go up), clamped to the line of n rows.
__device__ __forceinline__ gr_offset gr_nearest_row(double u, gr_offset n)
{
    return gr_clamp_row(gr_floor_index(gr_add(u, 0.5)), n);
}

// Linear: the rows a, b (global) and the weight `frac` of b of position u on a line of n
// rows. The position is clamped to [0, n - 1]; where frac is 0 (b's weight is zero) b is a.
struct gr_linear_tap {
    gr_offset a, b;
    double frac;
};

__device__ __forceinline__ gr_linear_tap gr_linear_taps(double u, gr_offset n)
{
    const double top = static_cast<double>(n) - 1.0;
    double clamped = u > 0.0 ? u : 0.0;
    clamped = clamped < top ? clamped : top;
    gr_linear_tap tap;
    tap.a = static_cast<gr_offset>(clamped);  // clamped >= 0: the truncation is the floor
    tap.frac = clamped - static_cast<double>(tap.a);
    tap.b = (tap.a + 1 < n && tap.frac != 0.0) ? tap.a + 1 : tap.a;
    return tap;
}

// gr_linear_taps for a position known to lie in [0, n - 1) (no clamping needed): the same
// three numbers.
__device__ __forceinline__ gr_linear_tap gr_linear_taps_inner(double u)
{
    gr_linear_tap tap;
    tap.a = static_cast<gr_offset>(u);
    tap.frac = u - static_cast<double>(tap.a);
    tap.b = tap.frac != 0.0 ? tap.a + 1 : tap.a;
    return tap;
}

// gr_nearest_row for a position known to lie in [0, n - 1] (no clamping needed).
__device__ __forceinline__ gr_offset gr_nearest_row_inner(double u)
{
    return static_cast<gr_offset>(gr_add(u, 0.5));
}

// The two linear weights (of a, of b), computed in double and rounded to Work.
template <typename Work>
__device__ __forceinline__ void gr_linear_weights(double frac, Work* w)
{
    w[0] = gr_cast<Work, double>::apply(1.0 - frac);
    w[1] = gr_cast<Work, double>::apply(frac);
}

// Cubic B-spline: taps (rows of the extended line, clamped to it, minus `first`, times
// `stride`) and weights (rounded to Work) of position u along an axis of n data rows with
// `pad` edge copies before and after. pad 0 with n 1 marks the length-1 axis added to 2-D
// data: one tap of weight 1. Where t is 0 the only zero weight (tap 3) points at tap 1.
template <typename Work>
__device__ __forceinline__ void gr_cubic_taps(double u, gr_offset n, gr_offset pad, gr_offset first,
                                              gr_offset stride, gr_offset* rows, Work* w)
{
    const gr_offset n_ext = n + 2 * pad;
    if (n_ext == 1) {
        GR_UNROLL
        for (int q = 0; q < GR_CUBIC_TAPS; ++q) {
            rows[q] = -first * stride;
            w[q] = Work(q == 0 ? 1 : 0);
        }
        return;
    }
    const double padded = gr_add(u, static_cast<double>(pad));
    const gr_offset b = gr_floor_index(padded);
    const double t = padded - static_cast<double>(b);
    const double s = 1.0 - t;
    w[0] = gr_cast<Work, double>::apply(gr_mul(gr_mul(s, s), s) / 6.0);
    w[1] = gr_cast<Work, double>::apply(gr_add(gr_mul(gr_mul(gr_mul(3.0, t), t), t - 2.0), 4.0) / 6.0);
    w[2] = gr_cast<Work, double>::apply(gr_add(gr_mul(gr_mul(gr_mul(3.0, s), s), s - 2.0), 4.0) / 6.0);
    w[3] = gr_cast<Work, double>::apply(gr_mul(gr_mul(t, t), t) / 6.0);
    GR_UNROLL
    for (int q = 0; q < GR_CUBIC_TAPS; ++q) {
        rows[q] = (gr_clamp_row(b - 1 + q, n_ext) - first) * stride;
    }
    if (t == 0.0) {
        rows[3] = rows[1];
    }
}

#endif  // GPURESAMPLE_GR_TAPS_CUH
