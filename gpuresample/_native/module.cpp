// gpuresample._core: the module the CPU backend calls (gpuresample/backends/_native.py).
#include "core.hpp"

NB_MODULE(_core, m)
{
    m.doc() = "gpuresample's CPU loops (C++17, the arithmetic of kernels/*.cuh)";
    gr::bind_separable(m);
    gr::bind_recursion(m);
    gr::bind_affine(m);
}
