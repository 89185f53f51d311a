// gpuresample._core: the affine loops (to be ported from grloops_*).
#include "core.hpp"

namespace gr {

void bind_affine(nanobind::module_& m)
{
    (void)m;
}

}  // namespace gr
