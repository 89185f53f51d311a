"""Bad and unusual input: no crash, no silent corruption.

Each test names the item it covers. The GPU backends' Python glue runs on the CuPy
stand-ins of ``tests/test_benchmarks.py`` (device arrays are NumPy memory; kernel launches
run the CUDA kernels compiled as C++), so what the glue does with views, dtypes and checks
is tested here without a GPU.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.ndimage
from harness.device import build, compiler
from test_benchmarks import on_device, stand_ins  # noqa: F401 (a fixture, used by name)

import gpuresample as gr
from gpuresample import Grid, planner
from gpuresample.backends._array import resample_with
from gpuresample.backends._common import integer_limits
from gpuresample.backends.cpu import CpuBackend
from gpuresample.backends.cupyx import CupyxBackend
from gpuresample.backends.cuda import KernelsBackend, kernel_names
from gpuresample.tables import build_tables

needs_compiler = pytest.mark.skipif(compiler() is None, reason="no C++ compiler (g++ or $CXX) for the kernels")

#: Every dtype pair the label tests resample (input, output): other item sizes, both ways.
LABEL_DTYPE_PAIRS = [("float16", "uint8"), ("float16", "float32"), ("bool", "uint16"), ("bool", "float64"),
                     ("uint8", "float16"), ("uint8", "int64"), ("int16", "int32"), ("uint16", "uint8"),
                     ("float32", "uint8"), ("int32", "int8"), ("int64", "uint8"), ("float64", "float16")]
GPU_BACKENDS = ["kernels", "cupyx"]


@pytest.fixture(scope="module")
def harness_library(tmp_path_factory):
    """The kernels these tests launch through the stand-ins, built once for the module."""
    combos = [(a, b, i) for a, b in LABEL_DTYPE_PAIRS for i in ("label", "nearest")]
    combos += [(d, d, i) for d in ("int64", "uint64", "float32", "float64")
               for i in ("nearest", "linear", "cubic", "label")]
    combos += [("float64", "int64", "linear"), ("float64", "uint64", "linear"), ("float32", "uint8", "linear")]
    names = []
    for combo in combos:
        names += [n for n in kernel_names(*combo) if n not in names]
    return build(names, tmp_path_factory.mktemp("robustness_harness"))


def small_labels(shape, dtype, seed=0) -> np.ndarray:
    """Labels 0..3 as ``dtype`` (0/1 for bool)."""
    codes = np.random.default_rng(seed).integers(0, 4, size=shape)
    return (codes > 1) if np.dtype(dtype) == np.bool_ else codes.astype(dtype)


def host(array) -> np.ndarray:
    return np.asarray(array.view(np.ndarray)) if isinstance(array, np.ndarray) else np.asarray(array)


# ---------------------------------------------------------------------------------------
# 1. Label results in a dtype= of another item size: exactly the input's labels
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("in_dtype,out_dtype", LABEL_DTYPE_PAIRS)
def test_1_label_into_another_dtype_gives_the_input_labels(in_dtype, out_dtype):
    labels = small_labels((6, 7, 8), in_dtype)
    same = gr.resample(labels, None, target_shape=(12, 14, 16), interpolation="label")
    for _ in range(3):  # the corruption showed on a later call: run a few
        out = gr.resample(labels, None, target_shape=(12, 14, 16), interpolation="label", dtype=out_dtype)
        assert out.dtype == np.dtype(out_dtype)
        np.testing.assert_array_equal(out, same.astype(out_dtype))
        assert set(np.unique(out).tolist()) <= set(np.unique(labels.astype(out_dtype)).tolist())


def test_1_issue_example_float16_ones_to_uint8():
    out = gr.resample(np.ones((6, 7, 8), np.float16), None, target_shape=(12, 14, 16), interpolation="label",
                      dtype=np.uint8)
    assert out.dtype == np.uint8 and (out == 1).all()


@needs_compiler
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("in_dtype,out_dtype", LABEL_DTYPE_PAIRS)
def test_1_gpu_glue_label_into_another_dtype(stand_ins, backend, in_dtype, out_dtype):  # noqa: F811
    labels = small_labels((6, 7, 8), in_dtype, seed=3)
    expected = gr.resample(labels, None, target_shape=(11, 13, 17), interpolation="label").astype(out_dtype)
    got = gr.resample(on_device(labels.copy()), None, target_shape=(11, 13, 17), interpolation="label",
                      dtype=out_dtype, backend=backend)
    assert got.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(host(got), expected)


def test_1_cupyx_glue_on_numpy_label_into_another_dtype():
    labels = small_labels((5, 6, 7), "float16", seed=4)
    source = Grid(labels.shape, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((9, 8, 10)), "label")
    out = np.full(tables.output_shape, 99, np.uint8)
    resample_with(np, scipy.ndimage, labels, tables, out)
    expected = np.empty(tables.output_shape, np.float16)
    CpuBackend().resample_block(labels, tables, expected)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


# ---------------------------------------------------------------------------------------
# 2. Narrowing a label map: labels that do not fit are an error naming them
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", ["label", "nearest"])
def test_2_labels_that_do_not_fit_are_named(interpolation):
    labels = np.zeros((6, 7, 8), np.uint16)
    labels[:3], labels[3:] = 300, 600
    labels[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"uint8 cannot hold: 300, 600;"):
        gr.resample(labels, None, target_shape=(12, 14, 16), interpolation=interpolation, dtype=np.uint8)


@pytest.mark.parametrize("interpolation", ["label", "nearest"])
def test_2_negative_labels_into_unsigned(interpolation):
    labels = np.zeros((4, 4, 4), np.int16)
    labels[1] = -1
    with pytest.raises(ValueError, match=r"uint8 cannot hold: -1;"):
        gr.resample(labels, None, target_shape=(8, 8, 8), interpolation=interpolation, dtype="uint8")


@pytest.mark.parametrize("labels,dtype,named", [
    (np.array([0, 1, 2], np.uint8), "bool", "2"),
    (np.array([0.0, 1.5, 3.0], np.float32), "uint8", "1.5"),
    (np.array([0, 2**24 + 1], np.int32), "float32", "16777217"),
    (np.array([0.0, 0.1], np.float64), "float32", "0.1"),
    (np.array([0, 2**40], np.int64), "int32", "1099511627776"),
])
def test_2_labels_that_change_in_the_dtype_are_refused(labels, dtype, named):
    volume = np.resize(labels, (4, 4, 3))
    with pytest.raises(ValueError, match=rf"cannot hold: {re.escape(named)}"):
        gr.resample(volume, None, target_shape=(6, 6, 6), interpolation="label", dtype=dtype)


def test_2_labels_that_fit_narrow_fine():
    labels = small_labels((6, 7, 8), "uint16") * 50  # 0..150
    out = gr.resample(labels, None, target_shape=(12, 14, 16), interpolation="nearest", dtype=np.uint8)
    np.testing.assert_array_equal(out, gr.resample(labels, None, target_shape=(12, 14, 16),
                                                   interpolation="nearest").astype(np.uint8))
    as_bool = gr.resample(labels > 0, None, target_shape=(3, 3, 3), interpolation="label", dtype=np.uint8)
    assert as_bool.dtype == np.uint8


def test_2_many_labels_are_listed_briefly():
    labels = np.arange(4 * 4 * 20, dtype=np.uint16).reshape(4, 4, 20) + 1000
    with pytest.raises(ValueError, match=r"1000, 1001, .* and 310 more;"):
        gr.resample(labels, None, target_shape=(8, 8, 8), interpolation="label", dtype=np.uint8)


def test_2_scene_mask_with_float_labels_into_integers():
    grid = Grid((4, 4, 4), (1.0, 1.0, 1.0))
    volume = np.zeros((4, 4, 4), np.float32)
    mask = np.full((4, 4, 4), 1.5, np.float32)
    scene = gr.Scene(grid, volumes={"CT": volume}, masks={"m": mask})
    out = scene.resample(target_shape=(2, 2, 2))
    assert (out["m"] == 1.5).all()


def test_2_dask_refuses_labels_that_do_not_fit():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    labels = np.zeros((6, 7, 8), np.uint16)
    labels[3:] = 600
    lazy = grd.resample(da.from_array(labels, chunks=3), None, target_shape=(12, 14, 16), interpolation="label",
                        dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8 cannot hold: 600"):
        lazy.compute(scheduler="sync")


# ---------------------------------------------------------------------------------------
# 3. out= overlapping the input is refused
# ---------------------------------------------------------------------------------------

def test_3_out_equal_to_the_input_is_refused():
    x = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match="out shares memory with the input"):
        gr.resample(x, (1, 1, 1), target_spacing=(1.05, 1.05, 1.05), out=x)
    np.testing.assert_array_equal(x, before)


def test_3_out_a_view_into_the_same_buffer_is_refused():
    buffer = np.random.default_rng(1).random((12, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="out shares memory with the input"):
        gr.resample(buffer[:8], None, target_shape=(8, 8, 8), interpolation="cubic", out=buffer[4:])
    labels = small_labels((12, 6, 6), "uint8")
    with pytest.raises(ValueError, match="out shares memory"):
        gr.resample(labels[::2], None, target_shape=(6, 6, 6), interpolation="label", out=labels[::2][:, ::-1])


def test_3_interleaved_views_that_do_not_overlap_are_fine():
    buffer = np.random.default_rng(2).random((16, 8, 8)).astype(np.float32)
    data, out = buffer[::2], buffer[1::2]
    expected = gr.resample(data.copy(), None, target_shape=(8, 8, 8), interpolation="linear")
    gr.resample(data, None, target_shape=(8, 8, 8), interpolation="linear", out=out)
    np.testing.assert_array_equal(out, expected)


def test_3_overlap_through_a_torch_tensor():
    torch = pytest.importorskip("torch")
    tensor = torch.zeros((6, 6, 6))
    with pytest.raises(ValueError, match="out shares memory"):
        gr.resample(tensor, None, target_shape=(6, 6, 6), out=tensor.numpy())


class _DeviceStandIn:
    """Only a CUDA array interface, as a CuPy array shows it."""

    def __init__(self, pointer, shape, strides, typestr="<f4"):
        self.__cuda_array_interface__ = {"data": (pointer, False), "shape": shape, "strides": strides,
                                         "typestr": typestr, "version": 3}


def test_3_device_overlap_by_address_range():
    from gpuresample._guards import shares_memory
    a = _DeviceStandIn(1000, (4, 4), None)           # bytes [1000, 1064)
    assert shares_memory(a, _DeviceStandIn(1060, (2,), None))
    assert not shares_memory(a, _DeviceStandIn(1064, (2,), None))
    assert shares_memory(_DeviceStandIn(1100, (3,), (-8,)), _DeviceStandIn(1086, (1,), None))  # 1084..1104
    assert not shares_memory(a, np.zeros(3))        # host and device never overlap


@needs_compiler
def test_3_out_overlapping_on_the_device_is_refused(stand_ins):  # noqa: F811
    x = on_device(np.ones((6, 6, 6), np.float32))
    with pytest.raises(ValueError, match="out shares memory"):
        gr.resample(x, None, target_shape=(6, 6, 6), out=x, backend="kernels")


# ---------------------------------------------------------------------------------------
# 4. NaN into integers is an error; cubic spreads NaN and inf everywhere
# ---------------------------------------------------------------------------------------

def nan_volume(shape=(8, 8, 8)) -> np.ndarray:
    x = np.random.default_rng(5).random(shape).astype(np.float32) * 100
    x[2, 3, 4] = np.nan
    return x


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("dtype", ["uint8", "int32", "bool", "int64"])
def test_4_nan_into_an_integer_dtype_is_an_error(interpolation, dtype):
    with pytest.raises(ValueError, match=f"holds NaN and dtype={dtype} has no NaN or inf"):
        gr.resample(nan_volume(), None, target_shape=(9, 9, 9), interpolation=interpolation, dtype=dtype)


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic"])
def test_4_inf_into_integers_is_an_error(interpolation):
    x = np.ones((8, 8, 8), np.float32)
    x[4, 4, 4] = -np.inf
    with pytest.raises(ValueError, match="holds inf and dtype=uint8"):
        gr.resample(x, None, target_shape=(9, 9, 9), interpolation=interpolation, dtype=np.uint8)


def test_4_float_cubic_with_one_nan_is_nan_everywhere_linear_only_near_it():
    x = nan_volume()
    assert np.isnan(gr.resample(x, None, target_shape=(9, 9, 9), interpolation="cubic")).all()
    linear = gr.resample(x, None, target_shape=(9, 9, 9), interpolation="linear")
    assert 0 < np.isnan(linear).sum() <= 27
    filled = gr.resample(np.nan_to_num(x, nan=0.0), None, target_shape=(9, 9, 9), interpolation="cubic")
    assert np.isfinite(filled).all()


@needs_compiler
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_4_nan_on_the_device_into_integers(stand_ins, backend):  # noqa: F811
    with pytest.raises(ValueError, match="holds NaN"):
        gr.resample(on_device(nan_volume()), None, target_shape=(9, 9, 9), dtype=np.uint8, backend=backend)


def test_4_dask_refuses_nan_into_integers():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    lazy = grd.resample(da.from_array(nan_volume(), chunks=4), None, target_shape=(9, 9, 9), dtype=np.uint8)
    with pytest.raises(ValueError, match="holds NaN"):
        lazy.compute(scheduler="sync")


# ---------------------------------------------------------------------------------------
# 5. An array-like returning fewer rows than its shape says
# ---------------------------------------------------------------------------------------

class ShortReads:
    """An array-like whose reads drop the last row of every slice."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim

    def __getitem__(self, key):
        block = self.array[key]
        first = key[0] if isinstance(key, tuple) else key
        return block[:-1] if isinstance(first, slice) else block


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_5_short_reads_are_an_error(interpolation):
    data = ShortReads(np.random.default_rng(6).random((8, 8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match=r"returned shape \(\d+, 8, 8\), expected \(\d+, 8, 8\)"):
        gr.resample(data, None, target_shape=(5, 5, 5), interpolation=interpolation)


def test_5_short_reads_with_a_budget_and_channels_are_an_error():
    data = ShortReads(np.random.default_rng(7).random((8, 6, 6, 2)).astype(np.float32))
    with pytest.raises(ValueError, match="returned shape"):
        gr.resample(data, None, target_shape=(4, 4, 4), channel_axis=3, max_memory="10KB")


def test_5_a_backend_never_reads_a_block_out_of_bounds():
    source = Grid((8, 8, 8), (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((5, 5, 5)), "linear")
    out = np.empty(tables.output_shape, np.float32)
    short = np.zeros((7, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"input block has shape \(7, 8, 8\); its sampling tables read \(8, 8, 8\)"):
        CpuBackend().resample_block(short, tables, out)
    with pytest.raises(ValueError, match="input block has shape"):
        resample_with(np, scipy.ndimage, short, tables, out)


@needs_compiler
def test_5_short_reads_staged_through_the_device(stand_ins):  # noqa: F811
    data = ShortReads(np.random.default_rng(8).random((8, 8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match="returned shape"):
        gr.resample(data, None, target_shape=(5, 5, 5), device="cuda", backend="kernels")


def test_5_dask_short_chunks_are_an_error():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    data = ShortReads(np.random.default_rng(9).random((8, 8, 8)).astype(np.float32))
    lazy = grd.resample(da.from_array(data, chunks=4), None, target_shape=(5, 5, 5))
    with pytest.raises(ValueError):
        lazy.compute(scheduler="sync")


# ---------------------------------------------------------------------------------------
# 6. Masked arrays are refused, saying what to do
# ---------------------------------------------------------------------------------------

def test_6_masked_array_is_refused_with_what_to_do():
    x = np.ma.masked_array(np.ones((4, 4, 4), np.float32), mask=np.zeros((4, 4, 4), bool))
    with pytest.raises(TypeError, match=r"MaskedArray.*\.filled\(value\)"):
        gr.resample(x, None, target_shape=(8, 8, 8))
    with pytest.raises(TypeError, match="MaskedArray"):
        gr.Scene(Grid((4, 4, 4), (1, 1, 1)), masks={"m": x.astype(np.uint8)}).resample(target_shape=(2, 2, 2))
    with pytest.raises(TypeError, match="MaskedArray"):
        gr.resample(x.filled(0), None, target_shape=(8, 8, 8), out=np.ma.masked_array(np.empty((8, 8, 8), np.float32)))


def test_6_dask_masked_chunks_are_refused():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    x = np.ma.masked_array(np.ones((4, 4, 4), np.float32), mask=np.zeros((4, 4, 4), bool))
    with pytest.raises(TypeError, match="MaskedArray"):
        grd.resample(x, None, target_shape=(8, 8, 8))
    with pytest.raises(TypeError, match="MaskedArray"):
        grd.resample(da.from_array(x, chunks=2, asarray=False), None, target_shape=(8, 8, 8))


# ---------------------------------------------------------------------------------------
# 9. Non-native byte order is accepted; the result has the native equivalent
# ---------------------------------------------------------------------------------------

SWAPPED = ">" if np.little_endian else "<"


@pytest.mark.parametrize("dtype", ["f4", "f8", "i2", "u2", "i8"])
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_9_other_byte_order_gives_the_native_result(dtype, interpolation):
    native = small_labels((6, 7, 5), dtype, seed=10) * 3
    swapped = native.astype(SWAPPED + dtype)
    out = gr.resample(swapped, None, target_shape=(9, 5, 8), interpolation=interpolation)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, gr.resample(native, None, target_shape=(9, 5, 8), interpolation=interpolation))


def test_9_big_endian_memmap_streams_and_dtype_argument(tmp_path):
    native = np.random.default_rng(11).random((10, 6, 7)).astype(np.float32)
    mapped = np.memmap(tmp_path / "x.raw", dtype=SWAPPED + "f4", mode="w+", shape=native.shape)
    mapped[...] = native
    mapped.flush()
    mapped = np.memmap(tmp_path / "x.raw", dtype=SWAPPED + "f4", mode="r", shape=native.shape)
    out = gr.resample(mapped, None, target_shape=(7, 9, 5), max_memory="20KB")
    np.testing.assert_array_equal(out, gr.resample(native, None, target_shape=(7, 9, 5)))
    as_swapped = gr.resample(native, None, target_shape=(7, 9, 5), dtype=SWAPPED + "f8")
    assert as_swapped.dtype == np.float64 and as_swapped.dtype.isnative


def test_9_big_endian_nifti_from_the_library_reader(tmp_path):
    nib = pytest.importorskip("nibabel")
    from gpuresample import io
    native = np.random.default_rng(12).random((6, 7, 8)).astype(np.float32)
    image = nib.Nifti1Image(native, np.eye(4), header=nib.Nifti1Header(endianness=">"))
    nib.save(image, str(tmp_path / "big.nii"))
    array, grid = io.read(tmp_path / "big.nii")
    assert array.dtype == np.dtype(">f4")  # as the issue found: the reader gives big-endian data
    expected = gr.resample(native, grid.spacing, target_shape=(3, 4, 5))
    np.testing.assert_array_equal(gr.resample(array, grid.spacing, target_shape=(3, 4, 5)), expected)
    np.testing.assert_array_equal(gr.resample(np.array(array), grid.spacing, target_shape=(3, 4, 5)), expected)


def test_9_dask_other_byte_order():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    native = np.random.default_rng(13).random((8, 8, 8)).astype(np.float32)
    lazy = grd.resample(da.from_array(native.astype(SWAPPED + "f4"), chunks=4), None, target_shape=(5, 6, 7))
    assert lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"), gr.resample(native, None, target_shape=(5, 6, 7)))


# ---------------------------------------------------------------------------------------
# 10. int64 / uint64 volumes and masks
# ---------------------------------------------------------------------------------------

#: Labels float64 cannot hold (beyond 2**53): a nearest or label result must keep them exactly.
HUGE_LABELS = [0, 2**60 + 1, 2**60 + 3]


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
@pytest.mark.parametrize("interpolation", ["nearest", "label"])
def test_10_wide_integer_labels_stay_exact(dtype, interpolation):
    labels = np.array(HUGE_LABELS, dtype)[small_labels((6, 7, 8), "uint8", seed=14) % 3]
    out = gr.resample(labels, None, target_shape=(11, 9, 13), interpolation=interpolation)
    assert out.dtype == np.dtype(dtype)
    assert set(np.unique(out).tolist()) <= set(HUGE_LABELS)
    codes = small_labels((6, 7, 8), "uint8", seed=14) % 3
    expected = np.array(HUGE_LABELS, dtype)[gr.resample(codes, None, target_shape=(11, 9, 13),
                                                        interpolation=interpolation)]
    np.testing.assert_array_equal(out, expected)


def test_10_numpy_default_int_mask_and_torch_long():
    ct = np.random.default_rng(15).random((8, 8, 8)) * 3
    mask = (ct > 1.5).astype(int)
    out = gr.resample(mask, None, target_shape=(4, 4, 4), interpolation="nearest")
    assert out.dtype == mask.dtype
    scene = gr.Scene(Grid((8, 8, 8), (1, 1, 1)), volumes={"CT": ct}, masks={"m": mask})
    assert scene.resample(target_shape=(4, 4, 4))["m"].dtype == mask.dtype
    torch = pytest.importorskip("torch")
    tensor = torch.from_numpy(mask)
    result = gr.resample(tensor, None, target_shape=(4, 4, 4), interpolation="label")
    assert isinstance(result, torch.Tensor) and result.dtype == torch.long
    np.testing.assert_array_equal(result.numpy(), gr.resample(mask, None, target_shape=(4, 4, 4),
                                                               interpolation="label"))


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_10_wide_integer_volumes_compute_in_float64(dtype, interpolation):
    volume = np.random.default_rng(16).integers(0, 10**6, size=(6, 7, 8)).astype(dtype)
    out = gr.resample(volume, None, target_shape=(9, 9, 9), interpolation=interpolation)
    assert out.dtype == np.dtype(dtype)
    as_float = gr.resample(volume.astype(np.float64), None, target_shape=(9, 9, 9), interpolation=interpolation)
    lo, hi = np.iinfo(dtype).min, 2.0**53
    np.testing.assert_array_equal(out, np.clip(np.rint(as_float), lo, hi).astype(dtype))


@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_10_clipping_into_wide_integers_stays_in_range(dtype):
    assert integer_limits(dtype)[2] < 2.0 ** (np.iinfo(dtype).bits - (dtype == "int64"))
    volume = np.full((4, 4, 4), 1e30)
    volume[0] = -1e30
    out = gr.resample(volume, None, target_shape=(4, 4, 4), interpolation="linear", dtype=dtype)
    assert (out[3] == int(integer_limits(dtype)[2])).all() and (out[0] == np.iinfo(dtype).min).all()
    source = Grid((4, 4, 4), (1.0, 1.0, 1.0))
    tables = build_tables(source, source, "linear")
    via_cupyx = np.empty((4, 4, 4), dtype)
    resample_with(np, scipy.ndimage, volume, tables, via_cupyx)
    np.testing.assert_array_equal(via_cupyx, out)


@needs_compiler
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["int64", "uint64"])
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_10_wide_integers_on_the_gpu_glue(stand_ins, backend, dtype, interpolation):  # noqa: F811
    if interpolation in ("nearest", "label"):
        volume = np.array(HUGE_LABELS, dtype)[small_labels((6, 7, 8), "uint8", seed=17) % 3]
    else:
        volume = np.random.default_rng(17).integers(0, 10**6, size=(6, 7, 8)).astype(dtype)
    expected = gr.resample(volume, None, target_shape=(9, 5, 11), interpolation=interpolation)
    got = gr.resample(on_device(volume.copy()), None, target_shape=(9, 5, 11), interpolation=interpolation,
                      backend=backend)
    assert got.dtype == np.dtype(dtype)
    if backend == "cupyx" and interpolation == "cubic":  # cupyx's prefilter agrees to rounding
        assert np.abs(host(got).astype(np.float64) - expected.astype(np.float64)).max() <= 1
    else:
        np.testing.assert_array_equal(host(got), expected)


@needs_compiler
@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_10_clipping_into_wide_integers_in_the_kernels(stand_ins, dtype):  # noqa: F811
    volume = np.full((4, 4, 4), 1e30)
    volume[0] = -1e30
    expected = gr.resample(volume, None, target_shape=(4, 4, 4), dtype=dtype)
    got = gr.resample(on_device(volume), None, target_shape=(4, 4, 4), dtype=dtype, backend="kernels")
    np.testing.assert_array_equal(host(got), expected)


def test_10_dask_wide_integers():
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    labels = np.array(HUGE_LABELS, np.int64)[small_labels((8, 8, 8), "uint8", seed=18) % 3]
    lazy = grd.resample(da.from_array(labels, chunks=3), None, target_shape=(13, 11, 5), interpolation="nearest")
    np.testing.assert_array_equal(lazy.compute(scheduler="sync"),
                                  gr.resample(labels, None, target_shape=(13, 11, 5), interpolation="nearest"))


# ---------------------------------------------------------------------------------------
# 14. Limits and argument types
# ---------------------------------------------------------------------------------------

def test_14_a_result_larger_than_memory_is_a_memory_error_up_front():
    with pytest.raises(MemoryError, match=r"needs .*pass out= a numpy.memmap or a Zarr array"):
        gr.resample(np.zeros((4, 4, 4), np.float32), None, target_shape=(10**6,) * 3)


@pytest.mark.parametrize("spacing", [1e-300, 5e-324, 1e-9])
def test_14_tiny_target_spacing_is_a_clear_error(spacing):
    with pytest.raises(ValueError, match=r"target_spacing=\("):
        gr.resample(np.zeros((4, 4, 4), np.float32), (1, 1, 1), target_spacing=(spacing,) * 3)
    da = pytest.importorskip("dask.array")
    import gpuresample.dask as grd
    with pytest.raises(ValueError, match=r"target_spacing=\("):
        grd.resample(da.zeros((4, 4, 4), chunks=2), (1, 1, 1), target_spacing=(spacing,) * 3)


def test_14_bool_shape_string_spacing_and_string_antialias_are_refused():
    x = np.zeros((4, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"target_shape entries must be integers >= 1, got the bool True"):
        gr.resample(x, None, target_shape=(True, 3, 3))
    with pytest.raises(ValueError, match="target_shape"):
        gr.resample(x, None, target_shape=(np.bool_(True), 3, 3))
    with pytest.raises(TypeError, match=r"spacing entries must be numbers, got '1'"):
        gr.resample(x, ("1", 1, 1), target_shape=(3, 3, 3))
    with pytest.raises(TypeError, match="target_spacing entries must be numbers"):
        gr.resample(x, (1, 1, 1), target_spacing=(1, True, 1))
    with pytest.raises(TypeError, match="antialias must be True or False, got 'no'"):
        gr.resample(x, None, target_shape=(3, 3, 3), antialias="no")
    scene = gr.Scene(Grid((4, 4, 4), (1, 1, 1)), volumes={"CT": x})
    with pytest.raises(TypeError, match="antialias must be True or False"):
        scene.plan(target_shape=(3, 3, 3), antialias="no")
    from gpuresample.transforms import Resampled
    with pytest.raises(TypeError, match="antialias must be True or False"):
        Resampled(keys=["image"], target_spacing=(1, 1, 1), antialias="no")
    # NumPy scalars and 0-d arrays still work
    assert gr.resample(x, (np.float32(1), np.array(1.0), 1), target_shape=(3, 3, 3), antialias=np.bool_(True)).shape \
        == (3, 3, 3)


def test_14_read_only_out_is_named():
    out = np.empty((3, 3, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        gr.resample(np.zeros((4, 4, 4), np.float32), None, target_shape=(3, 3, 3), out=out)


def reference_plan(tables, in_dtype, out_dtype, input_shape, budget, backend, staged=False, first_row=0):
    """The planner measuring every slab of every try (as it did before it measured only the first), to compare with.

    The same search as :func:`planner.plan_slabs` (cubic plans' state planes, the staged
    host limit), with every slab measured instead of one of each kind.
    """
    fast = planner._distinct_slabs
    planner._distinct_slabs = lambda table, slabs: list(slabs)
    try:
        plan = planner.plan_slabs(tables, in_dtype, out_dtype, input_shape, budget, backend, staged, first_row)
    except MemoryError:
        return None, None
    finally:
        planner._distinct_slabs = fast
    return plan.slabs, plan.peak_bytes


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
@pytest.mark.parametrize("case", [
    ((40, 12, 9), (700, 20, 6), False, 0), ((64, 10, 10), (300, 10, 10), True, 0),
    ((300, 9, 9), (130, 9, 9), True, 17), ((17, 8, 8), (1000, 5, 5), False, 333),
])
@pytest.mark.parametrize("backend", [CpuBackend(), KernelsBackend(), CupyxBackend()], ids=lambda b: b.name)
def test_14_fast_planning_chooses_the_same_slabs(interpolation, case, backend):
    shape, target, antialias, first_row = case
    antialias = antialias and interpolation in ("linear", "cubic")
    source = Grid(shape, (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape(target), interpolation, antialias=antialias)
    staged = backend.on_device
    whole = planner.slab_bytes(tables, "float32", "float32", shape, backend, staged)
    for fraction in (0.9, 0.3, 0.05, 0.01, 0.002):
        budget = int(whole * fraction)
        slabs, peak = reference_plan(tables, "float32", "float32", shape, budget, backend, staged, first_row)
        if slabs is None:
            with pytest.raises(MemoryError):
                planner.plan_slabs(tables, "float32", "float32", shape, budget, backend, staged, first_row)
            continue
        plan = planner.plan_slabs(tables, "float32", "float32", shape, budget, backend, staged, first_row)
        assert plan.slabs == slabs and plan.peak_bytes == peak, fraction


def test_14_planning_measures_few_slabs(monkeypatch):
    """Planning a huge output measures a bounded number of slabs, not one per output row."""
    source = Grid((64, 64, 64), (1.0, 1.0, 1.0))
    tables = build_tables(source, source.with_shape((200_000, 100, 100)), "linear")
    measured = []
    slab_bytes = planner.slab_bytes
    monkeypatch.setattr(planner, "slab_bytes", lambda *a, **k: measured.append(1) or slab_bytes(*a, **k))
    plan = planner.plan_slabs(tables, "float32", "float32", source.shape, 10**7, CpuBackend())
    assert plan.count > 500 and len(measured) < 2000
    with pytest.raises(MemoryError, match="even one output row"):
        planner.plan_slabs(tables, "float32", "float32", source.shape, 10**4, CpuBackend())
    assert len(measured) < 4000


def test_warnings_are_not_raised_by_the_value_checks():
    """The per-value checks cast NaN and out-of-range values on purpose; no RuntimeWarning leaks."""
    x = nan_volume().astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gr.resample(x, None, target_shape=(9, 9, 9), interpolation="label", dtype=np.float32)
        with pytest.raises(ValueError):
            gr.resample(x, None, target_shape=(9, 9, 9), interpolation="label", dtype=np.int32)
