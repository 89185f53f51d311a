"""Values a dtype= cannot hold, and errors that name the argument, its value and what is allowed.

Each error is one line, a ``TypeError`` or ``ValueError``, raised before anything runs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gpuresample as gr


# ----------------------------------------------------------------- nearest into a float dtype
@pytest.mark.parametrize("values, dtype, named", [
    (np.array([0, 2**24 + 1], np.int32), "float32", "16777217"),
    (np.array([0, 2**63 - 1], np.int64), "float64", str(2**63 - 1)),
    (np.array([1, 2**62 + 1], np.uint64), "float64", str(2**62 + 1)),
])
def test_nearest_from_integers_refuses_a_float_dtype_that_changes_them(values, dtype, named):
    volume = np.resize(values, (4, 4, 3))
    with pytest.raises(ValueError, match=rf"dtype={dtype}.*{named}") as refused:
        gr.resample(volume, None, target_shape=(6, 6, 6), interpolation="nearest", dtype=dtype)
    assert "\n" not in str(refused.value)


def test_nearest_from_integers_into_a_float_dtype_that_holds_them():
    volume = np.resize(np.array([0, 2**24, 2**25, -(2**24)], np.int32), (4, 4, 3))   # beyond 2**24, but exact
    result = gr.resample(volume, None, target_shape=(4, 4, 3), interpolation="nearest", dtype="float32")
    np.testing.assert_array_equal(result, volume.astype(np.float32))
    linear = gr.resample(volume + 1, None, target_shape=(6, 6, 6), interpolation="linear", dtype="float32")
    assert linear.dtype == np.float32    # interpolated values are new values: no exactness check


# ----------------------------------------------------------------- one-line errors naming the argument
VOLUME = np.zeros((4, 4, 4), np.float32)


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_out_that_is_not_an_array_is_a_type_error_naming_out():
    with pytest.raises(TypeError, match=r"^out must be an array.*list") as refused:
        gr.resample(VOLUME, (1, 1, 1), target_shape=(1, 1, 1), out=[[[0.0]]])
    one_line(refused)


def test_dask_output_chunks_zero_names_output_chunks():
    pytest.importorskip("dask.array")
    import dask.array as da

    import gpuresample.dask as grd
    with pytest.raises(ValueError, match=r"output_chunks=0.*>= 1") as refused:
        grd.resample(da.from_array(VOLUME, chunks=2), (1, 1, 1), target_shape=(4, 4, 4), output_chunks=0)
    one_line(refused)


def test_an_affine_given_as_a_string_names_the_affine():
    from gpuresample.images import target_grid
    from gpuresample.transforms import Resampled
    with pytest.raises(TypeError, match=r"affine.*'abc'") as refused:
        target_grid({"data": VOLUME, "affine": "abc"})
    assert "data must" not in one_line(refused)
    with pytest.raises(TypeError, match=r"affine.*'abc'"):
        Resampled(keys=["image"], target_spacing=(2.0, 2.0, 2.0))({"image": {"data": VOLUME, "affine": "abc"}})


@pytest.mark.parametrize("spacing", [(10**400, 1, 1), (1e308, 1, 1), (1e200, 1, 1)])
def test_huge_spacing_is_refused_naming_the_value_given(spacing):
    with pytest.raises(ValueError, match=r"^spacing entries must be .*at most") as refused:
        gr.resample(VOLUME, spacing, target_shape=(2, 2, 2))
    text = one_line(refused)
    assert "inf" not in text and len(text) < 300, text


def test_huge_target_spacing_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^target_spacing entries must be .*at most"):
        gr.resample(VOLUME, (1, 1, 1), target_spacing=(1e308, 1, 1))


@pytest.mark.parametrize("dtype, fill", [("float32", 1e300), ("float16", 1e6), ("float32", -1e39)])
def test_fill_beyond_a_float_dtype_is_refused(dtype, fill):
    far = gr.Grid((4, 4, 4), (1.0, 1.0, 1.0), origin=(10.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=rf"^fill={re.escape(repr(fill))}.*{dtype}") as refused:
        gr.resample(VOLUME.astype(dtype), (1, 1, 1), target=far, fill=fill)
    one_line(refused)
    result = gr.resample(VOLUME, (1, 1, 1), target=far, fill=float("inf"))   # inf itself is a float value
    assert np.isinf(result).all()


@pytest.mark.parametrize("max_memory", [2.5, "2.5", 1e9 + 0.5])
def test_max_memory_that_is_not_a_whole_number_of_bytes_is_refused(max_memory):
    with pytest.raises(ValueError, match=r"^max_memory=.*whole number of bytes") as refused:
        gr.resample(VOLUME, (1, 1, 1), target_shape=(2, 2, 2), max_memory=max_memory)
    one_line(refused)


def test_max_memory_whole_numbers_and_units_still_work():
    from gpuresample._validate import parse_bytes
    assert parse_bytes(2.0) == 2 and parse_bytes("1.5KiB") == 1536 and parse_bytes("2GB") == 2 * 10**9


# ----------------------------------------------------------------- damaged files, awkward names
def test_a_truncated_nifti_keeps_the_byte_counts(tmp_path):
    pytest.importorskip("nibabel")
    from gpuresample import io
    path = tmp_path / "t.nii"
    io.save(path, np.ones((10, 10, 10), np.float32), gr.Grid((10, 10, 10), (1.0, 1.0, 1.0)))
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(OSError, match=r"t\.nii.*[Ee]xpected 4000 bytes, got 3500") as refused:
        io.read(path)
    one_line(refused)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd"])
def test_short_pixel_data_says_so(tmp_path, suffix):
    pytest.importorskip("SimpleITK")
    from gpuresample import io
    path = tmp_path / f"s{suffix}"
    io.save(path, np.ones((10, 10, 10), np.float32), gr.Grid((10, 10, 10), (1.0, 1.0, 1.0)))
    data = io.files_read(path)[-1]
    data.write_bytes(data.read_bytes()[:-500])
    with pytest.raises(OSError, match=r"expected 4000 bytes of pixel data, .*3500") as refused:
        io.read(path)
    assert "No such file" not in one_line(refused)


def test_short_pixel_data_is_one_line_from_the_command(tmp_path, capfd):
    pytest.importorskip("SimpleITK")
    from gpuresample import cli, io
    path = tmp_path / "s.mha"
    io.save(path, np.ones((10, 10, 10), np.float32), gr.Grid((10, 10, 10), (1.0, 1.0, 1.0)))
    path.write_bytes(path.read_bytes()[:-500])
    code = cli.main([str(path), str(tmp_path / "o.nii.gz"), "--shape", "4", "4", "4"])
    err = capfd.readouterr().err   # file descriptor 2: SimpleITK's own messages too
    assert code == 2 and err.count("\n") == 1 and "expected 4000 bytes" in err, err


def test_a_file_name_starting_with_a_dash_after_double_dash(tmp_path, capsys, monkeypatch):
    pytest.importorskip("nibabel")
    from gpuresample import cli, io
    monkeypatch.chdir(tmp_path)
    io.save("-dash.nii.gz", np.ones((6, 6, 6), np.float32), gr.Grid((6, 6, 6), (1.0, 1.0, 1.0)))
    code = cli.main(["--shape", "4", "4", "4", "--", "-dash.nii.gz", "-out.nii.gz"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert io.read("-out.nii.gz")[0].shape == (4, 4, 4)
    code = cli.main(["-dash.nii.gz", "o.nii.gz", "--shape", "4", "4", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "after --" in err, err


@pytest.mark.parametrize("in_dtype, out_dtype, holds", [
    ("int16", "float32", True), ("uint8", "int16", True), ("bool", "uint8", True), ("float32", "float64", True),
    ("int32", "float32", False), ("int64", "float64", False), ("uint64", "float64", False), ("int8", "uint8", False),
    ("float64", "float32", False), ("float32", "int32", False),
])
def test_dtype_holds_every_value(in_dtype, out_dtype, holds):
    from gpuresample._guards import _dtype_holds
    assert _dtype_holds(np.dtype(in_dtype), np.dtype(out_dtype)) is holds
