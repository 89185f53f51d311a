// gpuresample._core: the separable loops (separable3, label3), the cubic coefficients'
// gather (gather_clamped, gather_planes) and the prefilter of whole lines and planes
// (spline_filter_axis0, filter_planes).
//
// The arithmetic is the kernels' (kernels/gr_separable.cuh, gr_label.cuh, gr_spline.cuh,
// gpuresample.cuh); the loop order is the CPU's: plane passes over contiguous rows, one
// output plane (or line block, or gathered plane) per work item, items spread over threads
// created for the call (gr::parallel_for), the GIL released while they run. Per-thread
// scratch comes from the caller (planes, lines), indexed by thread id.

#include "arrays.hpp"

#include "gr_label.cuh"
#include "gr_separable.cuh"
#include "gr_spline.cuh"

#include <algorithm>
#include <thread>
#include <type_traits>

#if defined(__linux__)
#include <sched.h>
#endif

namespace gr {

std::int64_t default_threads(std::int64_t threads)
{
    if (threads > 0) {
        return threads;
    }
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        return std::max(1, CPU_COUNT(&set));
    }
#endif
    return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

using namespace nb::literals;
using i64 = std::int64_t;

// Output dtypes of separable3: every integer type, bool, float32 and float64.
using out_types = types<unsigned char, signed char, unsigned short, short, unsigned int, int, unsigned long long,
                        long long, float, double, bool>;
// Input (and label) dtypes; 64-bit integers as the kernels name them (gr_limits).
using in_types = types<unsigned char, signed char, unsigned short, short, unsigned int, int, unsigned long long,
                       long long, float, double>;

// ---------------------------------------------------------------------------------------
// The prefilter of whole lines (the cubic engines that hold every row of an axis)
// ---------------------------------------------------------------------------------------

// The prefilter along the rows of a 2-D view, in place: the view holds rows
// [first, first + n_rows) of the extended line (every data row), m columns; rs and cs are
// its byte strides. ext: float64 scratch, (n_ext + 1) rows of pitch doubles.
template <typename TW>
GR_CLONES void filter_lines(char* view, i64 n_rows, i64 m, i64 rs, i64 cs, i64 first, i64 pad_before, i64 length,
                  i64 pad_after, double z, double* ext, i64 pitch)
{
    const i64 n_ext = pad_before + length + pad_after;
    const double gain = gr_spline_gain(n_ext, z);
    const double z_last = gr_spline_z_last(n_ext, z);
    for (i64 k = 0; k < length; k++) {
        double* row = ext + (pad_before + k) * pitch;
        const char* source = view + (pad_before - first + k) * rs;
        if (cs == static_cast<i64>(sizeof(TW))) {
            const TW* s = reinterpret_cast<const TW*>(source);
            for (i64 c = 0; c < m; c++) row[c] = gr_spline_scaled(gr_cast<double, TW>::apply(s[c]), gain);
        } else {
            for (i64 c = 0; c < m; c++)
                row[c] = gr_spline_scaled(gr_cast<double, TW>::apply(*reinterpret_cast<const TW*>(source + c * cs)),
                                          gain);
        }
    }
    const double* edge = ext + pad_before * pitch;
    for (i64 k = 0; k < pad_before; k++) {
        double* row = ext + k * pitch;
        for (i64 c = 0; c < m; c++) row[c] = edge[c];
    }
    edge = ext + (pad_before + length - 1) * pitch;
    for (i64 k = 0; k < pad_after; k++) {
        double* row = ext + (pad_before + length + k) * pitch;
        for (i64 c = 0; c < m; c++) row[c] = edge[c];
    }
    if (n_ext > 1) {
        double* total = ext + n_ext * pitch;
        double* head = ext;
        double* tail = ext + (n_ext - 1) * pitch;
        for (i64 c = 0; c < m; c++) total[c] = gr_causal_sum_start(head[c], tail[c], z_last);
        double z_i = z;
        for (i64 i = 1; i < n_ext - 1; i++) {
            const double* row = ext + i * pitch;
            const double* mirror = ext + (n_ext - 1 - i) * pitch;
            for (i64 c = 0; c < m; c++) total[c] = gr_causal_sum_add(total[c], z_i, row[c], mirror[c], z_last);
            z_i *= z;
        }
        for (i64 c = 0; c < m; c++) head[c] = gr_causal_start(total[c], z_last);
        for (i64 i = 1; i < n_ext; i++) {
            double* row = ext + i * pitch;
            const double* previous = ext + (i - 1) * pitch;
            for (i64 c = 0; c < m; c++) row[c] = gr_causal_step(row[c], z, previous[c]);
        }
        const double* before = ext + (n_ext - 2) * pitch;
        for (i64 c = 0; c < m; c++) tail[c] = gr_anticausal_start(z, before[c], tail[c]);
        for (i64 i = n_ext - 2; i >= 0; i--) {
            double* row = ext + i * pitch;
            const double* after = ext + (i + 1) * pitch;
            for (i64 c = 0; c < m; c++) row[c] = gr_anticausal_step(z, after[c], row[c]);
        }
    }
    for (i64 k = 0; k < n_rows; k++) {
        const double* row = ext + (first + k) * pitch;
        char* target = view + k * rs;
        if (cs == static_cast<i64>(sizeof(TW))) {
            TW* t = reinterpret_cast<TW*>(target);
            for (i64 c = 0; c < m; c++) t[c] = gr_cast<TW, double>::apply(row[c]);
        } else {
            for (i64 c = 0; c < m; c++) *reinterpret_cast<TW*>(target + c * cs) = gr_cast<TW, double>::apply(row[c]);
        }
    }
}

// One prefilter stage over a view of n_rows rows and m columns: (first, pad_before,
// length, pad_after) of the extended line, checked against the view and the scratch.
struct Stage {
    i64 axis, first, pad_before, length, pad_after;
};

void check_stage(const Stage& s, i64 n_rows, i64 m, const Scratch& lines, const char* function)
{
    require(s.first >= 0 && s.pad_before >= 0 && s.length >= 1 && s.pad_after >= 0, function,
            "a prefilter stage needs first, pad_before, pad_after >= 0 and length >= 1");
    const i64 n_ext = s.pad_before + s.length + s.pad_after;
    require(s.first <= s.pad_before && s.pad_before - s.first + s.length <= n_rows && s.first + n_rows <= n_ext,
            function, "the view's rows must cover the data rows and lie inside the extended line");
    require(lines.rows >= n_ext + 1 && lines.pitch >= m, function,
            "lines must hold (n_ext + 1) rows of the view's columns per thread");
}

template <typename TW>
void filter_plane(TW* plane, i64 n1, i64 n2, const Stage* stages, i64 n_stages, double z, double* ext, i64 pitch)
{
    const i64 size = static_cast<i64>(sizeof(TW));
    for (i64 s = 0; s < n_stages; s++) {
        const Stage& st = stages[s];
        char* base = reinterpret_cast<char*>(plane);
        if (st.axis == 0)
            filter_lines<TW>(base, n1, n2, n2 * size, size, st.first, st.pad_before, st.length, st.pad_after, z, ext,
                             pitch);
        else
            filter_lines<TW>(base, n2, n1, size, n2 * size, st.first, st.pad_before, st.length, st.pad_after, z, ext,
                             pitch);
    }
}

std::vector<Stage> stages_of(nb::handle object, i64 n1, i64 n2, const Scratch& lines, const char* function)
{
    const Contiguous<i64> table = contiguous<i64>(object, 2, function, "stages");
    require(table.shape[1] == 5 || table.shape[0] == 0, function, "stages must have rows of 5 integers");
    std::vector<Stage> stages;
    for (i64 s = 0; s < table.shape[0]; ++s) {
        const i64* row = table.data + 5 * s;
        const Stage stage{row[0], row[1], row[2], row[3], row[4]};
        require(stage.axis == 0 || stage.axis == 1, function, "a stage's plane axis is 0 or 1");
        check_stage(stage, stage.axis == 0 ? n1 : n2, stage.axis == 0 ? n2 : n1, lines, function);
        stages.push_back(stage);
    }
    return stages;
}

void spline_filter_axis0(const OutArray& coef_array, i64 first, i64 pad_before, i64 length, i64 pad_after, double z,
                         const OutArray& lines_array)
{
    const char* function = "spline_filter_axis0";
    const View coef = view(coef_array, 3, function, "coef");
    const Scratch lines = scratch(lines_array, function);
    check_stage(Stage{0, first, pad_before, length, pad_after}, coef.shape[0], coef.shape[2], lines, function);
    dispatch(coef.dtype, float_types(), function, "coef", [&](auto t) {
        using TW = typename decltype(t)::type;
        nb::gil_scoped_release release;
        parallel_for(coef.shape[1], lines.threads, [&](i64 b, int thread) {
            filter_lines<TW>(coef.data + b * coef.stride[1], coef.shape[0], coef.shape[2], coef.stride[0],
                             coef.stride[2], first, pad_before, length, pad_after, z,
                             lines.data + thread * lines.rows * lines.pitch, lines.pitch);
        });
    });
}

void filter_planes(const OutArray& planes_array, nb::handle slots_object, nb::handle stages_object, double z,
                   const OutArray& lines_array)
{
    const char* function = "filter_planes";
    const View planes = view(planes_array, 3, function, "planes");
    if (!c_contiguous(planes)) {
        type_error(function, "planes must be C-contiguous");
    }
    const Scratch lines = scratch(lines_array, function);
    const Contiguous<i64> slots = contiguous<i64>(slots_object, 1, function, "slots");
    check_indices(slots, planes.shape[0], function, "slots");
    const i64 n1 = planes.shape[1], n2 = planes.shape[2];
    const std::vector<Stage> stages = stages_of(stages_object, n1, n2, lines, function);
    dispatch(planes.dtype, float_types(), function, "planes", [&](auto t) {
        using TW = typename decltype(t)::type;
        TW* data = reinterpret_cast<TW*>(planes.data);
        nb::gil_scoped_release release;
        parallel_for(slots.size, lines.threads, [&](i64 q, int thread) {
            filter_plane<TW>(data + slots.data[q] * n1 * n2, n1, n2, stages.data(), static_cast<i64>(stages.size()),
                             z, lines.data + thread * lines.rows * lines.pitch, lines.pitch);
        });
    });
}

// ---------------------------------------------------------------------------------------
// Gathers: source rows (edges clamped by the maps) into the working dtype
// ---------------------------------------------------------------------------------------

void gather_clamped(const InArray& src_array, nb::handle m0_object, nb::handle m1_object, nb::handle m2_object,
                    const OutArray& out_array, i64 threads)
{
    const char* function = "gather_clamped";
    const View src = view(src_array, 3, function, "src");
    const View out = view(out_array, 3, function, "out");
    const Contiguous<i64> m0 = contiguous<i64>(m0_object, 1, function, "m0");
    const Contiguous<i64> m1 = contiguous<i64>(m1_object, 1, function, "m1");
    const Contiguous<i64> m2 = contiguous<i64>(m2_object, 1, function, "m2");
    check_indices(m0, src.shape[0], function, "m0");
    check_indices(m1, src.shape[1], function, "m1");
    check_indices(m2, src.shape[2], function, "m2");
    require(c_contiguous(out) && out.shape[0] == m0.size && out.shape[1] == m1.size && out.shape[2] == m2.size,
            function, "out must be C-contiguous with shape (len(m0), len(m1), len(m2))");
    threads = default_threads(threads);
    dispatch(bool_as_uint8(src.dtype), in_types(), function, "src", [&](auto t) {
        using TI = typename decltype(t)::type;
        using TW = typename work_of<TI>::type;
        if (!is<TW>(out.dtype)) {
            type_error(function, "out must be of the input's working dtype");
        }
        TW* target = reinterpret_cast<TW*>(out.data);
        const i64 n1 = m1.size, n2 = m2.size;
        nb::gil_scoped_release release;
        parallel_for(m0.size, threads, [&](i64 a, int) {
            TW* plane = target + a * n1 * n2;
            for (i64 b = 0; b < n1; b++) {
                const char* line = src.data + m0.data[a] * src.stride[0] + m1.data[b] * src.stride[1];
                for (i64 k = 0; k < n2; k++)
                    plane[b * n2 + k] =
                        gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + m2.data[k] * src.stride[2]));
            }
        });
    });
}

