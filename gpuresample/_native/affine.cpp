// gpuresample._core: the CPU loops of oblique targets (docs/design.md §1 "Onto another grid",
// §2 last paragraph). The per-voxel body (position, band test, taps, weights, sums) is
// kernels/gr_affine.cuh's, the same text the CUDA kernels in kernels/affine.cu run; this
// file holds the CPU loop order only: blocks of output lines across threads (gr::parallel_for), the
// line start hoisted out of output axis 2, the inner voxels of a line without the band test
// and the clamping (linear: in runs, taps first, then sums), the GIL released.
//
// The functions take the arguments of the oblique loops the CPU backend calls
// (gpuresample/backends/_cpu_affine.py): a source block (3-D, any strides), the 3x4 matrix,
// the whole source's shape, the block's first rows (and cubic pads), the block's first
// output row j0_start, the band's slack, the fill and the output block (3-D, any strides).
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

namespace nb = nanobind;
using namespace nb::literals;

namespace gr {
namespace {

// ---------------------------------------------------------------------------------------
// Arguments, checked at the border
// ---------------------------------------------------------------------------------------

using Volume = nb::ndarray<nb::ro, nb::ndim<3>, nb::device::cpu>;
using Output = nb::ndarray<nb::ndim<3>, nb::device::cpu>;
using Matrix = nb::ndarray<const double, nb::shape<3, 4>, nb::c_contig, nb::device::cpu>;
using Triple = nb::ndarray<const std::int64_t, nb::shape<3>, nb::c_contig, nb::device::cpu>;

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

[[noreturn]] void refuse(const char* function, const std::string& why)
{
    throw nb::type_error((std::string("gpuresample._core.") + function + ": " + why).c_str());
}

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

// Whether the element offsets of a block (any tap: rows in [0, rows_i) per axis) and the
// global rows of the source fit a signed 32-bit integer: the vector loops' integer lanes.
bool fits_32_bits(const Block& b)
{
    constexpr gr_offset limit = std::numeric_limits<std::int32_t>::max();
    gr_offset span = 0;
    for (int i = 0; i < 3; ++i) {
        const gr_offset stride = b.source.stride[i] < 0 ? -b.source.stride[i] : b.source.stride[i];
        if (b.source.n[i] > limit || b.source.first[i] > limit || b.source.first[i] < -limit || stride > limit ||
            b.rows[i] > limit) {
            return false;
        }
        span += (b.rows[i] - 1) * stride;
        if (span > limit) {
            return false;
        }
    }
    return true;
}

Block make_block(const char* function, const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                 const Triple* pads, std::int64_t j0_start, double band_atol, double fill, const Output& out)
{
    Block b{};
    for (int k = 0; k < 12; ++k) {
        b.m[k] = m.data()[k];
    }
    for (int i = 0; i < 3; ++i) {
        b.source.n[i] = n_src.data()[i];
        b.source.first[i] = first.data()[i];
        b.source.stride[i] = src.stride(i);
        b.pad[i] = pads != nullptr ? pads->data()[i] : 0;
        b.out_n[i] = static_cast<gr_offset>(out.shape(i));
        b.out_s[i] = out.stride(i);
        b.rows[i] = static_cast<gr_offset>(src.shape(i));
        if (b.source.n[i] < 1 || src.shape(i) < 1 || b.pad[i] < 0) {
            refuse(function, "empty source axis or negative pad");
        }
    }
    b.band = gr_affine_band_of(b.source.n, band_atol);
    b.j0_start = j0_start;
    b.fill = fill;
    b.offsets_32 = fits_32_bits(b);
    return b;
}

// A result written to Out: through float64, rint then clipped to [lo, hi] where asked
// (integer outputs); without rounding a float result is stored as it is (float -> double ->
// float is the identity).
struct Rounding {
    bool round;
    double lo, hi;
};

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

// fn(std::integral_constant<bool, round>).
template <typename Fn>
void with_rounding(bool round, Fn&& fn)
{
    if (round) {
        fn(std::true_type{});
    } else {
        fn(std::false_type{});
    }
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

// The inner voxels of a line one by one (what for_each_voxel does unless told otherwise).
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
gr_half fill_value<gr_half>(double fill)
{
    return gr_float_to_half(static_cast<float>(fill));
}

// Output voxels of one work item (rows j1 of one output plane j0): a few milliseconds even for
// cubic samples, so a stop on Ctrl-C comes soon (gr::parallel_for).
constexpr std::int64_t affine_item_voxels = 1 << 16;

template <typename Out, typename Voxel, typename Inner = VoxelByVoxel>
void for_each_voxel(const Block& block, Out* out, std::int64_t threads, const Voxel& voxel, const Inner& inner = {})
{
    const std::int64_t rows = rows_per_item(block.out_n[1], block.out_n[2], affine_item_voxels);
    const std::int64_t per_plane = (block.out_n[1] + rows - 1) / rows;
    parallel_for(block.out_n[0] * per_plane, threads, [&](std::int64_t item, int) {
        const Block b = block;
        const gr_offset j0 = item / per_plane, j1_start = item % per_plane * rows;
        const gr_offset j1_stop = std::min<gr_offset>(j1_start + rows, b.out_n[1]);
        const Out fill = fill_value<Out>(b.fill);
        const double J0 = static_cast<double>(j0 + b.j0_start);
        const gr_offset n2 = b.out_n[2], o2 = b.out_s[2];
        for (gr_offset j1 = j1_start; j1 < j1_stop; ++j1) {
            double p[3];
            gr_affine_line_start(b.m, J0, static_cast<double>(j1), p);
            Out* line = out + j0 * b.out_s[0] + j1 * b.out_s[1];
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
                    Out* target = line + j2 * o2;
                    if (!gr_affine_inside(b.band, u)) {
                        *target = fill;
                        continue;
                    }
                    voxel(target, u, b, std::false_type{});
                }
            };
            edge(0, inner_start);
            inner(b, p, line, inner_start, inner_stop, voxel);
            edge(inner_stop, n2);
        }
    });
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

bool have_avx2()
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

// Linear along one axis: gr_linear_taps_inner and gr_linear_weights<float> of eight
// positions. a: offsets of row a; b: of row b (a + 1, or a where the fraction is 0);
// w0, w1: the weights of a and b.
struct Linear8 {
    __m256i a, b;
    __m256 w0, w1;
};

GR_AVX2_INLINE Linear8 linear_axis8(const Block& blk, int i, double p, gr_offset j2)
{
    const Lanes8 u = coordinate8(blk, i, p, j2);
    const __m128i a_lo = _mm256_cvttpd_epi32(u.lo), a_hi = _mm256_cvttpd_epi32(u.hi);
    const __m256d frac_lo = _mm256_sub_pd(u.lo, _mm256_cvtepi32_pd(a_lo));
    const __m256d frac_hi = _mm256_sub_pd(u.hi, _mm256_cvtepi32_pd(a_hi));
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    // frac != 0 per lane, 64-bit masks narrowed to 32 bits
    const __m256i low_halves = _mm256_set_epi32(6, 4, 2, 0, 6, 4, 2, 0);
    const __m256i moved_lo = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(_mm256_cmp_pd(frac_lo, zero, _CMP_NEQ_UQ)), low_halves);
    const __m256i moved_hi = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(_mm256_cmp_pd(frac_hi, zero, _CMP_NEQ_UQ)), low_halves);
    const __m256i moved = _mm256_set_m128i(_mm256_castsi256_si128(moved_hi), _mm256_castsi256_si128(moved_lo));
    Linear8 t;
    t.a = offsets8(blk, i, _mm256_set_m128i(a_hi, a_lo));
    t.b = _mm256_add_epi32(t.a, _mm256_and_si256(moved, _mm256_set1_epi32(static_cast<std::int32_t>(blk.source.stride[i]))));
    t.w0 = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(one, frac_hi)), _mm256_cvtpd_ps(_mm256_sub_pd(one, frac_lo)));
    t.w1 = _mm256_set_m128(_mm256_cvtpd_ps(frac_hi), _mm256_cvtpd_ps(frac_lo));
    return t;
}

