"""Compiled CPU loops (Numba) that apply sampling tables to 3-D arrays.

Why Numba: a separable resample is three short gather-and-weight loops. NumPy can
only express them with fancy indexing, which materialises a temporary per tap and
runs on one core; SciPy's ``zoom`` evaluates every output voxel with its generic
N-d spline loop. The loops below fuse the passes plane by plane (a plane of the
first axis stays in cache while the other two axes are applied), write straight
into the output, and run the planes on every core. See ``benchmarks/results/cpu.md``.

Arithmetic contract shared with ``kernels/*.cu`` (so results agree bit for bit):
products ``w * x`` and sums in the working dtype (the weights' dtype), taps added
left to right, axis passes in the order given (the view's axis 0, 1, 2), no fused
multiply-add, integer outputs rounded half to even (``rint``) then clipped.
"""

from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

from . import _compile_notice  # noqa: F401  (a one-line notice on stderr when these loops compile)


@njit(cache=True, nogil=True, inline="always")
def round_clip(acc, round_to_int, lo, hi):
    """``acc`` as written to an integer output (``rint``, then clipped to ``[lo, hi]``), else as it is."""
    if round_to_int:
        acc = np.rint(acc)
        if acc < lo:
            acc = lo
        elif acc > hi:
            acc = hi
    return acc


@njit(cache=True, parallel=True, nogil=True)
def separable3(src, i0, w0, i1, w1, i2, w2, out, round_to_int, lo, hi, planes, planes2):
    """``out[j0, j1, j2] = sum_c w2 * (sum_b w1 * (sum_a w0 * src[a, b, c]))``.

    ``planes`` ``(threads, n1, n2)`` and ``planes2`` ``(threads, n1_out, n2)`` are
    scratch in the working dtype, allocated by the caller so memory is accounted.
    """
    n0o, t0 = i0.shape
    n1o, t1 = i1.shape
    n2o, t2 = i2.shape
    n1 = src.shape[1]
    n2 = src.shape[2]
    for j0 in prange(n0o):
        plane = planes[get_thread_id()]
        for a in range(n1):
            row = i0[j0, 0]
            wt = w0[j0, 0]
            for b in range(n2):
                plane[a, b] = wt * src[row, a, b]
            for t in range(1, t0):
                row = i0[j0, t]
                wt = w0[j0, t]
                for b in range(n2):
                    plane[a, b] += wt * src[row, a, b]
        plane2 = planes2[get_thread_id()]
        for c in range(n1o):
            row = i1[c, 0]
            wt = w1[c, 0]
            for b in range(n2):
                plane2[c, b] = wt * plane[row, b]
            for t in range(1, t1):
                row = i1[c, t]
                wt = w1[c, t]
                for b in range(n2):
                    plane2[c, b] += wt * plane[row, b]
        for c in range(n1o):
            for k in range(n2o):
                acc = w2[k, 0] * plane2[c, i2[k, 0]]
                for t in range(1, t2):
                    acc += w2[k, t] * plane2[c, i2[k, t]]
                out[j0, c, k] = round_clip(acc, round_to_int, lo, hi)


@njit(cache=True, nogil=True, inline="always")
def add_label_score(labels, scores, count, label, weight):
    """Add ``weight`` to ``label``'s score among the first ``count`` labels (a new entry if
    it is not there yet); returns the new count. Scores add in tap order."""
    for q in range(count):
        if labels[q] == label:
            scores[q] += weight
            return count
    labels[count] = label
    scores[count] = weight
    return count + 1


@njit(cache=True, nogil=True, inline="always")
def best_label(labels, scores, count):
    """The label of highest score among the first ``count``; ties go to the lower label."""
    best = 0
    for q in range(1, count):
        if scores[q] > scores[best] or (scores[q] == scores[best] and labels[q] < labels[best]):
            best = q
    return labels[best]


@njit(cache=True, parallel=True, nogil=True)
def label3(src, i0, w0, i1, w1, i2, w2, out):
    """Per-label linear weights over the 2x2x2 taps, arg-max, ties to the lower label.

    Only the (at most 8) labels present among a voxel's taps are scored, so memory and
    time do not grow with the number of labels. Weights are float64 products
    ``(w0 * w1) * w2``, summed per label in tap order.
    """
    n0o, t0 = i0.shape
    n1o, t1 = i1.shape
    n2o, t2 = i2.shape
    for j0 in prange(n0o):
        labels = np.empty(t0 * t1 * t2, dtype=src.dtype)
        scores = np.empty(t0 * t1 * t2, dtype=np.float64)
        for j1 in range(n1o):
            for j2 in range(n2o):
                m = 0
                for a in range(t0):
                    for b in range(t1):
                        wab = w0[j0, a] * w1[j1, b]
                        for c in range(t2):
                            m = add_label_score(labels, scores, m, src[i0[j0, a], i1[j1, b], i2[j2, c]],
                                                wab * w2[j2, c])
                out[j0, j1, j2] = best_label(labels, scores, m)