void gather_planes(const InArray& src_array, nb::handle rows_object, nb::handle slots_object, nb::handle map1_object,
                   nb::handle map2_object, i64 run_lo, i64 run_hi, const OutArray& planes_array,
                   nb::handle stages_object, double z, const OutArray& lines_array)
{
    const char* function = "gather_planes";
    const View src = view(src_array, 3, function, "src");
    const View planes = view(planes_array, 3, function, "planes");
    const Scratch lines = scratch(lines_array, function);
    const Contiguous<i64> rows = contiguous<i64>(rows_object, 1, function, "rows");
    const Contiguous<i64> slots = contiguous<i64>(slots_object, 1, function, "slots");
    const Contiguous<i64> map1 = contiguous<i64>(map1_object, 1, function, "map1");
    const Contiguous<i64> map2 = contiguous<i64>(map2_object, 1, function, "map2");
    require(rows.size == slots.size, function, "rows and slots must have the same length");
    require(c_contiguous(planes) && planes.shape[1] == map1.size && planes.shape[2] == map2.size, function,
            "planes must be C-contiguous with shape (slots, len(map1), len(map2))");
    check_indices(rows, src.shape[0], function, "rows");
    check_indices(slots, planes.shape[0], function, "slots");
    check_indices(map1, src.shape[1], function, "map1");
    check_indices(map2, src.shape[2], function, "map2");
    const i64 n1 = map1.size, n2 = map2.size;
    require(0 <= run_lo && run_lo <= run_hi && run_hi <= n2, function, "need 0 <= run_lo <= run_hi <= len(map2)");
    const i64 shift = run_hi > run_lo ? map2.data[run_lo] - run_lo : 0;
    for (i64 b = run_lo; b < run_hi; ++b) {
        require(map2.data[b] == shift + b, function, "map2 must step by 1 over [run_lo, run_hi)");
    }
    const std::vector<Stage> stages = stages_of(stages_object, n1, n2, lines, function);
    dispatch(bool_as_uint8(src.dtype), in_types(), function, "src", [&](auto t) {
        using TI = typename decltype(t)::type;
        using TW = typename work_of<TI>::type;
        if (!is<TW>(planes.dtype)) {
            type_error(function, "planes must be of the input's working dtype");
        }
        TW* data = reinterpret_cast<TW*>(planes.data);
        const i64 s2 = src.stride[2];
        nb::gil_scoped_release release;
        parallel_for(rows.size, lines.threads, [&](i64 q, int thread) {
            TW* plane = data + slots.data[q] * n1 * n2;
            for (i64 a = 0; a < n1; a++) {
                const char* line = src.data + rows.data[q] * src.stride[0] + map1.data[a] * src.stride[1];
                TW* target = plane + a * n2;
                for (i64 b = 0; b < run_lo; b++)
                    target[b] = gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + map2.data[b] * s2));
                if (s2 == static_cast<i64>(sizeof(TI))) {
                    const TI* x = reinterpret_cast<const TI*>(line) + shift;
                    for (i64 b = run_lo; b < run_hi; b++) target[b] = gr_cast<TW, TI>::apply(x[b]);
                } else {
                    for (i64 b = run_lo; b < run_hi; b++)
                        target[b] = gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + (shift + b) * s2));
                }
                for (i64 b = run_hi; b < n2; b++)
                    target[b] = gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + map2.data[b] * s2));
            }
            if (!stages.empty())
                filter_plane<TW>(plane, n1, n2, stages.data(), static_cast<i64>(stages.size()), z,
                                 lines.data + thread * lines.rows * lines.pitch, lines.pitch);
        });
    });
}

