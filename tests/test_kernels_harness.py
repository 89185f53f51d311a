"""The CUDA kernels, compiled as C++ by g++ and run on the CPU, against the CPU backend.

``tests/harness`` builds the very text CuPy compiles (``kernels/*.cu`` through
:func:`gpuresample.backends.cuda.module_source`) with a small header standing in for
the CUDA built-ins, and runs every launch that :func:`gpuresample.backends.cuda.run_kernels`
plans — the same names, grids and arguments a GPU gets — thread by thread over its grid.
Results must equal :class:`~gpuresample.backends.cpu.CpuBackend` on the same tables
bit for bit: the kernels follow the CPU backend's arithmetic contract, which is stricter
than the 1e-6 of docs/design.md §2 for float linear/cubic.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import ALL_DTYPES, assert_same_label_bits, float16_tie_pairs, random_volume, tie_winner
from gpuresample import Grid
from gpuresample.backends import cuda as kernels
from gpuresample.backends.cpu import CpuBackend
from gpuresample.backends.cuda import kernel_names
from gpuresample.backends.cuda import run_kernels as plan_and_launch
from gpuresample.tables import build_tables
from harness.device import HarnessDevice, build, compiler

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) to build the kernels as C++")

INTERPOLATIONS = ["nearest", "linear", "cubic", "label"]
SEPARABLE = ["nearest", "linear", "cubic"]
#: name -> (input shape, output shape, output rows along axis 0 of a slab or None).
CASES = {
    "up": ((9, 11, 13), (14, 17, 20), None),
    "down": ((17, 14, 12), (8, 6, 5), None),
    "odd": ((13, 7, 29), (6, 15, 29), None),
    "thin": ((5, 1, 9), (10, 3, 4), None),
    "2d": ((23, 30), (46, 15), None),
    "slab": ((40, 9, 10), (61, 12, 7), (17, 36)),
}
#: (input dtype, output dtype) pairs beyond output == input: rounding, clipping, float16, bool.
CROSS_DTYPES = [
    ("float32", "uint8"), ("float32", "int16"), ("float32", "uint32"), ("float32", "int8"),
    ("float32", "bool"), ("float32", "float16"), ("float32", "float64"), ("float64", "float16"),
    ("float64", "float32"), ("float16", "float64"), ("float16", "float32"), ("uint16", "float32"),
    ("int32", "int8"), ("uint8", "bool"), ("int16", "float16"),
]
#: Data for integer outputs from float input spans beyond int16 so clipping happens.
CLIP_SCALE = 40000.0


def _needed_names() -> list:
    combos = [(d, d, i) for d in ALL_DTYPES for i in INTERPOLATIONS]
    combos += [(a, b, i) for a, b in CROSS_DTYPES for i in SEPARABLE]
    names = []
    for combo in combos:
        names += [n for n in kernel_names(*combo) if n not in names]
    return names


@pytest.fixture(scope="session")
def harness_library(tmp_path_factory):
    """The kernels built once per session as a shared library."""
    return build(_needed_names(), tmp_path_factory.mktemp("kernel_harness"))


def tables_for(shape, target, interpolation, rows=None, antialias=False, volume=None):
    """Whole tables, or a slab's (``rows``); a cubic slab gets its prefilter states from ``volume``."""
    source = Grid(shape, (1.0,) * len(shape))
    tables = build_tables(source, source.with_shape(target), interpolation, antialias=antialias)
    return tables if rows is None else slab_tables(tables, rows, volume)


def slab_tables(tables, rows, volume):
    """``tables.slab(*rows)`` with the whole line's prefilter states a cubic slab starts from."""
    from gpuresample.backends.cpu import smooth
    from gpuresample.interpolation import working_dtype
    from gpuresample.backends._spline_states import states_for_slabs

    work = working_dtype(volume.dtype)
    [slab] = states_for_slabs(tables, [tables.slab(*rows)], volume, 1, lambda b, t: smooth(np.asarray(b), t, work))
    return slab


def label_volume(shape, dtype, seed=0) -> np.ndarray:
    """A few labels, as ``dtype`` (negative and fractional ones for floats)."""
    codes = np.random.default_rng(seed).integers(0, 5, size=shape)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return codes > 2
    if dtype.kind == "f":
        return (codes * 1.5 - 2.0).astype(dtype)
    return codes.astype(dtype)


