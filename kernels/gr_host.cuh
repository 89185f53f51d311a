// gpuresample: the CUDA qualifiers and built-ins the headers in kernels/ use, defined for a
// plain C++ compiler, so one text serves the CUDA kernels (nvcc, NVRTC) and the CPU loops
// (gpuresample/_native/*.cpp, tests/harness). Under nvcc or NVRTC (__CUDACC__) it is empty:
// no standard header is included there (NVRTC has none).
//
// Only what an inline function of a header needs is here; what a launch needs (__global__,
// threadIdx, blockIdx, ...) is the harness's (tests/harness/cuda_shim.h).

#ifndef GR_HOST_CUH
#define GR_HOST_CUH

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)

#include <cmath>
#include <cstring>

#ifndef __device__
#define __device__
#endif
#ifndef __host__
#define __host__
#endif
#ifndef __forceinline__
#if defined(_MSC_VER)
#define __forceinline__ __forceinline
#else
#define __forceinline__ inline __attribute__((always_inline))
#endif
#endif

// A read-only load (the texture path on a GPU): a plain load here.
template <typename T>
inline T __ldg(const T* p)
{
    return *p;
}

inline unsigned int __float_as_uint(float x)
{
    unsigned int u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

inline float __uint_as_float(unsigned int u)
{
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// 1 + the index of the lowest set bit of x, 0 for x == 0.
inline int __ffsll(long long x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ffsll(x);
#else
    unsigned long long u = static_cast<unsigned long long>(x);
    for (int i = 0; i < 64; ++i) {
        if (u & (1ull << i)) {
            return i + 1;
        }
    }
    return 0;
#endif
}

using std::floor;
using std::rint;
using std::rintf;

#endif  // !__CUDACC__

#endif  // GR_HOST_CUH
