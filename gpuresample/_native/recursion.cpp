// gpuresample._core: the prefilter's recursion along axis 0 in segments and from slab
// states (the streamed cubic engine and the chunked pre-pass, backends/_cpu_cubic.py and
// backends/_spline_states.py).
//
// The source is 2-D: rows are planes flattened (row stride in bytes, contiguous columns),
// every column one line. Columns are split into blocks of `block`, one work item each,
// spread over threads (gr::parallel_for); a thread keeps its block's causal values in its
// slice of the float64 scratch `lines` (threads, rows, pitch). Every operation on a lane is
// one of kernels/gr_spline.cuh, the recursion kernels/spline.cu runs on a GPU.

#include "arrays.hpp"

#include "gr_spline.cuh"

#include <algorithm>

namespace gr {

namespace {

using namespace nb::literals;
using i64 = std::int64_t;

using source_types = types<unsigned char, signed char, unsigned short, short, unsigned int, int, unsigned long long,
                           long long, float, double>;

// A 2-D source or destination whose columns are contiguous.
View rows_2d(const View& v, const char* function, const char* name)
{
    if (!(v.shape[1] <= 1 || v.stride[1] == v.itemsize)) {
        value_error(function, std::string(name) + " must have contiguous columns (rows of flattened planes)");
    }
    return v;
}

// A float64 vector the loop writes, of at least n elements, contiguous.
double* out_vector(const OutArray& array, i64 n, const char* function, const char* name)
{
    const View v = view(array, 1, function, name);
    if (!is<double>(v.dtype) || !c_contiguous(v)) {
        type_error(function, std::string(name) + " must be a contiguous float64 vector");
    }
    require(v.shape[0] >= n, function, std::string(name) + " is shorter than the lines");
    return reinterpret_cast<double*>(v.data);
}

// A float64 vector the loop reads, of at least n elements.
Contiguous<double> in_vector(nb::handle object, i64 n, const char* function, const char* name)
{
    Contiguous<double> v = contiguous<double>(object, 1, function, name);
    require(v.size >= n, function, std::string(name) + " is shorter than the lines");
    return v;
}

// What every recursion call shares.
struct Recursion {
    const char* source;
    i64 rs;                  // source row stride, bytes
    const i64* rows;         // source row of each recursion row handled
    i64 n_rows, i_start, n_ext, n, block;
    double z, gain, z_last;
    const double* acc;       // initial causal sums (rows with i == 0)
    const double* c_in;      // causal values of the row before i_start
    double* lines;
    i64 line_size, pitch;

