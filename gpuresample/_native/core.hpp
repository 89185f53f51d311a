// gpuresample._core: the CPU loops. What the translation units share: the bindings each one
// adds to the module, and the thread helper.
//
// The arithmetic lives in kernels/*.cuh, which the CUDA kernels include too; these files
// hold only the CPU loop order (plane passes over contiguous rows, threads per call).
#ifndef GPURESAMPLE_CORE_HPP
#define GPURESAMPLE_CORE_HPP

#include <nanobind/nanobind.h>

#include <atomic>
#include <chrono>
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

// How often, at most, the calling thread of a loop looks for a pending signal (Ctrl-C): a
// long call stops this soon after it, plus the items in flight (each is a plane or less).
constexpr std::chrono::milliseconds signal_check_interval{50};

// Whether Python has a signal to act on: its handlers run (the GIL taken for the moment) and
// an exception they raise (KeyboardInterrupt for Ctrl-C) is left set for raise_signal_error.
// Signals reach Python's main thread only; on any other thread this finds none.
inline bool signal_raised()
{
    nanobind::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

// Throws the exception signal_raised left set (as nanobind::python_error, which Python sees
// as that exception).
[[noreturn]] inline void raise_signal_error()
{
    nanobind::gil_scoped_acquire gil;
    throw nanobind::python_error();
}

// Rows of an output plane one work item takes when items are blocks of rows: whole planes
// up to about `voxels` output voxels, so that an item (and so a stop on Ctrl-C) stays short
// however large the planes are.
inline std::int64_t rows_per_item(std::int64_t rows, std::int64_t row_length, std::int64_t voxels)
{
    const std::int64_t per_row = row_length > 0 ? row_length : 1;
    const std::int64_t fit = voxels / per_row;
    return fit < 1 ? 1 : (fit > rows ? (rows > 0 ? rows : 1) : fit);
}

// fn(item, thread) for item in [0, n) on up to `threads` threads, created for this call and
// joined before it returns (no pool outlives a call, so a forked child is safe). Thread ids
// run 0 .. threads - 1 (the caller's thread is 0), so per-thread scratch is indexed by id.
// If a thread cannot be created, fewer threads do the work.
//
// Between its items the caller's thread looks for a pending signal every
// signal_check_interval; on one (Ctrl-C: KeyboardInterrupt) every thread stops taking
// items, all are joined, and the signal's exception is thrown: the items done so far have
// written their part of the output, nothing else. Call it with the GIL released.
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
    std::atomic<bool> stop{false};
    auto work = [&](int id) {
        while (!stop.load(std::memory_order_relaxed)) {
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
    const auto join = [&] {
        stop.store(true, std::memory_order_relaxed);
        for (auto& thread : pool) {
            thread.join();
        }
    };
    bool interrupted = false;
    try {
        auto checked = std::chrono::steady_clock::now();
        for (;;) {
            const std::int64_t item = next.fetch_add(1, std::memory_order_relaxed);
            if (item >= n) {
                break;
            }
            fn(item, 0);
            const auto now = std::chrono::steady_clock::now();
            if (now - checked >= signal_check_interval) {
                checked = now;
                if (signal_raised()) {
                    interrupted = true;
                    break;
                }
            }
        }
    } catch (...) {
        join();
        throw;
    }
    join();
    if (interrupted) {
        raise_signal_error();
    }
}

}  // namespace gr

#endif  // GPURESAMPLE_CORE_HPP
