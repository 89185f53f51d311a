"""Every error path (docs/design.md §9): the exception type, and a message naming argument and value."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gpuresample as gr

X = np.zeros((4, 5, 6), np.float32)


@pytest.mark.parametrize("spacing,match", [
    ((1, 0, 1), "spacing entries must be finite and > 0"),
    ((1, -2, 1), "spacing entries must be finite and > 0"),
    ((1, float("nan"), 1), "spacing entries must be finite and > 0"),
    ((1, float("inf"), 1), "spacing entries must be finite and > 0"),
    ((1, 1), "spacing must have 3 entries"),
])
def test_bad_spacing(spacing, match):
    with pytest.raises(ValueError, match=match):
        gr.resample(X, spacing, target_shape=(2, 2, 2))


def test_bad_spacing_type():
    with pytest.raises(TypeError, match="spacing entries must be numbers"):
        gr.resample(X, (1, "a", 1), target_shape=(2, 2, 2))


@pytest.mark.parametrize("shape,match", [
    ((0, 2, 2), "target_shape entries must be integers >= 1, got 0"),
    ((2.5, 2, 2), "target_shape entries must be integers >= 1, got 2.5"),
    ((2, 2), "target_shape must have 3 entries"),
    ((-1, 2, 2), "target_shape entries must be integers >= 1"),
])
def test_bad_target_shape(shape, match):
    with pytest.raises(ValueError, match=match):
        gr.resample(X, (1, 1, 1), target_shape=shape)


@pytest.mark.parametrize("target_spacing", [(0, 1, 1), (1, 1, float("nan")), (1, 1)])
def test_bad_target_spacing(target_spacing):
    with pytest.raises(ValueError, match="target_spacing"):
        gr.resample(X, (1, 1, 1), target_spacing=target_spacing)


def test_no_target():
    with pytest.raises(ValueError, match="give target_shape or target_spacing"):
        gr.resample(X, (1, 1, 1))


def test_disagreeing_targets():
    with pytest.raises(ValueError, match="disagree"):
        gr.resample(X, (1, 1, 1), target_shape=(2, 2, 2), target_spacing=(1, 1, 1))


def test_agreeing_targets_allowed():
    out = gr.resample(X, (1, 1, 1), target_shape=(8, 10, 12), target_spacing=(0.5, 0.5, 0.5))
    assert out.shape == (8, 10, 12)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5), (1, 2, 3, 4, 5)])
def test_wrong_number_of_axes(shape):
    with pytest.raises(ValueError, match="must be 2-D or 3-D"):
        gr.resample(np.zeros(shape, np.float32), None, target_shape=(2,) * len(shape))


def test_4d_hint_mentions_channel_axis():
    with pytest.raises(ValueError, match="channel_axis"):
        gr.resample(np.zeros((2, 3, 4, 5), np.float32), (1, 1, 1), target_shape=(2, 2, 2))


def test_bad_channel_axis():
    with pytest.raises(ValueError, match="channel_axis=7"):
        gr.resample(np.zeros((2, 3, 4, 5), np.float32), (1, 1, 1), target_shape=(2, 2, 2), channel_axis=7)


@pytest.mark.parametrize("dtype", ["complex64", "float128", "object", "datetime64[s]"])
def test_unsupported_dtype(dtype):
    with pytest.raises(TypeError, match=re.escape(f"data dtype {np.dtype(dtype)} is not supported")):
        gr.resample(np.zeros((2, 2, 2), dtype), (1, 1, 1), target_shape=(3, 3, 3))


def test_unsupported_output_dtype():
    with pytest.raises(TypeError, match="dtype complex64 is not supported"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), dtype="complex64")


def test_unknown_interpolation():
    with pytest.raises(ValueError, match="interpolation='bicubic' is not an interpolation"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), interpolation="bicubic")


def test_interpolation_any_case():
    a = gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), interpolation="LiNeAr")
    b = gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), interpolation=gr.Interpolation.LINEAR)
    np.testing.assert_array_equal(a, b)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend='opencl' is not a backend"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), backend="opencl")


def test_gpu_backend_without_gpu_says_why():
    reasons = gr.available_backends()
    if reasons["cupyx"] is None:
        pytest.skip("a GPU backend is available here")
    with pytest.raises(gr.BackendUnavailable, match="cannot run here: .*CuPy"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), backend="cupyx")
    with pytest.raises(gr.BackendUnavailable, match="CuPy"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), device="cuda")


def test_bad_device():
    with pytest.raises(ValueError, match="device='tpu' is not a device"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), device="tpu")


def test_antialias_with_nearest_rejected():
    with pytest.raises(ValueError, match="antialias"):
        gr.resample(X, (1, 1, 1), target_shape=(2, 2, 2), interpolation="nearest", antialias=True)


@pytest.mark.parametrize("value,match", [("2 parsecs", "is not a size"), ("2X", "is not a size"), ("GB", "is not a size"), (-5, "must be > 0"), ([1], "must be bytes")])
def test_bad_max_memory(value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), max_memory=value)


@pytest.mark.parametrize("value,expected", [
    ("2GB", 2 * 10**9), ("2G", 2 * 10**9), ("2 gb", 2 * 10**9), ("1.5GiB", 3 * 2**29), ("1.5Gi", 3 * 2**29),
    ("512 MiB", 512 * 2**20), ("300k", 300_000), ("4096", 4096), (4096, 4096),
])
def test_max_memory_sizes(value, expected):
    from gpuresample._validate import parse_bytes

    assert parse_bytes(value) == expected


def test_max_memory_too_small_for_one_row():
    with pytest.raises(MemoryError, match="even one output row"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), max_memory=16)


def test_out_with_wrong_shape_or_dtype():
    with pytest.raises(ValueError, match="out has shape"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), out=np.empty((3, 3, 4), np.float32))
    with pytest.raises(ValueError, match="out has dtype"):
        gr.resample(X, (1, 1, 1), target_shape=(3, 3, 3), out=np.empty((3, 3, 3), np.float64))


def test_not_an_array():
    with pytest.raises(TypeError, match="data must be"):
        gr.resample("volume.nii", (1, 1, 1), target_shape=(3, 3, 3))


def test_grid_errors():
    with pytest.raises(ValueError, match="origin must be 3 finite numbers"):
        gr.Grid((2, 2, 2), (1, 1, 1), origin=(0, 0))
    with pytest.raises(ValueError, match="direction must be orthonormal"):
        gr.Grid((2, 2, 2), (1, 1, 1), direction=np.ones((3, 3)))
    with pytest.raises(ValueError, match="direction must be a 3x3 matrix"):
        gr.Grid((2, 2, 2), (1, 1, 1), direction=np.eye(2))


def test_scene_mask_shape_mismatch():
    with pytest.raises(ValueError, match="mask 'Liver' has shape \\(4, 5, 7\\), the dataset grid has shape \\(4, 5, 6\\)"):
        gr.Scene((1, 1, 1), volumes={"CT": X}, masks={"Liver": np.zeros((4, 5, 7), np.uint8)})


def test_scene_errors():
    scene = gr.Scene((1, 1, 1), volumes={"CT": X}, masks={"Liver": np.zeros((4, 5, 6), np.uint8)})
    with pytest.raises(ValueError, match="'Lung', which is not in this scene"):
        scene.plan(target_shape=(2, 2, 2), names=["Lung"])
    with pytest.raises(ValueError, match="mask_interpolation='spline'"):
        scene.plan(target_shape=(2, 2, 2), mask_interpolation="spline")
    with pytest.raises(ValueError, match="volume_interpolation='label' is for masks"):
        scene.plan(target_shape=(2, 2, 2), volume_interpolation="label")
    with pytest.raises(TypeError, match="unknown option"):
        scene.plan(target_shape=(2, 2, 2), colour="red")
    with pytest.raises(ValueError, match="both a volume and a mask"):
        gr.Scene((1, 1, 1), volumes={"A": X}, masks={"A": X})