// ---------------------------------------------------------------------------------------
// separable3: out[j0, j1, j2] = sum_c w2 * (sum_b w1 * (sum_a w0 * src[a, b, c]))
// ---------------------------------------------------------------------------------------

// One axis table: index rows (n_out, taps) and weight rows in the working dtype.
template <typename TW>
struct Table {
    Contiguous<i64> index;
    Contiguous<TW> weight;
    i64 n_out, taps;
};

template <typename TW>
Table<TW> table(nb::handle index_object, nb::handle weight_object, i64 n_in, const char* function, const char* name)
{
    Table<TW> t{contiguous<i64>(index_object, 2, function, name), contiguous<TW>(weight_object, 2, function, name), 0,
                0};
    t.n_out = t.index.shape[0];
    t.taps = t.index.shape[1];
    require(t.weight.shape[0] == t.n_out && t.weight.shape[1] == t.taps, function,
            std::string(name) + ": index and weight rows must have the same shape");
    require(t.taps >= 1, function, std::string(name) + ": a table needs at least one tap");
    check_indices(t.index, n_in, function, name);
    return t;
}

// Pass 0, the input's axis 0 for one output plane: plane[a, b] = sum_t w0[t] * src[i0[t], a, b].
template <typename TI, typename TW>
GR_CLONES void sep_pass0(const char* src, i64 n1, i64 n2, i64 s0, i64 s1, i64 s2, const i64* i0, const TW* w0, i64 t0,
               TW* plane)
{
    for (i64 a = 0; a < n1; a++) {
        TW* out = plane + a * n2;
        for (i64 t = 0; t < t0; t++) {
            const char* line = src + i0[t] * s0 + a * s1;
            const TW wt = w0[t];
            if (s2 == static_cast<i64>(sizeof(TI))) {
                const TI* x = reinterpret_cast<const TI*>(line);
                if (t == 0)
                    for (i64 b = 0; b < n2; b++) out[b] = gr_tap_first(wt, gr_cast<TW, TI>::apply(x[b]));
                else
                    for (i64 b = 0; b < n2; b++) out[b] = gr_tap_next(out[b], wt, gr_cast<TW, TI>::apply(x[b]));
            } else {
                if (t == 0)
                    for (i64 b = 0; b < n2; b++)
                        out[b] = gr_tap_first(wt, gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + b * s2)));
                else
                    for (i64 b = 0; b < n2; b++)
                        out[b] = gr_tap_next(out[b], wt,
                                             gr_cast<TW, TI>::apply(*reinterpret_cast<const TI*>(line + b * s2)));
            }
        }
    }
}

