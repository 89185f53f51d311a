// Stand-ins for the CUDA launch built-ins kernels/*.cu use, so g++ compiles the same sources
// as plain C++ (tests/harness). Kernels run one thread at a time over their launch grid:
// sound because they use no shared memory, barriers or warp-level operations. The
// qualifiers and built-ins of inline functions (__device__, __ldg, ...) are defined by
// kernels/gr_host.cuh, which every kernel header includes.

#ifndef GPURESAMPLE_CUDA_SHIM_H
#define GPURESAMPLE_CUDA_SHIM_H

#define __global__

struct gr_shim_dim3 {
    unsigned int x, y, z;
};

// The running thread's coordinates, set by the harness's launch loop.
extern thread_local gr_shim_dim3 threadIdx, blockIdx, blockDim, gridDim;

#endif  // GPURESAMPLE_CUDA_SHIM_H
