"""The array code's oblique path: an :class:`~gpuresample.onto.AffineSampling` block with
whole-array operations of an array module (CuPy for the cupyx backend, NumPy for the CPU
backend's array path).

The output voxel ``(j0, j1, j2)`` (``j0`` counted from the slab's first row) samples the
source at ``u_i = ((m[i,0] j0 + m[i,1] j1) + m[i,2] j2) + m[i,3]`` (float64, in exactly this
order, no fused multiply-add); a voxel whose ``u_i`` lies outside ``[-0.5 - band_atol,
n_i - 0.5 + band_atol]`` on any axis gets ``fill``. Inside, the taps and weights along each
axis are those of the per-axis tables for that one position (clamped to the edge, nearest
``floor(u + 0.5)``, zero-weight taps redirected); weights in float64 rounded to the working
dtype (labels: float64); taps along axis 0 added first, then axis 1, then axis 2
(docs/design.md §2). One IEEE operation per array operation, in the compiled loops' and
``kernels/affine.cu``'s order, so nearest, linear and label equal them bit for bit; cubic
reads the coefficients of the per-axis array path (``_array.spline_coefficients``: exact
with ``exact``, else SciPy's prefilter off axis 0, equal within float rounding). Output rows
are processed ``AFFINE_BLOCK_VOXELS`` at a time so the temporaries stay bounded.
"""

from __future__ import annotations


import numpy as np

from ..interpolation import Interpolation, working_dtype
from ..onto import BAND_ATOL_VOXELS, AffineSampling
from ._array import AFFINE_BLOCK_VOXELS, arg_max_label, spline_coefficients, tap_first, tap_next
from ._common import integer_limits, label_view_dtype

def _trailing_3d(array):
    return array[..., None] if array.ndim == 2 else array