@njit(cache=True, parallel=True, nogil=True)
def gather_clamped(src, m0, m1, m2, out):
    """``out[a, b, c] = src[m0[a], m1[b], m2[c]]`` converted to ``out``'s dtype."""
    for a in prange(m0.shape[0]):
        for b in range(m1.shape[0]):
            for c in range(m2.shape[0]):
                out[a, b, c] = src[m0[a], m1[b], m2[c]]


@njit(cache=True, nogil=True)
def prefilter_constants(n_ext, pole):
    """``(gain, z_last)`` of the prefilter over an extended line of ``n_ext`` rows."""
    z = pole
    gain = (1.0 - z) * (1.0 - 1.0 / z) if n_ext > 1 else 1.0
    z_last = z ** (n_ext - 1)
    return gain, z_last


@njit(cache=True, nogil=True)
def _filter_lines(view, first, pad_before, length, pad_after, pole, ext):
    """Prefilter every line along axis 0 of the 2-D ``view`` in place (one call of the filter).

    ``view`` holds rows ``[first, first + view.shape[0])`` of the extended line and every
    data row; ``ext`` is float64 scratch of at least ``(n_ext + 1, view.shape[1])``. Each
    line is filtered in float64 over the whole extended line with mirror boundaries, as
    SciPy does after its edge padding: gain, causal pass, anti-causal pass; the kept rows
    are stored back in ``view``'s dtype. Lines are independent: the loops run across them
    (row by row) so they vectorise, each line seeing the same operations in the same order.
    """
    n_ext = pad_before + length + pad_after
    n_rows = view.shape[0]
    m = view.shape[1]
    z = pole
    gain, z_last = prefilter_constants(n_ext, pole)
    for k in range(length):
        row = ext[pad_before + k, :m]
        source = view[pad_before - first + k]
        for c in range(m):
            row[c] = source[c] * gain
    edge = ext[pad_before, :m]
    for k in range(pad_before):
        row = ext[k, :m]
        for c in range(m):
            row[c] = edge[c]
    edge = ext[pad_before + length - 1, :m]
    for k in range(pad_after):
        row = ext[pad_before + length + k, :m]
        for c in range(m):
            row[c] = edge[c]
    if n_ext > 1:
        # causal initial value for mirror boundaries, summed in row n_ext
        total = ext[n_ext, :m]
        head = ext[0, :m]
        tail = ext[n_ext - 1, :m]
        for c in range(m):
            total[c] = head[c] + z_last * tail[c]
        z_i = z
        for i in range(1, n_ext - 1):
            row = ext[i, :m]
            mirror = ext[n_ext - 1 - i, :m]
            for c in range(m):
                total[c] += z_i * (row[c] + z_last * mirror[c])
            z_i *= z
        for c in range(m):
            head[c] = total[c] / (1.0 - z_last * z_last)
        for i in range(1, n_ext):
            row = ext[i, :m]
            previous = ext[i - 1, :m]
            for c in range(m):
                row[c] += z * previous[c]
        before = ext[n_ext - 2, :m]
        for c in range(m):
            tail[c] = (z * before[c] + tail[c]) * z / (z * z - 1.0)
        for i in range(n_ext - 2, -1, -1):
            row = ext[i, :m]
            after = ext[i + 1, :m]
            for c in range(m):
                row[c] = z * (after[c] - row[c])
    for k in range(n_rows):
        row = ext[first + k, :m]
        target = view[k]
        for c in range(m):
            target[c] = row[c]


@njit(cache=True, parallel=True, nogil=True)
def spline_filter_axis0(coef, first, pad_before, length, pad_after, pole, lines):
    """Cubic B-spline prefilter, in place, along axis 0 of ``coef``.

    ``coef`` holds rows ``[first, first + coef.shape[0])`` of the extended line
    (``pad_before`` copies of data row 0, ``length`` data rows, ``pad_after`` copies
    of the last row) and must contain every data row. ``lines`` is float64 scratch
    ``(threads, n_ext + 1, coef.shape[2])``. See :func:`_filter_lines`.
    """
    for b in prange(coef.shape[1]):
        _filter_lines(coef[:, b, :], first, pad_before, length, pad_after, pole, lines[get_thread_id()])