// Pass 1, axis 1 of the plane: plane2[c, b] = sum_t w1[c, t] * plane[i1[c, t], b].
template <typename TW>
GR_CLONES void sep_pass1(const TW* plane, i64 n2, const i64* i1, const TW* w1, i64 n1o, i64 t1, TW* plane2)
{
    for (i64 c = 0; c < n1o; c++) {
        TW* out = plane2 + c * n2;
        const TW* row = plane + i1[c * t1] * n2;
        TW wt = w1[c * t1];
        for (i64 b = 0; b < n2; b++) out[b] = gr_tap_first(wt, row[b]);
        for (i64 t = 1; t < t1; t++) {
            row = plane + i1[c * t1 + t] * n2;
            wt = w1[c * t1 + t];
            for (i64 b = 0; b < n2; b++) out[b] = gr_tap_next(out[b], wt, row[b]);
        }
    }
}

// Pass 2, axis 2, into the output: out[c, k] = store(sum_t w2[k, t] * plane2[c, i2[k, t]]).
// TAPS: the table's taps when fixed at compile time (the short tap loop unrolls), else
// GR_ANY_TAPS; the same sum either way.
template <typename TW, typename TO, int TAPS>
GR_CLONES void sep_pass2_taps(const TW* plane2, i64 n2, i64 n1o, const i64* i2, const TW* w2, i64 n2o, i64 t2,
                              char* out, i64 os1, i64 os2)
{
    const int taps = TAPS > 0 ? TAPS : static_cast<int>(t2);
    for (i64 c = 0; c < n1o; c++) {
        const TW* row = plane2 + c * n2;
        char* line = out + c * os1;
        for (i64 k = 0; k < n2o; k++) {
            const i64* ik = i2 + k * t2;
            const TW acc = gr_tap_sum<TAPS>(w2 + k * t2, taps, [&](int t) { return row[ik[t]]; });
            gr_store(reinterpret_cast<TO*>(line + k * os2), acc);
        }
    }
}