def run_kernels(library, source, tables, out_dtype) -> np.ndarray:
    """The kernels' result through the harness, checking only compiled-module kernels ran."""
    device = HarnessDevice(library)
    out = np.empty(tables.output_shape, out_dtype)
    plan_and_launch(device, source, tables, out)
    allowed = set(kernel_names(source.dtype, out_dtype, tables.interpolation))
    assert set(device.launched) <= allowed, f"launched kernels outside the module: {set(device.launched) - allowed}"
    assert device.launched, "no kernel ran"
    return out


def run_cpu(source, tables, out_dtype) -> np.ndarray:
    out = np.empty(tables.output_shape, out_dtype)
    CpuBackend().resample_block(source, tables, out)
    return out


def input_block(volume, tables):
    first, stop = tables.input_rows
    return volume[first:stop]


def assert_kernels_match_cpu(library, volume, tables, out_dtype=None):
    out_dtype = volume.dtype if out_dtype is None else np.dtype(out_dtype)
    block = input_block(volume, tables)
    result = run_kernels(library, block, tables, out_dtype)
    expected = run_cpu(block, tables, out_dtype)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
    return result


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_kernels_match_cpu(harness_library, interpolation, dtype, case):
    shape, target, rows = CASES[case]
    make = label_volume if interpolation == "label" else random_volume
    volume = make(shape, dtype, seed=len(case))
    tables = tables_for(shape, target, interpolation, rows, volume=volume)
    if rows is not None and interpolation == "cubic":
        assert tables.axes[0].is_cut and tables.axes[0].states is not None
    result = assert_kernels_match_cpu(harness_library, volume, tables)
    if np.dtype(dtype) != np.bool_:  # not trivially equal: the data varies and so does the result
        assert np.unique(result).size > 2


@pytest.fixture(params=["int32", "int64"])
def long_runs(request, monkeypatch):
    """Every separable thread marches through up to MAX_RUN outputs (small volumes would
    otherwise get one output per thread), with 32-bit or 64-bit offsets."""
    monkeypatch.setattr(kernels.launch, "TARGET_THREADS", 1)
    if request.param == "int64":
        monkeypatch.setattr(kernels.launch, "INT32_MAX_OFFSET", 0)
    return np.dtype(request.param)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint16", "int8"])
@pytest.mark.parametrize("interpolation", SEPARABLE)
def test_marching_threads_match_cpu(harness_library, long_runs, interpolation, dtype, case):
    """Runs of outputs per thread reuse kept partial sums; the results stay the CPU's bit for bit."""
    shape, target, rows = CASES[case]
    volume = random_volume(shape, dtype, seed=len(case))
    tables = tables_for(shape, target, interpolation, rows, volume=volume)
    device = HarnessDevice(harness_library)
    out = np.empty(tables.output_shape, volume.dtype)
    block = input_block(volume, tables)
    plan_and_launch(device, block, tables, out)
    separable = [n for n in device.launched if n.startswith("gr_separable")]
    index_type = kernels.compile.INDEX_TYPES[long_runs]
    assert separable and all(n.replace(" ", "").endswith(f",{index_type}>".replace(" ", "")) for n in separable)
    np.testing.assert_array_equal(out, run_cpu(block, tables, volume.dtype))


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])
@pytest.mark.parametrize("interpolation", SEPARABLE)
def test_every_pass_order_marches_like_cpu(harness_library, long_runs, interpolation, order):
    """Both march kinds (along slot C, along slot B) and both places of axis 2 in a C march."""
    from dataclasses import replace

    shape, target = (11, 9, 13), (17, 6, 20)
    volume = random_volume(shape, "float32", seed=12)
    tables = replace(tables_for(shape, target, interpolation), order=order)
    march, axis_m, _, _ = kernels.launch.march_plan(order)
    assert march == (kernels.compile.MARCH_B if order[2] == 2 else kernels.compile.MARCH_C) and axis_m != 2
    assert_kernels_match_cpu(harness_library, volume, tables)


