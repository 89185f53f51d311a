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
                if round_to_int:
                    acc = np.rint(acc)
                    if acc < lo:
                        acc = lo
                    elif acc > hi:
                        acc = hi
                out[j0, c, k] = acc


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
                            wt = wab * w2[j2, c]
                            lab = src[i0[j0, a], i1[j1, b], i2[j2, c]]
                            found = False
                            for q in range(m):
                                if labels[q] == lab:
                                    scores[q] += wt
                                    found = True
                                    break
                            if not found:
                                labels[m] = lab
                                scores[m] = wt
                                m += 1
                best = 0
                for q in range(1, m):
                    if scores[q] > scores[best] or (scores[q] == scores[best] and labels[q] < labels[best]):
                        best = q
                out[j0, j1, j2] = labels[best]


@njit(cache=True, parallel=True, nogil=True)
def gather_clamped(src, m0, m1, m2, out):
    """``out[a, b, c] = src[m0[a], m1[b], m2[c]]`` converted to ``out``'s dtype."""
    for a in prange(m0.shape[0]):
        for b in range(m1.shape[0]):
            for c in range(m2.shape[0]):
                out[a, b, c] = src[m0[a], m1[b], m2[c]]


@njit(cache=True, parallel=True, nogil=True)
def spline_filter_axis0(coef, first, pad_before, length, pad_after, pole, lines):
    """Cubic B-spline prefilter, in place, along axis 0 of ``coef``.

    ``coef`` holds rows ``[first, first + coef.shape[0])`` of the extended line
    (``pad_before`` copies of data row 0, ``length`` data rows, ``pad_after`` copies
    of the last row) and must contain every data row. ``lines`` is float64 scratch
    ``(threads, n_ext, coef.shape[2])``. Each line is filtered in
    float64 over the whole extended line with mirror boundaries, as SciPy does
    after its edge padding: gain, causal pass, anti-causal pass.
    """
    n_ext = pad_before + length + pad_after
    n_rows = coef.shape[0]
    n_mid = coef.shape[1]
    n_last = coef.shape[2]
    z = pole
    gain = (1.0 - z) * (1.0 - 1.0 / z) if n_ext > 1 else 1.0
    z_last = z ** (n_ext - 1)
    for b in prange(n_mid):
        ext = lines[get_thread_id()]
        for k in range(length):
            for c in range(n_last):
                ext[pad_before + k, c] = coef[pad_before - first + k, b, c] * gain
        for k in range(pad_before):
            for c in range(n_last):
                ext[k, c] = ext[pad_before, c]
        for k in range(pad_after):
            for c in range(n_last):
                ext[pad_before + length + k, c] = ext[pad_before + length - 1, c]
        if n_ext > 1:
            # causal initial value for mirror boundaries
            for c in range(n_last):
                acc = ext[0, c] + z_last * ext[n_ext - 1, c]
                z_i = z
                for i in range(1, n_ext - 1):
                    acc += z_i * (ext[i, c] + z_last * ext[n_ext - 1 - i, c])
                    z_i *= z
                ext[0, c] = acc / (1.0 - z_last * z_last)
            for i in range(1, n_ext):
                for c in range(n_last):
                    ext[i, c] += z * ext[i - 1, c]
            for c in range(n_last):
                ext[n_ext - 1, c] = (z * ext[n_ext - 2, c] + ext[n_ext - 1, c]) * z / (z * z - 1.0)
            for i in range(n_ext - 2, -1, -1):
                for c in range(n_last):
                    ext[i, c] = z * (ext[i + 1, c] - ext[i, c])
        for k in range(n_rows):
            for c in range(n_last):
                coef[k, b, c] = ext[first + k, c]
