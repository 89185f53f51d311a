// Oblique targets (SPEC §8): a source position per output voxel from a 3x4 matrix.
//
// Output voxel (j0, j1, j2) of a block, j0 counted from the block's first row j0_start,
// samples the source at
//
//     u_i = ((m[4i] * J0 + m[4i+1] * J1) + m[4i+2] * J2) + m[4i+3],   J0 = j0 + j0_start,
//
// in double, in exactly this order, with no fused multiply-add (gr_mul, gr_add), where m
// is source.affine^-1 . target.affine computed on the host. A voxel whose u_i lies outside
// [-0.5 - band_atol, n_i - 0.5 + band_atol] on any axis gets `fill`. Inside, the taps
// and weights along each axis are the per-axis sampling tables' for that one position.
// Same arithmetic as gpuresample/backends/_affine_loops.py, bit for bit: weights computed
// in double and rounded to `Work` (label weights stay double), products and sums in
// `Work`, taps along axis 0 added first, then axis 1, then axis 2.
//
// Common arguments: source (any element strides s0, s1, s2), output (extents n0, n1, n2,
// any element strides), the matrix (12 doubles), the whole source's extents (the band and
// the clamping use them), `first`: the global row (cubic: coefficient row of the whole
// extended line) of the block's row 0 along each axis, j0_start, band_atol and fill.

#include "gpuresample.cuh"

// Taps of the cubic B-spline per axis, and the edge copies before its prefilter (tables.CUBIC_PAD).
#define GR_AFFINE_CUBIC_TAPS 4

struct gr_affine_geometry {
    const double* m;
    gr_offset n_src0, n_src1, n_src2;
    gr_offset first0, first1, first2;
    gr_offset j0_start;
    double band_atol;
};

// Positions of voxel (j0, j1, j2) in source voxels; false when outside the band.
__device__ __forceinline__ bool gr_affine_position(const gr_affine_geometry& g, gr_offset j0, gr_offset j1,
                                                   gr_offset j2, double* u)
{
    const double J0 = static_cast<double>(j0 + g.j0_start);
    const double J1 = static_cast<double>(j1);
    const double J2 = static_cast<double>(j2);
    const gr_offset n[3] = {g.n_src0, g.n_src1, g.n_src2};
    bool inside = true;
#pragma unroll
    for (int i = 0; i < 3; ++i) {
        const double p = gr_add(gr_mul(__ldg(g.m + 4 * i), J0), gr_mul(__ldg(g.m + 4 * i + 1), J1));
        u[i] = gr_add(gr_add(p, gr_mul(__ldg(g.m + 4 * i + 2), J2)), __ldg(g.m + 4 * i + 3));
        const double lo = -0.5 - g.band_atol;
        const double hi = gr_add(static_cast<double>(n[i]) - 0.5, g.band_atol);
        inside = inside && !(u[i] < lo || u[i] > hi);
    }
    return inside;
}

__device__ __forceinline__ gr_offset gr_clamp_row(gr_offset i, gr_offset n)
{
    return i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
}

// Linear taps of position u on a line of n rows: rows (global) a, b and the fraction of b.
__device__ __forceinline__ void gr_affine_linear_taps(double u, gr_offset n, gr_offset* a, gr_offset* b, double* frac)
{
    const double top = static_cast<double>(n) - 1.0;
    const double clamped = u < 0.0 ? 0.0 : (u > top ? top : u);
    const double base = floor(clamped);
    *frac = clamped - base;
    *a = static_cast<gr_offset>(base);
    *b = *a + 1 < n ? *a + 1 : n - 1;
    if (*frac == 0.0) {  // the zero-weight tap points at the other
        *b = *a;
    }
}

