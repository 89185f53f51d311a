// gpuresample._core: the oblique cubic B-spline loops over prefiltered coefficients and the
// oblique label loops (affine.hpp).
#include "affine.hpp"

namespace gr {
namespace affine {
namespace {

// Into the output (its dtype Work) or, Buffered, into line buffers that finish stores into any
// output dtype. (A loop's lambdas are its own, so each is inlined into one loop.)
template <typename Work, bool Buffered>
void cubic_into(const Volume& coef, const Block& block, const Output& out, LineStore<Work> finish,
                const Rounding& r, std::int64_t threads)
{
    const Work* s = static_cast<const Work*>(coef.data());
    each_voxel<Work, Buffered>(block, out.data(), finish, r, threads,
                               [s](Work* target, const double* u, const Block& b, auto) {
                                   *target = gr_affine_cubic_sample<Work>(s, b.source, b.pad, u);
                               },
                               VoxelByVoxel{});
}

template <typename Work>
void cubic(const Volume& coef, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    const LineStore<Work> finish = finish_of<Work>("affine_cubic", out, r);
    if (finish != nullptr) {
        cubic_into<Work, true>(coef, block, out, finish, r, threads);
    } else {
        cubic_into<Work, false>(coef, block, out, nullptr, r, threads);
    }
}

template <typename T>
void label(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    const T* s = static_cast<const T*>(src.data());
    for_each_voxel_direct(block, static_cast<T*>(out.data()), threads,
                          [s](T* target, const double* u, const Block& b, auto inner) {
                              *target = gr_affine_label_sample<decltype(inner)::value>(s, b.source, u);
                          });
}

}  // namespace

void cubic_loops(const Volume& coef, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    const auto d = coef.dtype();
    if (d == nb::dtype<float>()) {
        cubic<float>(coef, block, out, r, threads);
    } else if (d == nb::dtype<double>()) {
        cubic<double>(coef, block, out, r, threads);
    } else {
        refuse("affine_cubic", "the coefficients must be float32 or float64");
    }
}

void label_loops(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    if (!same_dtype(src, out)) {
        refuse("affine_label", "labels are written in the source's dtype");
    }
    const auto d = src.dtype();
    if (d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float) && d.bits == 16 && d.lanes == 1) {
        label<gr_half>(src, block, out, threads);  // float16 labels compare by value (gr_label_equal)
    } else if (!visit_dtype(d, [&](auto t) { label<typename decltype(t)::type>(src, block, out, threads); })) {
        refuse("affine_label", "no loop reads this source dtype");
    }
}

}  // namespace affine
}  // namespace gr
