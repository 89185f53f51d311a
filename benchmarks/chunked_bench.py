"""Chunked (slab-by-slab) resampling: cost of chunking, and the host<->device copy floor.

Usage::

    python benchmarks/chunked_bench.py --cpu            # chunked vs whole on the CPU backend
    python benchmarks/chunked_bench.py --gpu            # host data staged through the GPU
    python benchmarks/chunked_bench.py --gpu --huge     # + 2560^3 uint16 -> 3200^3 (needs ~100 GB host RAM)

CPU mode reports, for each case, the median time of an unchunked run and of a run with
``max_memory`` forcing >= 8 slabs, and their ratio. GPU mode keeps input and output on the
host (``device="cuda"``), forces >= 8 slabs with ``max_memory``, and reports the total time
against the floor ``(input bytes + output bytes) / pinned copy bandwidth`` (measured here).
Results are printed as a Markdown table and written to ``benchmarks/results/`` with the
machine and versions.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import gpuresample as gr
from gpuresample.job import build_job

RESULTS = Path(__file__).parent / "results"
#: Slabs the chunked runs are forced into (the issue asks for at least 8).
MIN_SLABS = 8
#: GPU mode: (input shape, dtype, target shape, interpolation, force >= MIN_SLABS slabs).
GPU_CASES = [((1024, 1024, 1024), np.float32, (1536, 1536, 1536), "linear", True)]
#: ``--huge``: slabs as the free device memory decides (needs ~100 GB host RAM).
HUGE_CASE = ((2560, 2560, 2560), np.uint16, (3200, 3200, 3200), "linear", False)
#: Bytes copied each way to measure the pinned host<->device bandwidth.
PINNED_COPY_BYTES = 1 << 30


def dims(shape) -> str:
    """``256^3`` for a cube, else ``512x512x300``."""
    return f"{shape[0]}^{len(shape)}" if len(set(shape)) == 1 else "x".join(map(str, shape))


def device_slug(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3`` (as gpu_bench names its file)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, page faults)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def budget_for_slabs(volume, spacing, target_shape, interpolation, slabs, **options) -> int:
    """A ``max_memory`` that gives at least ``slabs`` slabs."""
    whole = build_job(volume, spacing, target_shape=target_shape, interpolation=interpolation, **options)
    budget = whole.chunking.peak_bytes // slabs
    while build_job(volume, spacing, target_shape=target_shape, interpolation=interpolation,
                    max_memory=budget, **options).chunking.count < slabs:
        budget = int(budget * 0.8)
    return budget


def cpu_cases(repeats: int) -> list:
    rows = []
    rng = np.random.default_rng(0)
    for shape, scale, interpolation in [((256, 256, 256), 1.5, "linear"), ((256, 256, 256), 1.5, "cubic"),
                                        ((384, 384, 384), 0.5, "linear")]:
        volume = rng.standard_normal(shape).astype(np.float32)
        target = tuple(int(n * scale) for n in shape)
        out = np.empty(target, np.float32)
        budget = budget_for_slabs(volume, (1, 1, 1), target, interpolation, MIN_SLABS)
        slabs = build_job(volume, (1, 1, 1), target_shape=target, interpolation=interpolation,
                          max_memory=budget).chunking.count
        whole = median_time(lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                                interpolation=interpolation, out=out), repeats)
        chunked = median_time(lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                                  interpolation=interpolation, out=out, max_memory=budget), repeats)
        rows.append((f"{dims(shape)} -> {dims(target)} float32 {interpolation}", slabs,
                     f"{whole * 1e3:.0f} ms", f"{chunked * 1e3:.0f} ms", f"{chunked / whole:.2f}x"))
    return rows


def pinned_bandwidth(cupy, nbytes: int) -> float:
    """Bytes per second of host(pinned)->device plus device->host copies, measured with events."""
    host = cupy.cuda.alloc_pinned_memory(nbytes)
    host_array = np.frombuffer(host, np.uint8, nbytes)
    host_array[:] = 1
    device = cupy.empty(nbytes, np.uint8)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(5):
        start.record()
        device.set(host_array)
        device.get(out=host_array)
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return 2 * nbytes / statistics.median(times)


def gpu_cases(repeats: int, huge: bool) -> list:
    from gpuresample._cupy import import_cupy
    cupy = import_cupy()
    bandwidth = pinned_bandwidth(cupy, PINNED_COPY_BYTES)
    cases = list(GPU_CASES)
    if huge:
        cases.append(HUGE_CASE)
    rows = []
    for shape, dtype, target, interpolation, force_slabs in cases:
        volume = np.ones(shape, dtype)
        volume[::7] = 3
        out = np.empty(target, dtype)
        options = {"device": "cuda"}
        if force_slabs:
            options["max_memory"] = budget_for_slabs(volume, (1, 1, 1), target, interpolation, MIN_SLABS,
                                                     device="cuda")
        job = build_job(volume, (1, 1, 1), target_shape=target, interpolation=interpolation, **options)
        seconds = median_time(lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                                  interpolation=interpolation, out=out, **options), repeats)
        floor = (volume.nbytes + out.nbytes) / bandwidth
        rows.append((f"{dims(shape)} {np.dtype(dtype)} -> {dims(target)} {interpolation}", job.chunking.count,
                     f"{seconds:.2f} s", f"{floor:.2f} s", f"{seconds / floor:.2f}x"))
    return rows, bandwidth


def markdown(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import scipy
    return (f"{cpu}, {__import__('os').cpu_count()} cores; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, SciPy {scipy.__version__}, Numba {numba.__version__}, "
            f"gpuresample {gr.__version__}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--cpu", action="store_true")
    mode.add_argument("--gpu", action="store_true")
    parser.add_argument("--huge", action="store_true", help="also 2560^3 uint16 -> 3200^3 (GPU mode)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the Markdown results")
    args = parser.parse_args(argv)
    if args.cpu:
        rows = cpu_cases(args.repeats)
        table = markdown(("case", "slabs", "whole (median)", "chunked (median)", "chunked / whole"), rows)
        text = f"# Chunked vs whole on the CPU backend\n\nMachine: {machine()}\n\n{table}\n"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "chunked-cpu.md").write_text(text)
    else:
        try:
            rows, bandwidth = gpu_cases(args.repeats, args.huge)
        except gr.BackendUnavailable as exc:
            print(f"GPU benchmark cannot run here: {exc}", file=sys.stderr)
            return 2
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        table = markdown(("case", "slabs", "total (median)", "copy floor", "ratio (goal <= 1.3x)"), rows)
        text = (f"# Chunked, host data staged through the GPU\n\nDevice: {name}; CuPy {cupy.__version__}; "
                f"pinned copy bandwidth {bandwidth / 1e9:.1f} GB/s (H2D + D2H)\n\nHost: {machine()}\n\n{table}\n")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"chunked-gpu-{device_slug(name)}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