def test_marching_reuses_rows_of_a_flipped_table(harness_library, long_runs):
    """Reuse matches rows by address, so tables running backwards (or repeating rows) stay exact."""
    from dataclasses import replace

    shape, target = (10, 12, 9), (23, 7, 15)
    volume = random_volume(shape, "float64", seed=13)
    tables = tables_for(shape, target, "linear")
    flipped = tuple(replace(t, index=t.index[::-1].copy(), weight=t.weight[::-1].copy()) for t in tables.axes)
    repeated = replace(flipped[1], index=np.repeat(flipped[1].index[:4], 2, axis=0)[:7],
                       weight=np.repeat(flipped[1].weight[:4], 2, axis=0)[:7])
    tables = replace(tables, axes=(flipped[0], repeated, flipped[2]))
    assert_kernels_match_cpu(harness_library, volume, tables)


def test_index_type_follows_the_offsets():
    assert kernels.launch.index_dtype(0, 2 ** 31 - 1) == np.int32
    assert kernels.launch.index_dtype(2 ** 31, 5) == np.int64
    assert kernels.launch.offset_extent((3, 4, 5), (-20, 5, 1)) == 2 * 20 + 3 * 5 + 4


@pytest.mark.parametrize("interpolation", SEPARABLE)
@pytest.mark.parametrize("in_dtype,out_dtype", CROSS_DTYPES)
def test_output_dtypes_round_and_clip_like_cpu(harness_library, interpolation, in_dtype, out_dtype):
    shape, target, _ = CASES["up"]
    volume = random_volume(shape, in_dtype, seed=3)
    if np.dtype(in_dtype).kind == "f" and np.dtype(out_dtype).kind in "iub":
        volume = (volume.astype(np.float64) / 100.0 * CLIP_SCALE).astype(in_dtype)
    tables = tables_for(shape, target, interpolation)
    result = assert_kernels_match_cpu(harness_library, volume, tables, out_dtype)
    info = np.iinfo(out_dtype) if np.dtype(out_dtype).kind in "iu" else None
    if info is not None and np.dtype(in_dtype).kind == "f" and CLIP_SCALE > info.max:
        assert result.max() == info.max and result.min() == info.min  # clipping was exercised


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "uint16", "int8"])
def test_antialias_matches_cpu(harness_library, interpolation, dtype):
    shape = (24, 19, 30)
    volume = random_volume(shape, dtype, seed=5)
    tables = tables_for(shape, (7, 12, 9), interpolation, antialias=True)
    assert all(t.sigma > 0 for t in tables.axes)
    assert_kernels_match_cpu(harness_library, volume, tables)


@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_antialias_slab_matches_cpu(harness_library, interpolation):
    shape = (120, 14, 12)
    volume = random_volume(shape, "float32", seed=6)
    tables = tables_for(shape, (33, 5, 7), interpolation, rows=(12, 18), antialias=True, volume=volume)
    assert tables.axes[0].margin_before > 0 and tables.axes[0].margin_after > 0
    assert_kernels_match_cpu(harness_library, volume, tables)


@pytest.mark.parametrize("view", ["reversed", "transposed", "stepped"])
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_strided_sources(harness_library, interpolation, view):
    base = (label_volume if interpolation == "label" else random_volume)((21, 18, 26), "int16", seed=7)
    volume = {"reversed": base[::-1, :, ::-1], "transposed": base.transpose(2, 0, 1),
              "stepped": base[::2, 1::3, ::2]}[view]
    assert not volume.flags.c_contiguous
    tables = tables_for(volume.shape, (15, 9, 11), interpolation)
    assert_kernels_match_cpu(harness_library, volume, tables)


@pytest.mark.parametrize("interpolation", SEPARABLE)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_nan_and_inf_spread_like_cpu(harness_library, interpolation, dtype):
    shape = (12, 13, 14)
    volume = random_volume(shape, dtype, seed=8)
    volume[3:5, 4:6, 5:7] = np.nan
    volume[8:10, 2:4, 11:13] = np.inf
    volume[10, 10:12, 1:3] = -np.inf
    tables = tables_for(shape, (17, 9, 21), interpolation)
    result = assert_kernels_match_cpu(harness_library, volume, tables)
    assert np.isnan(result).any()
    if interpolation != "cubic":  # the cubic prefilter spreads NaN along whole lines
        assert np.isinf(result).any() and np.isfinite(result).any()


def _identity_tables(shape):
    return tables_for(shape, shape, "nearest")


