"""CPU speed on oblique targets: gpuresample's oblique loops (the extension module
``gpuresample._core``) vs SimpleITK ``Resample`` vs PyTorch ``grid_sample``, side by side in one
process, all on the same threads.

Usage::

    python benchmarks/oblique_bench.py                  # writes benchmarks/results/cpu-oblique-core.md
    python benchmarks/oblique_bench.py --repeats 9 --size 160 --output /tmp/x.md

Cases: a float32 cube (spacing 1 mm) resampled onto a grid of the same shape and spacing,
centred on it and rotated (a) 20 degrees about array axis 0 and (b) 45 degrees about the
oblique axis (1, 1, 1)/sqrt(3), with nearest, linear and cubic interpolation. gpuresample
through the public API: ``gr.resample(x, grid, target=rotated_grid, interpolation=...,
fill=-100, backend="cpu")`` (docs/design.md §1 "Onto another grid") with
``GPURESAMPLE_NUM_THREADS=THREADS``. SimpleITK's ``ResampleImageFilter`` with a reference
image of the target grid (nearest, linear, ``sitkBSpline``), ``SetNumberOfThreads(THREADS)``
and ``ProcessObject_SetGlobalDefaultNumberOfThreads(THREADS)``; PyTorch's ``affine_grid`` +
``grid_sample`` (``align_corners=True``, nearest and trilinear; PyTorch has no cubic for
volumes), ``torch.set_num_threads(THREADS)``. Calls run round-robin (one of each per repeat,
so load on the machine hits all alike); medians (at least 7 repeats) and min-max are shown,
with the load average before and after each case and the CPU time other processes used
during the run. (benchmarks/results/cpu-oblique-core-vs-c.md is an earlier run of this
script against the ahead-of-time C library the extension replaced.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: Threads for every implementation.
THREADS = 2
#: (name, degrees, rotation axis in array-axis coordinates).
CASES = [("20 deg about axis 0", 20.0, (1.0, 0.0, 0.0)),
         ("45 deg about (1,1,1)/sqrt(3)", 45.0, (1.0, 1.0, 1.0))]
INTERPOLATIONS = ["nearest", "linear", "cubic"]
FILL = -100.0
#: The goal for the extension's loops: at least this speed-up over SimpleITK (linear, axis 0 case).
GOAL = 1.5
#: The fewest repeats a median is taken over.
MIN_REPEATS = 7
#: The implementations, in the order of the tables.
NAMES = ["gpuresample", "SimpleITK", "torch grid_sample"]

os.environ.setdefault("GPURESAMPLE_NUM_THREADS", str(THREADS))  # the cubic prefilter's loops
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the checkout's gpuresample where it is not installed


def rotation(degrees: float, axis) -> np.ndarray:
    """Rotation by ``degrees`` about ``axis`` (Rodrigues), in array-axis coordinates."""
    k = np.asarray(axis, float)
    k = k / np.linalg.norm(k)
    a = np.deg2rad(degrees)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(a) * cross + (1.0 - np.cos(a)) * (cross @ cross)


def grids(n: int, degrees: float, axis):
    """Source cube (spacing 1, origin 0) and the same grid rotated about its centre."""
    import gpuresample as gr

    source = gr.Grid((n,) * 3, (1.0,) * 3)
    r = rotation(degrees, axis)
    centre = np.array(source.center)
    origin = centre - r @ np.full(3, (n - 1) / 2.0)
    return source, gr.Grid((n,) * 3, (1.0,) * 3, origin, r)


def index_matrix(source, target) -> np.ndarray:
    """4x4: target index -> source index (source.affine^-1 . target.affine)."""
    return np.linalg.inv(np.asarray(source.affine)) @ np.asarray(target.affine)


def gpuresample_call(volume, source, target, interpolation):
    """gr.resample onto ``target`` on the CPU backend (threads: ``GPURESAMPLE_NUM_THREADS``)."""
    import gpuresample as gr

    return lambda: gr.resample(volume, source, target=target, interpolation=interpolation, fill=FILL, backend="cpu")


def sitk_call(volume, source, target, interpolation, threads: int = THREADS):
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(threads)
    from cpu_bench import sitk_image

    image = sitk_image(volume, source)
    reference = sitk.Image(list(target.shape), sitk.sitkFloat32)
    reference.SetSpacing(target.spacing)
    reference.SetOrigin(target.origin)
    reference.SetDirection(np.asarray(target.direction).ravel().tolist())
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference)
    resampler.SetTransform(sitk.Transform())
    resampler.SetInterpolator({"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear,
                               "cubic": sitk.sitkBSpline}[interpolation])
    resampler.SetDefaultPixelValue(FILL)
    resampler.SetNumberOfThreads(threads)
    return lambda: resampler.Execute(image), lambda image: sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def torch_call(volume, source, target, interpolation):
    """affine_grid + grid_sample sampling the same positions (align_corners=True: -1 and 1 are
    the centres of the first and last voxels); torch orders coordinates (x, y, z) = axes (2, 1, 0)."""
    import torch
    import torch.nn.functional as F

    if interpolation == "cubic":
        return None, None
    n_src = np.array(source.shape[::-1], float)
    n_out = np.array(target.shape[::-1], float)
    m = index_matrix(source, target)
    flip = np.eye(3)[::-1]
    linear = flip @ m[:3, :3] @ flip
    shift = flip @ m[:3, 3]
    to_norm = np.diag(2.0 / (n_src - 1.0))
    from_norm = np.diag((n_out - 1.0) / 2.0)
    a = to_norm @ linear @ from_norm
    b = to_norm @ (linear @ from_norm @ np.ones(3) + shift) - 1.0
    theta = torch.tensor(np.concatenate([a, b[:, None]], axis=1)[None], dtype=torch.float32)
    x = torch.from_numpy(np.ascontiguousarray(volume))[None, None]
    size = [1, 1, *target.shape]
    mode = {"nearest": "nearest", "linear": "bilinear"}[interpolation]

    def call():
        grid = F.affine_grid(theta, size, align_corners=True)
        return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)
    return call, lambda result: result[0, 0].numpy()


def torch_version():
    """PyTorch's version, or None where it does not import (then its column reads n/a)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def with_threads(call, threads: int):
    """``call`` with gpuresample's loops on ``threads`` threads."""
    def run():
        saved = os.environ.get("GPURESAMPLE_NUM_THREADS")
        os.environ["GPURESAMPLE_NUM_THREADS"] = str(threads)
        try:
            return call()
        finally:
            os.environ["GPURESAMPLE_NUM_THREADS"] = saved if saved is not None else str(THREADS)
    return run