// gr_tap_first and gr_tap_next, eight lanes.
GR_AVX2_INLINE __m256 tap_first8(__m256 w, __m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_mul_ps(w, x), zero, _mm256_cmp_ps(w, zero, _CMP_EQ_OQ));
}

GR_AVX2_INLINE __m256 tap_next8(__m256 acc, __m256 w, __m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_add_ps(acc, _mm256_mul_ps(w, x)), acc, _mm256_cmp_ps(w, zero, _CMP_EQ_OQ));
}

GR_AVX2_INLINE bool all_zero8(__m256 w)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(w, _mm256_setzero_ps(), _CMP_EQ_OQ)) == 0xff;
}

// The float pairs (x[o], x[o + 1]) at eight offsets o: first elements in `first`, second in
// `second`, lane k from offset k.
GR_AVX2_INLINE void pairs8(const float* s, __m256i offsets, __m256& first, __m256& second)
{
    alignas(32) std::int32_t o[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(o), offsets);
    const auto two = [&](int k) {
        return _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(s + o[k])),
                            reinterpret_cast<const __m64*>(s + o[k + 1]));
    };
    const __m256 q0 = _mm256_set_m128(two(2), two(0));  // pairs 0 1 | 2 3
    const __m256 q1 = _mm256_set_m128(two(6), two(4));  // pairs 4 5 | 6 7
    const __m256 even = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));  // 0 1 4 5 | 2 3 6 7
    const __m256 odd = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
    first = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
    second = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(odd), 0xD8));
}