# ---------------------------------------------------------------------------------------
# Cubic, streamed: the same coefficients as gather_clamped + spline_filter_axis0 per axis,
# produced one plane of the permuted view's axis 0 at a time, so no coefficient array of
# the whole block is ever held. Planes are (n1, n2) arrays of the view's axes 1 and 2
# (kept coefficient rows of each); in-plane filters are whole lines inside a plane. The
# filter along axis 0 is run per element as one recursion over the extended line, in
# segments: pass 1 sums the causal initial value, pass 2 runs the causal recursion and
# keeps its value at each segment's end (a checkpoint), pass 3 goes back segment by
# segment, recomputing the segment's causal values from its checkpoint (the very same
# operations, so the very same values) and running the anti-causal recursion. Every
# element sees exactly the operations of _filter_lines, in the same order.
# ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _filter_plane(plane, stages, pole, ext):
    """Apply in-plane prefilter ``stages`` rows ``(plane axis, first, pad_before, length, pad_after)``."""
    for s in range(stages.shape[0]):
        if stages[s, 0] == 0:
            _filter_lines(plane, stages[s, 1], stages[s, 2], stages[s, 3], stages[s, 4], pole, ext)
        else:
            _filter_lines(plane.T, stages[s, 1], stages[s, 2], stages[s, 3], stages[s, 4], pole, ext)


@njit(cache=True, parallel=True, nogil=True)
def gather_planes(src, rows, slots, map1, map2, run_lo, run_hi, planes, stages, pole, lines):
    """``planes[slots[q]] = src[rows[q]][map1][:, map2]`` (working dtype), then in-plane ``stages``.

    ``map2[b] = map2[run_lo] + b - run_lo`` for ``run_lo <= b < run_hi`` (a plain copy
    there). ``lines`` is float64 scratch ``(threads, n_ext + 1, n)`` for every stage.
    """
    n1 = map1.shape[0]
    n2 = map2.shape[0]
    shift = map2[run_lo] - run_lo if run_hi > run_lo else 0
    for q in prange(rows.shape[0]):
        plane = planes[slots[q]]
        row = rows[q]
        for a in range(n1):
            line = src[row, map1[a]]
            target = plane[a]
            for b in range(run_lo):
                target[b] = line[map2[b]]
            for b in range(run_lo, run_hi):
                target[b] = line[shift + b]
            for b in range(run_hi, n2):
                target[b] = line[map2[b]]
        if stages.shape[0] > 0:
            _filter_plane(plane, stages, pole, lines[get_thread_id()])


@njit(cache=True, parallel=True, nogil=True)
def filter_planes(planes, slots, stages, pole, lines):
    """In-plane prefilter ``stages`` on ``planes[slots[q]]`` for every ``q``."""
    for q in prange(slots.shape[0]):
        _filter_plane(planes[slots[q]], stages, pole, lines[get_thread_id()])


@njit(cache=True, parallel=True, nogil=True)
def causal_initial_sum(source, front, back, i_start, n_ext, pole, powers, acc, block):
    """Pass 1 over rows ``i_start + q`` of the extended line (planes flattened to rows).

    ``source[front[q]]`` holds row ``i_start + q``, ``source[back[q]]`` row
    ``n_ext - 1 - (i_start + q)``; ``acc`` accumulates
    ``e[0] + z_last e[n-1] + sum_i z^i (e[i] + z_last e[n-1-i])`` for ``1 <= i <= n - 2``
    in row order, ``e = float64(value) * gain``.
    """
    gain, z_last = prefilter_constants(n_ext, pole)
    n = acc.shape[0]
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        hi = min(lo + block, n)
        total = acc[lo:hi]
        for q in range(front.shape[0]):
            i = i_start + q
            f = source[front[q], lo:hi]
            b = source[back[q], lo:hi]
            if i == 0:
                for k in range(hi - lo):
                    total[k] = np.float64(f[k]) * gain + z_last * (np.float64(b[k]) * gain)
            elif i <= n_ext - 2:
                z_i = powers[i]
                for k in range(hi - lo):
                    total[k] += z_i * (np.float64(f[k]) * gain + z_last * (np.float64(b[k]) * gain))


@njit(cache=True, nogil=True)
def _causal_rows(source, rows, i_start, n_ext, pole, acc, c_in, lo, hi, causal):
    """Causal values of rows ``i_start + q`` (``source[rows[q]]``) into ``causal[q, :hi - lo]``."""
    gain, z_last = prefilter_constants(n_ext, pole)
    z = pole
    m = hi - lo
    for q in range(rows.shape[0]):
        i = i_start + q
        row = causal[q, :m]
        values = source[rows[q], lo:hi]
        if i == 0:
            start = acc[lo:hi]
            for k in range(m):
                row[k] = start[k] / (1.0 - z_last * z_last)
        else:
            prev = c_in[lo:hi] if q == 0 else causal[q - 1, :m]
            for k in range(m):
                row[k] = np.float64(values[k]) * gain + z * prev[k]


