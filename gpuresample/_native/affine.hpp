// gpuresample._core: the CPU loops of oblique targets (docs/design.md §1 "Onto another grid",
// §2 last paragraph), what their translation units share. The per-voxel body (position, band
// test, taps, weights, sums) is kernels/gr_affine.cuh's, the same text the CUDA kernels in
// kernels/affine.cu run; these files hold the CPU loop order only: blocks of output lines across
// threads (gr::parallel_for), the line start hoisted out of output axis 2, the inner voxels of a
// line without the band test and the clamping (linear: in runs, taps first, then sums), the GIL
// released.
//
// affine.cpp checks the arguments, binds the functions and stores results in the output's
// dtype (line_store); affine_nearest.cpp, affine_linear.cpp and affine_cubic_label.cpp hold the
// loops of each interpolation, apart so that a build compiles them in parallel. A loop is
// built once per source dtype, not per source and output dtype: it computes in its working
// dtype and writes into the output where that is the output's dtype as it is, else a line at
// a time into a buffer that line_store then stores into the output, each value through the
// same store() as voxel by voxel would (the same bits).
//
// The functions take the arguments of the oblique loops the CPU backend calls
// (gpuresample/backends/cpu/_affine.py): a source block (3-D, any strides), the 3x4 matrix,
// the whole source's shape, the block's first rows (and cubic pads), the block's first
// output row j0_start, the band's slack, the fill and the output block (3-D, any strides).
#ifndef GPURESAMPLE_AFFINE_HPP
#define GPURESAMPLE_AFFINE_HPP

#include "gr_affine.cuh"
#include "core.hpp"

#include <nanobind/ndarray.h>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace nb = nanobind;