def affine_with(xp, ndi, source, sampling: AffineSampling, out, exact=False) -> None:
    """Fill ``out`` (shape ``sampling.output_shape``) from the input rows ``sampling.input_rows``
    (``exact``: the cubic prefilter's recursion along every axis, see ``_array``)."""
    m, n_src, first, pads = sampling.as_3d()
    src3, out3 = _trailing_3d(source), _trailing_3d(out)
    interpolation = sampling.interpolation
    in_dtype, out_dtype = np.dtype(src3.dtype), np.dtype(out3.dtype)
    work = working_dtype(in_dtype)
    copy = interpolation is Interpolation.LABEL or (interpolation is Interpolation.NEAREST and in_dtype == out_dtype)
    if copy:
        values = src3.view(label_view_dtype(in_dtype))
    elif interpolation is Interpolation.CUBIC:
        values = spline_coefficients(xp, ndi, src3, sampling.lines_3d(), work, exact=exact)
    else:
        values = src3.astype(np.float32) if in_dtype == np.float16 else src3
    n0o, n1o, n2o = out3.shape
    rows = max(1, AFFINE_BLOCK_VOXELS // max(1, n1o * n2o))
    for start in range(0, n0o, rows):
        stop = min(start + rows, n0o)
        u, inside = _positions(xp, m, n_src, sampling.out_start + start, sampling.out_start + stop, n1o, n2o)
        if copy and interpolation is Interpolation.NEAREST:
            result = values[_nearest_rows(xp, u, n_src, first)]
        elif interpolation is Interpolation.NEAREST:
            result = values[_nearest_rows(xp, u, n_src, first)].astype(np.float64)
        elif interpolation is Interpolation.LINEAR:
            result = _linear(xp, values, u, n_src, first, work)
        elif interpolation is Interpolation.CUBIC:
            result = _cubic(xp, values, u, n_src, first, pads, work)
        else:
            result = _label(xp, values, u, n_src, first)
        if copy and out_dtype != in_dtype:  # labels into another dtype: through a block of labels
            labels = xp.empty((stop - start, n1o, n2o), in_dtype)
            _write(xp, result, inside, sampling.fill, labels, copy)
            out3[start:stop] = labels
        else:
            _write(xp, result, inside, sampling.fill, out3[start:stop], copy)


def _positions(xp, m, n_src, first_row, stop_row, n1, n2) -> tuple:
    """``u`` (three float64 arrays) of output rows ``[first_row, stop_row)`` and where all lie in the band."""
    j0 = xp.arange(first_row, stop_row, dtype=np.float64)[:, None, None]
    j1 = xp.arange(n1, dtype=np.float64)[None, :, None]
    j2 = xp.arange(n2, dtype=np.float64)[None, None, :]
    u, inside = [], None
    for i in range(3):
        p = float(m[i, 0]) * j0 + float(m[i, 1]) * j1
        ui = (p + float(m[i, 2]) * j2) + float(m[i, 3])
        ok = ~((ui < -0.5 - BAND_ATOL_VOXELS) | (ui > (float(n_src[i]) - 0.5) + BAND_ATOL_VOXELS))
        inside = ok if inside is None else inside & ok
        u.append(ui)
    return u, inside


def _nearest_rows(xp, u, n_src, first) -> tuple:
    return tuple(xp.clip(xp.floor(u[i] + 0.5), 0, int(n_src[i]) - 1).astype(np.int64) - int(first[i])
                 for i in range(3))


def _linear_taps(xp, u, n: int) -> tuple:
    """``(a, b, frac)`` of a linear tap pair: global rows, the zero-weight tap redirected."""
    clamped = xp.clip(u, 0.0, n - 1.0)
    base = xp.floor(clamped)
    frac = clamped - base
    a = base.astype(np.int64)
    b = xp.where(frac == 0.0, a, xp.minimum(a + 1, n - 1))
    return a, b, frac


def _linear(xp, values, u, n_src, first, work):
    taps = [_linear_taps(xp, u[i], int(n_src[i])) for i in range(3)]
    rows = [(a - int(first[i]), b - int(first[i])) for i, (a, b, _) in enumerate(taps)]
    w = [((1.0 - f).astype(work), f.astype(work)) for _, _, f in taps]

    def x(b, c):  # along axis 0 first, at axis-1 tap b and axis-2 tap c
        return tap_next(xp, tap_first(xp, w[0][0], values[rows[0][0], rows[1][b], rows[2][c]].astype(work)),
                        w[0][1], values[rows[0][1], rows[1][b], rows[2][c]].astype(work))

    y0 = tap_next(xp, tap_first(xp, w[1][0], x(0, 0)), w[1][1], x(1, 0))
    y1 = tap_next(xp, tap_first(xp, w[1][0], x(0, 1)), w[1][1], x(1, 1))
    return tap_next(xp, tap_first(xp, w[2][0], y0), w[2][1], y1)


def _cubic_taps(xp, u, n: int, pad: int, first: int, work) -> tuple:
    """Rows (kept coefficient rows) and weights (working dtype) of the four cubic taps."""
    n_ext = n + 2 * pad
    if n_ext == 1:  # the length-1 axis added to 2-D data
        zero = xp.zeros(u.shape, np.int64) - first
        one = xp.ones(u.shape, work)
        return [zero] * 4, [one, one * 0, one * 0, one * 0]
    padded = u + float(pad)
    base = xp.floor(padded)
    t = padded - base
    s = 1.0 - t
    weights = [s * s * s / 6.0, (3.0 * t * t * (t - 2.0) + 4.0) / 6.0,
               (3.0 * s * s * (s - 2.0) + 4.0) / 6.0, t * t * t / 6.0]
    b = base.astype(np.int64)
    rows = [xp.clip(b - 1 + q, 0, n_ext - 1) - first for q in range(4)]
    rows[3] = xp.where(t == 0.0, rows[1], rows[3])
    return rows, [w.astype(work) for w in weights]


def _cubic(xp, coef, u, n_src, first, pads, work):
    taps = [_cubic_taps(xp, u[i], int(n_src[i]), int(pads[i]), int(first[i]), work) for i in range(3)]
    (r0, w0), (r1, w1), (r2, w2) = taps
    acc = None
    for c in range(4):
        plane = None
        for b in range(4):
            line = tap_first(xp, w0[0], coef[r0[0], r1[b], r2[c]])
            for a in range(1, 4):
                line = tap_next(xp, line, w0[a], coef[r0[a], r1[b], r2[c]])
            plane = tap_first(xp, w1[0], line) if b == 0 else tap_next(xp, plane, w1[b], line)
        acc = tap_first(xp, w2[0], plane) if c == 0 else tap_next(xp, acc, w2[c], plane)
    return acc


def _label(xp, values, u, n_src, first):
    taps = [_linear_taps(xp, u[i], int(n_src[i])) for i in range(3)]
    rows = [(a - int(first[i]), b - int(first[i])) for i, (a, b, _) in enumerate(taps)]
    w = [(1.0 - f, f) for _, _, f in taps]
    labels, weights = [], []
    for a in range(2):
        for b in range(2):
            wab = w[0][a] * w[1][b]
            for c in range(2):
                labels.append(values[rows[0][a], rows[1][b], rows[2][c]])
                weights.append(wab * w[2][c])
    return arg_max_label(xp, labels, weights)


def _write(xp, result, inside, fill, target, copy: bool) -> None:
    """Store ``result`` into ``target`` as the compiled loops do, then ``fill`` outside the band."""
    dtype = np.dtype(target.dtype)
    if copy:
        view = label_view_dtype(dtype)
        fill_bits = xp.asarray(np.array(fill, dtype).view(view) if dtype != np.bool_ else np.uint8(fill != 0))
        target.view(view)[...] = xp.where(inside, result, fill_bits)
        return
    round_to_int, lo, hi = integer_limits(dtype)
    if round_to_int:
        result = xp.clip(xp.rint(result).astype(np.float64), lo, hi)
    if dtype == np.float16:  # through the compiled loops' float32 buffer
        target[...] = xp.where(inside, result.astype(np.float32), xp.asarray(np.float32(fill))).astype(dtype)
    else:
        target[...] = xp.where(inside, result.astype(dtype), xp.asarray(np.array(fill).astype(dtype)))
