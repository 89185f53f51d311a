// gpuresample: the label vote of one output voxel (docs/design.md section 2), shared by the
// CUDA kernels (kernels/label.cu) and the CPU loops (gpuresample/_native/separable.cpp).
//
// Each label among the voxel's taps scores the sum of its taps' float64 weights, in tap
// order, starting from its first tap; the highest score wins, ties go to the lower label.
// Labels compare with gr_equal / gr_less (float32 through the IEEE helpers; the callers
// pass integer views of float and bool labels, as the CPU backend does).

#ifndef GR_LABEL_CUH
#define GR_LABEL_CUH

#include "gpuresample.cuh"

// The vote over taps k < n for which valid(k) holds, in order of k. A label is scored once,
// at its first valid tap, so nothing is allocated per label; with n a compile-time constant
// every loop unrolls and the arrays stay in registers.
template <typename T, typename Valid>
__device__ __forceinline__ T gr_vote(const T* taps, const double* weights, int n, const Valid& valid)
{
    T best_label = taps[0];
    double best_score = 0.0;
    bool have_best = false;
#pragma unroll
    for (int k = 0; k < n; ++k) {
        bool first = valid(k);
#pragma unroll
        for (int q = 0; q < k; ++q) {
            first = first && !(valid(q) && gr_equal(taps[q], taps[k]));
        }
        if (!first) {
            continue;
        }
        double score = weights[k];
#pragma unroll
        for (int q = k + 1; q < n; ++q) {
            if (valid(q) && gr_equal(taps[q], taps[k])) {
                score = gr_add(score, weights[q]);
            }
        }
        if (!have_best || score > best_score || (score == best_score && gr_less(taps[k], best_label))) {
            best_label = taps[k];
            best_score = score;
            have_best = true;
        }
    }
    return best_label;
}

struct gr_all_taps {
    __device__ __forceinline__ bool operator()(int) const { return true; }
};

struct gr_valid_taps {
    const bool* valid;
    __device__ __forceinline__ bool operator()(int k) const { return valid[k]; }
};

// The winning label of taps[0 .. n) with weights[0 .. n) (n >= 1).
template <typename T>
__device__ __forceinline__ T gr_pick_label(const T* taps, const double* weights, int n)
{
    return gr_vote(taps, weights, n, gr_all_taps());
}

// The same vote over the taps k < n with valid[k] (the kernel's fixed 2 x 2 x 2 slots).
template <typename T>
__device__ __forceinline__ T gr_pick_label(const T* taps, const double* weights, int n, const bool* valid)
{
    gr_valid_taps pick = {valid};
    return gr_vote(taps, weights, n, pick);
}

#endif  // GR_LABEL_CUH
