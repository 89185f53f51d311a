// gpuresample: the per-voxel body of oblique targets (docs/design.md §1 "Onto another
// grid", §2 last paragraph), shared by the CUDA kernels (kernels/affine.cu) and the CPU
// loops (gpuresample/_native/affine*.cpp).
//
// Output voxel (j0, j1, j2), J0 = j0 + j0_start counted from the block's first row, samples
// the source at
//
//     u_i = ((m[4i] * J0 + m[4i+1] * J1) + m[4i+2] * J2) + m[4i+3]
//
// in double, in exactly this order, with no fused multiply-add, m being the 3x4 matrix
// source.affine^-1 . target.affine (row major). The first two terms are constant along
// output axis 2 (gr_affine_line_start); a loop may compute them once per line, the sum
// is the same. A voxel whose u_i lies outside [-0.5 - band_atol, n_i - 0.5 + band_atol]
// on any axis gets `fill`; inside, the taps and weights along each axis are the per-axis
// tables' for that one position (gr_taps.cuh), products and sums in the working type
// Work, taps along axis 0 added first, then axis 1, then axis 2 (labels: float64 weights
// (w0 * w1) * w2 summed per label in tap order, arg-max, ties to the lower label).

#ifndef GPURESAMPLE_GR_AFFINE_CUH
#define GPURESAMPLE_GR_AFFINE_CUH

#include "gpuresample.cuh"
#include "gr_label.cuh"
#include "gr_taps.cuh"

// Where a block's source rows lie: the whole source's extents (the band and the clamping
// use them), the global row (cubic: row of the extended line) of the block's row 0 per
// axis, and the block's element strides.
struct gr_affine_source {
    gr_offset n[3];
    gr_offset first[3];
    gr_offset stride[3];
};

// The band of positions sampled rather than filled.
struct gr_affine_band {
    double low;
    double high[3];
};

__device__ __forceinline__ gr_affine_band gr_affine_band_of(const gr_offset* n, double band_atol)
{
    gr_affine_band band;
    band.low = -0.5 - band_atol;
    band.high[0] = gr_add(static_cast<double>(n[0]) - 0.5, band_atol);
    band.high[1] = gr_add(static_cast<double>(n[1]) - 0.5, band_atol);
    band.high[2] = gr_add(static_cast<double>(n[2]) - 0.5, band_atol);
    return band;
}

// The first two terms of axis i's position, constant along output axis 2. (The three axes
// are written out, here and below, so that every compiler keeps them in registers.)
__device__ __forceinline__ double gr_affine_line_term(const double* m, int i, double J0, double J1)
{
    return gr_add(gr_mul(__ldg(m + 4 * i), J0), gr_mul(__ldg(m + 4 * i + 1), J1));
}

__device__ __forceinline__ void gr_affine_line_start(const double* m, double J0, double J1, double* p)
{
    p[0] = gr_affine_line_term(m, 0, J0, J1);
    p[1] = gr_affine_line_term(m, 1, J0, J1);
    p[2] = gr_affine_line_term(m, 2, J0, J1);
}

// Axis i's position of voxel J2 of the line whose start (along axis i) is p.
__device__ __forceinline__ double gr_affine_coordinate(const double* m, int i, double p, double J2)
{
    return gr_add(gr_add(p, gr_mul(__ldg(m + 4 * i + 2), J2)), __ldg(m + 4 * i + 3));
}

__device__ __forceinline__ void gr_affine_position(const double* m, const double* p, double J2, double* u)
{
    u[0] = gr_affine_coordinate(m, 0, p[0], J2);
    u[1] = gr_affine_coordinate(m, 1, p[1], J2);
    u[2] = gr_affine_coordinate(m, 2, p[2], J2);
}

// Whether position u is sampled (inside the band on every axis).
__device__ __forceinline__ bool gr_affine_inside(const gr_affine_band& band, const double* u)
{
    return !(u[0] < band.low || u[0] > band.high[0] || u[1] < band.low || u[1] > band.high[1] ||
             u[2] < band.low || u[2] > band.high[2]);
}