template <typename TW, typename TO>
void sep_pass2(const TW* plane2, i64 n2, i64 n1o, const i64* i2, const TW* w2, i64 n2o, i64 t2, char* out, i64 os1,
               i64 os2)
{
    switch (t2) {
    case 1: sep_pass2_taps<TW, TO, 1>(plane2, n2, n1o, i2, w2, n2o, t2, out, os1, os2); break;
    case 2: sep_pass2_taps<TW, TO, 2>(plane2, n2, n1o, i2, w2, n2o, t2, out, os1, os2); break;
    case 4: sep_pass2_taps<TW, TO, 4>(plane2, n2, n1o, i2, w2, n2o, t2, out, os1, os2); break;
    default: sep_pass2_taps<TW, TO, GR_ANY_TAPS>(plane2, n2, n1o, i2, w2, n2o, t2, out, os1, os2);
    }
}

// What the caller says about rounding must be what gr_store does for the output type.
template <typename TO>
void check_rounding(bool round_to_int, double lo, double hi, const char* function)
{
    if constexpr (std::is_floating_point<TO>::value) {
        require(!round_to_int, function, "a float output is not rounded (round_to_int must be False)");
    } else {
        require(round_to_int && lo == gr_limits<TO>::lo && hi == gr_limits<TO>::hi, function,
                "an integer output is rounded and clipped to its dtype's range (integer_limits)");
    }
}

