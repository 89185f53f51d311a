// gpuresample._core: the oblique loops' entry points (affine.hpp): the arguments checked into a
// Block, the loops of the interpolation called with the GIL released, and line_store, which
// stores a line of a loop's results into any output dtype.
#include "affine.hpp"

namespace gr {
namespace affine {
namespace {

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

// LineStore (affine.hpp) into Out, through store<Round>.
template <typename Work, typename Out, bool Round>
void store_line(const Work* values, const std::uint8_t* outside, gr_offset inner_start, gr_offset inner_stop,
                gr_offset n2, void* out, gr_offset offset, gr_offset o2, double fill, const Rounding& r)
{
    Out* const line = static_cast<Out*>(out) + offset;
    const Out fill_out = fill_value<Out>(fill);
    const auto edge = [&](gr_offset from, gr_offset to) {
        for (gr_offset j2 = from; j2 < to; ++j2) {
            if (outside[j2] != 0) {
                line[j2 * o2] = fill_out;
            } else {
                store<Round>(line + j2 * o2, values[j2], r);
            }
        }
    };
    edge(0, inner_start);
    if (o2 == 1) {  // contiguous: a loop the compiler can vectorize
        for (gr_offset j2 = inner_start; j2 < inner_stop; ++j2) {
            store<Round>(line + j2, values[j2], r);
        }
    } else {
        for (gr_offset j2 = inner_start; j2 < inner_stop; ++j2) {
            store<Round>(line + j2 * o2, values[j2], r);
        }
    }
    edge(inner_stop, n2);
}

// ---------------------------------------------------------------------------------------
// Entry points (the GIL is released while they run)
// ---------------------------------------------------------------------------------------

void affine_nearest(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                    std::int64_t j0_start, double band_atol, double fill, const Output& out, bool same,
                    bool round_to_int, double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_nearest", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    nearest_loops(src, block, out, same, Rounding{round_to_int, lo, hi}, default_threads(threads));
}

void affine_linear(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                   std::int64_t j0_start, double band_atol, double fill, const Output& out, bool round_to_int,
                   double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_linear", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    linear_loops(src, block, out, Rounding{round_to_int, lo, hi}, default_threads(threads));
}

void affine_cubic(const Volume& coef, const Matrix& m, const Triple& n_src, const Triple& first, const Triple& pads,
                  std::int64_t j0_start, double band_atol, double fill, const Output& out, bool round_to_int,
                  double lo, double hi, std::int64_t threads)
{
    const Block block = make_block("affine_cubic", coef, m, n_src, first, &pads, j0_start, band_atol, fill, out);
    cubic_loops(coef, block, out, Rounding{round_to_int, lo, hi}, default_threads(threads));
}

void affine_label(const Volume& src, const Matrix& m, const Triple& n_src, const Triple& first,
                  std::int64_t j0_start, double band_atol, double fill, const Output& out, std::int64_t threads)
{
    const Block block = make_block("affine_label", src, m, n_src, first, nullptr, j0_start, band_atol, fill, out);
    label_loops(src, block, out, default_threads(threads));
}

}  // namespace

template <typename Work>
LineStore<Work> line_store(nb::dlpack::dtype dtype, bool round)
{
    LineStore<Work> finish = nullptr;
    visit_dtype(dtype, [&](auto o) {
        using Out = typename decltype(o)::type;
        finish = round ? &store_line<Work, Out, true> : &store_line<Work, Out, false>;
    });
    return finish;
}

template LineStore<float> line_store<float>(nb::dlpack::dtype, bool);
template LineStore<double> line_store<double>(nb::dlpack::dtype, bool);

}  // namespace affine

void bind_affine(nb::module_& m)
{
    using namespace affine;
    using namespace nb::literals;
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