// Output value of type Out for `fill` (passed as double: exact for every value the host allows).
template <typename Out>
__device__ __forceinline__ Out gr_fill_value(double fill) { return static_cast<Out>(fill); }
template <>
__device__ __forceinline__ float gr_fill_value<float>(double fill) { return gr_narrow(fill); }
template <>
__device__ __forceinline__ gr_half gr_fill_value<gr_half>(double fill) { return gr_float_to_half(gr_narrow(fill)); }
template <>
__device__ __forceinline__ bool gr_fill_value<bool>(double fill) { return fill != 0.0; }

#define GR_AFFINE_VOXEL_LOOP_BEGIN                                                   \
    const gr_offset j2 = gr_first_x();                                               \
    if (j2 >= n2) {                                                                  \
        return;                                                                      \
    }                                                                                \
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {                 \
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {              \
            Out* target = dst + j0 * out_stride0 + j1 * out_stride1 + j2 * out_stride2; \
            double u[3];                                                             \
            if (!gr_affine_position(g, j0, j1, j2, u)) {                             \
                *target = gr_fill_value<Out>(fill);                                  \
                continue;                                                            \
            }

#define GR_AFFINE_VOXEL_LOOP_END \
        }                        \
    }

#define GR_AFFINE_ARGS                                                                             \
    const double* __restrict__ m, gr_offset n_src0, gr_offset n_src1, gr_offset n_src2,             \
        gr_offset first0, gr_offset first1, gr_offset first2, gr_offset j0_start, double band_atol, \
        double fill, gr_offset s0, gr_offset s1, gr_offset s2, gr_offset n0, gr_offset n1,          \
        gr_offset n2, gr_offset out_stride0, gr_offset out_stride1, gr_offset out_stride2

#define GR_AFFINE_GEOMETRY \
    const gr_affine_geometry g = {m, n_src0, n_src1, n_src2, first0, first1, first2, j0_start, band_atol}

// Nearest, values copied as they are (In == Out; bool and float16 as their bit patterns).
template <typename Out>
__global__ void gr_affine_copy(const Out* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_GEOMETRY;
    GR_AFFINE_VOXEL_LOOP_BEGIN
    const gr_offset i0 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[0], 0.5))), n_src0) - first0;
    const gr_offset i1 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[1], 0.5))), n_src1) - first1;
    const gr_offset i2 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[2], 0.5))), n_src2) - first2;
    *target = __ldg(src + i0 * s0 + i1 * s1 + i2 * s2);
    GR_AFFINE_VOXEL_LOOP_END
}

// Nearest into another dtype: through double, rounded and clipped for integer outputs.
template <typename In, typename Out>
__global__ void gr_affine_nearest(const In* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_GEOMETRY;
    GR_AFFINE_VOXEL_LOOP_BEGIN
    const gr_offset i0 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[0], 0.5))), n_src0) - first0;
    const gr_offset i1 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[1], 0.5))), n_src1) - first1;
    const gr_offset i2 = gr_clamp_row(static_cast<gr_offset>(floor(gr_add(u[2], 0.5))), n_src2) - first2;
    gr_store(target, gr_load<double>(src + i0 * s0 + i1 * s1 + i2 * s2));
    GR_AFFINE_VOXEL_LOOP_END
}