void separable3(const InArray& src_array, nb::handle i0_object, nb::handle w0_object, nb::handle i1_object,
                nb::handle w1_object, nb::handle i2_object, nb::handle w2_object, const OutArray& out_array,
                bool round_to_int, double lo, double hi, const OutArray& planes_array, const OutArray& planes2_array)
{
    const char* function = "separable3";
    const View src = view(src_array, 3, function, "src");
    const View out = view(out_array, 3, function, "out");
    const View planes = view(planes_array, 3, function, "planes");
    const View planes2 = view(planes2_array, 3, function, "planes2");
    dispatch(bool_as_uint8(src.dtype), in_types(), function, "src", [&](auto t) {
        using TI = typename decltype(t)::type;
        using TW = typename work_of<TI>::type;
        const i64 n1 = src.shape[1], n2 = src.shape[2];
        const Table<TW> a = table<TW>(i0_object, w0_object, src.shape[0], function, "table 0");
        const Table<TW> b = table<TW>(i1_object, w1_object, n1, function, "table 1");
        const Table<TW> c = table<TW>(i2_object, w2_object, n2, function, "table 2");
        if (!is<TW>(planes.dtype) || !is<TW>(planes2.dtype) || !c_contiguous(planes) || !c_contiguous(planes2)) {
            type_error(function, "planes and planes2 must be C-contiguous arrays of the input's working dtype");
        }
        const i64 threads = planes.shape[0];
        require(threads >= 1 && planes.shape[1] == n1 && planes.shape[2] == n2, function,
                "planes must have shape (threads, src.shape[1], src.shape[2])");
        require(planes2.shape[0] >= threads && planes2.shape[1] >= b.n_out && planes2.shape[2] == n2, function,
                "planes2 must have shape (threads, out.shape[1], src.shape[2])");
        require(out.shape[0] == a.n_out && out.shape[1] == b.n_out && out.shape[2] == c.n_out, function,
                "out's shape must be the tables' output lengths");
        // A bool output arrives as its uint8 view, clipped to [0, 1]: stored as bool.
        const bool as_bool = is<std::uint8_t>(out.dtype) && round_to_int && lo == 0.0 && hi == 1.0;
        dispatch(as_bool ? nb::dtype<bool>() : out.dtype, out_types(), function, "out", [&](auto o) {
            using TO = typename decltype(o)::type;
            check_rounding<TO>(round_to_int, lo, hi, function);
            TW* planes_data = reinterpret_cast<TW*>(planes.data);
            TW* planes2_data = reinterpret_cast<TW*>(planes2.data);
            nb::gil_scoped_release release;
            parallel_for(a.n_out, threads, [&](i64 j0, int thread) {
                TW* plane = planes_data + static_cast<i64>(thread) * n1 * n2;
                TW* plane2 = planes2_data + static_cast<i64>(thread) * b.n_out * n2;
                sep_pass0<TI, TW>(src.data, n1, n2, src.stride[0], src.stride[1], src.stride[2],
                                  a.index.data + j0 * a.taps, a.weight.data + j0 * a.taps, a.taps, plane);
                sep_pass1<TW>(plane, n2, b.index.data, b.weight.data, b.n_out, b.taps, plane2);
                sep_pass2<TW, TO>(plane2, n2, b.n_out, c.index.data, c.weight.data, c.n_out, c.taps,
                                  out.data + j0 * out.stride[0], out.stride[1], out.stride[2]);
            });
        });
    });
}