def test_every_float16_converts_like_numpy(harness_library):
    """All 65536 float16 bit patterns through float16 -> float32 (exact widening)."""
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).reshape(16, 64, 64)
    result = run_kernels(harness_library, halves, _identity_tables(halves.shape), np.float32)
    np.testing.assert_array_equal(result, halves.astype(np.float32))
    same_bits = np.isnan(halves) | (result.view(np.uint32) == halves.astype(np.float32).view(np.uint32))
    assert same_bits.all()  # signed zeros and subnormals too


def test_float32_rounds_to_float16_like_numpy(harness_library):
    """Every gap between neighbouring float16 values: its ends, midpoint and the floats beside it."""
    finite = np.arange(0x7c00, dtype=np.uint16).view(np.float16).astype(np.float32)
    mid = (finite[:-1] + finite[1:]) / np.float32(2)  # exact: 12 significant bits
    beside = np.concatenate([np.nextafter(mid, np.float32(np.inf)), np.nextafter(mid, np.float32(-np.inf))])
    extra = np.array([65504, 65519.99, 65520, 65536, 1e30, np.inf, np.nan, 2.0 ** -25, 2.0 ** -26, 1e-40],
                     np.float32)
    values = np.concatenate([finite, mid, beside, extra])
    values = np.concatenate([values, -values])
    values = np.concatenate([values, np.zeros((-values.size) % 64, np.float32)]).reshape(1, -1, 64)
    result = run_kernels(harness_library, values, _identity_tables(values.shape), np.float16)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    np.testing.assert_array_equal(result, expected)
    assert (np.isnan(expected) | (result.view(np.uint16) == expected.view(np.uint16))).all()


def test_float16_label_ties_by_value(harness_library):
    """gr_label<gr_half>: every float16 bit pattern against partners it ties with; the lower
    value wins, NaN last, and one label's taps (-0.0 and 0.0, NaNs) give the first as stored."""
    pairs = float16_tie_pairs()
    tables = tables_for(pairs.shape, (1, pairs.shape[1], 1), "label")
    result = run_kernels(harness_library, pairs, tables, np.float16)
    assert_same_label_bits(result, tie_winner(pairs))
    np.testing.assert_array_equal(result.view(np.uint16), run_cpu(pairs, tables, np.float16).view(np.uint16))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_grid_stride_loops(harness_library, interpolation, monkeypatch):
    """Grids smaller than the volume (as on volumes beyond 65535 rows): threads loop."""
    monkeypatch.setattr(kernels.launch, "MAX_GRID_YZ", 2)
    monkeypatch.setattr(kernels.launch, "MAX_PREFILTER_BLOCKS", 1)
    grid, _ = kernels.launch.voxel_launch_shape((40, 30, 5))
    assert grid[1:] == (2, 2)
    shape = (31, 23, 6)
    volume = (label_volume if interpolation == "label" else random_volume)(shape, "float32", seed=9)
    assert_kernels_match_cpu(harness_library, volume, tables_for(shape, (40, 30, 5), interpolation))


@pytest.mark.parametrize("interpolation,antialias", [(i, False) for i in INTERPOLATIONS] + [("linear", True),
                                                                                            ("cubic", True)])
