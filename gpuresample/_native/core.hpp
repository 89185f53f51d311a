// gpuresample._core: the CPU loops. What the translation units share: the bindings each one
// adds to the module, and the thread helper.
//
// The arithmetic lives in kernels/*.cuh, which the CUDA kernels include too; these files
// hold only the CPU loop order (plane passes over contiguous rows, threads per call).
#ifndef GPURESAMPLE_CORE_HPP
#define GPURESAMPLE_CORE_HPP

#include <nanobind/nanobind.h>

#include <atomic>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

// The hot loops are built twice on x86-64 Linux, for the baseline and for AVX2, and the loader
// picks one for the CPU it runs on (GCC/Clang function multi-versioning). Both are the same
// IEEE operations in the same order (AVX2 has no fused multiply-add; -ffp-contract=off), so
// the same bits; AVX2 only widens the vectors of the row loops.
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define GR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define GR_CLONES
#endif

namespace gr {

// Each translation unit adds its functions to the module.
void bind_separable(nanobind::module_& m);
void bind_recursion(nanobind::module_& m);
void bind_affine(nanobind::module_& m);

// The threads a loop runs on: `threads` when positive, else the cores this process may run on
// (separable.cpp defines it; every loop family asks it).
std::int64_t default_threads(std::int64_t threads);

// fn(item, thread) for item in [0, n) on up to `threads` threads, created for this call and
// joined before it returns (no pool outlives a call, so a forked child is safe). Thread ids
// run 0 .. threads - 1 (the caller's thread is 0), so per-thread scratch is indexed by id.
// If a thread cannot be created, fewer threads do the work.
template <typename Fn>
void parallel_for(std::int64_t n, std::int64_t threads, const Fn& fn)
{
    if (n <= 0) {
        return;
    }
    if (threads > n) {
        threads = n;
    }
    std::atomic<std::int64_t> next{0};
    auto work = [&](int id) {
        for (;;) {
            const std::int64_t item = next.fetch_add(1, std::memory_order_relaxed);
            if (item >= n) {
                return;
            }
            fn(item, id);
        }
    };
    std::vector<std::thread> pool;
    for (std::int64_t t = 1; t < threads; ++t) {
        try {
            pool.emplace_back(work, static_cast<int>(t));
        } catch (const std::system_error&) {
            break;
        }
    }
    work(0);
    for (auto& thread : pool) {
        thread.join();
    }
}

}  // namespace gr

#endif  // GPURESAMPLE_CORE_HPP
