// gpuresample._core: the separable loops (to be ported from grloops_*).
#include "core.hpp"

namespace gr {

void bind_separable(nanobind::module_& m)
{
    (void)m;
}

}  // namespace gr
