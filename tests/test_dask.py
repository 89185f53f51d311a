"""gpuresample.dask: a lazy dask.array graph that equals the in-memory resample.

Results are compared with :func:`gpuresample.resample` on the whole array: bit for bit,
for every interpolation, cubic included (docs/design.md §2). Most tests
run on a ``distributed.LocalCluster`` (in-process workers, two threads).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

import gpuresample as gr
from helpers import random_volume

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
grd = pytest.importorskip("gpuresample.dask")

SPACING = (1.0, 0.8, 1.3)
SHAPE = (23, 17, 19)
#: Odd input chunks: uneven last chunks on every axis, a one-row-wide chunk grid on none.
INPUT_CHUNKS = (5, 7, 4)
#: Odd output chunks (none divides its axis).
OUTPUT_CHUNKS = (7, 11, 6)
TARGETS = {
    "up": (41, 29, 30),
    "down": (11, 8, 9),
    "mixed": (37, 9, 14),
}


@pytest.fixture(scope="module")
def client():
    """A small in-process cluster: one worker, two threads, no dashboard."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def assert_same(got, want, interpolation):
    """Bit for bit, every interpolation."""
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f"), (
        f"{interpolation}: {np.count_nonzero(got != want)} values differ")


def volume_for(interpolation, dtype="float32", shape=SHAPE, seed=3):
    x = random_volume(shape, dtype, seed=seed)
    if interpolation == "label":
        x = (x.astype(np.int64) % 5).astype(np.uint8)
    return x


@pytest.mark.parametrize("direction", sorted(TARGETS))
@pytest.mark.parametrize("interpolation", ["nearest", "linear", "cubic", "label"])
def test_equals_in_memory_on_cluster(client, interpolation, direction):
    x = volume_for(interpolation)
    target = TARGETS[direction]
    lazy = grd.resample(da.from_array(x, chunks=INPUT_CHUNKS), SPACING, target_shape=target,
                        interpolation=interpolation, output_chunks=OUTPUT_CHUNKS)
    assert lazy.shape == target
    assert lazy.chunks == da.core.normalize_chunks(OUTPUT_CHUNKS, target)
    got = client.compute(lazy).result()
    assert_same(got, gr.resample(x, SPACING, target_shape=target, interpolation=interpolation), interpolation)


@pytest.mark.parametrize("direction", ["down", "mixed"])
@pytest.mark.parametrize("interpolation", ["linear", "cubic"])
def test_antialias_equals_in_memory(client, interpolation, direction):
    x = volume_for(interpolation, seed=4)
    target = TARGETS[direction]
    lazy = grd.resample(da.from_array(x, chunks=INPUT_CHUNKS), SPACING, target_shape=target,
                        interpolation=interpolation, antialias=True, output_chunks=(3, 2, 5))
    want = gr.resample(x, SPACING, target_shape=target, interpolation=interpolation, antialias=True)
    assert_same(client.compute(lazy).result(), want, interpolation)


@pytest.mark.parametrize("dtype,interpolation,out_dtype", [
    ("uint8", "linear", None),       # integer rounding
    ("int16", "cubic", None),        # cubic overshoot clipped, compared exactly after rounding
    ("float16", "linear", None),
    ("bool", "nearest", None),
    ("bool", "label", None),
    ("uint16", "linear", "float32"),
])
def test_dtypes(client, dtype, interpolation, out_dtype):
    x = random_volume(SHAPE, dtype, seed=5)
    lazy = grd.resample(da.from_array(x, chunks=INPUT_CHUNKS), SPACING, target_spacing=(0.7, 1.1, 0.9),
                        interpolation=interpolation, dtype=out_dtype, output_chunks=OUTPUT_CHUNKS)
    want = gr.resample(x, SPACING, target_spacing=(0.7, 1.1, 0.9), interpolation=interpolation, dtype=out_dtype)
    assert_same(client.compute(lazy).result(), want, interpolation)