// ---------------------------------------------------------------------------------------
// label3: per-label linear weights over a voxel's taps, arg-max, ties to the lower label
// ---------------------------------------------------------------------------------------

// The most taps a label voxel scores (2 x 2 x 2 for linear weights).
constexpr i64 LABEL_TAPS = 64;
// Output voxels of one work item (rows of one plane): a few milliseconds of votes.
constexpr i64 LABEL_ITEM_VOXELS = 1 << 16;

// Everything one output plane reads, as values: the loop keeps them in registers (a store
// through a char-sized label type could otherwise alias any field it reads from memory).
struct LabelPlane {
    const char* src;
    i64 s0, s1, s2;
    const i64 *i0, *i1, *i2;
    const double *w0, *w1, *w2;
    i64 t0, t1, t2, n1o, n2o;
    char* out;
    i64 o0, o1, o2;
};

// Rows [j1_start, j1_stop) of output plane j0.
template <typename TL>
GR_CLONES void label_rows(const LabelPlane plane, i64 j0, i64 j1_start, i64 j1_stop)
{
    const LabelPlane c = plane;
    TL taps[LABEL_TAPS];
    double weights[LABEL_TAPS];
    for (i64 j1 = j1_start; j1 < j1_stop; j1++) {
        for (i64 j2 = 0; j2 < c.n2o; j2++) {
            i64 t = 0;
            bool same = true;
            for (i64 p = 0; p < c.t0; p++) {
                for (i64 q = 0; q < c.t1; q++) {
                    const char* line = c.src + c.i0[j0 * c.t0 + p] * c.s0 + c.i1[j1 * c.t1 + q] * c.s1;
                    for (i64 k = 0; k < c.t2; k++, t++) {
                        taps[t] = *reinterpret_cast<const TL*>(line + c.i2[j2 * c.t2 + k] * c.s2);
                        same = same && gr_label_equal(taps[t], taps[0]);
                    }
                }
            }
            TL* target = reinterpret_cast<TL*>(c.out + j0 * c.o0 + j1 * c.o1 + j2 * c.o2);
            if (same) {  // one label among the taps (the common case inside a region): it wins
                *target = taps[0];
                continue;
            }
            t = 0;
            for (i64 p = 0; p < c.t0; p++) {
                for (i64 q = 0; q < c.t1; q++) {
                    const double wab = gr_mul(c.w0[j0 * c.t0 + p], c.w1[j1 * c.t1 + q]);
                    for (i64 k = 0; k < c.t2; k++, t++) weights[t] = gr_mul(wab, c.w2[j2 * c.t2 + k]);
                }
            }
            *target = gr_pick_label(taps, weights, static_cast<int>(t));
        }
    }
}