// Whether linear_float8 may run on this block: AVX2, 32-bit offsets, float32 rows of
// contiguous elements along axis 2 that hold the whole axis (an inner position's row a + 1
// is then always in the block, so a pair load there stays inside).
bool linear_float8_fits(const Block& b)
{
    return have_avx2() && b.offsets_32 && b.source.stride[2] == 1 && b.source.first[2] == 0 &&
           b.rows[2] == b.source.n[2];
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

// Trilinear of the inner voxels [from, to) of a line, eight at a time (the scalar body takes
// the last to - from mod 8): stored at line[j2] where the line is given (float32 output,
// contiguous), else handed to put(j2, the eight results).
template <typename Put>
GR_AVX2 void linear_float8(const float* s, const Block& b, const double* p, gr_offset from, gr_offset to,
                           float* line, const Put& put)
{
    alignas(32) float results[8];
    for (gr_offset j2 = from; j2 + 8 <= to; j2 += 8) {
        prefetch_ahead(s, b, p, j2);
        const Linear8 t0 = linear_axis8(b, 0, p[0], j2);
        const Linear8 t1 = linear_axis8(b, 1, p[1], j2);
        const Linear8 t2 = linear_axis8(b, 2, p[2], j2);
        // x_abc: tap a along axis 0, b along axis 1, c along axis 2 (c read as a pair: row
        // a + 1 where b's weight is 0 is read but not added). Taps of weight 0 in every lane
        // are not read (their rows are the a rows).
        const bool zero0 = all_zero8(t0.w1), zero1 = all_zero8(t1.w1);
        __m256 x000, x001, x100, x101, x010, x011, x110, x111;
        pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.a, t1.a), t2.a), x000, x001);
        if (zero0) {
            x100 = x000;
            x101 = x001;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.b, t1.a), t2.a), x100, x101);
        }
        if (zero1) {
            x010 = x000;
            x011 = x001;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.a, t1.b), t2.a), x010, x011);
        }
        if (zero0) {
            x110 = x010;
            x111 = x011;
        } else if (zero1) {
            x110 = x100;
            x111 = x101;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.b, t1.b), t2.a), x110, x111);
        }
        // gr_affine_linear_sum: along axis 0, then axis 1, then axis 2
        const __m256 x00 = tap_next8(tap_first8(t0.w0, x000), t0.w1, x100);
        const __m256 x10 = tap_next8(tap_first8(t0.w0, x010), t0.w1, x110);
        const __m256 x01 = tap_next8(tap_first8(t0.w0, x001), t0.w1, x101);
        const __m256 x11 = tap_next8(tap_first8(t0.w0, x011), t0.w1, x111);
        const __m256 y0 = tap_next8(tap_first8(t1.w0, x00), t1.w1, x10);
        const __m256 y1 = tap_next8(tap_first8(t1.w0, x01), t1.w1, x11);
        const __m256 v = tap_next8(tap_first8(t2.w0, y0), t2.w1, y1);
        if (line != nullptr) {
            _mm256_storeu_ps(line + j2, v);
        } else {
            _mm256_store_ps(results, v);
            put(j2, results);
        }
    }
}

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