@pytest.mark.parametrize("interpolation", ["linear", "cubic", "label"])
def test_2d(client, interpolation):
    x = volume_for(interpolation, shape=(37, 26), seed=6)
    lazy = grd.resample(da.from_array(x, chunks=(9, 5)), (0.6, 1.0), target_shape=(50, 13),
                        interpolation=interpolation, output_chunks=(13, 4))
    assert lazy.chunks == ((13, 13, 13, 11), (4, 4, 4, 1))
    want = gr.resample(x, (0.6, 1.0), target_shape=(50, 13), interpolation=interpolation)
    assert_same(client.compute(lazy).result(), want, interpolation)


def test_zarr_input_and_output(client, tmp_path):
    zarr = pytest.importorskip("zarr")
    x = random_volume((30, 26, 28), "float32", seed=7)
    source = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=x.shape, chunks=(8, 8, 8), dtype="float32")
    source[...] = x
    data = da.from_zarr(tmp_path / "in.zarr")
    assert data.numblocks == (4, 4, 4)  # larger than one chunk
    target_spacing = (1.5, 0.7, 0.9)
    for interpolation in ("linear", "cubic"):
        lazy = grd.resample(data, (1.0, 1.0, 1.0), target_spacing=target_spacing, interpolation=interpolation,
                            output_chunks=(9, 13, 10))
        lazy.to_zarr(str(tmp_path / f"out-{interpolation}.zarr"), compute=True)
        written = zarr.open_array(tmp_path / f"out-{interpolation}.zarr", mode="r")[...]
        want = gr.resample(x, (1.0, 1.0, 1.0), target_spacing=target_spacing, interpolation=interpolation)
        assert_same(written, want, interpolation)
    # a Zarr array given directly is read in its own chunks
    direct = grd.resample(source, (1.0, 1.0, 1.0), target_spacing=target_spacing)
    assert direct.numblocks == (4, 4, 4)
    assert_same(client.compute(direct).result(),
                gr.resample(x, (1.0, 1.0, 1.0), target_spacing=target_spacing), "linear")


def test_channel_axis(client):
    x = random_volume((3, 14, 11, 9), "float32", seed=8)
    lazy = grd.resample(da.from_array(x, chunks=(2, 5, 5, 5)), (1.0, 1.0, 2.0), target_shape=(20, 7, 18),
                        channel_axis=0, output_chunks=6)
    assert lazy.shape == (3, 20, 7, 18) and lazy.chunks[0] == (1, 1, 1)
    want = gr.resample(x, (1.0, 1.0, 2.0), target_shape=(20, 7, 18), channel_axis=0)
    assert_same(client.compute(lazy).result(), want, "linear")


def expected_rows(n_in, n_out, spacing, target_spacing, start, stop):
    """Input rows linear output rows ``[start, stop)`` read, from the formula of docs/design.md §1 alone."""
    extent, new_extent = n_in * spacing, n_out * target_spacing
    u = lambda j: ((j + 0.5) * target_spacing + (extent - new_extent) / 2) / spacing - 0.5  # noqa: E731
    first = min(max(u(start), 0.0), n_in - 1.0)
    last = min(max(u(stop - 1), 0.0), n_in - 1.0)
    return math.floor(first), math.ceil(last) + 1


def chunk_indices(bounds, lo, hi):
    return {i for i in range(len(bounds) - 1) if bounds[i] < hi and bounds[i + 1] > lo}


