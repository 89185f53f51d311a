"""``out=`` that is another view of the input is refused, as ``out=data`` is.

Two memory maps of one file with overlapping bytes, or two handles of one Zarr array,
are the same storage: resampling into one would overwrite the input while reading it.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr


def test_a_second_memory_map_of_the_input_file_is_refused_as_out(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6))
    before = path.read_bytes()
    data = np.load(path, mmap_mode="r+")
    out = np.load(path, mmap_mode="r+")
    with pytest.raises(ValueError, match="out"):
        gr.resample(data, (1.0, 1.0, 1.0), target_shape=(4, 5, 6), interpolation="linear", out=out)
    with pytest.raises(ValueError, match="out"):   # views of the same file, overlapping bytes
        gr.resample(data[:3], (1.0, 1.0, 1.0), target_shape=(3, 5, 6), out=out[1:])
    header = path.stat().st_size - 120 * 4
    other = np.memmap(path, np.float32, "r+", offset=header + 4 * 30, shape=(3, 5, 6))
    with pytest.raises(ValueError, match="out"):   # numpy.memmap of the same file, rows 1..3
        gr.resample(data[:3], (1.0, 1.0, 1.0), target_shape=(3, 5, 6), out=other)
    del other
    del data, out
    assert path.read_bytes() == before


def test_memory_maps_of_one_file_that_do_not_overlap_are_accepted(tmp_path):
    path = tmp_path / "two.raw"
    np.arange(2 * 60, dtype=np.float32).tofile(path)
    first = np.memmap(path, np.float32, "r+", shape=(3, 4, 5))
    second = np.memmap(path, np.float32, "r+", offset=60 * 4, shape=(3, 4, 5))
    gr.resample(first, (1.0, 1.0, 1.0), target_shape=(3, 4, 5), interpolation="nearest", out=second)
    np.testing.assert_array_equal(np.fromfile(path, np.float32), np.tile(np.arange(60, dtype=np.float32), 2))


def test_the_same_zarr_array_is_refused_as_out(tmp_path):
    zarr = pytest.importorskip("zarr")
    store = tmp_path / "v.zarr"
    data = zarr.open_array(store, mode="w", shape=(4, 5, 6), chunks=(2, 5, 6), dtype="float32")
    data[:] = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    out = zarr.open_array(store, mode="r+")
    with pytest.raises(ValueError, match="out"):
        gr.resample(data, (1.0, 1.0, 1.0), target_shape=(4, 5, 6), out=out)
    np.testing.assert_array_equal(data[:], np.arange(120, dtype=np.float32).reshape(4, 5, 6))
    other = zarr.open_array(tmp_path / "w.zarr", mode="w", shape=(4, 5, 6), chunks=(2, 5, 6), dtype="float32")
    gr.resample(data, (1.0, 1.0, 1.0), target_shape=(4, 5, 6), out=other)
    np.testing.assert_array_equal(other[:], data[:])
