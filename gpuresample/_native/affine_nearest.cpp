// gpuresample._core: the oblique nearest loops (affine.hpp): a copy of the source's elements
// (same dtype), or their values through float64 into another output dtype.
#include "affine.hpp"

namespace gr {
namespace affine {
namespace {

#ifdef GR_AFFINE_AVX2
// Nearest: gr_affine_nearest_offset<true> of eight inner voxels J2 = j2 .. j2 + 7 (rows
// truncations of u + 0.5), into o.
GR_AVX2 void nearest_offsets8(const Block& b, const double* p, gr_offset j2, std::int32_t* o)
{
    const __m256d half = _mm256_set1_pd(0.5);
    __m256i sum = _mm256_setzero_si256();
    for (int i = 0; i < 3; ++i) {
        const Lanes8 u = coordinate8(b, i, p[i], j2);
        sum = _mm256_add_epi32(sum, offsets8(b, i, rows8({_mm256_add_pd(u.lo, half), _mm256_add_pd(u.hi, half)})));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), sum);
}
#endif  // AVX2

// The inner voxels of a nearest line: their offsets eight at a time where AVX2 and 32-bit
// offsets allow (then load(target, offset) per voxel; source s, prefetched ahead as for
// linear), the rest one by one.
template <typename T, typename Load>
struct NearestInner {
    const T* s;
    Load load;

    template <typename Out, typename Voxel>
    void operator()(const Block& b, const double* p, Out* line, gr_offset from, gr_offset to, const Voxel& voxel) const
    {
#ifdef GR_AFFINE_AVX2
        if (have_avx2() && b.offsets_32) {
            alignas(32) std::int32_t o[8];
            for (; from + 8 <= to; from += 8) {
                prefetch_ahead(s, b, p, from);
                nearest_offsets8(b, p, from, o);
                Out* target = line + from * b.out_s[2];
                for (int k = 0; k < 8; ++k, target += b.out_s[2]) {
                    load(target, static_cast<gr_offset>(o[k]));
                }
            }
        }
#endif
        VoxelByVoxel{}(b, p, line, from, to, voxel);
    }
};

template <typename T, typename Load>
NearestInner<T, Load> nearest_inner(const T* s, const Load& load)
{
    return NearestInner<T, Load>{s, load};
}

template <typename T>
void nearest_copy(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    const T* s = static_cast<const T*>(src.data());
    for_each_voxel_direct(
        block, static_cast<T*>(out.data()), threads,
        [s](T* target, const double* u, const Block& b, auto inner) {
            *target = s[gr_affine_nearest_offset<decltype(inner)::value>(b.source, u)];
        },
        nearest_inner(s, [s](T* target, gr_offset offset) { *target = s[offset]; }));
}

// The source's values through float64 as T (float32 or float64: what store() writes there
// unrounded), into the output (T its dtype) or, Buffered, into line buffers that finish stores
// into any output dtype.
template <typename In, typename T, bool Buffered>
void nearest_values(const Volume& src, const Block& block, const Output& out, LineStore<T> finish, const Rounding& r,
                    std::int64_t threads)
{
    const In* s = static_cast<const In*>(src.data());
    each_voxel<T, Buffered>(
        block, out.data(), finish, r, threads,
        [s](T* target, const double* u, const Block& b, auto inner) {
            const gr_offset offset = gr_affine_nearest_offset<decltype(inner)::value>(b.source, u);
            *target = static_cast<T>(gr_load<double>(s + offset));
        },
        nearest_inner(s, [s](T* target, gr_offset offset) { *target = static_cast<T>(gr_load<double>(s + offset)); }));
}

// Into float32 and float64 outputs without rounding directly; into others through float64
// line buffers.
template <typename In>
void nearest_convert(const Volume& src, const Block& block, const Output& out, const Rounding& r,
                     std::int64_t threads)
{
    if (!r.round && out.dtype() == nb::dtype<float>()) {
        nearest_values<In, float, false>(src, block, out, nullptr, r, threads);
        return;
    }
    const LineStore<double> finish = finish_of<double>("affine_nearest", out, r);
    if (finish != nullptr) {
        nearest_values<In, double, true>(src, block, out, finish, r, threads);
    } else {
        nearest_values<In, double, false>(src, block, out, nullptr, r, threads);
    }
}

}  // namespace

void nearest_loops(const Volume& src, const Block& block, const Output& out, bool same, const Rounding& r,
                   std::int64_t threads)
{
    bool ok;
    if (same) {
        if (!same_dtype(src, out)) {
            refuse("affine_nearest", "same_dtype asks for an output of the source's dtype");
        }
        ok = visit_dtype(src.dtype(), [&](auto t) { nearest_copy<typename decltype(t)::type>(src, block, out, threads); });
    } else {
        ok = visit_dtype(src.dtype(), [&](auto in) { nearest_convert<typename decltype(in)::type>(src, block, out, r, threads); });
    }
    if (!ok) {
        refuse("affine_nearest", "no loop reads this source dtype");
    }
}

}  // namespace affine
}  // namespace gr