// ---------------------------------------------------------------------------------------
// The four loops, per dtype
// ---------------------------------------------------------------------------------------

template <typename T>
void nearest_copy(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    const T* s = static_cast<const T*>(src.data());
    for_each_voxel(
        block, static_cast<T*>(out.data()), threads,
        [s](T* target, const double* u, const Block& b, auto inner) {
            *target = s[gr_affine_nearest_offset<decltype(inner)::value>(b.source, u)];
        },
        nearest_inner(s, [s](T* target, gr_offset offset) { *target = s[offset]; }));
}

template <typename In, typename Out>
void nearest_convert(const Volume& src, const Block& block, const Output& out, const Rounding& r,
                     std::int64_t threads)
{
    const In* s = static_cast<const In*>(src.data());
    with_rounding(r.round, [&](auto round) {
        constexpr bool Round = decltype(round)::value;
        for_each_voxel(
            block, static_cast<Out*>(out.data()), threads,
            [s, r](Out* target, const double* u, const Block& b, auto inner) {
                store<Round>(target, gr_load<double>(s + gr_affine_nearest_offset<decltype(inner)::value>(b.source, u)), r);
            },
            nearest_inner(s, [s, r](Out* target, gr_offset offset) { store<Round>(target, gr_load<double>(s + offset), r); }));
    });
}

// The working dtype: float32 for float32 input, float64 otherwise (design.md §2).
template <typename In>
using work_of = std::conditional_t<std::is_same_v<In, float>, float, double>;

template <typename In, typename Out>
void linear(const Volume& src, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    using Work = work_of<In>;
    const In* s = static_cast<const In*>(src.data());
    with_rounding(r.round, [&](auto round) {
        constexpr bool Round = decltype(round)::value;
        // Inner voxels in runs: the taps and weights of a run first, then its sums, so that
        // the loads of many voxels are in flight at once.
        const auto runs = [s, r](const Block& b, const double* p, Out* line, gr_offset from, gr_offset to, const auto&) {
#ifdef GR_AFFINE_AVX2
            if constexpr (std::is_same_v<In, float>) {
                if (linear_float8_fits(b)) {
                    const gr_offset o2 = b.out_s[2];
                    float* contiguous = nullptr;
                    if constexpr (std::is_same_v<Out, float> && !Round) {
                        contiguous = o2 == 1 ? line : nullptr;
                    }
                    linear_float8(s, b, p, from, to, contiguous, [&](gr_offset j2, const float* values) {
                        for (int k = 0; k < 8; ++k) {
                            store<Round>(line + (j2 + k) * o2, values[k], r);
                        }
                    });
                    from += (to - from) / 8 * 8;
                }
            }
#endif
            constexpr gr_offset run = 16;
            gr_offset rows[run][6];
            Work weights[run][6];
            for (gr_offset j2 = from; j2 < to; j2 += run) {
                const gr_offset count = std::min(run, to - j2);
                for (gr_offset k = 0; k < count; ++k) {
                    double u[3];
                    gr_affine_position(b.m, p, static_cast<double>(j2 + k), u);
                    gr_affine_linear_taps<Work, true>(b.source, u, rows[k], weights[k]);
                }
                Out* target = line + j2 * b.out_s[2];
                for (gr_offset k = 0; k < count; ++k, target += b.out_s[2]) {
                    store<Round>(target, gr_affine_linear_sum(s, rows[k], weights[k]), r);
                }
            }
        };
        for_each_voxel(
            block, static_cast<Out*>(out.data()), threads,
            [s, r](Out* target, const double* u, const Block& b, auto inner) {
                store<Round>(target, gr_affine_linear_sample<Work, decltype(inner)::value>(s, b.source, u), r);
            },
            runs);
    });
}