def run(size: int, repeats: int) -> dict:
    import SimpleITK as sitk

    if torch_version() is not None:
        import torch

        torch.set_num_threads(THREADS)
    os.environ["GPURESAMPLE_NUM_THREADS"] = str(THREADS)
    results = {}
    for case, degrees, axis in CASES:
        source, target = grids(size, degrees, axis)
        volume = np.random.default_rng(0).standard_normal(source.shape).astype(np.float32)
        scale = float(volume.max() - volume.min())
        for interpolation in INTERPOLATIONS:
            load_before = os.getloadavg()
            calls = {"gpuresample": gpuresample_call(volume, source, target, interpolation)}
            sitk_fn, sitk_array = sitk_call(volume, source, target, interpolation)
            calls["SimpleITK"] = sitk_fn
            torch_fn = None
            if torch_version() is not None:
                torch_fn, torch_array = torch_call(volume, source, target, interpolation)
            if torch_fn is not None:
                calls["torch grid_sample"] = torch_fn
            ours = calls["gpuresample"]()
            inside = ours != FILL
            agreement = {"SimpleITK": np.abs(ours - sitk_array(sitk_fn()))[inside].max() / scale}
            if torch_fn is not None:
                agreement["torch grid_sample"] = np.abs(ours - torch_array(torch_fn()))[inside].max() / scale
            times = {name: [] for name in calls}
            for _ in range(repeats):
                for name, call in calls.items():
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
            # CPU seconds of the process per call on one thread each (other processes on the
            # machine delay a call but add little to its CPU time)
            cpu_calls = {"gpuresample": with_threads(gpuresample_call(volume, source, target, interpolation), 1),
                         "SimpleITK": sitk_call(volume, source, target, interpolation, threads=1)[0]}
            sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(THREADS)
            cpu = {name: [] for name in cpu_calls}
            for _ in range(repeats):
                for name, call in cpu_calls.items():
                    start = time.process_time()
                    call()
                    cpu[name].append(time.process_time() - start)
            results[(case, interpolation)] = {"times": times, "agreement": agreement, "cpu": cpu,
                                              "outside": float(np.mean(~inside)),
                                              "load": (load_before[0], os.getloadavg()[0])}
            line = "  ".join(f"{name} {statistics.median(t) * 1e3:7.1f} ms" for name, t in times.items())
            print(f"{case:30s} {interpolation:8s} {line}  load {os.getloadavg()[0]:.2f}", flush=True)
    return results


