// Label interpolation for masks: per-label linear weights over the 2 x 2 x 2 taps, arg-max,
// ties to the lower label. One thread per output voxel; only the labels present among the
// voxel's taps are scored, so nothing is allocated per label.
//
// Same arithmetic as label3 of the CPU loops (the vote is gr_pick_label in gr_label.cuh): tap weights are the
// float64 products (w0 * w1) * w2 with taps in (axis 0, axis 1, axis 2) order, a label's
// score is the sum of its taps' weights in tap order, starting from its first tap.
// The host maps bool to unsigned char and float16 to gr_half (compared by value, as
// gr_label_equal / gr_label_less say), as the CPU backend does.

#include "gr_label.cuh"

// Taps per axis of a label table (linear weights); a 2-D dummy axis has 1.
#define GR_LABEL_AXIS_TAPS 2
#define GR_LABEL_TAPS (GR_LABEL_AXIS_TAPS * GR_LABEL_AXIS_TAPS * GR_LABEL_AXIS_TAPS)

// Arguments: source (any element strides), output (extents n0, n1, n2, any element
// strides), and per original axis k: index (n_out, taps) int32, weight (n_out, taps)
// float64, its taps (1 or 2) and the source stride along the axis.
template <typename L>
__global__ void gr_label(const L* __restrict__ src, L* __restrict__ dst,
                         const int* __restrict__ index0, const double* __restrict__ weight0, int taps0, gr_offset stride0,
                         const int* __restrict__ index1, const double* __restrict__ weight1, int taps1, gr_offset stride1,
                         const int* __restrict__ index2, const double* __restrict__ weight2, int taps2, gr_offset stride2,
                         gr_offset n0, gr_offset n1, gr_offset n2,
                         gr_offset out_stride0, gr_offset out_stride1, gr_offset out_stride2)
{
    const gr_offset j2 = gr_first_x();
    if (j2 >= n2) {
        return;
    }
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {
            // Tap k = (a, b, c) = (k / 4, k / 2 % 2, k % 2): the CPU's loop order.
            L label[GR_LABEL_TAPS] = {};
            double weight[GR_LABEL_TAPS] = {};
            bool valid[GR_LABEL_TAPS] = {};
#pragma unroll
            for (int k = 0; k < GR_LABEL_TAPS; ++k) {
                const int a = k / 4, b = (k / 2) % 2, c = k % 2;
                valid[k] = a < taps0 && b < taps1 && c < taps2;
                if (valid[k]) {
                    const double wab = gr_mul(__ldg(weight0 + j0 * taps0 + a), __ldg(weight1 + j1 * taps1 + b));
                    weight[k] = gr_mul(wab, __ldg(weight2 + j2 * taps2 + c));
                    label[k] = gr_load_label(src + __ldg(index0 + j0 * taps0 + a) * stride0
                                         + __ldg(index1 + j1 * taps1 + b) * stride1
                                         + __ldg(index2 + j2 * taps2 + c) * stride2);
                }
            }
            // One label among the taps (most voxels of a mask): it wins, no scoring needed.
            bool same = true;
#pragma unroll
            for (int k = 1; k < GR_LABEL_TAPS; ++k) {
                same = same && (!valid[k] || gr_label_equal(label[k], label[0]));
            }
            if (same) {
                dst[j0 * out_stride0 + j1 * out_stride1 + j2 * out_stride2] = label[0];
                continue;
            }
            // Score each label over its taps (gr_label.cuh), the same vote as the CPU's.
            const L best_label = gr_pick_label<GR_LABEL_TAPS>(label, weight, valid);
            dst[j0 * out_stride0 + j1 * out_stride1 + j2 * out_stride2] = best_label;
        }
    }
}
