"""Chunked (slab-by-slab) resampling: cost of chunking, and the host<->device copy floor.

Usage::

    python benchmarks/chunked_bench.py --cpu            # chunked vs whole on the CPU backend
    python benchmarks/chunked_bench.py --gpu            # host data staged through the GPU
    python benchmarks/chunked_bench.py --gpu --huge     # + 2560^3 uint16 -> 3200^3, input and output
                                                        #   as memmaps in --scratch (~100 GB of disk)

CPU mode reports, for each case, the median time of an unchunked run and of a run with
``max_memory`` forcing >= 8 slabs, and their ratio (cubic slabs include the prefilter
pre-pass that makes them bit-identical to the whole run, and the table says whether they
are). It then measures host memory: the resident memory a chunked run adds beyond its input
and output (:class:`PeakMemory`), for an in-memory cubic case and for an on-disk case whose
output (a ``numpy.memmap``) is far larger than ``max_memory``. GPU mode keeps input and
output on the host (``device="cuda"``), forces >= 8 slabs with ``max_memory``, and reports
the total time against the floor ``(input bytes + output bytes) / pinned copy bandwidth``
(measured here), the host memory the run added, and the staged pipeline's host stages.
Results are printed as a Markdown table and written to ``benchmarks/results/`` with the
machine and versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import gpuresample as gr
from gpuresample.backends._staging import STAGES
from gpuresample.job import build_job

RESULTS = Path(__file__).parent / "results"
#: Slabs the chunked runs are forced into (the issue asks for at least 8).
MIN_SLABS = 8
#: GPU mode: (input shape, dtype, target shape, interpolation, force >= MIN_SLABS slabs).
GPU_CASES = [((1024, 1024, 1024), np.float32, (1536, 1536, 1536), "linear", True)]
#: ``--huge``: slabs as the free device memory decides; input and output are memmaps in
#: ``--scratch`` (33.5 GB + 65.5 GB of disk), so the run stays within host memory.
HUGE_CASE = ((2560, 2560, 2560), np.uint16, (3200, 3200, 3200), "linear", False)
#: Factor the budget shrinks by while looking for one that forces ``MIN_SLABS`` slabs.
BUDGET_STEP = 0.9
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
    """A ``max_memory`` that gives at least ``slabs`` slabs: the unsplit peak, shrunk until it does.

    (Not simply the peak over ``slabs``: slabs need different bytes, and cubic plans add the
    prefilter pre-pass, which does not shrink with the slabs.)
    """
    budget = build_job(volume, spacing, target_shape=target_shape, interpolation=interpolation,
                       **options).chunking.peak_bytes
    while True:
        budget = int(budget * BUDGET_STEP)
        try:
            count = build_job(volume, spacing, target_shape=target_shape, interpolation=interpolation,
                              max_memory=budget, **options).chunking.count
        except MemoryError as exc:
            raise RuntimeError(f"no max_memory splits {dims(volume.shape)} {interpolation} into {slabs} slabs: "
                               f"{exc}") from exc
        if count >= slabs:
            return budget


#: CPU memory case: input and output as memmaps on disk, output far beyond max_memory.
DISK_CASE = ((512, 512, 512), np.uint16, (1024, 1024, 1024), "linear", "256MB")
#: The cases :func:`cpu_memory_cases` measures, each in its own process.
MEMORY_CASES = ("in-memory", "on-disk")
#: Seconds between samples of the anonymous resident memory.
RSS_SAMPLE_S = 0.002


def _status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` in bytes (0 where there is none)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Host memory a block of code adds: peak resident memory minus the resident memory before.

    ``anon``: peak anonymous resident memory (sampled every ``RSS_SAMPLE_S``; what the run
    allocates, page cache of memmaps excluded). ``hwm``: the kernel's peak resident set
    (``VmHWM``, reset through ``/proc/self/clear_refs``), which also counts file pages of
    memmaps while they are resident.
    """

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current resident set
        except OSError:
            pass
        self.base_rss, self.base_anon = _status_bytes("VmRSS"), _status_bytes("RssAnon")
        self.peak_anon = self.base_anon
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(RSS_SAMPLE_S):
            self.peak_anon = max(self.peak_anon, _status_bytes("RssAnon"))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_anon = max(self.peak_anon, _status_bytes("RssAnon"))
        self.anon = self.peak_anon - self.base_anon
        self.hwm = max(_status_bytes("VmHWM") - self.base_rss, 0)
        return False


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


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
        reference = out.copy()
        chunked = median_time(lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                                  interpolation=interpolation, out=out, max_memory=budget), repeats)
        same = "yes" if np.array_equal(out, reference) else f"NO ({np.count_nonzero(out != reference)} differ)"
        rows.append((f"{dims(shape)} -> {dims(target)} float32 {interpolation}", slabs,
                     f"{whole * 1e3:.0f} ms", f"{chunked * 1e3:.0f} ms", f"{chunked / whole:.2f}x", same))
    return rows


