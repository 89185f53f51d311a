// Oblique targets (docs/design.md §1 "Onto another grid", §2): a source position per
// output voxel from a 3x4 matrix, one CUDA thread per voxel. The per-voxel body (position,
// band test, taps, weights, sums) is gr_affine.cuh's, which the CPU loops
// (gpuresample/_native/affine*.cpp) run too; this file holds only the GPU loop order.
//
// Common arguments: source (any element strides s0, s1, s2), output (extents n0, n1, n2,
// any element strides), the matrix (12 doubles), the whole source's extents (the band and
// the clamping use them), `first`: the global row (cubic: coefficient row of the whole
// extended line) of the block's row 0 along each axis, j0_start, band_atol and fill.

#include "gpuresample.cuh"
#include "gr_affine.cuh"

// Output value of type Out for `fill` (passed as double: exact for every value the host allows).
template <typename Out>
__device__ __forceinline__ Out gr_fill_value(double fill) { return static_cast<Out>(fill); }
template <>
__device__ __forceinline__ float gr_fill_value<float>(double fill) { return gr_narrow(fill); }
template <>
__device__ __forceinline__ gr_half gr_fill_value<gr_half>(double fill) { return gr_float_to_half(gr_narrow(fill)); }
template <>
__device__ __forceinline__ bool gr_fill_value<bool>(double fill) { return fill != 0.0; }

// One thread per output voxel: x along output axis 2, y along 1, z along 0 (grid-stride in
// y and z). The whole position is computed per voxel (the CPU loops hoist the line start:
// the same operations in the same order).
#define GR_AFFINE_VOXEL_LOOP_BEGIN                                                      \
    const gr_offset j2 = gr_first_x();                                                  \
    if (j2 >= n2) {                                                                     \
        return;                                                                         \
    }                                                                                   \
    const gr_affine_source source = {{n_src0, n_src1, n_src2}, {first0, first1, first2}, {s0, s1, s2}}; \
    const gr_affine_band band = gr_affine_band_of(source.n, band_atol);                 \
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {                    \
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {                 \
            Out* target = dst + j0 * out_stride0 + j1 * out_stride1 + j2 * out_stride2; \
            double p[3], u[3];                                                          \
            gr_affine_line_start(m, static_cast<double>(j0 + j0_start), static_cast<double>(j1), p); \
            gr_affine_position(m, p, static_cast<double>(j2), u);                       \
            if (!gr_affine_inside(band, u)) {                                           \
                *target = gr_fill_value<Out>(fill);                                     \
                continue;                                                               \
            }

#define GR_AFFINE_VOXEL_LOOP_END \
        }                        \
    }

#define GR_AFFINE_ARGS                                                                             \
    const double* __restrict__ m, gr_offset n_src0, gr_offset n_src1, gr_offset n_src2,             \
        gr_offset first0, gr_offset first1, gr_offset first2, gr_offset j0_start, double band_atol, \
        double fill, gr_offset s0, gr_offset s1, gr_offset s2, gr_offset n0, gr_offset n1,          \
        gr_offset n2, gr_offset out_stride0, gr_offset out_stride1, gr_offset out_stride2

// Nearest, values copied as they are (In == Out; bool as unsigned char, float16 as gr_half).
template <typename Out>
__global__ void gr_affine_copy(const Out* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_VOXEL_LOOP_BEGIN
    *target = gr_load_label(src + gr_affine_nearest_offset(source, u));
    GR_AFFINE_VOXEL_LOOP_END
}

// Nearest into another dtype: through double, rounded and clipped for integer outputs.
template <typename In, typename Out>
__global__ void gr_affine_nearest(const In* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_store(target, gr_load<double>(src + gr_affine_nearest_offset(source, u)));
    GR_AFFINE_VOXEL_LOOP_END
}

// Trilinear over the 2 x 2 x 2 taps.
template <typename In, typename Work, typename Out>
__global__ void gr_affine_linear(const In* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_store(target, gr_affine_linear_sample<Work>(src, source, u));
    GR_AFFINE_VOXEL_LOOP_END
}

// Cubic B-spline on the block's prefiltered coefficients (in Work, as the CPU stores them).
// `first` counts rows of the whole extended line; pads are the edge copies.
template <typename Work, typename Out>
__global__ void gr_affine_cubic(const Work* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS,
                                gr_offset pad0, gr_offset pad1, gr_offset pad2)
{
    const gr_offset pads[3] = {pad0, pad1, pad2};
    GR_AFFINE_VOXEL_LOOP_BEGIN
    gr_store(target, gr_affine_cubic_sample<Work>(src, source, pads, u));
    GR_AFFINE_VOXEL_LOOP_END
}

// Label masks: per-label linear weights over the 2 x 2 x 2 taps, arg-max, ties to the lower
// label (as gr_label in label.cu, with the taps of the voxel's own position).
template <typename Out>
__global__ void gr_affine_label(const Out* __restrict__ src, Out* __restrict__ dst, GR_AFFINE_ARGS)
{
    GR_AFFINE_VOXEL_LOOP_BEGIN
    *target = gr_affine_label_sample(src, source, u);
    GR_AFFINE_VOXEL_LOOP_END
}
