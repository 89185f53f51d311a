// Stand-ins for the CUDA built-ins kernels/*.cu use, so g++ compiles the same sources as
// plain C++ (tests/harness). Kernels run one thread at a time over their launch grid:
// sound because they use no shared memory, barriers or warp-level operations.

#ifndef GPURESAMPLE_CUDA_SHIM_H
#define GPURESAMPLE_CUDA_SHIM_H

#include <cmath>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))

struct gr_shim_dim3 {
    unsigned int x, y, z;
};

// The running thread's coordinates, set by the harness's launch loop.
extern thread_local gr_shim_dim3 threadIdx, blockIdx, blockDim, gridDim;

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

using std::pow;
using std::rint;
using std::rintf;

#endif  // GPURESAMPLE_CUDA_SHIM_H
