// gpuresample._core: the CUDA spellings the arithmetic headers in kernels/ use, defined for
// the host compiler, then those headers. The CPU loops include the very text the CUDA
// kernels include (docs/design.md §3); here __device__ and friends mean "inline" and __ldg
// is a plain load. The same stand-ins as tests/harness/cuda_shim.h, without the launch
// coordinates (the CPU loops do not read them; the geometry helpers that do are never
// called on the host).
#ifndef GPURESAMPLE_AFFINE_HOST_HPP
#define GPURESAMPLE_AFFINE_HOST_HPP

#include <cmath>
#include <cstring>

#ifndef __device__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#endif

namespace gr::host {
struct dim3 {
    unsigned int x, y, z;
};
}  // namespace gr::host

// Referenced by gpuresample.cuh's launch-geometry helpers, which only kernels call.
inline constexpr gr::host::dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};

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

using std::rint;
using std::rintf;

#include "gpuresample.cuh"
#include "gr_affine.cuh"

#endif  // GPURESAMPLE_AFFINE_HOST_HPP
