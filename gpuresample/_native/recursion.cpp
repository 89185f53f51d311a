// gpuresample._core: the recursion loops (to be ported from grloops_*).
#include "core.hpp"

namespace gr {

void bind_recursion(nanobind::module_& m)
{
    (void)m;
}

}  // namespace gr