// `Inner` marks positions a loop knows to lie in [0, n_i - 1) on every axis (so inside the
// band): the clamping is skipped there, the numbers are the same.

// Nearest: the element offset (in the block) of the source voxel nearest to u.
template <bool Inner>
__device__ __forceinline__ gr_offset gr_affine_nearest_term(const gr_affine_source& s, int i, double u)
{
    return ((Inner ? gr_nearest_row_inner(u) : gr_nearest_row(u, s.n[i])) - s.first[i]) * s.stride[i];
}

template <bool Inner = false>
__device__ __forceinline__ gr_offset gr_affine_nearest_offset(const gr_affine_source& s, const double* u)
{
    return gr_affine_nearest_term<Inner>(s, 0, u[0]) + gr_affine_nearest_term<Inner>(s, 1, u[1]) +
           gr_affine_nearest_term<Inner>(s, 2, u[2]);
}

// Linear: the element offsets (in the block) of a, b along each axis, and b's fraction.
template <bool Inner>
__device__ __forceinline__ void gr_affine_linear_axis(const gr_affine_source& s, int i, double u, gr_offset* rows,
                                                      double* frac)
{
    const gr_linear_tap tap = Inner ? gr_linear_taps_inner(u) : gr_linear_taps(u, s.n[i]);
    rows[2 * i] = (tap.a - s.first[i]) * s.stride[i];
    rows[2 * i + 1] = (tap.b - s.first[i]) * s.stride[i];
    frac[i] = tap.frac;
}

template <bool Inner = false>
__device__ __forceinline__ void gr_affine_linear_rows(const gr_affine_source& s, const double* u, gr_offset* rows,
                                                      double* frac)
{
    gr_affine_linear_axis<Inner>(s, 0, u[0], rows, frac);
    gr_affine_linear_axis<Inner>(s, 1, u[1], rows, frac);
    gr_affine_linear_axis<Inner>(s, 2, u[2], rows, frac);
}

// Trilinear, in two steps a loop may pull apart: the 2 x 2 x 2 taps of u (element offsets
// r[2i], r[2i+1] along axis i) with their weights w[2i], w[2i+1] rounded to Work, then their
// weighted sum.
template <typename Work, bool Inner = false>
__device__ __forceinline__ void gr_affine_linear_taps(const gr_affine_source& s, const double* u, gr_offset* r,
                                                      Work* w)
{
    double f[3];
    gr_affine_linear_rows<Inner>(s, u, r, f);
    gr_linear_weights<Work>(f[0], w);
    gr_linear_weights<Work>(f[1], w + 2);
    gr_linear_weights<Work>(f[2], w + 4);
}

template <typename Work, typename In>
__device__ __forceinline__ Work gr_affine_linear_sum(const In* src, const gr_offset* r, const Work* w)
{
    const Work* w0 = w;
    const Work* w1 = w + 2;
    const Work* w2 = w + 4;
    // along axis 0 at axis-1 tap b and axis-2 tap c; a pair's second weight may be 0 (its
    // first never is), and such a tap is neither read nor added
    auto x = [&](int b, int c) {
        const Work first = gr_tap_first(w0[0], gr_load<Work>(src + r[0] + r[2 + b] + r[4 + c]));
        return gr_equal(w0[1], Work(0)) ? first : gr_tap_next(first, w0[1], gr_load<Work>(src + r[1] + r[2 + b] + r[4 + c]));
    };
    const Work x00 = x(0, 0);
    const Work x10 = gr_equal(w1[1], Work(0)) ? Work(0) : x(1, 0);
    const Work y0 = gr_tap_next(gr_tap_first(w1[0], x00), w1[1], x10);
    if (gr_equal(w2[1], Work(0))) {
        return gr_tap_first(w2[0], y0);
    }
    const Work x01 = x(0, 1);
    const Work x11 = gr_equal(w1[1], Work(0)) ? Work(0) : x(1, 1);
    const Work y1 = gr_tap_next(gr_tap_first(w1[0], x01), w1[1], x11);
    return gr_tap_next(gr_tap_first(w2[0], y0), w2[1], y1);
}