template <typename Work, typename Out>
void cubic(const Volume& coef, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    const Work* s = static_cast<const Work*>(coef.data());
    with_rounding(r.round, [&](auto round) {
        for_each_voxel(block, static_cast<Out*>(out.data()), threads, [s, r](Out* target, const double* u, const Block& b, auto) {
            store<decltype(round)::value>(target, gr_affine_cubic_sample<Work>(s, b.source, b.pad, u), r);
        });
    });
}

template <typename T>
void label(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    const T* s = static_cast<const T*>(src.data());
    for_each_voxel(block, static_cast<T*>(out.data()), threads, [s](T* target, const double* u, const Block& b, auto inner) {
        *target = gr_affine_label_sample<decltype(inner)::value>(s, b.source, u);
    });
}

bool same_dtype(const Volume& a, const Output& b)
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
// Entry points (the GIL is released while they run)
// ---------------------------------------------------------------------------------------

void affine_nearest(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                    std::int64_t j0_start, double band_atol, double fill, const Output& out, bool same,
                    bool round_to_int, double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_nearest", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    threads = default_threads(threads);
    bool ok;
    if (same) {
        if (!same_dtype(src, out)) {
            refuse("affine_nearest", "same_dtype asks for an output of the source's dtype");
        }
        ok = visit_dtype(src.dtype(), [&](auto t) { nearest_copy<typename decltype(t)::type>(src, block, out, threads); });
    } else {
        const Rounding r{round_to_int, lo, hi};
        ok = visit_dtype(src.dtype(), [&](auto in) {
            using In = typename decltype(in)::type;
            if (!visit_dtype(out.dtype(), [&](auto o) {
                    nearest_convert<In, typename decltype(o)::type>(src, block, out, r, threads);
                })) {
                refuse("affine_nearest", "no loop writes this output dtype");
            }
        });
    }
    if (!ok) {
        refuse("affine_nearest", "no loop reads this source dtype");
    }
}

void affine_linear(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                   std::int64_t j0_start, double band_atol, double fill, const Output& out, bool round_to_int,
                   double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_linear", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    threads = default_threads(threads);
    const Rounding r{round_to_int, lo, hi};
    const bool ok = visit_dtype(src.dtype(), [&](auto in) {
        using In = typename decltype(in)::type;
        if (!visit_dtype(out.dtype(), [&](auto o) { linear<In, typename decltype(o)::type>(src, block, out, r, threads); })) {
            refuse("affine_linear", "no loop writes this output dtype");
        }
    });
    if (!ok) {
        refuse("affine_linear", "no loop reads this source dtype");
    }
}

void affine_cubic(const Volume& coef, const Matrix& m, const Triple& n_src, const Triple& first, const Triple& pads,
                  std::int64_t j0_start, double band_atol, double fill, const Output& out, bool round_to_int,
                  double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_cubic", coef, m, n_src, first, &pads, j0_start, band_atol, fill, out);
    threads = default_threads(threads);
    const Rounding r{round_to_int, lo, hi};
    const auto write = [&](auto work) {
        using Work = typename decltype(work)::type;
        if (!visit_dtype(out.dtype(), [&](auto o) { cubic<Work, typename decltype(o)::type>(coef, block, out, r, threads); })) {
            refuse("affine_cubic", "no loop writes this output dtype");
        }
    };
    const auto d = coef.dtype();
    if (d == nb::dtype<float>()) {
        write(tag<float>{});
    } else if (d == nb::dtype<double>()) {
        write(tag<double>{});
    } else {
        refuse("affine_cubic", "the coefficients must be float32 or float64");
    }
}

