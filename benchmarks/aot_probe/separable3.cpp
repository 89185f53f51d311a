// Measurement probe, not part of the library: gpuresample's separable3 loop
// (gpuresample/backends/_cpu_loops.py; float32 input, weights and output) compiled ahead
// of time as C++, to measure what an extension would cost and give (build time, first
// call, speed, bit-identity with the Numba loop). benchmarks/first_call.py builds and runs it.
// Same operations in the same order as the Numba loop: products and sums in float32, taps
// left to right, no fused multiply-add (-ffp-contract=off); threads split output rows.
#include <cstdint>
#include <thread>
#include <vector>
#include <algorithm>
extern "C" void separable3_f32(const float* src, int64_t s0, int64_t s1, int64_t s2, int64_t n1, int64_t n2,
                               const int64_t* i0, const float* w0, int64_t n0o, int64_t t0,
                               const int64_t* i1, const float* w1, int64_t n1o, int64_t t1,
                               const int64_t* i2, const float* w2, int64_t n2o, int64_t t2,
                               float* out, int64_t o0, int64_t o1, int64_t o2, int threads) {
    auto work = [&](int64_t lo, int64_t hi) {
        std::vector<float> plane(n1 * n2), plane2(n1o * n2);
        for (int64_t j0 = lo; j0 < hi; ++j0) {
            for (int64_t a = 0; a < n1; ++a) {
                float* p = &plane[a * n2];
                int64_t row = i0[j0 * t0]; float wt = w0[j0 * t0];
                for (int64_t b = 0; b < n2; ++b) p[b] = wt * src[row * s0 + a * s1 + b * s2];
                for (int64_t t = 1; t < t0; ++t) {
                    row = i0[j0 * t0 + t]; wt = w0[j0 * t0 + t];
                    for (int64_t b = 0; b < n2; ++b) p[b] += wt * src[row * s0 + a * s1 + b * s2];
                }
            }
            for (int64_t c = 0; c < n1o; ++c) {
                float* q = &plane2[c * n2];
                int64_t row = i1[c * t1]; float wt = w1[c * t1];
                for (int64_t b = 0; b < n2; ++b) q[b] = wt * plane[row * n2 + b];
                for (int64_t t = 1; t < t1; ++t) {
                    row = i1[c * t1 + t]; wt = w1[c * t1 + t];
                    for (int64_t b = 0; b < n2; ++b) q[b] += wt * plane[row * n2 + b];
                }
            }
            for (int64_t c = 0; c < n1o; ++c)
                for (int64_t k = 0; k < n2o; ++k) {
                    float acc = w2[k * t2] * plane2[c * n2 + i2[k * t2]];
                    for (int64_t t = 1; t < t2; ++t) acc += w2[k * t2 + t] * plane2[c * n2 + i2[k * t2 + t]];
                    out[j0 * o0 + c * o1 + k * o2] = acc;
                }
        }
    };
    std::vector<std::thread> pool;
    int64_t step = (n0o + threads - 1) / threads;
    for (int k = 1; k < threads; ++k) {
        int64_t lo = k * step, hi = std::min(n0o, lo + step);
        if (lo < hi) pool.emplace_back(work, lo, hi);
    }
    work(0, std::min(n0o, step));
    for (auto& t : pool) t.join();
}