// Trilinear over the 2 x 2 x 2 taps of u.
template <typename Work, bool Inner = false, typename In>
__device__ __forceinline__ Work gr_affine_linear_sample(const In* src, const gr_affine_source& s, const double* u)
{
    gr_offset r[6];
    Work w[6];
    gr_affine_linear_taps<Work, Inner>(s, u, r, w);
    return gr_affine_linear_sum(src, r, w);
}

// Cubic B-spline over the 4 x 4 x 4 prefiltered coefficients (src, in Work) around u;
// pad: the edge copies per axis (first counts rows of the extended line).
template <typename Work>
__device__ __forceinline__ Work gr_affine_cubic_sample(const Work* src, const gr_affine_source& s,
                                                       const gr_offset* pad, const double* u)
{
    gr_offset r0[GR_CUBIC_TAPS], r1[GR_CUBIC_TAPS], r2[GR_CUBIC_TAPS];
    Work w0[GR_CUBIC_TAPS], w1[GR_CUBIC_TAPS], w2[GR_CUBIC_TAPS];
    gr_cubic_taps<Work>(u[0], s.n[0], pad[0], s.first[0], s.stride[0], r0, w0);
    gr_cubic_taps<Work>(u[1], s.n[1], pad[1], s.first[1], s.stride[1], r1, w1);
    gr_cubic_taps<Work>(u[2], s.n[2], pad[2], s.first[2], s.stride[2], r2, w2);
    Work acc = Work(0);
    GR_UNROLL
    for (int c = 0; c < GR_CUBIC_TAPS; ++c) {
        Work plane = Work(0);
        GR_UNROLL
        for (int b = 0; b < GR_CUBIC_TAPS; ++b) {
            const Work* line = src + r1[b] + r2[c];
            Work x = gr_tap_first(w0[0], gr_load<Work>(line + r0[0]));
            GR_UNROLL
            for (int a = 1; a < GR_CUBIC_TAPS; ++a) {
                x = gr_tap_next(x, w0[a], gr_load<Work>(line + r0[a]));
            }
            plane = (b == 0) ? gr_tap_first(w1[0], x) : gr_tap_next(plane, w1[b], x);
        }
        acc = (c == 0) ? gr_tap_first(w2[0], plane) : gr_tap_next(acc, w2[c], plane);
    }
    return acc;
}

// Labels: the 2 x 2 x 2 taps of u in tap order (axis 0 slowest), each with its weight
// (w0 * w1) * w2 in double, and gr_label.cuh's vote (a label's score is its first tap's
// weight plus its later taps' in order, the highest score wins, ties to the lower label).
// All taps one label: it wins.
template <bool Inner = false, typename L>
__device__ __forceinline__ L gr_affine_label_sample(const L* src, const gr_affine_source& s, const double* u)
{
    gr_offset r[6];
    double f[3];
    gr_affine_linear_rows<Inner>(s, u, r, f);
    L label[8];
    bool same = true;
    GR_UNROLL
    for (int k = 0; k < 8; ++k) {
        label[k] = gr_load_label(src + r[k >> 2] + r[2 + ((k >> 1) & 1)] + r[4 + (k & 1)]);
        same = same && gr_label_equal(label[k], label[0]);
    }
    if (same) {
        return label[0];
    }
    const double w[6] = {1.0 - f[0], f[0], 1.0 - f[1], f[1], 1.0 - f[2], f[2]};
    double weight[8];
    GR_UNROLL
    for (int k = 0; k < 8; ++k) {
        weight[k] = gr_mul(gr_mul(w[k >> 2], w[2 + ((k >> 1) & 1)]), w[4 + (k & 1)]);
    }
    return gr_pick_label(label, weight, 8);
}

#endif  // GPURESAMPLE_GR_AFFINE_CUH