    i64 blocks() const { return (n + block - 1) / block; }
};

Recursion recursion(const View& source, const Contiguous<i64>& rows, i64 i_start, i64 n_ext, double z, i64 n,
                    i64 block, const char* function)
{
    require(n_ext >= 1 && i_start >= 0 && i_start + rows.size <= n_ext, function,
            "rows i_start .. i_start + len(rows) must lie inside the extended line of n_ext >= 1 rows");
    require(block >= 1, function, "block must be positive");
    require(n <= source.shape[1], function, "the source has fewer columns than the lines");
    check_indices(rows, source.shape[0], function, "rows");
    Recursion r{};
    r.source = source.data;
    r.rs = source.stride[0];
    r.rows = rows.data;
    r.n_rows = rows.size;
    r.i_start = i_start;
    r.n_ext = n_ext;
    r.n = n;
    r.block = block;
    r.z = z;
    r.gain = gr_spline_gain(n_ext, z);
    r.z_last = gr_spline_z_last(n_ext, z);
    return r;
}

void with_scratch(Recursion& r, const Scratch& lines, i64 rows_needed, const char* function)
{
    require(lines.rows >= rows_needed && lines.pitch >= std::min(r.block, r.n), function,
            "lines must hold (rows, min(block, n)) float64 per thread");
    r.lines = lines.data;
    r.line_size = lines.rows * lines.pitch;
    r.pitch = lines.pitch;
}

// Pass 1: the causal initial value's sum over rows i_start + q (source rows front[q], back[q]).
template <typename TS>
GR_CLONES void initial_block(const Recursion& c, const i64* front, const i64* back, const double* powers, double* acc, i64 blk)
{
    const i64 lo = blk * c.block, hi = std::min(lo + c.block, c.n);
    double* total = acc + lo;
    const double gain = c.gain, z_last = c.z_last;
    for (i64 q = 0; q < c.n_rows; q++) {
        const i64 i = c.i_start + q;
        const TS* f = reinterpret_cast<const TS*>(c.source + front[q] * c.rs) + lo;
        const TS* b = reinterpret_cast<const TS*>(c.source + back[q] * c.rs) + lo;
        if (i == 0) {
            for (i64 k = 0; k < hi - lo; k++)
                total[k] = gr_causal_sum_start(gr_spline_scaled(gr_cast<double, TS>::apply(f[k]), gain),
                                               gr_spline_scaled(gr_cast<double, TS>::apply(b[k]), gain), z_last);
        } else if (i <= c.n_ext - 2) {
            const double z_i = powers[i];
            for (i64 k = 0; k < hi - lo; k++)
                total[k] = gr_causal_sum_add(total[k], z_i, gr_spline_scaled(gr_cast<double, TS>::apply(f[k]), gain),
                                             gr_spline_scaled(gr_cast<double, TS>::apply(b[k]), gain), z_last);
        }
    }
}

// Causal values of rows i_start + q (source row rows[q]) into causal[q][0 .. hi - lo).
template <typename TS>
GR_CLONES void causal_rows(const Recursion& c, i64 lo, i64 hi, double* causal)
{
    const i64 m = hi - lo;
    const double z = c.z, gain = c.gain;
    for (i64 q = 0; q < c.n_rows; q++) {
        const i64 i = c.i_start + q;
        double* row = causal + q * c.pitch;
        const TS* values = reinterpret_cast<const TS*>(c.source + c.rows[q] * c.rs) + lo;
        if (i == 0) {
            const double* start = c.acc + lo;
            for (i64 k = 0; k < m; k++) row[k] = gr_causal_start(start[k], c.z_last);
        } else {
            const double* prev = q == 0 ? c.c_in + lo : causal + (q - 1) * c.pitch;
            for (i64 k = 0; k < m; k++)
                row[k] = gr_causal_step(gr_spline_scaled(gr_cast<double, TS>::apply(values[k]), gain), z, prev[k]);
        }
    }
}

// Pass 3 over one segment: the causal values again, then the anti-causal ones; row
// i_start + q goes to dest row dest_rows[q] where that is >= 0.
template <typename TS, typename TD>
GR_CLONES void anticausal_block(const Recursion& c, double* y_next, char* dest, i64 dest_rs, const i64* dest_rows, i64 blk,
                      int thread)
{
    const i64 lo = blk * c.block, hi = std::min(lo + c.block, c.n);
    const i64 m = hi - lo;
    const double z = c.z;
    double* causal = c.lines + thread * c.line_size;
    causal_rows<TS>(c, lo, hi, causal);
    double* y = y_next + lo;
    for (i64 q = c.n_rows - 1; q >= 0; q--) {
        const i64 i = c.i_start + q;
        const double* row = causal + q * c.pitch;
        if (i == c.n_ext - 1) {
            const double* before = q == 0 ? c.c_in + lo : causal + (q - 1) * c.pitch;
            for (i64 k = 0; k < m; k++) y[k] = gr_anticausal_start(z, before[k], row[k]);
        } else {
            for (i64 k = 0; k < m; k++) y[k] = gr_anticausal_step(z, y[k], row[k]);
        }
        if (dest_rows[q] >= 0) {
            TD* target = reinterpret_cast<TD*>(dest + dest_rows[q] * dest_rs) + lo;
            for (i64 k = 0; k < m; k++) target[k] = gr_cast<TD, double>::apply(y[k]);
        }
    }
}

// The prefilter of kept rows q = 0 .. n_rows - 1 of a line cut from a longer one, from the
// whole line's causal value at row 0 and anti-causal value at the last.
template <typename TS, typename TD>
GR_CLONES void states_block(const Recursion& c, const double* causal_first, const double* anticausal_last, char* dest,
                  i64 dest_rs, i64 blk, int thread)
{
    const i64 lo = blk * c.block, hi = std::min(lo + c.block, c.n);
    const i64 m = hi - lo, kept = c.n_rows;
    const double z = c.z, gain = c.gain;
    double* causal = c.lines + thread * c.line_size;
    for (i64 k = 0; k < m; k++) causal[k] = causal_first[lo + k];
    for (i64 q = 1; q < kept; q++) {
        double* row = causal + q * c.pitch;
        const double* prev = causal + (q - 1) * c.pitch;
        const TS* values = reinterpret_cast<const TS*>(c.source + c.rows[q] * c.rs) + lo;
        for (i64 k = 0; k < m; k++)
            row[k] = gr_causal_step(gr_spline_scaled(gr_cast<double, TS>::apply(values[k]), gain), z, prev[k]);
    }
    double* y = causal + (kept - 1) * c.pitch;
    for (i64 k = 0; k < m; k++) y[k] = anticausal_last[lo + k];
    TD* target = reinterpret_cast<TD*>(dest + (kept - 1) * dest_rs) + lo;
    for (i64 k = 0; k < m; k++) target[k] = gr_cast<TD, double>::apply(y[k]);
    for (i64 q = kept - 2; q >= 0; q--) {
        double* row = causal + q * c.pitch;
        target = reinterpret_cast<TD*>(dest + q * dest_rs) + lo;
        for (i64 k = 0; k < m; k++) {
            row[k] = gr_anticausal_step(z, y[k], row[k]);
            target[k] = gr_cast<TD, double>::apply(row[k]);
        }
        y = row;
    }
}

// dest: float64, or float32 for a float32 source (the engines' working dtype, or the states).
template <typename TS, typename Fn>
void with_dest(const View& dest, const char* function, Fn&& fn)
{
    if (is<double>(dest.dtype)) {
        fn(tag<double>());
    } else if (std::is_same<TS, float>::value && is<float>(dest.dtype)) {
        fn(tag<float>());
    } else {
        type_error(function, "dest must be float64, or float32 for a float32 source");
    }
}

void causal_initial_sum(const InArray& source_array, nb::handle front_object, nb::handle back_object, i64 i_start,
                        i64 n_ext, double z, nb::handle powers_object, const OutArray& acc_array, i64 block,
                        i64 threads)
{
    const char* function = "causal_initial_sum";
    const View source = rows_2d(view(source_array, 2, function, "source"), function, "source");
    const Contiguous<i64> front = contiguous<i64>(front_object, 1, function, "front");
    const Contiguous<i64> back = contiguous<i64>(back_object, 1, function, "back");
    require(front.size == back.size, function, "front and back must have the same length");
    check_indices(back, source.shape[0], function, "back");
    const i64 n = view(acc_array, 1, function, "acc").shape[0];
    double* acc = out_vector(acc_array, n, function, "acc");
    Recursion c = recursion(source, front, i_start, n_ext, z, n, block, function);
    const i64 last_power = std::min(i_start + front.size - 1, n_ext - 2);
    const Contiguous<double> powers = in_vector(powers_object, last_power + 1, function, "powers");
    threads = default_threads(threads);
    dispatch(bool_as_uint8(source.dtype), source_types(), function, "source", [&](auto t) {
        using TS = typename decltype(t)::type;
        nb::gil_scoped_release release;
        parallel_for(c.blocks(), threads, [&](i64 blk, int) {
            initial_block<TS>(c, front.data, back.data, powers.data, acc, blk);
        });
    });
}

void causal_segment(const InArray& source_array, nb::handle rows_object, i64 i_start, i64 n_ext, double z,
                    nb::handle acc_object, nb::handle c_in_object, const OutArray& c_out_array,
                    const OutArray& lines_array, i64 block)
{
    const char* function = "causal_segment";
    const View source = rows_2d(view(source_array, 2, function, "source"), function, "source");
    const Contiguous<i64> rows = contiguous<i64>(rows_object, 1, function, "rows");
    const Contiguous<double> acc = contiguous<double>(acc_object, 1, function, "acc");
    const i64 n = acc.size;
    const Contiguous<double> c_in = in_vector(c_in_object, n, function, "c_in");
    double* c_out = out_vector(c_out_array, n, function, "c_out");
    Recursion c = recursion(source, rows, i_start, n_ext, z, n, block, function);
    require(rows.size >= 1, function, "a segment has at least one row");
    const Scratch lines = scratch(lines_array, function);
    with_scratch(c, lines, rows.size, function);
    c.acc = acc.data;
    c.c_in = c_in.data;
    dispatch(bool_as_uint8(source.dtype), source_types(), function, "source", [&](auto t) {
        using TS = typename decltype(t)::type;
        nb::gil_scoped_release release;
        parallel_for(c.blocks(), lines.threads, [&](i64 blk, int thread) {
            const i64 lo = blk * c.block, hi = std::min(lo + c.block, c.n);
            double* causal = c.lines + thread * c.line_size;
            causal_rows<TS>(c, lo, hi, causal);
            const double* row = causal + (c.n_rows - 1) * c.pitch;
            for (i64 k = 0; k < hi - lo; k++) c_out[lo + k] = row[k];
        });
    });
}

void anticausal_segment(const InArray& source_array, nb::handle rows_object, i64 i_start, i64 n_ext, double z,
                        nb::handle acc_object, nb::handle c_in_object, const OutArray& y_next_array,
                        const OutArray& lines_array, i64 block, const OutArray& dest_array, nb::handle dest_rows_object)
{
    const char* function = "anticausal_segment";
    const View source = rows_2d(view(source_array, 2, function, "source"), function, "source");
    const View dest = rows_2d(view(dest_array, 2, function, "dest"), function, "dest");
    const Contiguous<i64> rows = contiguous<i64>(rows_object, 1, function, "rows");
    const Contiguous<i64> dest_rows = contiguous<i64>(dest_rows_object, 1, function, "dest_rows");
    const Contiguous<double> acc = contiguous<double>(acc_object, 1, function, "acc");
    const i64 n = acc.size;
    const Contiguous<double> c_in = in_vector(c_in_object, n, function, "c_in");
    double* y_next = out_vector(y_next_array, n, function, "y_next");
    Recursion c = recursion(source, rows, i_start, n_ext, z, n, block, function);
    require(rows.size >= 1, function, "a segment has at least one row");
    require(dest_rows.size == rows.size, function, "dest_rows must have one entry per row");
    for (i64 q = 0; q < dest_rows.size; ++q) {
        require(dest_rows.data[q] < dest.shape[0], function, "dest_rows points past dest");
    }
    require(dest.shape[1] >= n, function, "dest has fewer columns than the lines");
    const Scratch lines = scratch(lines_array, function);
    with_scratch(c, lines, rows.size, function);
    c.acc = acc.data;
    c.c_in = c_in.data;
    dispatch(bool_as_uint8(source.dtype), source_types(), function, "source", [&](auto t) {
        using TS = typename decltype(t)::type;
        with_dest<TS>(dest, function, [&](auto d) {
            using TD = typename decltype(d)::type;
            nb::gil_scoped_release release;
            parallel_for(c.blocks(), lines.threads, [&](i64 blk, int thread) {
                anticausal_block<TS, TD>(c, y_next, dest.data, dest.stride[0], dest_rows.data, blk, thread);
            });
        });
    });
}

void filter_from_states(const InArray& source_array, nb::handle rows_object, i64 n_ext, double z,
                        nb::handle causal_first_object, nb::handle anticausal_last_object, const OutArray& dest_array,
                        const OutArray& lines_array, i64 block)
{
    const char* function = "filter_from_states";
    const View source = rows_2d(view(source_array, 2, function, "source"), function, "source");
    const View dest = rows_2d(view(dest_array, 2, function, "dest"), function, "dest");
    const Contiguous<i64> rows = contiguous<i64>(rows_object, 1, function, "rows");
    const Contiguous<double> causal_first = contiguous<double>(causal_first_object, 1, function, "causal_first");
    const i64 n = causal_first.size;
    const Contiguous<double> anticausal_last = in_vector(anticausal_last_object, n, function, "anticausal_last");
    Recursion c = recursion(source, rows, 0, n_ext, z, n, block, function);
    require(rows.size >= 1, function, "a cut line keeps at least one row");
    require(dest.shape[0] >= rows.size && dest.shape[1] >= n, function, "dest must hold the kept rows' lines");
    const Scratch lines = scratch(lines_array, function);
    with_scratch(c, lines, rows.size, function);
    dispatch(bool_as_uint8(source.dtype), source_types(), function, "source", [&](auto t) {
        using TS = typename decltype(t)::type;
        with_dest<TS>(dest, function, [&](auto d) {
            using TD = typename decltype(d)::type;
            nb::gil_scoped_release release;
            parallel_for(c.blocks(), lines.threads, [&](i64 blk, int thread) {
                states_block<TS, TD>(c, causal_first.data, anticausal_last.data, dest.data, dest.stride[0], blk,
                                     thread);
            });
        });
    });
}

}  // namespace

void bind_recursion(nb::module_& m)
{
    m.def("causal_initial_sum", &causal_initial_sum, "source"_a, "front"_a, "back"_a, "i_start"_a, "n_ext"_a,
          "pole"_a, "powers"_a, "acc"_a.noconvert(), "block"_a, nb::kw_only(), "threads"_a = 0,
          "Pass 1 of the streamed prefilter along axis 0: adds rows i_start + q (source rows front[q] "
          "and their mirrors back[q]) to the causal initial sums acc (gr_spline.cuh). threads: 0 for "
          "the cores this process may run on.");
    m.def("causal_segment", &causal_segment, "source"_a, "rows"_a, "i_start"_a, "n_ext"_a, "pole"_a, "acc"_a,
          "c_in"_a, "c_out"_a.noconvert(), "lines"_a.noconvert(), "block"_a,
          "Pass 2: the causal recursion over one segment of rows from c_in (or acc at row 0); the "
          "segment's last causal values into c_out.");
    m.def("anticausal_segment", &anticausal_segment, "source"_a, "rows"_a, "i_start"_a, "n_ext"_a, "pole"_a,
          "acc"_a, "c_in"_a, "y_next"_a.noconvert(), "lines"_a.noconvert(), "block"_a, "dest"_a.noconvert(),
          "dest_rows"_a,
          "Pass 3: the segment's causal values again, then its anti-causal values from y_next (updated); "
          "row q stored into dest row dest_rows[q] where that is >= 0 (dest float64, or float32 for a "
          "float32 source).");
    m.def("filter_from_states", &filter_from_states, "source"_a, "rows"_a, "n_ext"_a, "pole"_a, "causal_first"_a,
          "anticausal_last"_a, "dest"_a.noconvert(), "lines"_a.noconvert(), "block"_a,
          "The prefilter of a cut line's kept rows from the whole line's causal value at the first and "
          "anti-causal value at the last kept row (docs/design.md section 2).");
}

}  // namespace gr