// Trilinear over the 2 x 2 x 2 taps.
template <typename In, typename Work, typename Out>
__global__ void gr_affine_linear(const In* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_GEOMETRY;
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_offset a0, b0, a1, b1, a2, b2;
    double f0, f1, f2;
    gr_affine_linear_taps(u[0], n_src0, &a0, &b0, &f0);
    gr_affine_linear_taps(u[1], n_src1, &a1, &b1, &f1);
    gr_affine_linear_taps(u[2], n_src2, &a2, &b2, &f2);
    const gr_offset ra0 = (a0 - first0) * s0, rb0 = (b0 - first0) * s0;
    const gr_offset ra1 = (a1 - first1) * s1, rb1 = (b1 - first1) * s1;
    const gr_offset ra2 = (a2 - first2) * s2, rb2 = (b2 - first2) * s2;
    const Work w0a = gr_cast<Work, double>::apply(1.0 - f0), w0b = gr_cast<Work, double>::apply(f0);
    const Work w1a = gr_cast<Work, double>::apply(1.0 - f1), w1b = gr_cast<Work, double>::apply(f1);
    const Work w2a = gr_cast<Work, double>::apply(1.0 - f2), w2b = gr_cast<Work, double>::apply(f2);
    const Work x00 = gr_add(gr_mul(w0a, gr_load<Work>(src + ra0 + ra1 + ra2)), gr_mul(w0b, gr_load<Work>(src + rb0 + ra1 + ra2)));
    const Work x10 = gr_add(gr_mul(w0a, gr_load<Work>(src + ra0 + rb1 + ra2)), gr_mul(w0b, gr_load<Work>(src + rb0 + rb1 + ra2)));
    const Work x01 = gr_add(gr_mul(w0a, gr_load<Work>(src + ra0 + ra1 + rb2)), gr_mul(w0b, gr_load<Work>(src + rb0 + ra1 + rb2)));
    const Work x11 = gr_add(gr_mul(w0a, gr_load<Work>(src + ra0 + rb1 + rb2)), gr_mul(w0b, gr_load<Work>(src + rb0 + rb1 + rb2)));
    const Work y0 = gr_add(gr_mul(w1a, x00), gr_mul(w1b, x10));
    const Work y1 = gr_add(gr_mul(w1a, x01), gr_mul(w1b, x11));
    gr_store(target, gr_add(gr_mul(w2a, y0), gr_mul(w2b, y1)));
    GR_AFFINE_VOXEL_LOOP_END
}

// Cubic B-spline taps (rows of the block's coefficients) and weights of position u along
// one axis: the extended line has n + 2 pad rows; pad 0 marks the length-1 axis of 2-D data.
template <typename Work>
__device__ __forceinline__ void gr_affine_cubic_taps(double u, gr_offset n, gr_offset pad, gr_offset first,
                                                     gr_offset stride, gr_offset* rows, Work* w)
{
    const gr_offset n_ext = n + 2 * pad;
    if (n_ext == 1) {
        for (int q = 0; q < GR_AFFINE_CUBIC_TAPS; ++q) {
            rows[q] = -first * stride;
            w[q] = Work(q == 0 ? 1 : 0);
        }
        return;
    }
    const double padded = gr_add(u, static_cast<double>(pad));
    const double base = floor(padded);
    const double t = padded - base;
    const double s = 1.0 - t;
    w[0] = gr_cast<Work, double>::apply(gr_mul(gr_mul(s, s), s) / 6.0);
    w[1] = gr_cast<Work, double>::apply(gr_add(gr_mul(gr_mul(gr_mul(3.0, t), t), t - 2.0), 4.0) / 6.0);
    w[2] = gr_cast<Work, double>::apply(gr_add(gr_mul(gr_mul(gr_mul(3.0, s), s), s - 2.0), 4.0) / 6.0);
    w[3] = gr_cast<Work, double>::apply(gr_mul(gr_mul(t, t), t) / 6.0);
    const gr_offset b = static_cast<gr_offset>(base);
    for (int q = 0; q < GR_AFFINE_CUBIC_TAPS; ++q) {
        rows[q] = (gr_clamp_row(b - 1 + q, n_ext) - first) * stride;
    }
    if (t == 0.0) {  // the only weight that can be zero: point it at the largest tap (index 1)
        rows[3] = rows[1];
    }
}

