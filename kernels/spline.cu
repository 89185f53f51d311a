// Cubic B-spline coefficients on the device: gather the rows a block needs (edges clamped)
// into a float64 coefficient array, then prefilter it in place along each cubic axis.
//
// Same arithmetic as gather_clamped and spline_filter_axis0 in
// gpuresample/backends/_cpu_loops.py. The CPU filters each line in a float64 scratch copy
// of the whole extended line (pad_before copies of the first data row, the data rows,
// pad_after copies of the last) and stores the kept rows back in the working type. Here a
// thread filters one line in place in the float64 coefficient array: the kept rows cover
// every data row, pad values are the edge rows' values, causal values of trailing pad rows
// that are not kept live in a small local array, and results are rounded to float32 when
// the working type is float32, exactly where the CPU stores them into its float32 array.
// For a float32 working type the last axis's pass writes its results as float32 into a
// separate array instead (the coefficients the separable kernel reads: half the bytes).

#include "gr_spline.cuh"

// coef[j0, j1, j2] = src[map0[j0], map1[j1], map2[j2]] as float64 (exact for every input
// type: float16 and float32 widen, integers up to 32 bits fit in a double). coef is
// C-contiguous with extents n0, n1, n2; src has any element strides.
template <typename In>
__global__ void gr_gather_coefficients(const In* __restrict__ src, double* __restrict__ coef,
                                       const int* __restrict__ map0, const int* __restrict__ map1,
                                       const int* __restrict__ map2,
                                       gr_offset src_stride0, gr_offset src_stride1, gr_offset src_stride2,
                                       gr_offset n0, gr_offset n1, gr_offset n2)
{
    const gr_offset j2 = gr_first_x();
    if (j2 >= n2) {
        return;
    }
    const gr_offset offset2 = static_cast<gr_offset>(__ldg(map2 + j2)) * src_stride2;
    for (gr_offset j0 = gr_first_z(); j0 < n0; j0 += gr_step_z()) {
        const gr_offset offset0 = static_cast<gr_offset>(__ldg(map0 + j0)) * src_stride0;
        for (gr_offset j1 = gr_first_y(); j1 < n1; j1 += gr_step_y()) {
            const gr_offset offset1 = static_cast<gr_offset>(__ldg(map1 + j1)) * src_stride1;
            coef[(j0 * n1 + j1) * n2 + j2] = gr_load<double>(src + offset0 + offset1 + offset2);
        }
    }
}

// One line of the extended line being filtered: where its kept rows are and what the pad
// rows hold. Row r of the extended line is coefficient row r - first when kept.
struct gr_spline_line {
    double* p;          // coefficient row `first` of this line
    gr_offset stride;   // element stride between rows
    int first;          // first kept row (extended-line coordinates)
    int stop;           // one past the last kept row
    int data_begin;     // pad_before: first data row
    int data_end;       // pad_before + length
    double edge_first;  // gain * first data value: every leading pad row
    double edge_last;   // gain * last data value: every trailing pad row
    double gain;

    // Initial (gain-scaled) value of extended row r; data rows not yet overwritten.
    __device__ __forceinline__ double initial(int r) const
    {
        if (r < data_begin) {
            return edge_first;
        }
        if (r >= data_end) {
            return edge_last;
        }
        return gr_spline_scaled(p[(r - first) * stride], gain);
    }
};

// Store a finished coefficient: in place (rounded to float32 when the working type is
// float32, as the CPU stores it), or, on the last pass, as float32 into `out`.
__device__ __forceinline__ void gr_spline_store(double* p, float* out, gr_offset at, double value,
                                                int round_to_float, int narrow_out)
{
    if (narrow_out) {
        out[at] = gr_narrow(value);
    } else {
        p[at] = round_to_float ? gr_widen(gr_narrow(value)) : value;
    }
}