def test_each_task_reads_only_the_chunks_it_needs():
    shape, in_chunks, spacing, target_spacing = (40, 33, 25), (6, 5, 7), (1.0, 1.3, 0.7), (1.7, 0.9, 1.4)
    data = da.zeros(shape, chunks=in_chunks, dtype="float32")
    lazy = grd.resample(data, spacing, target_spacing=target_spacing, output_chunks=(5, 9, 4))
    target = gr.Grid(shape, spacing).with_spacing(target_spacing)
    graph = dict(lazy.__dask_graph__())
    out_bounds = [np.cumsum((0,) + c) for c in lazy.chunks]
    in_bounds = [np.cumsum((0,) + c) for c in data.chunks]
    seen_fewer = False
    for key in [k for k in graph if k[0] == lazy.name]:
        expected = []
        for a in range(3):
            start, stop = int(out_bounds[a][key[1 + a]]), int(out_bounds[a][key[1 + a] + 1])
            rows = expected_rows(shape[a], target.shape[a], spacing[a], target_spacing[a], start, stop)
            expected.append(chunk_indices(in_bounds[a], *rows))
        want = {(data.name, i, j, k) for i in expected[0] for j in expected[1] for k in expected[2]}
        assert set(graph[key].dependencies) == want, key
        seen_fewer |= len(want) < math.prod(data.numblocks)
    assert seen_fewer


