// gpuresample: the label vote of one output voxel (docs/design.md section 2), shared by the
// CUDA kernels (kernels/label.cu) and the CPU loops (gpuresample/_native/separable.cpp).
//
// Each label among the voxel's taps scores the sum of its taps' float64 weights, in tap
// order, starting from its first tap; the highest score wins, ties go to the lower label.
// Labels compare with gr_label_equal / gr_label_less: by value, NaN one label after every
// number, -0.0 and 0.0 one label (float16 as gr_half, bool as unsigned char). The winner is
// written as its first tap holds it (bits and all).

#ifndef GR_LABEL_CUH
#define GR_LABEL_CUH

#include "gpuresample.cuh"

// The most taps a vote takes (the CPU's label tables have at most 4 x 4 x 4).
#define GR_VOTE_MAX_TAPS 64

// The vote over taps k < n (n <= MAX) for which valid(k) holds, in order of k, for a count
// fixed at compile time (the kernels). A label is
// scored at its first valid tap, adding the weights of its later taps in order and marking
// them scored, so nothing is allocated per label; with n a compile-time constant every loop
// unrolls and the arrays stay in registers.
template <int MAX, typename T, typename Valid>
__device__ __forceinline__ T gr_vote(const T* taps, const double* weights, int n, const Valid& valid)
{
    bool scored[MAX];
#pragma unroll
    for (int k = 0; k < n; ++k) {
        scored[k] = !valid(k);
    }
    T best_label = taps[0];
    double best_score = 0.0;
    bool have_best = false;
#pragma unroll
    for (int k = 0; k < n; ++k) {
        if (scored[k]) {
            continue;
        }
        double score = weights[k];
#pragma unroll
        for (int q = k + 1; q < n; ++q) {
            if (!scored[q] && gr_label_equal(taps[q], taps[k])) {
                score = gr_add(score, weights[q]);
                scored[q] = true;
            }
        }
        if (!have_best || score > best_score || (score == best_score && gr_label_less(taps[k], best_label))) {
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

// The winning label of taps[0 .. n) with weights[0 .. n) (1 <= n <= GR_VOTE_MAX_TAPS), n
// known at run time (the CPU's label loops): the same vote as gr_vote, walking the unscored
// taps as the bits of a mask, lowest first, so a tap already scored costs nothing. It visits
// the same taps in the same order and makes the same additions and comparisons.
template <typename T>
__device__ __forceinline__ T gr_pick_label(const T* taps, const double* weights, int n)
{
    unsigned long long pending = n >= 64 ? ~0ull : (1ull << n) - 1ull;
    T best_label = taps[0];
    double best_score = 0.0;
    bool have_best = false;
    while (pending != 0) {
        const int k = __ffsll(static_cast<long long>(pending)) - 1;
        pending &= pending - 1ull;
        double score = weights[k];
        unsigned long long rest = pending;
        while (rest != 0) {
            const int q = __ffsll(static_cast<long long>(rest)) - 1;
            rest &= rest - 1ull;
            if (gr_label_equal(taps[q], taps[k])) {
                score = gr_add(score, weights[q]);
                pending &= ~(1ull << q);
            }
        }
        if (!have_best || score > best_score || (score == best_score && gr_label_less(taps[k], best_label))) {
            best_label = taps[k];
            best_score = score;
            have_best = true;
        }
    }
    return best_label;
}

// The same vote over N taps, N fixed at compile time (every loop unrolls).
template <int N, typename T>
__device__ __forceinline__ T gr_pick_label(const T* taps, const double* weights)
{
    return gr_vote<N>(taps, weights, N, gr_all_taps());
}

// The same vote over the taps k < N with valid[k] (the kernel's fixed 2 x 2 x 2 slots).
template <int N, typename T>
__device__ __forceinline__ T gr_pick_label(const T* taps, const double* weights, const bool* valid)
{
    gr_valid_taps pick = {valid};
    return gr_vote<N>(taps, weights, N, pick);
}

#endif  // GR_LABEL_CUH