// Prefilter every line along one axis of the float64 coefficient array, in place.
//   lines: n_lines = n_outer * n_inner, line l starts at (l / n_inner) * stride_outer
//          + (l % n_inner) * stride_inner; consecutive l are neighbours in memory when
//          the inner axis is the contiguous one.
//   rows:  the line holds n_rows kept rows [first, first + n_rows) of the extended line
//          of pad_before + length + pad_after rows, at element stride stride_line.
//   round_to_float: store results rounded to float32 (working type float32).
//   narrow_out: the last pass for a float32 working type. Results go, as float32, to
//          `narrowed` (C-contiguous like coef, same element offsets) instead of in place,
//          so the separable kernel reads 4-byte coefficients; coef keeps the causal values
//          this pass still needs. Unused (any float array) when 0.
extern "C" __global__ void gr_spline_prefilter(double* __restrict__ coef, float* __restrict__ narrowed,
                                               gr_offset n_lines, gr_offset n_inner,
                                               gr_offset stride_outer, gr_offset stride_inner,
                                               gr_offset stride_line, int n_rows, int first,
                                               int pad_before, int length, int pad_after,
                                               double pole, int round_to_float, int narrow_out)
{
    const int n_ext = pad_before + length + pad_after;
    const gr_offset step = static_cast<gr_offset>(gridDim.x) * blockDim.x;
    if (n_ext <= 1) {  // the CPU leaves a one-row line as it is
        if (narrow_out) {
            for (gr_offset l = static_cast<gr_offset>(blockIdx.x) * blockDim.x + threadIdx.x; l < n_lines; l += step) {
                const gr_offset base = (l / n_inner) * stride_outer + (l % n_inner) * stride_inner;
                for (int i = 0; i < n_rows; ++i) {
                    narrowed[base + i * stride_line] = gr_narrow(coef[base + i * stride_line]);
                }
            }
        }
        return;
    }
    const double z = pole;
    const double gain = gr_spline_gain(n_ext, z);
    const double z_last = gr_spline_z_last(n_ext, z);
    for (gr_offset l = static_cast<gr_offset>(blockIdx.x) * blockDim.x + threadIdx.x; l < n_lines; l += step) {
        gr_spline_line line;
        const gr_offset base = (l / n_inner) * stride_outer + (l % n_inner) * stride_inner;
        line.p = coef + base;
        float* const out = narrowed + base;  // narrow_out: row i of this line is out[(i - first) * stride_line]
        line.stride = stride_line;
        line.first = first;
        line.stop = first + n_rows;
        line.data_begin = pad_before;
        line.data_end = pad_before + length;
        line.gain = gain;
        line.edge_first = gr_spline_scaled(line.p[(pad_before - first) * stride_line], gain);
        line.edge_last = gr_spline_scaled(line.p[(pad_before + length - 1 - first) * stride_line], gain);

        // Causal initial value for mirror boundaries, over the whole extended line.
        double acc = gr_causal_sum_start(line.initial(0), line.initial(n_ext - 1), z_last);
        double z_i = z;
        for (int i = 1; i < n_ext - 1; ++i) {
            acc = gr_causal_sum_add(acc, z_i, line.initial(i), line.initial(n_ext - 1 - i), z_last);
            z_i = z_i * z;
        }
        double causal = gr_causal_start(acc, z_last);

        // Causal pass. Kept rows take the causal value in place; the row before the first
        // kept one and the unkept trailing rows are remembered for the anti-causal pass.
        double tail[GR_MAX_UNKEPT_TAIL] = {};
        double before_first = 0.0;
        if (first == 1) {
            before_first = causal;
        }
        if (first == 0) {
            line.p[0] = causal;
        }
        for (int i = 1; i < n_ext; ++i) {
            causal = gr_causal_step(line.initial(i), z, causal);
            if (i < first) {
                if (i == first - 1) {
                    before_first = causal;
                }
            } else if (i < line.stop) {
                line.p[(i - first) * stride_line] = causal;
            } else {
                tail[i - line.stop] = causal;
            }
        }

        // Anti-causal pass, from the last row down to the first kept row.
        const double last = causal;
        const int r = n_ext - 2;
        const double before_last = r >= line.stop ? tail[r - line.stop]
                                   : (r >= first ? line.p[(r - first) * stride_line] : before_first);
        double anti = gr_anticausal_start(z, before_last, last);
        if (n_ext - 1 < line.stop) {
            gr_spline_store(line.p, out, (n_ext - 1 - first) * stride_line, anti, round_to_float, narrow_out);
        }
        for (int i = n_ext - 2; i >= first; --i) {
            const double c_i = i >= line.stop ? tail[i - line.stop] : line.p[(i - first) * stride_line];
            anti = gr_anticausal_step(z, anti, c_i);
            if (i < line.stop) {
                gr_spline_store(line.p, out, (i - first) * stride_line, anti, round_to_float, narrow_out);
            }
        }
    }
}

// The prefilter of a slab's kept rows when the slab holds only part of the volume's line
// (see gpuresample/spline_states.py): the whole line's recursion states at the first kept
// row (causal) and the last kept row (anti-causal) come from a pre-pass, one per line, and
// this continues that recursion over the kept rows — the same operations as
// filter_from_states in gpuresample/backends/_cpu_loops.py, so each coefficient equals the
// unchunked prefilter's bit for bit.
//   causal_first[l], anticausal_last[l]: line l's states (l as in gr_spline_prefilter).
extern "C" __global__ void gr_spline_prefilter_cut(double* __restrict__ coef, float* __restrict__ narrowed,
                                                   gr_offset n_lines, gr_offset n_inner,
                                                   gr_offset stride_outer, gr_offset stride_inner,
                                                   gr_offset stride_line, int n_rows, double pole,
                                                   const double* __restrict__ causal_first,
                                                   const double* __restrict__ anticausal_last, int round_to_float,
                                                   int narrow_out)
{
    const double z = pole;
    const double gain = gr_spline_pole_gain(z);  // a cut line is part of a longer one (n_ext > 1)
    const gr_offset step = static_cast<gr_offset>(gridDim.x) * blockDim.x;
    for (gr_offset l = static_cast<gr_offset>(blockIdx.x) * blockDim.x + threadIdx.x; l < n_lines; l += step) {
        const gr_offset base = (l / n_inner) * stride_outer + (l % n_inner) * stride_inner;
        double* p = coef + base;
        float* const out = narrowed + base;  // narrow_out: row i of this line is out[i * stride_line]
        // Causal pass from the state at row 0; rows hold their causal values in place.
        double causal = causal_first[l];
        p[0] = causal;
        for (int i = 1; i < n_rows; ++i) {
            causal = gr_causal_step(gr_spline_scaled(p[i * stride_line], gain), z, causal);
            p[i * stride_line] = causal;
        }
        // Anti-causal pass from the state at the last row (reads each causal value before
        // the row's result is stored).
        double anti = anticausal_last[l];
        gr_spline_store(p, out, (n_rows - 1) * stride_line, anti, round_to_float, narrow_out);
        for (int i = n_rows - 2; i >= 0; --i) {
            anti = gr_anticausal_step(z, anti, p[i * stride_line]);
            gr_spline_store(p, out, i * stride_line, anti, round_to_float, narrow_out);
        }
    }
}