def test_cubic_and_antialias_tasks_stay_local():
    """Taps and the Gaussian widen a task's input region by a bounded number of rows, never to
    the whole axis; cubic slabs read only the rows their coefficients need (their prefilter
    starts from states that one task per column of input chunks computes over all rows)."""
    from gpuresample.tables import gaussian_radius

    n = 200
    data = da.zeros((n, 8, 8), chunks=(10, 8, 8), dtype="float32")
    for options, reach in [({"interpolation": "cubic"}, 2),
                           ({"interpolation": "linear", "antialias": True}, gaussian_radius((4.0 - 1) / 2) + 2)]:
        lazy = grd.resample(data, (1.0, 1.0, 1.0), target_spacing=(4.0, 1.0, 1.0), output_chunks=(5, 8, 8),
                            **options)
        graph = dict(lazy.__dask_graph__())
        slab_keys = [k for k in graph if isinstance(k, tuple) and k[0] == lazy.name]
        assert len(slab_keys) == 10
        for key in slab_keys:
            start = key[1] * 5
            lo, hi = start * 4 - reach, (start + 5) * 4 + reach
            rows = {k[1] for k in graph[key].dependencies if k[0] == data.name}
            assert rows <= set(range(max(lo, 0) // 10, min(hi, n - 1) // 10 + 1)), (options, key, rows)
            states = [k for k in graph[key].dependencies if k[0] != data.name]
            assert len(states) == (1 if options["interpolation"] == "cubic" else 0)
        if options["interpolation"] == "cubic":
            [state_key] = [k for k in graph if isinstance(k, tuple) and k[0].endswith("-prefilter-states")]
            assert {k[1] for k in graph[state_key].dependencies} == set(range(n // 10))  # the whole column


@pytest.mark.parametrize("output_chunks", [(13, 11, 6), (40, 29, 11), (120, 5, 11)])
@pytest.mark.parametrize("antialias", [False, True])
def test_cubic_chunks_cutting_the_prefilter_equal_in_memory(client, output_chunks, antialias):
    """Axis 0 far longer than the prefilter's reach, chunked along every axis: bit for bit.

    Before slabs started the prefilter from the whole line's states, chunked cubic differed
    from the in-memory run in many voxels here.
    """
    x = random_volume((90, 17, 19), "float32", seed=12)
    kw = dict(target_shape=(120, 29, 11) if not antialias else (40, 9, 11), interpolation="cubic",
              antialias=antialias)
    want = gr.resample(x, SPACING, **kw)
    chunks = tuple(min(c, n) for c, n in zip(output_chunks, kw["target_shape"]))
    lazy = grd.resample(da.from_array(x, chunks=(7, 5, 6)), SPACING, output_chunks=chunks, **kw)
    assert lazy.chunks == da.core.normalize_chunks(chunks, kw["target_shape"])
    assert_same(client.compute(lazy).result(), want, "cubic")


def test_lazy_and_picklable():
    def boom(block):
        raise RuntimeError("input computed while building the graph")

    data = da.zeros((12, 10, 8), chunks=4, dtype="float32").map_blocks(boom, dtype="float32")
    lazy = grd.resample(data, target_shape=(6, 20, 8))  # builds without computing anything
    assert lazy.shape == (6, 20, 8)
    x = random_volume((12, 10, 8), "float32", seed=9)
    lazy = grd.resample(da.from_array(x, chunks=4), target_shape=(6, 20, 8), interpolation="cubic")
    restored = pickle.loads(pickle.dumps(lazy))  # what a cluster ships to its workers
    assert_same(restored.compute(scheduler="sync"), gr.resample(x, target_shape=(6, 20, 8), interpolation="cubic"),
                "cubic")


def test_default_output_chunks():
    data = da.zeros((64, 60, 50), chunks=(16, 30, 50), dtype="float32")
    lazy = grd.resample(data, (2.0, 1.0, 1.0), target_spacing=(1.0, 2.0, 1.0))
    assert lazy.chunks == ((32,) * 4, (15, 15), (50,))  # one output chunk per input chunk
    # upsampling is capped at the larger of the input chunk and dask's array.chunk-size
    import dask

    with dask.config.set({"array.chunk-size": "1KiB"}):
        sizes = grd.default_output_chunks(((16,) * 4,) * 3, (64,) * 3, (256,) * 3, "uint8", "float64")
    assert math.prod(sizes) * 8 <= 16 ** 3 and max(sizes) // min(sizes) <= 2


@pytest.mark.parametrize("kwargs,error,match", [
    ({"backend": "numpy"}, ValueError, "backend='numpy' is not a backend"),
    ({"backend": "cupyx"}, ValueError, "cannot take NumPy"),
    ({"interpolation": "bicubic"}, ValueError, "interpolation='bicubic'"),
    ({"interpolation": "label", "antialias": True}, ValueError, "antialias"),
    ({"output_chunks": (4, 4)}, ValueError, "output_chunks"),
    ({"dtype": "complex64"}, TypeError, "complex64"),
    ({"spacing": (1.0, -1.0, 1.0)}, ValueError, "spacing"),
])
def test_errors(kwargs, error, match):
    kwargs = {"target_shape": (4, 4, 4), **kwargs}
    spacing = kwargs.pop("spacing", (1.0, 1.0, 1.0))
    with pytest.raises(error, match=match):
        grd.resample(da.zeros((8, 8, 8), chunks=4, dtype="float32"), spacing, **kwargs)


def test_errors_on_data():
    with pytest.raises(TypeError, match="data must be"):
        grd.resample([[1.0, 2.0]], target_shape=(4, 4))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        grd.resample(da.zeros((2, 3, 4, 5), chunks=2), target_shape=(4, 4, 4, 4))
    unknown = da.zeros((8, 8, 8), chunks=4)
    unknown = unknown[unknown[:, 0, 0] >= 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        grd.resample(unknown, target_shape=(4, 4, 4))


def test_import_gpuresample_does_not_import_dask():
    done = subprocess.run([sys.executable, "-c", "import sys, gpuresample; print('dask' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_cupy_chunks_on_the_gpu():
    """CuPy chunks (as dask-cuda workers hold them) go to a GPU backend and match the CPU."""
    cupy = pytest.importorskip("cupy")
    if gr.available_backends()["cupyx"] is not None:
        pytest.skip(f"no GPU backend: {gr.available_backends()['cupyx']}")
    for interpolation in ("nearest", "linear", "cubic", "label"):
        x = volume_for(interpolation, seed=10)
        lazy = grd.resample(da.from_array(cupy.asarray(x), chunks=INPUT_CHUNKS), SPACING,
                            target_shape=TARGETS["mixed"], interpolation=interpolation, output_chunks=OUTPUT_CHUNKS)
        got = lazy.compute(scheduler="sync")
        assert isinstance(got, cupy.ndarray)
        want = gr.resample(x, SPACING, target_shape=TARGETS["mixed"], interpolation=interpolation)
        assert_same(got.get(), want, interpolation)
