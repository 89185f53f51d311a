// gpuresample._core: the arithmetic headers in kernels/ for the oblique loops. gr_host.cuh
// (included by gpuresample.cuh) defines the CUDA qualifiers and built-ins away on the host;
// the launch coordinates below are referenced only by gpuresample.cuh's launch-geometry
// helpers, which only kernels call.
#ifndef GPURESAMPLE_AFFINE_HOST_HPP
#define GPURESAMPLE_AFFINE_HOST_HPP

namespace gr::host {
struct dim3 {
    unsigned int x, y, z;
};
}  // namespace gr::host

inline constexpr gr::host::dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};

#include "gpuresample.cuh"
#include "gr_affine.cuh"

#endif  // GPURESAMPLE_AFFINE_HOST_HPP