void affine_label(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                  std::int64_t j0_start, double band_atol, double fill, const Output& out, std::int64_t threads)
{
    const Block block = make_block("affine_label", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    threads = default_threads(threads);
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

}  // namespace

void bind_affine(nb::module_& m)
{
    using release = nb::call_guard<nb::gil_scoped_release>;
#define GR_THREADS_DOC " threads: how many (0: the cores this process may run on)."
    m.def(
        "affine_nearest",
        [](const Volume& src, const Matrix& mat, const Triple& n_src, const Triple& first, std::int64_t j0_start,
           double band_atol, double fill, const Output& out, bool same, bool round_to_int, double lo, double hi,
           std::int64_t threads) {
            affine_nearest(src, mat, n_src, first, j0_start, band_atol, fill, out, same, round_to_int, lo, hi, threads);
        },
        "src"_a, "m"_a, "n_src"_a, "first"_a, "j0_start"_a, "band_atol"_a, "fill"_a, "out"_a, "same_dtype"_a,
        "round_to_int"_a, "lo"_a, "hi"_a, nb::kw_only(), "threads"_a = 0, release(),
        "Oblique nearest: the source voxel at floor(u + 0.5) per axis (clamped); values copied as "
                     "they are when same_dtype, else through float64 (rint and clip to [lo, hi] when "
                     "round_to_int)." GR_THREADS_DOC);
    m.def(
        "affine_linear",
        [](const Volume& src, const Matrix& mat, const Triple& n_src, const Triple& first, std::int64_t j0_start,
           double band_atol, double fill, const Output& out, bool round_to_int, double lo, double hi, nb::handle,
           std::int64_t threads) {
            affine_linear(src, mat, n_src, first, j0_start, band_atol, fill, out, round_to_int, lo, hi, threads);
        },
        "src"_a, "m"_a, "n_src"_a, "first"_a, "j0_start"_a, "band_atol"_a, "fill"_a, "out"_a, "round_to_int"_a,
        "lo"_a, "hi"_a, "weights"_a = nb::none(), nb::kw_only(), "threads"_a = 0, release(),
        "Oblique trilinear over the 2x2x2 taps (weights is accepted and unused)." GR_THREADS_DOC);
    m.def(
        "affine_cubic",
        [](const Volume& coef, const Matrix& mat, const Triple& n_src, const Triple& first, const Triple& pads,
           std::int64_t j0_start, double band_atol, double fill, const Output& out, bool round_to_int, double lo,
           double hi, nb::handle, nb::handle, std::int64_t threads) {
            affine_cubic(coef, mat, n_src, first, pads, j0_start, band_atol, fill, out, round_to_int, lo, hi, threads);
        },
        "coef"_a, "m"_a, "n_src"_a, "first"_a, "pads"_a, "j0_start"_a, "band_atol"_a, "fill"_a, "out"_a,
        "round_to_int"_a, "lo"_a, "hi"_a, "weights"_a = nb::none(), "taps"_a = nb::none(), nb::kw_only(),
        "threads"_a = 0, release(),
        "Oblique cubic B-spline over the block's float32/float64 prefiltered coefficients (weights "
                     "and taps are accepted and unused)." GR_THREADS_DOC);
    m.def(
        "affine_label",
        [](const Volume& src, const Matrix& mat, const Triple& n_src, const Triple& first, std::int64_t j0_start,
           double band_atol, double fill, const Output& out, nb::handle, nb::handle, std::int64_t threads) {
            affine_label(src, mat, n_src, first, j0_start, band_atol, fill, out, threads);
        },
        "src"_a, "m"_a, "n_src"_a, "first"_a, "j0_start"_a, "band_atol"_a, "fill"_a, "out"_a,
        "labels"_a = nb::none(), "scores"_a = nb::none(), nb::kw_only(), "threads"_a = 0, release(),
        "Oblique labels: per-label float64 weights over the 2x2x2 taps, arg-max, ties to the lower "
                     "label; out of the source's dtype." GR_THREADS_DOC);
}
#undef GR_THREADS_DOC

}  // namespace gr