def test_chunked_kernels_equal_whole(harness_library, interpolation, antialias):
    """Slabs of output rows through the kernels, stacked, equal one whole-volume run bit for bit.

    Axis 0 is long enough that the slabs cut the cubic prefilter's reach; cubic slabs
    continue the whole line's recursion from the pre-pass states (gr_spline_prefilter_cut).
    """
    shape, target = (96, 12, 10), ((40, 9, 6) if antialias else (131, 9, 14))
    volume = (label_volume if interpolation == "label" else random_volume)(shape, "float32", seed=10)
    tables = tables_for(shape, target, interpolation, antialias=antialias)
    whole = run_kernels(harness_library, volume, tables, volume.dtype)
    n = target[0]
    bounds = [0, 1, n // 5, n // 5 + 1, n // 2, n - 3, n]  # a one-row slab, and slabs sharing input rows
    parts = []
    for start, stop in zip(bounds, bounds[1:]):
        slab = slab_tables(tables, (start, stop), volume)
        if interpolation == "cubic":
            assert slab.axes[0].is_cut
        parts.append(run_kernels(harness_library, input_block(volume, slab), slab, volume.dtype))
    chunked = np.concatenate(parts)
    assert np.array_equal(chunked, whole), f"{np.count_nonzero(chunked != whole)} values differ"


def test_harness_holds_every_requested_kernel(harness_library):
    """The build registered exactly the instantiations asked for (guards the name matching)."""
    names = HarnessDevice(harness_library).kernel_names()
    assert sorted(n.replace(" ", "") for n in names) == sorted(n.replace(" ", "") for n in _needed_names())


class StandInArray(np.ndarray):
    """A NumPy array with CuPy's ``set`` (host-to-device copy)."""

    def set(self, host, stream=None):
        self[...] = host


class StandInStream:
    def record(self):
        return None

    def wait_event(self, event):
        pass


class StandInCupy:
    """Just enough of CuPy for :class:`KernelsBackend`: NumPy arrays, kernels run in the harness.

    Exercises the backend's GPU glue (compile cache, function cache, pinned packed table
    upload and table cache, launch arguments) on the CPU.
    """

    def __init__(self, library):
        self.harness = HarnessDevice(library)
        self.modules = []
        self.pinned_allocations = 0
        self.device_queries = 0
        stream = StandInStream()
        self.cuda = SimpleNamespace(runtime=SimpleNamespace(getDevice=lambda: 0, memGetInfo=self._mem_get_info,
                                                            getDeviceCount=lambda: 1),
                                    alloc_pinned_memory=self._alloc_pinned, get_current_stream=lambda: stream)
        self.asarray = np.asarray

    def empty(self, shape, dtype):
        return np.empty(shape, dtype).view(StandInArray)

    def _mem_get_info(self):
        self.device_queries += 1
        return 3 << 30, 8 << 30

    def _alloc_pinned(self, nbytes):
        self.pinned_allocations += 1
        return bytearray(nbytes)

    def get_default_memory_pool(self):
        return SimpleNamespace(free_bytes=lambda: 1 << 20)

    def RawModule(self, *, code, options, name_expressions):  # noqa: N802 (CuPy's name)
        module = SimpleNamespace(code=code, options=options, names=tuple(name_expressions),
                                 compile=lambda: None, get_function=lambda name: self._function(module, name))
        self.modules.append(module)
        return module

    def _function(self, module, name):
        assert name in module.names or name in kernels.compile.EXTERN_C_NAMES, f"{name} is not in the module"
        return lambda grid, block, args: self.harness.launch(kernels.Launch(name, grid, block, args))


@pytest.fixture
def stand_in_cupy(harness_library, monkeypatch):
    import scipy.ndimage

    import gpuresample._cupy
    from gpuresample.backends import cupyx

    stand_in = StandInCupy(harness_library)
    monkeypatch.setattr(gpuresample._cupy, "import_cupy", lambda: stand_in)
    monkeypatch.setattr(cupyx.backend, "_ndimage", lambda: scipy.ndimage)
    kernels.clear_caches()  # compile afresh on the stand-in, and forget it afterwards
    yield stand_in
    kernels.clear_caches()


@pytest.mark.parametrize("interpolation,dtype,antialias", [
    ("nearest", "uint16", False), ("linear", "float16", False), ("linear", "int8", True),
    ("cubic", "float32", True), ("cubic", "uint8", False), ("label", "bool", False), ("label", "float32", False),
])
def test_kernels_backend_glue_with_a_stand_in_cupy(stand_in_cupy, interpolation, dtype, antialias):
    """KernelsBackend itself (not only run_kernels): one compile per dtype and interpolation."""
    backend = kernels.KernelsBackend()
    assert backend.unavailable_reason() is None
    assert backend.free_bytes() == (3 << 30) + (1 << 20)
    make = label_volume if interpolation == "label" else random_volume
    for shape, target in [((19, 14, 16), (9, 20, 11)), ((12, 30), (25, 7)), ((8, 9, 10), (8, 9, 10))]:
        volume = make(shape, dtype, seed=11)
        tables = tables_for(shape, target, interpolation, antialias=antialias and shape != target)
        result = backend.empty(tables.output_shape, volume.dtype)
        backend.resample_block(volume, tables, result)
        np.testing.assert_array_equal(result, run_cpu(volume, tables, volume.dtype))
    [module] = stand_in_cupy.modules
    assert module.options == kernels.compile.COMPILE_OPTIONS
    assert module.code == kernels.module_source(kernels.kernel_source_dir())
    assert set(module.names) | set(kernels.compile.EXTERN_C_NAMES) >= set(stand_in_cupy.harness.launched)