def cpu_memory_cases(scratch: Path) -> list:
    """Host memory chunked CPU runs add beyond input and output, each case in a fresh process
    (memory a previous case freed but the allocator kept would hide what the next one adds)."""
    rows = []
    for case in MEMORY_CASES:
        done = subprocess.run([sys.executable, __file__, "--cpu", "--memory-case", case, "--scratch", str(scratch)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory case {case!r} failed:\n{done.stderr[-3000:]}")
        rows.append(tuple(json.loads(done.stdout.strip().splitlines()[-1])))
    return rows


def memory_case(case: str, scratch: Path) -> tuple:
    """One row of :func:`cpu_memory_cases`, measured in this process."""
    rng = np.random.default_rng(1)
    small = rng.standard_normal((32, 32, 32)).astype(np.float32)
    gr.resample(small, (1, 1, 1), target_shape=(48, 48, 48), interpolation="cubic",  # loops loaded before measuring
                max_memory=budget_for_slabs(small, (1, 1, 1), (48, 48, 48), "cubic", 2))
    if case == "in-memory":
        volume = rng.standard_normal((256, 256, 256)).astype(np.float32)
        target = (384, 384, 384)
        out = np.ones(target, np.float32)  # resident before measuring, as the input is
        budget = budget_for_slabs(volume, (1, 1, 1), target, "cubic", MIN_SLABS)
        job = build_job(volume, (1, 1, 1), target_shape=target, interpolation="cubic", max_memory=budget)
        with PeakMemory() as memory:
            gr.resample(volume, (1, 1, 1), target_shape=target, interpolation="cubic", out=out, max_memory=budget)
        return (f"{dims(volume.shape)} -> {dims(target)} float32 cubic, in memory", job.chunking.count,
                mb(volume.nbytes + out.nbytes), mb(job.chunking.peak_bytes), mb(memory.anon), mb(memory.hwm))
    shape, dtype, target, interpolation, max_memory = DISK_CASE
    source = np.lib.format.open_memmap(scratch / "disk-in.npy", mode="w+", dtype=dtype, shape=shape)
    for start in range(0, shape[0], 64):
        source[start:start + 64] = rng.integers(0, 4096, size=(min(64, shape[0] - start),) + shape[1:], dtype=dtype)
    source.flush()
    out = np.lib.format.open_memmap(scratch / "disk-out.npy", mode="w+", dtype=dtype, shape=target)
    job = build_job(source, (1, 1, 1), target_shape=target, interpolation=interpolation, max_memory=max_memory,
                    out=out)
    started = time.perf_counter()
    with PeakMemory() as memory:
        gr.resample(source, (1, 1, 1), target_shape=target, interpolation=interpolation, out=out,
                    max_memory=max_memory)
        out.flush()
    seconds = time.perf_counter() - started
    row = (f"{dims(shape)} -> {dims(target)} {np.dtype(dtype)} {interpolation}, memmap in and out "
           f"(max_memory={max_memory}, {seconds:.1f} s)", job.chunking.count,
           mb(source.nbytes + out.nbytes), mb(job.chunking.peak_bytes), mb(memory.anon), mb(memory.hwm))
    del source, out
    for name in ("disk-in.npy", "disk-out.npy"):
        (scratch / name).unlink()
    return row


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


def gpu_cases(repeats: int, huge: bool, scratch: Path) -> list:
    from gpuresample._cupy import import_cupy
    cupy = import_cupy()
    bandwidth = pinned_bandwidth(cupy, PINNED_COPY_BYTES)
    cases = list(GPU_CASES)
    if huge:
        cases.append(HUGE_CASE)
    rows = []
    stages = []
    for shape, dtype, target, interpolation, force_slabs in cases:
        on_disk = (shape, dtype, target) == HUGE_CASE[:3]
        if on_disk:  # stays within host memory: input and output are memmaps on disk
            volume = np.lib.format.open_memmap(scratch / "huge-in.npy", mode="w+", dtype=dtype, shape=shape)
            out = np.lib.format.open_memmap(scratch / "huge-out.npy", mode="w+", dtype=dtype, shape=target)
            for start in range(0, shape[0], 64):
                volume[start:start + 64] = 1
            volume[::7] = 3
            volume.flush()
        else:
            volume = np.ones(shape, dtype)
            volume[::7] = 3
            out = np.zeros(target, dtype)
            out[...] = 0  # resident before measuring, as the input is
        options = {"device": "cuda"}
        if force_slabs:
            options["max_memory"] = budget_for_slabs(volume, (1, 1, 1), target, interpolation, MIN_SLABS,
                                                     device="cuda")
        job = build_job(volume, (1, 1, 1), target_shape=target, interpolation=interpolation, **options)
        recorder = _StageRecorder()
        with recorder:
            seconds = median_time(lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                                      interpolation=interpolation, out=out, **options), repeats)
            with PeakMemory() as memory:
                gr.resample(volume, (1, 1, 1), target_shape=target, interpolation=interpolation, out=out, **options)
        floor = (volume.nbytes + out.nbytes) / bandwidth
        name = f"{dims(shape)} {np.dtype(dtype)} -> {dims(target)} {interpolation}"
        rows.append((name, job.chunking.count, f"{seconds:.2f} s", f"{floor:.2f} s", f"{seconds / floor:.2f}x",
                     gb(memory.anon), gb(memory.hwm)))
        stages.append((name,) + tuple(f"{recorder.last.get(stage, 0.0):.2f} s" for stage in STAGES))
        del volume, out
        if on_disk:
            for path in ("huge-in.npy", "huge-out.npy"):
                (scratch / path).unlink()
    return rows, bandwidth, stages


class _StageRecorder:
    """Keeps the host stage times of the last staged pipeline run (``StagedPipeline.stage_seconds``)."""

    def __enter__(self):
        from gpuresample.backends import _staging
        self.module, self.original, self.last = _staging, _staging.StagedPipeline.run, {}
        recorder = self

        def run(pipeline, *args, **kwargs):
            try:
                return recorder.original(pipeline, *args, **kwargs)
            finally:
                recorder.last = dict(pipeline.stage_seconds)

        _staging.StagedPipeline.run = run
        return self

    def __exit__(self, *exc):
        self.module.StagedPipeline.run = self.original
        return False


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
    import scipy

    from gpuresample.backends import _loops
    loops = "compiled CPU loops" if _loops.is_compiled() else "CPU array path (no compiled module)"
    return (f"{cpu}, {__import__('os').cpu_count()} cores; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, SciPy {scipy.__version__}, gpuresample {gr.__version__}, {loops}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--cpu", action="store_true")
    mode.add_argument("--gpu", action="store_true")
    parser.add_argument("--huge", action="store_true", help="also 2560^3 uint16 -> 3200^3 (GPU mode)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the Markdown results")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for on-disk inputs and outputs (default: a temporary folder)")
    parser.add_argument("--note", default="", help="a line about the machine's state, printed with the results")
    parser.add_argument("--memory-case", choices=MEMORY_CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_case:  # one row of the memory table, in a fresh process (cpu_memory_cases)
        print(json.dumps(memory_case(args.memory_case, args.scratch)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        return _run(args, Path(scratch))


def _run(args, scratch: Path) -> int:
    note = f"{args.note}\n\n" if args.note else ""
    if args.cpu:
        rows = cpu_cases(args.repeats)
        table = markdown(("case", "slabs", "whole (median)", "chunked (median)", "chunked / whole",
                          "chunked == whole"), rows)
        memory = markdown(("case", "slabs", "input + output", "planned peak", "added memory (anonymous, peak)",
                           "VmHWM increase (incl. memmap pages)"), cpu_memory_cases(scratch))
        text = (f"# Chunked vs whole on the CPU backend\n\nMachine: {machine()}\n\n{note}{table}\n\n"
                f"## Host memory added beyond input and output\n\n{memory}\n")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "chunked-cpu.md").write_text(text)
    else:
        try:
            rows, bandwidth, stages = gpu_cases(args.repeats, args.huge, scratch)
        except gr.BackendUnavailable as exc:
            print(f"GPU benchmark cannot run here: {exc}", file=sys.stderr)
            return 2
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        table = markdown(("case", "slabs", "total (median)", "copy floor", "ratio (goal <= 1.3x)",
                          "added host memory (anonymous, peak)", "VmHWM increase"), rows)
        stage_table = markdown(("case",) + STAGES, stages)
        text = (f"# Chunked, host data staged through the GPU\n\nDevice: {name}; CuPy {cupy.__version__}; "
                f"pinned copy bandwidth {bandwidth / 1e9:.1f} GB/s (H2D + D2H)\n\nHost: {machine()}\n\n{note}"
                f"{table}\n\n## Host stages of the staged pipeline (last run, seconds summed over slabs; "
                f"they overlap)\n\n{stage_table}\n")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"chunked-gpu-{device_slug(name)}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
