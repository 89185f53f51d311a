// gpuresample: the cubic B-spline prefilter's recursion, one lane (one line's value) at a
// time, shared by the CUDA kernels (kernels/spline.cu) and the CPU loops
// (gpuresample/_native/separable.cpp, recursion.cpp). The loop order is each caller's own
// (a GPU thread walks one line; the CPU walks rows of many lines at once); every operation
// on a lane's value is one of the functions below, so both compute the same float64 values.
//
// Over an extended line of n_ext rows x_i (the data with its edge pads), with the pole z:
//   gain        (1 - z) (1 - 1/z)                          (1 when n_ext <= 1)
//   z_last      z ** (n_ext - 1), square and multiply      (gr_int_power)
//   acc         g x_0 + z_last g x_{n-1}, then acc + z**i (g x_i + z_last g x_{n-1-i}) for
//               i = 1 .. n_ext - 2, z**i stepped by repeated multiplication
//   causal_0    acc / (1 - z_last**2);  causal_i = g x_i + z causal_{i-1}
//   anti_{n-1}  (z causal_{n-2} + causal_{n-1}) z / (z**2 - 1);  anti_i = z (anti_{i+1} - causal_i)
// (docs/design.md section 2; the same values as scipy.ndimage's mirror prefilter steps, in
// float64). Plain operators: the CPU loops build with -ffp-contract=off, the kernels with
// --fmad=false, so nothing is fused.

#ifndef GR_SPLINE_CUH
#define GR_SPLINE_CUH

#include "gpuresample.cuh"

// z ** n for n >= 0 by square and multiply (tables.prefilter_constants computes the same);
// 1 for n <= 0.
__device__ __forceinline__ double gr_int_power(double z, long long n)
{
    double result = 1.0;
    double base = z;
    while (n > 0) {
        if (n & 1) {
            result *= base;
        }
        n >>= 1;
        base *= base;
    }
    return result;
}

// The gain of the prefilter over a line of more than one row.
__device__ __forceinline__ double gr_spline_pole_gain(double z)
{
    return (1.0 - z) * (1.0 - 1.0 / z);
}

// The gain of the prefilter over an extended line of n_ext rows (a one-row line is kept as is).
__device__ __forceinline__ double gr_spline_gain(long long n_ext, double z)
{
    return n_ext > 1 ? gr_spline_pole_gain(z) : 1.0;
}

// z_last = z ** (n_ext - 1).
__device__ __forceinline__ double gr_spline_z_last(long long n_ext, double z)
{
    return gr_int_power(z, n_ext - 1);
}

// A data value scaled by the gain (the recursion's input).
__device__ __forceinline__ double gr_spline_scaled(double x, double gain)
{
    return x * gain;
}

// The initial causal sum's first term: row 0 and its mirror, row n_ext - 1 (both scaled).
__device__ __forceinline__ double gr_causal_sum_start(double head, double tail, double z_last)
{
    return head + z_last * tail;
}

// The sum's term i (z_i = z ** i): row i and its mirror, row n_ext - 1 - i (both scaled).
__device__ __forceinline__ double gr_causal_sum_add(double acc, double z_i, double row, double mirror, double z_last)
{
    return acc + z_i * (row + z_last * mirror);
}

// The causal value of row 0 from the whole sum.
__device__ __forceinline__ double gr_causal_start(double acc, double z_last)
{
    return acc / (1.0 - z_last * z_last);
}

// The causal value of row i from the scaled row and the causal value of row i - 1.
__device__ __forceinline__ double gr_causal_step(double scaled, double z, double previous)
{
    return scaled + z * previous;
}

// The anti-causal value of the last row from the last two causal values.
__device__ __forceinline__ double gr_anticausal_start(double z, double causal_before_last, double causal_last)
{
    return (z * causal_before_last + causal_last) * z / (z * z - 1.0);
}

// The anti-causal value of row i from row i + 1's and the causal value of row i.
__device__ __forceinline__ double gr_anticausal_step(double z, double next, double causal)
{
    return z * (next - causal);
}

#endif  // GR_SPLINE_CUH