def report(results: dict, size: int, repeats: int, load_before, load_after, others: tuple) -> str:
    import SimpleITK as sitk
    from cpu_bench import cpu_model

    import gpuresample as gr

    lines = ["# CPU, oblique targets: gpuresample vs SimpleITK and PyTorch", "",
             f"Written by `benchmarks/oblique_bench.py` (repeats per timing: {repeats}, medians shown; calls "
             "round-robin, one of each per repeat, in one process). A float32 cube of "
             f"{size}^3 voxels (spacing 1 mm) onto the same grid rotated about its centre (the corners fall "
             f"outside: fill {FILL:g} there), through `gr.resample(x, grid, target=rotated, backend=\"cpu\")`; "
             f"every implementation on {THREADS} threads.", "",
             "## Machine", "",
             f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, shared with other developers' builds and "
             "tests while this ran",
             f"- Versions: Python {sys.version.split()[0]}, NumPy {np.__version__}, gpuresample {gr.__version__}, "
             f"SimpleITK {sitk.Version_VersionString()}, "
             + (f"torch {torch_version()}" if torch_version() else "torch: does not import here (n/a)"),
             f"- Load average (1, 5, 15 min) before the run: {', '.join(f'{x:.2f}' for x in load_before)}; "
             f"after: {', '.join(f'{x:.2f}' for x in load_after)}",
             f"- Other processes used {others[0]:.0f} CPU-seconds during the {others[1]:.0f} s run "
             f"({others[0] / (others[1] * os.cpu_count()):.0%} of the machine); all columns were measured "
             "side by side under the same load, so compare ratios, not absolute times", ""]
    names = NAMES
    lines += ["## Medians", "",
              "| case | interpolation | " + " | ".join(names) + " | SimpleITK / gpuresample | "
              "gpuresample min-max | load (1 min) before, after |", "|---|---|" + "---|" * (len(names) + 3)]
    for (case, interpolation), r in results.items():
        median = {name: statistics.median(t) for name, t in r["times"].items()}
        cells = [f"{median[n] * 1e3:.1f} ms" if n in median else "n/a" for n in names]
        ours = median["gpuresample"]
        t = r["times"]["gpuresample"]
        lines.append(f"| {case} | {interpolation} | " + " | ".join(cells) +
                     f" | {median['SimpleITK'] / ours:.2f}x | {min(t) * 1e3:.1f} - {max(t) * 1e3:.1f} ms | "
                     f"{r['load'][0]:.2f}, {r['load'][1]:.2f} |")
    lines += ["", "## Minima", "",
              "The fastest of the repeats, less sensitive to the other processes on the shared machine.", "",
              "| case | interpolation | " + " | ".join(names) + " | SimpleITK / gpuresample |", "|---|---|" + "---|" * (len(names) + 1)]
    for (case, interpolation), r in results.items():
        fastest = {name: min(t) for name, t in r["times"].items()}
        cells = [f"{fastest[n] * 1e3:.1f} ms" if n in fastest else "n/a" for n in names]
        lines.append(f"| {case} | {interpolation} | " + " | ".join(cells) +
                     f" | {fastest['SimpleITK'] / fastest['gpuresample']:.2f}x |")
    lines += ["", "## CPU time on one thread", "",
              "CPU seconds of the process per call (fastest of the repeats), gpuresample's oblique loops and "
              "SimpleITK each on one thread (the cubic prefilter on its own threads, counted too): what a "
              "call costs, whatever else the machine runs.", "",
              "| case | interpolation | gpuresample | SimpleITK | SimpleITK / gpuresample |", "|---|---|---|---|---|"]
    for (case, interpolation), r in results.items():
        cpu = {name: min(t) for name, t in r["cpu"].items()}
        lines.append(f"| {case} | {interpolation} | {cpu['gpuresample'] * 1e3:.1f} ms | "
                     f"{cpu['SimpleITK'] * 1e3:.1f} ms | {cpu['SimpleITK'] / cpu['gpuresample']:.2f}x |")
    headline = results.get((CASES[0][0], "linear"))
    if headline is not None:
        median = {name: statistics.median(t) for name, t in headline["times"].items()}
        ratio = median["SimpleITK"] / median["gpuresample"]
        lines += ["", f"Goal (linear, {CASES[0][0]}): >= {GOAL}x SimpleITK: "
                      f"{'met' if ratio >= GOAL else 'NOT met'} ({ratio:.2f}x).", ""]
    lines += ["## Agreement", "",
              "Largest absolute difference over the data's range, over the voxels gpuresample samples "
              "(SimpleITK computes linear weights in float64 where float32 input works in float32, design.md §2; "
              "its B-spline uses mirror boundaries for its coefficients; PyTorch clamps to the edge as "
              "gpuresample does, with padding_mode='border').", "",
              "| case | interpolation | SimpleITK | torch grid_sample | outside (fill) |", "|---|---|---|---|---|"]
    for (case, interpolation), r in results.items():
        a = r["agreement"]
        torch_cell = f"{a['torch grid_sample']:.1e}" if "torch grid_sample" in a else "n/a"
        lines.append(f"| {case} | {interpolation} | {a['SimpleITK']:.1e} | {torch_cell} | {r['outside']:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from cpu_bench import busy_cpu_seconds, own_cpu_seconds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help=f"repeats per timing (at least {MIN_REPEATS})")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--output", type=Path, default=RESULTS / "cpu-oblique-core.md")
    args = parser.parse_args()
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats must be at least {MIN_REPEATS}")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    load_before = os.getloadavg()
    busy, own, wall = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    results = run(args.size, args.repeats)
    wall = time.perf_counter() - wall
    others = ((busy_cpu_seconds() - busy) - (own_cpu_seconds() - own), wall)
    text = report(results, args.size, args.repeats, load_before, os.getloadavg(), others)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