void label3(const InArray& src_array, nb::handle i0_object, nb::handle w0_object, nb::handle i1_object,
            nb::handle w1_object, nb::handle i2_object, nb::handle w2_object, const OutArray& out_array, i64 threads)
{
    const char* function = "label3";
    const View src = view(src_array, 3, function, "src");
    const View out = view(out_array, 3, function, "out");
    const Table<double> a = table<double>(i0_object, w0_object, src.shape[0], function, "table 0");
    const Table<double> b = table<double>(i1_object, w1_object, src.shape[1], function, "table 1");
    const Table<double> c = table<double>(i2_object, w2_object, src.shape[2], function, "table 2");
    if (!(out.dtype == src.dtype)) {
        type_error(function, "out must have the labels' dtype");
    }
    require(out.shape[0] == a.n_out && out.shape[1] == b.n_out && out.shape[2] == c.n_out, function,
            "out's shape must be the tables' output lengths");
    if (a.taps * b.taps * c.taps > LABEL_TAPS) {
        value_error(function, "a label voxel reads " + std::to_string(a.taps * b.taps * c.taps) +
                                  " taps; the loop scores at most " + std::to_string(LABEL_TAPS));
    }
    threads = default_threads(threads);
    const auto run = [&](auto t) {
        using TL = typename decltype(t)::type;
        const LabelPlane plane{src.data,      src.stride[0], src.stride[1], src.stride[2], a.index.data,
                               b.index.data,  c.index.data,  a.weight.data, b.weight.data, c.weight.data,
                               a.taps,        b.taps,        c.taps,        b.n_out,       c.n_out,
                               out.data,      out.stride[0], out.stride[1], out.stride[2]};
        const i64 rows = rows_per_item(b.n_out, c.n_out, LABEL_ITEM_VOXELS);
        const i64 per_plane = (b.n_out + rows - 1) / rows;
        nb::gil_scoped_release release;
        if (per_plane == 1) {  // whole planes: an item per plane (this loop ran 7% faster on
                               // random labels than the general one below, side by side)
            parallel_for(a.n_out, threads, [&](i64 j0, int) { label_rows<TL>(plane, j0, 0, b.n_out); });
            return;
        }
        parallel_for(a.n_out * per_plane, threads, [&](i64 item, int) {
            const i64 j0 = item / per_plane, j1 = item % per_plane * rows;
            label_rows<TL>(plane, j0, j1, std::min(j1 + rows, b.n_out));
        });
    };
    if (is_float16(src.dtype)) {
        run(tag<gr_half>());  // compared by value (gr_label_equal), copied as stored
    } else {
        dispatch(bool_as_uint8(src.dtype), in_types(), function, "src", run);
    }
}

}  // namespace

void bind_separable(nb::module_& m)
{
    m.def("separable3", &separable3, "src"_a, "i0"_a, "w0"_a, "i1"_a, "w1"_a, "i2"_a, "w2"_a, "out"_a.noconvert(),
          "round_to_int"_a, "lo"_a, "hi"_a, "planes"_a.noconvert(), "planes2"_a.noconvert(),
          "Separable resampling of a 3-D volume: pass 0 along src's axis 0 per output plane, then axes 1 "
          "and 2, products and sums in the working dtype, taps left to right (gr_separable.cuh); "
          "integer outputs rounded half to even and clipped (round_to_int, lo, hi must say so). "
          "planes (threads, n1, n2), planes2 (threads, out.shape[1], n2): per-thread scratch of the "
          "working dtype; one thread per planes row.");
    m.def("label3", &label3, "src"_a, "i0"_a, "w0"_a, "i1"_a, "w1"_a, "i2"_a, "w2"_a, "out"_a.noconvert(),
          nb::kw_only(), "threads"_a = 0,
          "Labels: per-label float64 weights (w0 * w1) * w2 over a voxel's taps, summed per label in tap "
          "order, arg-max, ties to the lower label (gr_label.cuh); labels compare by value (float16 "
          "too; NaN is one label, after every number). threads: 0 for the cores this process may run on.");
    m.def("gather_clamped", &gather_clamped, "src"_a, "m0"_a, "m1"_a, "m2"_a, "out"_a.noconvert(), nb::kw_only(),
          "threads"_a = 0,
          "out[a, b, c] = src[m0[a], m1[b], m2[c]] in the input's working dtype (out C-contiguous). "
          "threads: 0 for the cores this process may run on.");
    m.def("spline_filter_axis0", &spline_filter_axis0, "coef"_a.noconvert(), "first"_a, "pad_before"_a, "length"_a,
          "pad_after"_a, "pole"_a, "lines"_a.noconvert(),
          "The cubic prefilter along axis 0 of a 3-D float view, in place (gr_spline.cuh); lines: "
          "float64 scratch (threads, n_ext + 1, >= coef.shape[2]).");
    m.def("gather_planes", &gather_planes, "src"_a, "rows"_a, "slots"_a, "map1"_a, "map2"_a, "run_lo"_a, "run_hi"_a,
          "planes"_a.noconvert(), "stages"_a, "pole"_a, "lines"_a.noconvert(),
          "planes[slots[q]] = src[rows[q]][map1][:, map2] (working dtype), then the in-plane prefilter "
          "stages (rows of axis, first, pad_before, length, pad_after).");
    m.def("filter_planes", &filter_planes, "planes"_a.noconvert(), "slots"_a, "stages"_a, "pole"_a,
          "lines"_a.noconvert(), "The in-plane prefilter stages on planes[slots[q]], in place.");
}

}  // namespace gr
