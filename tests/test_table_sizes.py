"""Long thin targets: the sampling tables are counted before they are built."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import _guards
from gpuresample.interpolation import Interpolation
from gpuresample.tables import build_tables

X = np.zeros((4, 4, 4), np.float32)


def test_a_target_whose_tables_cannot_be_built_is_the_librarys_memory_error():
    start = time.perf_counter()
    with pytest.raises(MemoryError) as caught:
        gr.resample(X, (1.0, 1.0, 1.0), target_shape=(2**40, 1, 1))
    assert time.perf_counter() - start < 5.0
    message = str(caught.value)
    assert "Unable to allocate" not in message            # not NumPy's own error
    assert "target_shape=(1099511627776, 1, 1)" in message and "sampling tables" in message
    assert "\n" not in message


class Built(Exception):
    """Raised by a stand-in for building the tables: the call got that far."""


def test_tables_are_refused_when_the_memory_available_cannot_hold_them(monkeypatch):
    # 2**24 outputs along one axis: a 64 MiB float32 result, but about 1.9 GiB while its linear
    # table is built. Below that much free memory it is refused before any table exists.
    monkeypatch.setattr(_guards, "available_host_bytes", lambda: 1 << 30)

    def build(*args, **kwargs):
        raise Built

    monkeypatch.setattr("gpuresample.job.cached_tables", build)
    with pytest.raises(MemoryError, match=r"need 1\.9 GiB; only 1\.0 GiB of host memory is available"):
        gr.resample(X, (1.0, 1.0, 1.0), target_shape=(2**24, 1, 1))
    with pytest.raises(Built):  # nearest builds a smaller table (640 MiB), which fits
        gr.resample(X, (1.0, 1.0, 1.0), target_shape=(2**24, 1, 1), interpolation="nearest")


def test_small_tables_never_ask_for_free_memory(monkeypatch):
    monkeypatch.setattr(_guards, "available_host_bytes", lambda: pytest.fail("asked for free memory"))
    assert gr.resample(X, (1.0, 1.0, 1.0), target_shape=(1000, 3, 3)).shape == (1000, 3, 3)


@pytest.mark.parametrize("interpolation", list(Interpolation))
def test_the_counted_bytes_cover_what_building_the_tables_takes(interpolation):
    n = 1 << 18
    source = gr.Grid((4, 4, 4), (1.0, 1.0, 1.0))
    target = gr.Grid((n, 1, 1), (4.0 / n, 4.0, 4.0))
    tracemalloc.start()
    try:
        build_tables(source, target, interpolation)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    counted = _guards.table_bytes(target.shape, interpolation)
    assert peak <= counted <= 2 * peak


def test_the_count_is_per_axis_and_none_means_the_smallest():
    assert _guards.table_bytes((10, 20, 30), "linear") == 60 * _guards.TABLE_BUILD_BYTES["linear"]
    assert _guards.table_bytes((10, 20, 30)) == 60 * _guards.TABLE_BUILD_BYTES["nearest"]


def test_dask_counts_the_tables_of_its_interpolation(monkeypatch):
    """The Dask front end sizes the tables of the interpolation asked for, as ``resample`` does:
    linear's 1.9 GiB is refused where only 1 GiB is free, nearest's 640 MiB is built."""
    da = pytest.importorskip("dask.array")
    from gpuresample import dask as gr_dask

    monkeypatch.setattr(_guards, "available_host_bytes", lambda: 1 << 30)

    def build(*args, **kwargs):
        raise Built

    monkeypatch.setattr(gr_dask, "build_tables", build)
    data = da.zeros((4, 4, 4), np.float32, chunks=2)
    with pytest.raises(MemoryError, match=r"need 1\.9 GiB; only 1\.0 GiB of host memory is available"):
        gr_dask.resample(data, (1.0, 1.0, 1.0), target_shape=(2**24, 1, 1), interpolation="linear")
    with pytest.raises(Built):
        gr_dask.resample(data, (1.0, 1.0, 1.0), target_shape=(2**24, 1, 1), interpolation="nearest")