@njit(cache=True, parallel=True, nogil=True)
def causal_segment(source, rows, i_start, n_ext, pole, acc, c_in, c_out, lines, block):
    """Pass 2: run the causal recursion over a segment and store its last value in ``c_out``.

    ``c_in`` is the causal value of row ``i_start - 1`` (unused when ``i_start == 0``:
    then row 0 starts from the initial sum ``acc``); ``lines`` is float64 scratch
    ``(threads, segment rows, block)``.
    """
    n = acc.shape[0]
    last = rows.shape[0] - 1
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        hi = min(lo + block, n)
        causal = lines[get_thread_id()]
        _causal_rows(source, rows, i_start, n_ext, pole, acc, c_in, lo, hi, causal)
        end = c_out[lo:hi]
        row = causal[last, :hi - lo]
        for k in range(hi - lo):
            end[k] = row[k]


@njit(cache=True, parallel=True, nogil=True)
def anticausal_segment(source, rows, i_start, n_ext, pole, acc, c_in, y_next, lines, block, dest, dest_rows):
    """Pass 3 over one segment: causal values again from ``c_in``, then the anti-causal ones.

    ``y_next`` carries the anti-causal value of row ``i_start + len(rows)`` in and that of
    row ``i_start`` out. Row ``i_start + q`` is stored (working dtype) in
    ``dest[dest_rows[q]]`` where ``dest_rows[q] >= 0`` (the kept rows).
    """
    n = acc.shape[0]
    z = pole
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        hi = min(lo + block, n)
        m = hi - lo
        causal = lines[get_thread_id()]
        _causal_rows(source, rows, i_start, n_ext, pole, acc, c_in, lo, hi, causal)
        y = y_next[lo:hi]
        for q in range(rows.shape[0] - 1, -1, -1):
            i = i_start + q
            row = causal[q, :m]
            if i == n_ext - 1:
                before = c_in[lo:hi] if q == 0 else causal[q - 1, :m]
                for k in range(m):
                    y[k] = (z * before[k] + row[k]) * z / (z * z - 1.0)
            else:
                for k in range(m):
                    y[k] = z * (y[k] - row[k])
            if dest_rows[q] >= 0:
                target = dest[dest_rows[q], lo:hi]
                for k in range(m):
                    target[k] = y[k]


# ---------------------------------------------------------------------------------------
# Cubic across slabs: a slab's part of the whole line's recursion, started from the
# whole line's states at its first and last kept rows (gpuresample.spline_states).
# ---------------------------------------------------------------------------------------


@njit(cache=True, parallel=True, nogil=True)
def filter_from_states(source, rows, n_ext, pole, causal_first, anticausal_last, dest, lines, block):
    """The prefilter of kept rows ``q = 0 .. len(rows) - 1`` of a line cut from a longer one.

    ``source[rows[q]]`` holds row ``q``'s data (planes flattened to rows); the whole line
    (``n_ext`` rows) had the causal value ``causal_first`` at row 0 and the anti-causal value
    ``anticausal_last`` at the last row. Rows ``q >= 1`` take ``c = e + z c_prev`` and rows
    below the last ``y = z (y_next - c)``, as :func:`_filter_lines` does over the whole line,
    so every value is the whole line's bit for bit. Results are stored in ``dest[q]``
    (its dtype); ``lines`` is float64 scratch ``(threads, len(rows), block)``.
    """
    gain, _ = prefilter_constants(n_ext, pole)
    z = pole
    n = causal_first.shape[0]
    kept = rows.shape[0]
    for blk in prange((n + block - 1) // block):
        lo = blk * block
        hi = min(lo + block, n)
        m = hi - lo
        causal = lines[get_thread_id()]
        first = causal[0, :m]
        start = causal_first[lo:hi]
        for k in range(m):
            first[k] = start[k]
        for q in range(1, kept):
            row = causal[q, :m]
            prev = causal[q - 1, :m]
            values = source[rows[q], lo:hi]
            for k in range(m):
                row[k] = np.float64(values[k]) * gain + z * prev[k]
        y = causal[kept - 1, :m]
        end = anticausal_last[lo:hi]
        for k in range(m):
            y[k] = end[k]
        target = dest[kept - 1, lo:hi]
        for k in range(m):
            target[k] = y[k]
        for q in range(kept - 2, -1, -1):
            row = causal[q, :m]
            target = dest[q, lo:hi]
            for k in range(m):
                row[k] = z * (y[k] - row[k])
                target[k] = row[k]
            y = row