// Cubic B-spline on the block's prefiltered coefficients (in Work, as the CPU stores them).
// `first` counts rows of the whole extended line; pads are the edge copies.
template <typename Work, typename Out>
__global__ void gr_affine_cubic(const Work* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS,
                                gr_offset pad0, gr_offset pad1, gr_offset pad2)
{
    GR_AFFINE_GEOMETRY;
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_offset r0[GR_AFFINE_CUBIC_TAPS], r1[GR_AFFINE_CUBIC_TAPS], r2[GR_AFFINE_CUBIC_TAPS];
    Work w0[GR_AFFINE_CUBIC_TAPS], w1[GR_AFFINE_CUBIC_TAPS], w2[GR_AFFINE_CUBIC_TAPS];
    gr_affine_cubic_taps<Work>(u[0], n_src0, pad0, first0, s0, r0, w0);
    gr_affine_cubic_taps<Work>(u[1], n_src1, pad1, first1, s1, r1, w1);
    gr_affine_cubic_taps<Work>(u[2], n_src2, pad2, first2, s2, r2, w2);
    Work acc = Work(0);
    for (int c = 0; c < GR_AFFINE_CUBIC_TAPS; ++c) {
        Work plane = Work(0);
        for (int b = 0; b < GR_AFFINE_CUBIC_TAPS; ++b) {
            const Work* line = src + r1[b] + r2[c];
            Work x = gr_mul(w0[0], gr_load<Work>(line + r0[0]));
            for (int a = 1; a < GR_AFFINE_CUBIC_TAPS; ++a) {
                x = gr_add(x, gr_mul(w0[a], gr_load<Work>(line + r0[a])));
            }
            plane = (b == 0) ? gr_mul(w1[0], x) : gr_add(plane, gr_mul(w1[b], x));
        }
        acc = (c == 0) ? gr_mul(w2[0], plane) : gr_add(acc, gr_mul(w2[c], plane));
    }
    gr_store(target, acc);
    GR_AFFINE_VOXEL_LOOP_END
}

// Label masks: per-label linear weights over the 2 x 2 x 2 taps, arg-max, ties to the lower
// label (as gr_label in label.cu, with the taps of the voxel's own position).
template <typename Out>
__global__ void gr_affine_label(const Out* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_GEOMETRY;
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_offset a[3], b[3];
    double f[3];
    gr_affine_linear_taps(u[0], n_src0, &a[0], &b[0], &f[0]);
    gr_affine_linear_taps(u[1], n_src1, &a[1], &b[1], &f[1]);
    gr_affine_linear_taps(u[2], n_src2, &a[2], &b[2], &f[2]);
    const gr_offset firsts[3] = {first0, first1, first2};
    const gr_offset strides[3] = {s0, s1, s2};
    gr_offset rows[3][2];
    double weights[3][2];
    for (int i = 0; i < 3; ++i) {
        rows[i][0] = (a[i] - firsts[i]) * strides[i];
        rows[i][1] = (b[i] - firsts[i]) * strides[i];
        weights[i][0] = 1.0 - f[i];
        weights[i][1] = f[i];
    }
    Out label[8];
    double weight[8];
    for (int k = 0; k < 8; ++k) {  // tap k = (k / 4, k / 2 % 2, k % 2): the CPU's loop order
        const int ta = k / 4, tb = (k / 2) % 2, tc = k % 2;
        weight[k] = gr_mul(gr_mul(weights[0][ta], weights[1][tb]), weights[2][tc]);
        label[k] = __ldg(src + rows[0][ta] + rows[1][tb] + rows[2][tc]);
    }
    Out best_label = label[0];
    double best_score = 0.0;
    bool have_best = false;
    for (int k = 0; k < 8; ++k) {
        bool first = true;
        for (int q = 0; q < k; ++q) {
            first = first && !gr_equal(label[q], label[k]);
        }
        if (!first) {
            continue;
        }
        double score = weight[k];
        for (int q = k + 1; q < 8; ++q) {
            if (gr_equal(label[q], label[k])) {
                score = gr_add(score, weight[q]);
            }
        }
        if (!have_best || score > best_score || (score == best_score && gr_less(label[k], best_label))) {
            best_label = label[k];
            best_score = score;
            have_best = true;
        }
    }
    *target = best_label;
    GR_AFFINE_VOXEL_LOOP_END
}