namespace gr {
namespace affine {

// ---------------------------------------------------------------------------------------
// Arguments, checked at the border
// ---------------------------------------------------------------------------------------

using Volume = nb::ndarray<nb::ro, nb::ndim<3>, nb::device::cpu>;
using Output = nb::ndarray<nb::ndim<3>, nb::device::cpu>;
using Matrix = nb::ndarray<const double, nb::shape<3, 4>, nb::c_contig, nb::device::cpu>;
using Triple = nb::ndarray<const std::int64_t, nb::shape<3>, nb::c_contig, nb::device::cpu>;

// What every oblique call shares, copied into each item so the compiler keeps it in
// registers (stores into a char-typed output could otherwise alias it).
struct Block {
    double m[12];
    gr_affine_source source;
    gr_affine_band band;
    gr_offset pad[3];
    gr_offset j0_start;
    gr_offset out_n[3], out_s[3];
    double fill;
    // The block's shape, and whether every element offset in it fits a 32-bit integer (the
    // vector loops' offsets; see fits_32_bits).
    gr_offset rows[3];
    bool offsets_32;
};

// A result written to Out: through float64, rint then clipped to [lo, hi] where asked
// (integer outputs); without rounding a float result is stored as it is (float -> double ->
// float is the identity).
struct Rounding {
    bool round;
    double lo, hi;
};

// Stores one line of a loop's results (values[j2], j2 in [0, n2)) into the output line that
// starts at element `offset` of `out` (element stride o2), each through store(); the fill
// instead where outside[j2] (read for j2 outside [inner_start, inner_stop) only).
template <typename Work>
using LineStore = void (*)(const Work* values, const std::uint8_t* outside, gr_offset inner_start,
                           gr_offset inner_stop, gr_offset n2, void* out, gr_offset offset, gr_offset o2, double fill,
                           const Rounding& r);

// The LineStore of Work results into an output of `dtype`, rounded or not; nullptr where no
// loop writes that dtype (affine.cpp).
template <typename Work>
LineStore<Work> line_store(nb::dlpack::dtype dtype, bool round);

// The loops of each interpolation over a checked block, per dtype; each refuses the dtypes it
// has no loop for. Called with the GIL released.
void nearest_loops(const Volume& src, const Block& block, const Output& out, bool same, const Rounding& r,
                   std::int64_t threads);
void linear_loops(const Volume& src, const Block& block, const Output& out, const Rounding& r, std::int64_t threads);
void cubic_loops(const Volume& coef, const Block& block, const Output& out, const Rounding& r, std::int64_t threads);
void label_loops(const Volume& src, const Block& block, const Output& out, std::int64_t threads);

namespace {

template <typename T>
struct tag {
    using type = T;
};

// fn(tag<T>) for the element type of `dtype`: the integer and float dtypes the loops read and
// write (bool as uint8; float16 reaches them as uint16 bit patterns or as float32, and as
// itself for labels: affine_label). False
// for any other dtype.
template <typename Fn>
bool visit_dtype(nb::dlpack::dtype dtype, Fn&& fn)
{
    using code = nb::dlpack::dtype_code;
    if (dtype.lanes != 1) {
        return false;
    }
    const auto kind = static_cast<code>(dtype.code);
    switch (dtype.bits) {
    case 8:
        if (kind == code::UInt || kind == code::Bool) return fn(tag<std::uint8_t>{}), true;
        if (kind == code::Int) return fn(tag<std::int8_t>{}), true;
        return false;
    case 16:
        if (kind == code::UInt) return fn(tag<std::uint16_t>{}), true;
        if (kind == code::Int) return fn(tag<std::int16_t>{}), true;
        return false;
    case 32:
        if (kind == code::UInt) return fn(tag<std::uint32_t>{}), true;
        if (kind == code::Int) return fn(tag<std::int32_t>{}), true;
        if (kind == code::Float) return fn(tag<float>{}), true;
        return false;
    case 64:
        if (kind == code::UInt) return fn(tag<std::uint64_t>{}), true;
        if (kind == code::Int) return fn(tag<std::int64_t>{}), true;
        if (kind == code::Float) return fn(tag<double>{}), true;
        return false;
    default:
        return false;
    }
}

[[noreturn, maybe_unused]] void refuse(const char* function, const std::string& why)
{
    throw nb::type_error((std::string("gpuresample._core.") + function + ": " + why).c_str());
}

// A result into Out as Rounding says (with rounding where Round).
template <bool Round, typename Out, typename Work>
__forceinline__ void store(Out* target, Work acc, const Rounding& r)
{
    if constexpr (Round) {
        double value = std::rint(static_cast<double>(acc));
        value = value < r.lo ? r.lo : (value > r.hi ? r.hi : value);
        *target = static_cast<Out>(value);
    } else if constexpr (std::is_same_v<Out, Work>) {
        *target = acc;
    } else {
        *target = static_cast<Out>(static_cast<double>(acc));
    }
}

// The working dtype: float32 for float32 input, float64 otherwise (design.md §2).
template <typename In>
using work_of = std::conditional_t<std::is_same_v<In, float>, float, double>;

// The LineStore that takes a loop's Work results into `out`: nullptr where the loop writes
// into `out` itself (its dtype is Work, no rounding); refuses an output dtype no loop writes.
template <typename Work>
LineStore<Work> finish_of(const char* function, const Output& out, const Rounding& r)
{
    if (!r.round && out.dtype() == nb::dtype<Work>()) {
        return nullptr;
    }
    const LineStore<Work> finish = line_store<Work>(out.dtype(), r.round);
    if (finish == nullptr) {
        refuse(function, "no loop writes this output dtype");
    }
    return finish;
}

[[maybe_unused]] bool same_dtype(const Volume& a, const Output& b)
{
    const auto x = a.dtype(), y = b.dtype();
    const auto code = [](nb::dlpack::dtype d) {  // bool and uint8 are one element type here
        return d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bool)
                   ? static_cast<std::uint8_t>(nb::dlpack::dtype_code::UInt)
                   : d.code;
    };
    return code(x) == code(y) && x.bits == y.bits && x.lanes == y.lanes;
}

// ---------------------------------------------------------------------------------------
// The loop order: blocks of output lines (j0, j1 .. j1 + rows) in items across threads;
// within an item, each line (j0, j1) with its start computed once, voxels j2 along it. Along a
// line, the voxels whose position lies well inside [0, n_i - 1) on every axis (a per-line estimate)
// skip the band test and the clamping, which would change nothing there.
// ---------------------------------------------------------------------------------------

// Positions at least this far (source voxels) inside [0, n - 1] by the per-line estimate
// count as inner; the estimate's rounding is ~1e-13 voxels, far below.
constexpr double interior_margin = 1e-6;

// [start, stop) narrowed to the j where offset + slope * j lies in
// [interior_margin, n - 1 - interior_margin] (estimated; the margin covers its rounding).
inline void narrow_to_interior(double offset, double slope, gr_offset n, gr_offset& start, gr_offset& stop)
{
    const double lo_u = interior_margin;
    const double hi_u = (static_cast<double>(n) - 1.0) - interior_margin;
    if (slope == 0.0) {
        if (!(lo_u <= offset && offset <= hi_u)) {
            stop = start;
        }
        return;
    }
    // limited to [-1, stop + 1] before converting, so a tiny slope cannot overflow an integer
    const double limit = static_cast<double>(stop) + 1.0;
    const double a = std::min(std::max((lo_u - offset) / slope, -1.0), limit);
    const double b = std::min(std::max((hi_u - offset) / slope, -1.0), limit);
    const gr_offset first = std::max(start, static_cast<gr_offset>(std::ceil(std::min(a, b))));
    const gr_offset last = std::min(stop, static_cast<gr_offset>(std::floor(std::max(a, b))) + 1);
    if (first < last) {
        start = first;
        stop = last;
    } else {
        stop = start;
    }
}

// The inner voxels of a line one by one (what each_voxel does unless told otherwise).
struct VoxelByVoxel {
    template <typename Out, typename Voxel>
    void operator()(const Block& b, const double* p, Out* line, gr_offset from, gr_offset to, const Voxel& voxel) const
    {
        for (gr_offset j2 = from; j2 < to; ++j2) {
            double u[3];
            gr_affine_position(b.m, p, static_cast<double>(j2), u);
            voxel(line + j2 * b.out_s[2], u, b, std::true_type{});
        }
    }
};

// The fill as an output element (float16 labels: the caller passes a float16 value, exact
// through float32).
template <typename Out>
Out fill_value(double fill)
{
    return static_cast<Out>(fill);
}
template <>
[[maybe_unused]] gr_half fill_value<gr_half>(double fill)
{
    return gr_float_to_half(static_cast<float>(fill));
}

// Output voxels of one work item (rows j1 of one output plane j0): a few milliseconds even for
// cubic samples, so a stop on Ctrl-C comes soon (gr::parallel_for).
constexpr std::int64_t affine_item_voxels = 1 << 16;

// A copy of `block` whose output lines are a line buffer (element stride 1).
inline Block buffered(const Block& block)
{
    Block b = block;
    b.out_s[2] = 1;
    return b;
}

// voxel(target, u, b, inner) for every output voxel inside the band (the fill elsewhere);
// inner(b, p, line, from, to, voxel) takes the inner voxels of each line. T is the element
// written: without Buffered the output's (out is T*), with it the loop's working dtype, into a
// line buffer per thread that finish stores into the output after each line.
template <typename T, bool Buffered, typename Voxel, typename Inner>
void each_voxel(const Block& block, void* out, LineStore<T> finish, const Rounding& r, std::int64_t threads,
                const Voxel& voxel, const Inner& inner)
{
    const std::int64_t rows = rows_per_item(block.out_n[1], block.out_n[2], affine_item_voxels);
    const std::int64_t per_plane = (block.out_n[1] + rows - 1) / rows;
    const std::int64_t items = block.out_n[0] * per_plane;
    // a line of results and of flags per thread (parallel_for's ids: below min(threads, items))
    const std::int64_t room = Buffered ? (block.out_n[2] + 63) / 64 * 64 : 0;
    const std::int64_t buffers = Buffered ? std::max<std::int64_t>(std::min(threads, items), 1) : 0;
    std::vector<T> values(static_cast<std::size_t>(room * buffers));
    std::vector<std::uint8_t> outside(static_cast<std::size_t>(room * buffers));
    const Block lines = Buffered ? buffered(block) : block;
    parallel_for(items, threads, [&](std::int64_t item, int id) {
        const Block b = lines;
        const gr_offset j0 = item / per_plane, j1_start = item % per_plane * rows;
        const gr_offset j1_stop = std::min<gr_offset>(j1_start + rows, b.out_n[1]);
        [[maybe_unused]] const T fill = fill_value<T>(b.fill);
        const double J0 = static_cast<double>(j0 + b.j0_start);
        const gr_offset n2 = b.out_n[2], o2 = b.out_s[2];
        T* const buffer = Buffered ? values.data() + id * room : nullptr;
        std::uint8_t* const flags = Buffered ? outside.data() + id * room : nullptr;
        for (gr_offset j1 = j1_start; j1 < j1_stop; ++j1) {
            double p[3];
            gr_affine_line_start(b.m, J0, static_cast<double>(j1), p);
            const gr_offset offset = j0 * b.out_s[0] + j1 * b.out_s[1];
            T* line = Buffered ? buffer : static_cast<T*>(out) + offset;
            gr_offset inner_start = 0, inner_stop = n2;
            for (int i = 0; i < 3 && inner_start < inner_stop; ++i) {
                narrow_to_interior(p[i] + b.m[4 * i + 3], b.m[4 * i + 2], b.source.n[i], inner_start, inner_stop);
            }
            if (inner_start >= inner_stop) {
                inner_start = inner_stop = n2;
            }
            const auto edge = [&](gr_offset from, gr_offset to) {
                for (gr_offset j2 = from; j2 < to; ++j2) {
                    double u[3];
                    gr_affine_position(b.m, p, static_cast<double>(j2), u);
                    T* target = line + j2 * o2;
                    if (!gr_affine_inside(b.band, u)) {
                        if constexpr (Buffered) {
                            flags[j2] = 1;  // finish writes the fill
                        } else {
                            *target = fill;
                        }
                        continue;
                    }
                    if constexpr (Buffered) {
                        flags[j2] = 0;
                    }
                    voxel(target, u, b, std::false_type{});
                }
            };
            edge(0, inner_start);
            inner(b, p, line, inner_start, inner_stop, voxel);
            edge(inner_stop, n2);
            if constexpr (Buffered) {
                finish(buffer, flags, inner_start, inner_stop, n2, out, offset, block.out_s[2], b.fill, r);
            }
        }
    });
}

// The loop into the output itself (T: the output's element).
template <typename T, typename Voxel, typename Inner = VoxelByVoxel>
void for_each_voxel_direct(const Block& block, T* out, std::int64_t threads, const Voxel& voxel,
                           const Inner& inner = {})
{
    each_voxel<T, false>(block, out, nullptr, Rounding{}, threads, voxel, inner);
}

// ---------------------------------------------------------------------------------------
// The inner voxels of a line eight at a time with AVX2 (x86-64 Linux, GCC or Clang, where
// the CPU has it, as for GR_CLONES in core.hpp):
// the same IEEE operations in the same order as gr_affine.cuh's per-voxel body, lane by
// lane. Positions ((p + m2 * J2) + m3) in double; rows by truncation (the positions are
// inner: >= 0), fractions u - a, weights (1 - frac, frac) rounded to float; a tap of zero
// weight is not added (the sum keeps its value: a blend instead of a branch, the same bits).
// Element offsets in 32-bit lanes (only where Block::offsets_32 says they fit). A load
// never reaches outside the block: a zero-weight tap is read at a row the scalar body reads
// too, except the pair loads below.
// ---------------------------------------------------------------------------------------

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define GR_AFFINE_AVX2 1
#define GR_AVX2 __attribute__((target("avx2")))
#define GR_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

[[maybe_unused]] bool have_avx2()
{
    static const bool has = __builtin_cpu_supports("avx2") != 0;
    return has;
}

// Eight voxels' positions along one axis, J2 = j2 .. j2 + 7 (two halves of four doubles).
struct Lanes8 {
    __m256d lo, hi;
};

GR_AVX2_INLINE Lanes8 coordinate8(const Block& b, int i, double p, gr_offset j2)
{
    const __m256d J_lo = _mm256_add_pd(_mm256_set1_pd(static_cast<double>(j2)), _mm256_set_pd(3.0, 2.0, 1.0, 0.0));
    const __m256d J_hi = _mm256_add_pd(J_lo, _mm256_set1_pd(4.0));  // integers: exact
    const __m256d m2 = _mm256_set1_pd(b.m[4 * i + 2]), m3 = _mm256_set1_pd(b.m[4 * i + 3]);
    const __m256d start = _mm256_set1_pd(p);
    return {_mm256_add_pd(_mm256_add_pd(start, _mm256_mul_pd(m2, J_lo)), m3),
            _mm256_add_pd(_mm256_add_pd(start, _mm256_mul_pd(m2, J_hi)), m3)};
}

// The eight rows (truncations: the positions are >= 0) as 32-bit lanes.
GR_AVX2_INLINE __m256i rows8(const Lanes8& u)
{
    return _mm256_set_m128i(_mm256_cvttpd_epi32(u.hi), _mm256_cvttpd_epi32(u.lo));
}

// Element offsets (row - first) * stride of eight rows.
GR_AVX2_INLINE __m256i offsets8(const Block& b, int i, __m256i rows)
{
    return _mm256_mullo_epi32(_mm256_sub_epi32(rows, _mm256_set1_epi32(static_cast<std::int32_t>(b.source.first[i]))),
                              _mm256_set1_epi32(static_cast<std::int32_t>(b.source.stride[i])));
}

// A row of the block for a prefetch hint only: clamped so that it and the next row lie in
// the block.
inline gr_offset prefetch_row(const Block& b, int i, double u)
{
    const gr_offset last = std::max<gr_offset>(b.rows[i] - 2, 0);  // in the block
    const double row = u - static_cast<double>(b.source.first[i]);
    return row > 0.0 ? (row < static_cast<double>(last) ? static_cast<gr_offset>(row) : last) : 0;
}

// Lines this far ahead (along output axis 1) are prefetched: the rows a line reads are
// mostly its neighbour's, shifted by about a row, so the new ones come from the next plane
// or from memory, once, ahead of their use.
constexpr double prefetch_lines = 2.0;

// Hints for voxels j2 and j2 + 4 of line j1 + prefetch_lines: their element at rows a and
// a + 1 along axes 0 and 1 (the taps linear reads; nearest reads one of them).
template <typename T>
inline void prefetch_ahead(const T* s, const Block& b, const double* p, gr_offset j2)
{
    // the next rows where the block has them
    const gr_offset stride0 = b.rows[0] > 1 ? b.source.stride[0] : 0, stride1 = b.rows[1] > 1 ? b.source.stride[1] : 0;
    for (int lane = 0; lane < 8; lane += 4) {
        gr_offset offset = 0;
        for (int i = 0; i < 3; ++i) {
            const double u = (p[i] + prefetch_lines * b.m[4 * i + 1]) + b.m[4 * i + 2] * static_cast<double>(j2 + lane) +
                             b.m[4 * i + 3];
            offset += prefetch_row(b, i, u) * b.source.stride[i];
        }
        _mm_prefetch(reinterpret_cast<const char*>(s + offset), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(s + offset + stride1), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(s + offset + stride0), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(s + offset + stride0 + stride1), _MM_HINT_T0);
    }
}
#endif  // AVX2

}  // namespace
}  // namespace affine
}  // namespace gr

#endif  // GPURESAMPLE_AFFINE_HPP
