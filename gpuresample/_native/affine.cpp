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

#include <algorithm>
#include <cstdint>
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
};

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
        if (b.source.n[i] < 1 || src.shape(i) < 1 || b.pad[i] < 0) {
            refuse(function, "empty source axis or negative pad");
        }
    }
    b.band = gr_affine_band_of(b.source.n, band_atol);
    b.j0_start = j0_start;
    b.fill = fill;
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
// The four loops, per dtype
// ---------------------------------------------------------------------------------------

template <typename T>
void nearest_copy(const Volume& src, const Block& block, const Output& out, std::int64_t threads)
{
    const T* s = static_cast<const T*>(src.data());
    for_each_voxel(block, static_cast<T*>(out.data()), threads, [s](T* target, const double* u, const Block& b, auto inner) {
        *target = s[gr_affine_nearest_offset<decltype(inner)::value>(b.source, u)];
    });
}

template <typename In, typename Out>
void nearest_convert(const Volume& src, const Block& block, const Output& out, const Rounding& r,
                     std::int64_t threads)
{
    const In* s = static_cast<const In*>(src.data());
    with_rounding(r.round, [&](auto round) {
        for_each_voxel(block, static_cast<Out*>(out.data()), threads, [s, r](Out* target, const double* u, const Block& b, auto inner) {
            store<decltype(round)::value>(target, gr_load<double>(s + gr_affine_nearest_offset<decltype(inner)::value>(b.source, u)), r);
        });
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
