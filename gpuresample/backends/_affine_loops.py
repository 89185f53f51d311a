"""Compiled CPU loops (Numba) for oblique targets: a position per output voxel.

The output voxel ``(j0, j1, j2)`` (``j0`` counted from ``j0_start``, the slab's first
row) samples the source at ``u_i = ((m[i,0] j0 + m[i,1] j1) + m[i,2] j2) + m[i,3]``
(float64, evaluated in exactly this order, no fused multiply-add), with ``m`` the 3x4
matrix ``source.affine⁻¹ · target.affine`` computed on the host. A voxel whose ``u_i``
lies outside ``[-0.5 - band_atol, n_i - 0.5 + band_atol]`` on any axis gets ``fill``.

Inside, the taps and weights along each axis are those of the per-axis sampling
tables (:func:`gpuresample.tables.axis_table`) for that one position: positions
clamped to the edge, nearest ``floor(u + 0.5)``, zero-weight taps pointing at the
tap of largest weight. ``first[i]`` is the global index (input row, or cubic
coefficient row of the extended line) of the block's row 0 along axis ``i``.

Arithmetic (shared with ``kernels/affine.cu``): weights computed in float64 and
rounded to the working dtype (label weights stay float64); ``w * x`` products and
sums in the working dtype; taps along axis 0 added first (innermost), then axis 1,
then axis 2; integer outputs rounded half to even then clipped.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_thread_id, njit, prange

from ._cpu_loops import add_label_score, best_label, round_clip

#: Positions at least this far (source voxels) inside ``[0, n - 1]`` by a per-line estimate
#: skip clamping and the band test; the estimate's rounding is ~1e-13 voxels, far below.
INTERIOR_MARGIN = 1e-6


@njit(cache=True, nogil=True, inline="always")
def _band_high(n, band_atol):
    """Upper edge of the band along an axis of ``n`` rows (the lower one is ``-0.5 - band_atol``)."""
    return (n - 0.5) + band_atol


@njit(cache=True, nogil=True, inline="always")
def _linear_taps(u, n):
    """``(i0, i1, frac)`` of a linear tap pair (global rows), the zero-weight tap redirected."""
    clamped = min(max(u, 0.0), n - 1.0)
    base = math.floor(clamped)
    frac = clamped - base
    i0 = int(base)
    i1 = i0 + 1 if (i0 + 1 < n and frac != 0.0) else i0  # min(i0 + 1, n - 1); i0 where frac is 0
    return i0, i1, frac


@njit(cache=True, nogil=True, inline="always")
def _inner_taps(u):
    """:func:`_linear_taps` for ``0 <= u < n - 1`` (no clamping needed): the same three numbers."""
    base = math.floor(u)
    frac = u - base
    i0 = int(base)
    return i0, (i0 + 1 if frac != 0.0 else i0), frac


@njit(cache=True, nogil=True, inline="always")
def _interior(offset, slope, n, start, stop):
    """``[start, stop)`` narrowed to the ``j`` where ``offset + slope * j`` lies in
    ``[INTERIOR_MARGIN, n - 1 - INTERIOR_MARGIN]`` (estimated; the margin covers its rounding)."""
    lo_u = INTERIOR_MARGIN
    hi_u = (n - 1.0) - INTERIOR_MARGIN
    if slope == 0.0:
        return (start, stop) if lo_u <= offset <= hi_u else (start, start)
    # limited to [-1, stop + 1] before converting, so a tiny slope cannot overflow an int
    a = min(max((lo_u - offset) / slope, -1.0), stop + 1.0)
    b = min(max((hi_u - offset) / slope, -1.0), stop + 1.0)
    first = max(start, math.ceil(min(a, b)))
    last = min(stop, math.floor(max(a, b)) + 1)
    return (first, last) if first < last else (start, start)


@njit(cache=True, nogil=True, inline="always")
def _store(out, j0, j1, j2, acc, round_to_int, lo, hi):
    out[j0, j1, j2] = round_clip(acc, round_to_int, lo, hi)


@njit(cache=True, nogil=True, inline="always")
def _matrix(m):
    """The 3x4 matrix as a tuple of its 12 entries, row by row (kept in registers)."""
    return (m[0, 0], m[0, 1], m[0, 2], m[0, 3], m[1, 0], m[1, 1], m[1, 2], m[1, 3],
            m[2, 0], m[2, 1], m[2, 2], m[2, 3])


@njit(cache=True, nogil=True, inline="always")
def _line_start(mt, J0, J1):
    """``m[i,0] j0 + m[i,1] j1`` per axis: the first two terms of the output line (j0, j1)."""
    return mt[0] * J0 + mt[1] * J1, mt[4] * J0 + mt[5] * J1, mt[8] * J0 + mt[9] * J1


@njit(cache=True, nogil=True, inline="always")
def _position(mt, p0, p1, p2, J2):
    """The source position of voxel ``j2`` of that line, ``(p + m[i,2] j2) + m[i,3]`` per axis."""
    return (p0 + mt[2] * J2) + mt[3], (p1 + mt[6] * J2) + mt[7], (p2 + mt[10] * J2) + mt[11]


@njit(cache=True, nogil=True, inline="always")
def _band(n_src, band_atol):
    """``(low, high0, high1, high2)``: the positions per axis sampled rather than filled."""
    return (-0.5 - band_atol, _band_high(n_src[0], band_atol), _band_high(n_src[1], band_atol),
            _band_high(n_src[2], band_atol))


@njit(cache=True, nogil=True, inline="always")
def _outside(u0, u1, u2, band):
    """Whether a position lies outside the band on any axis (its voxel gets ``fill``)."""
    low, high0, high1, high2 = band
    return u0 < low or u0 > high0 or u1 < low or u1 > high1 or u2 < low or u2 > high2


@njit(cache=True, parallel=True, nogil=True)
def affine_nearest(src, m, n_src, first, j0_start, band_atol, fill, out, same_dtype, round_to_int, lo, hi):
    """Nearest: ``src`` at ``floor(u + 0.5)`` per axis (clamped); values copied as they are
    when ``same_dtype``, else converted through float64 (rounded and clipped for integers)."""
    n0o, n1o, n2o = out.shape
    mt = _matrix(m)
    band = _band(n_src, band_atol)
    for j0 in prange(n0o):
        J0 = np.float64(j0 + j0_start)
        for j1 in range(n1o):
            p0, p1, p2 = _line_start(mt, J0, np.float64(j1))
            for j2 in range(n2o):
                u0, u1, u2 = _position(mt, p0, p1, p2, np.float64(j2))
                if _outside(u0, u1, u2, band):
                    out[j0, j1, j2] = fill
                    continue
                i0 = min(max(math.floor(u0 + 0.5), 0), n_src[0] - 1) - first[0]
                i1 = min(max(math.floor(u1 + 0.5), 0), n_src[1] - 1) - first[1]
                i2 = min(max(math.floor(u2 + 0.5), 0), n_src[2] - 1) - first[2]
                if same_dtype:
                    out[j0, j1, j2] = src[i0, i1, i2]
                else:
                    _store(out, j0, j1, j2, np.float64(src[i0, i1, i2]), round_to_int, lo, hi)


@njit(cache=True, parallel=True, nogil=True)
def affine_linear(src, m, n_src, first, j0_start, band_atol, fill, out, round_to_int, lo, hi, weights):
    """Trilinear over the 2x2x2 taps; ``weights`` is ``(threads, 6)`` scratch of the working dtype."""
    n0o, n1o, n2o = out.shape
    mt = _matrix(m)
    band = _band(n_src, band_atol)
    for j0 in prange(n0o):
        w = weights[get_thread_id()]
        J0 = np.float64(j0 + j0_start)
        for j1 in range(n1o):
            p0, p1, p2 = _line_start(mt, J0, np.float64(j1))
            # j2 in [inner_start, inner_stop): every position strictly inside [0, n - 1] (no
            # clamping, no band test: the same numbers, fewer operations)
            inner_start, inner_stop = _interior(p0 + mt[3], mt[2], n_src[0], 0, n2o)
            inner_start, inner_stop = _interior(p1 + mt[7], mt[6], n_src[1], inner_start, inner_stop)
            inner_start, inner_stop = _interior(p2 + mt[11], mt[10], n_src[2], inner_start, inner_stop)
            for j2 in range(n2o):
                u0, u1, u2 = _position(mt, p0, p1, p2, np.float64(j2))
                if inner_start <= j2 < inner_stop:
                    a0, b0, f0 = _inner_taps(u0)
                    a1, b1, f1 = _inner_taps(u1)
                    a2, b2, f2 = _inner_taps(u2)
                else:
                    if _outside(u0, u1, u2, band):
                        out[j0, j1, j2] = fill
                        continue
                    a0, b0, f0 = _linear_taps(u0, n_src[0])
                    a1, b1, f1 = _linear_taps(u1, n_src[1])
                    a2, b2, f2 = _linear_taps(u2, n_src[2])
                a0 -= first[0]
                b0 -= first[0]
                a1 -= first[1]
                b1 -= first[1]
                a2 -= first[2]
                b2 -= first[2]
                w[0] = 1.0 - f0
                w[1] = f0
                w[2] = 1.0 - f1
                w[3] = f1
                w[4] = 1.0 - f2
                w[5] = f2
                # axis 0 first, then axis 1, then axis 2 (the separable passes' order)
                x00 = w[0] * src[a0, a1, a2] + w[1] * src[b0, a1, a2]
                x10 = w[0] * src[a0, b1, a2] + w[1] * src[b0, b1, a2]
                x01 = w[0] * src[a0, a1, b2] + w[1] * src[b0, a1, b2]
                x11 = w[0] * src[a0, b1, b2] + w[1] * src[b0, b1, b2]
                y0 = w[2] * x00 + w[3] * x10
                y1 = w[2] * x01 + w[3] * x11
                _store(out, j0, j1, j2, w[4] * y0 + w[5] * y1, round_to_int, lo, hi)


@njit(cache=True, nogil=True, inline="always")
def _cubic_axis(u, n_ext, pad, first, w, taps, k):
    """Cubic B-spline taps (kept coefficient rows) and weights of position ``u`` into
    ``taps[4k:4k+4]``, ``w[4k:4k+4]`` (weights rounded to ``w``'s dtype)."""
    if n_ext == 1:  # the length-1 axis added to 2-D data: one tap of weight 1
        w[4 * k] = 1.0
        for q in range(4):
            taps[4 * k + q] = -first
        for q in range(1, 4):
            w[4 * k + q] = 0.0
        return
    padded = u + pad
    base = math.floor(padded)
    t = padded - base
    s = 1.0 - t
    w[4 * k] = s * s * s / 6.0
    w[4 * k + 1] = (3.0 * t * t * (t - 2.0) + 4.0) / 6.0
    w[4 * k + 2] = (3.0 * s * s * (s - 2.0) + 4.0) / 6.0
    w[4 * k + 3] = t * t * t / 6.0
    b = int(base)
    for q in range(4):
        taps[4 * k + q] = min(max(b - 1 + q, 0), n_ext - 1) - first
    if t == 0.0:  # the only weight that can be zero: point it at the largest tap (index 1)
        taps[4 * k + 3] = taps[4 * k + 1]


@njit(cache=True, nogil=True, inline="always")
def _cubic_line(coef, w, ix, b, c):
    """Taps along axis 0 at axis-1 tap ``b`` and axis-2 tap ``c``, added in order."""
    x = w[0] * coef[ix[0], ix[4 + b], ix[8 + c]]
    for a in range(1, 4):
        x += w[a] * coef[ix[a], ix[4 + b], ix[8 + c]]
    return x


@njit(cache=True, nogil=True, inline="always")
def _cubic_plane(coef, w, ix, c):
    """Axis-0 lines combined along axis 1, at axis-2 tap ``c``."""
    y = w[4] * _cubic_line(coef, w, ix, 0, c)
    for b in range(1, 4):
        y += w[4 + b] * _cubic_line(coef, w, ix, b, c)
    return y


@njit(cache=True, parallel=True, nogil=True)
def affine_cubic(coef, m, n_src, first, pads, j0_start, band_atol, fill, out, round_to_int, lo, hi, weights,
                 taps):
    """Cubic B-spline over 4x4x4 prefiltered coefficients (the extended line's rows;
    ``first`` counts in extended rows). ``weights`` ``(threads, 12)`` working dtype,
    ``taps`` ``(threads, 12)`` int64 scratch; ``pads[i]`` edge copies before and after
    axis ``i``'s line (0 for the length-1 axis of 2-D data)."""
    n0o, n1o, n2o = out.shape
    mt = _matrix(m)
    band = _band(n_src, band_atol)
    for j0 in prange(n0o):
        w = weights[get_thread_id()]
        ix = taps[get_thread_id()]
        J0 = np.float64(j0 + j0_start)
        for j1 in range(n1o):
            p0, p1, p2 = _line_start(mt, J0, np.float64(j1))
            for j2 in range(n2o):
                u0, u1, u2 = _position(mt, p0, p1, p2, np.float64(j2))
                if _outside(u0, u1, u2, band):
                    out[j0, j1, j2] = fill
                    continue
                _cubic_axis(u0, n_src[0] + 2 * pads[0], pads[0], first[0], w, ix, 0)
                _cubic_axis(u1, n_src[1] + 2 * pads[1], pads[1], first[1], w, ix, 1)
                _cubic_axis(u2, n_src[2] + 2 * pads[2], pads[2], first[2], w, ix, 2)
                acc = w[8] * _cubic_plane(coef, w, ix, 0)
                for c in range(1, 4):
                    acc += w[8 + c] * _cubic_plane(coef, w, ix, c)
                _store(out, j0, j1, j2, acc, round_to_int, lo, hi)


@njit(cache=True, parallel=True, nogil=True)
def affine_label(src, m, n_src, first, j0_start, band_atol, fill, out, labels, scores):
    """Per-label linear weights over the 2x2x2 taps, arg-max, ties to the lower label.

    Weights are float64 products ``(w0 * w1) * w2`` summed per label in tap order (as
    ``_cpu_loops.label3``). ``labels`` ``(threads, 8)`` of ``src``'s dtype and ``scores``
    ``(threads, 8)`` float64 are scratch.
    """
    n0o, n1o, n2o = out.shape
    mt = _matrix(m)
    band = _band(n_src, band_atol)
    for j0 in prange(n0o):
        lab_q = labels[get_thread_id()]
        score_q = scores[get_thread_id()]
        J0 = np.float64(j0 + j0_start)
        for j1 in range(n1o):
            p0, p1, p2 = _line_start(mt, J0, np.float64(j1))
            for j2 in range(n2o):
                u0, u1, u2 = _position(mt, p0, p1, p2, np.float64(j2))
                if _outside(u0, u1, u2, band):
                    out[j0, j1, j2] = fill
                    continue
                a0, b0, f0 = _linear_taps(u0, n_src[0])
                a1, b1, f1 = _linear_taps(u1, n_src[1])
                a2, b2, f2 = _linear_taps(u2, n_src[2])
                r0 = (a0 - first[0], b0 - first[0])
                r1 = (a1 - first[1], b1 - first[1])
                r2 = (a2 - first[2], b2 - first[2])
                w0 = (1.0 - f0, f0)
                w1 = (1.0 - f1, f1)
                w2 = (1.0 - f2, f2)
                count = 0
                for a in range(2):
                    for b in range(2):
                        wab = w0[a] * w1[b]
                        for c in range(2):
                            count = add_label_score(lab_q, score_q, count, src[r0[a], r1[b], r2[c]], wab * w2[c])
                out[j0, j1, j2] = best_label(lab_q, score_q, count)
