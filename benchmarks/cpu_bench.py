"""CPU speed and memory: gpuresample vs SimpleITK ``Resample`` vs ``scipy.ndimage.zoom``.

Usage::

    python benchmarks/cpu_bench.py                 # writes benchmarks/results/cpu.md
    python benchmarks/cpu_bench.py --repeats 3 --output /tmp/cpu.md
    python benchmarks/cpu_bench.py --oblique       # writes benchmarks/results/cpu-oblique.md

``--oblique`` times resampling onto another grid rotated about axis 0 (docs/design.md §1, the
per-voxel path): gpuresample ``target=`` against SimpleITK ``Resample`` with a reference
image (the same physical maths), both on ``OBLIQUE_THREADS`` threads, round-robin, and
checks that they agree (values, and which voxels get the fill value).

For each case (float32 volumes, spacing 1, resampled by dimensions) and each
interpolation, in one run on this machine:

* gpuresample (``backend="cpu"``, the CPU backend: its compiled loops, ``gpuresample._core``,
  unless the module is missing, on every core),
* SimpleITK's ``ResampleImageFilter`` with its default number of threads, identity
  transform and an output grid (origin, spacing, size) that samples the very positions
  gpuresample samples; interpolators ``sitkNearestNeighbor``, ``sitkLinear`` and
  ``sitkBSpline`` (cubic B-spline, order 3),
* ``scipy.ndimage.zoom(order=0/1/3, grid_mode=True, mode='nearest')``,

are timed round-robin (one call of each per repeat, so load on the machine hits all
three alike); the table shows medians. Each call allocates its result, as a user's call
does (1 GiB of pages is touched and freed first, see ``WARM_PAGES_BYTES``). Every
implementation is called once before the timed repeats; gpuresample's first call in this process
and in a fresh process (importing the compiled module; nothing is compiled at run time) are
reported apart.

Agreement is checked on the outputs: gpuresample against SciPy (the reference the
tests use) and against SimpleITK, as the largest absolute difference over the data's
range, over the whole output and away from the edges (SimpleITK's B-spline uses
mirror boundaries for its coefficients where SciPy pads 12 edge copies first).

Transient memory of gpuresample (beyond its input and output) is measured twice:
``tracemalloc`` peak over one call (every NumPy allocation, so every scratch buffer)
minus the output, and in a fresh process the rise of the resident-set high-water mark
over one call (reset through ``/proc/self/clear_refs``) minus the output. The planner's
predicted peak (``planner.slab_bytes``) is shown next to them; it must not be lower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
#: (input edge, output edge): cubes of float32, the cases the issue names.
CASES = [(160, 240), (256, 128)]
INTERPOLATIONS = ["nearest", "linear", "cubic"]
SCIPY_ORDER = {"nearest": 0, "linear": 1, "cubic": 3}
#: Targets: (interpolation, competitor, least speed-up of gpuresample over it).
TARGETS = [("linear", "SimpleITK", 1.0), ("linear", "scipy", 3.0), ("cubic", "SimpleITK", 3.0),
           ("nearest", "SimpleITK", 1.0)]
#: Bytes touched and freed before timing. Fresh pages are slow to fault in on this (virtual)
#: machine the first time the guest uses them; touching a good amount first means no
#: implementation pays that for the others. Every timed call still allocates its output.
WARM_PAGES_BYTES = 1 << 30
#: Output voxels whose sampling position lies this many input voxels or more inside the
#: volume are "interior": there the edge rules of SimpleITK and SciPy cannot matter
#: (a cubic tap reaches 2 voxels, its prefilter's edge effect decays as 0.268^d).
INTERIOR_MARGIN = 8

#: --oblique: (input edge, output edge, degrees about axis 0) of float32 cubes, spacing 1 mm in;
#: the output cube has the input's extent, is centred on it and rotated.
OBLIQUE_CASES = [(256, 256, 20.0), (160, 240, 20.0)]
#: --oblique: threads for both (2 threads each).
OBLIQUE_THREADS = 2
#: --oblique: targets, (interpolation, least speed-up over SimpleITK).
OBLIQUE_TARGETS = [("linear", 1.0)]

# Runs in a fresh interpreter: one gpuresample call, the resident-set high-water rise.
RSS_CHILD = r"""
import json, sys, numpy as np, gpuresample as gr
n_in, n_out, interpolation = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.random.default_rng(0).standard_normal((n_in,) * 3).astype(np.float32)
gr.resample(x[:16, :16, :16], (1, 1, 1), target_shape=(12, 12, 12), interpolation=interpolation,
            backend="cpu")  # load the compiled loops
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident set
before = status("VmRSS:")
y = gr.resample(x, (1, 1, 1), target_shape=(n_out,) * 3, interpolation=interpolation, backend="cpu")
print(json.dumps({"rise": status("VmHWM:") - before, "output": y.nbytes}))
"""

# Runs in a fresh interpreter: first-call times.
FIRST_CALL_CHILD = r"""
import json, sys, time, numpy as np, gpuresample as gr
n_in, n_out = int(sys.argv[1]), int(sys.argv[2])
x = np.random.default_rng(0).standard_normal((n_in,) * 3).astype(np.float32)
times = {}
for interpolation in sys.argv[3:]:
    start = time.perf_counter()
    gr.resample(x, (1, 1, 1), target_shape=(n_out,) * 3, interpolation=interpolation, backend="cpu")
    times[interpolation] = time.perf_counter() - start
print(json.dumps(times))
"""


def busy_cpu_seconds() -> float:
    """CPU seconds all processes on the machine have spent busy since boot (``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds this process and its finished children have used."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> dict:
    import scipy
    import SimpleITK as sitk

    import gpuresample as gr
    return {"Python": platform.python_version(), "NumPy": np.__version__, "SciPy": scipy.__version__,
            "SimpleITK": sitk.Version_VersionString(),
            "gpuresample": gr.__version__}


def sitk_filter(n_in: int, n_out: int, interpolator):
    """A ResampleImageFilter sampling input index ``(j + 0.5) * n_in / n_out - 0.5`` per axis.

    ``GetImageFromArray`` gives spacing 1 and origin 0, so physical position = index.
    """
    import SimpleITK as sitk
    spacing = n_in / n_out
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([n_out] * 3)
    resampler.SetOutputSpacing([spacing] * 3)
    resampler.SetOutputOrigin([0.5 * spacing - 0.5] * 3)
    resampler.SetOutputDirection([1, 0, 0, 0, 1, 0, 0, 0, 1])
    resampler.SetTransform(sitk.Transform())
    resampler.SetInterpolator(interpolator)
    resampler.SetDefaultPixelValue(0.0)
    return resampler


def interior(n_in: int, n_out: int) -> slice:
    """Output indices whose position is at least INTERIOR_MARGIN voxels inside the input."""
    u = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    inside = np.flatnonzero((u >= INTERIOR_MARGIN) & (u <= n_in - 1 - INTERIOR_MARGIN))
    return slice(int(inside[0]), int(inside[-1]) + 1)


def half_voxel_ties(n_in: int, n_out: int) -> np.ndarray:
    """Output indices whose exact position ``(2j + 1) n_in / (2 n_out) - 1/2`` ends in .5."""
    numerator = (2 * np.arange(n_out) + 1) * n_in - n_out  # position = numerator / (2 n_out)
    return numerator % (2 * n_out) == n_out


def difference(a: np.ndarray, b: np.ndarray, scale: float, core: slice, ties: np.ndarray) -> dict:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    on_tie = ties[:, None, None] | ties[None, :, None] | ties[None, None, :]
    return {"max": float(diff.max() / scale), "interior": float(diff[core, core, core].max() / scale),
            "differ": float(np.mean(a != b)),
            "differ_off_ties": float(np.mean(a[~on_tie] != b[~on_tie])) if (~on_tie).any() else None}


def transient_tracemalloc(run) -> tuple:
    """(peak bytes traced during ``run()`` minus its result's bytes, result)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - result.nbytes, result


def transient_rss(n_in: int, n_out: int, interpolation: str) -> int | None:
    """Resident-set high-water rise of one call in a fresh process, minus the output."""
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, str(n_in), str(n_out), interpolation],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return None
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["rise"] - report["output"]


def first_call_times(n_in: int, n_out: int) -> dict:
    """First-call seconds per interpolation in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", FIRST_CALL_CHILD, str(n_in), str(n_out), *INTERPOLATIONS],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_case(n_in: int, n_out: int, repeats: int) -> dict:
    import SimpleITK as sitk
    from scipy import ndimage

    import gpuresample as gr
    from gpuresample.job import build_job

    interpolators = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear, "cubic": sitk.sitkBSpline}
    volume = np.random.default_rng(0).standard_normal((n_in,) * 3).astype(np.float32)
    image = sitk.GetImageFromArray(volume)
    target = (n_out,) * 3
    core = interior(n_in, n_out)
    ties = half_voxel_ties(n_in, n_out)
    scale = float(volume.max() - volume.min())
    results = {}
    for interpolation in INTERPOLATIONS:
        resampler = sitk_filter(n_in, n_out, interpolators[interpolation])
        calls = {
            "gpuresample": lambda: gr.resample(volume, (1, 1, 1), target_shape=target,
                                               interpolation=interpolation, backend="cpu"),
            "SimpleITK": lambda: resampler.Execute(image),
            "scipy": lambda: ndimage.zoom(volume, n_out / n_in, order=SCIPY_ORDER[interpolation],
                                          grid_mode=True, mode="nearest"),
        }
        start = time.perf_counter()
        ours = calls["gpuresample"]()
        first_call = time.perf_counter() - start
        outputs = {"gpuresample": ours, "SimpleITK": sitk.GetArrayFromImage(calls["SimpleITK"]()),
                   "scipy": calls["scipy"]()}
        times = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        transient, _ = transient_tracemalloc(calls["gpuresample"])
        job = build_job(volume, (1, 1, 1), target_shape=target, interpolation=interpolation, backend="cpu")
        results[interpolation] = {
            "median": {name: statistics.median(t) for name, t in times.items()},
            "spread": {name: (min(t), max(t)) for name, t in times.items()},
            "first_call": first_call,
            "vs_scipy": difference(ours, outputs["scipy"], scale, core, ties),
            "vs_sitk": difference(ours, outputs["SimpleITK"], scale, core, ties),
            "transient_tracemalloc": transient,
            "transient_rss": transient_rss(n_in, n_out, interpolation),
            "limit": max(volume.nbytes, ours.nbytes),
            "input_bytes": volume.nbytes,
            "output_bytes": ours.nbytes,
            "planned_peak": job.chunking.peak_bytes,
            "slabs": job.chunking.count,
        }
        median = results[interpolation]["median"]
        print(f"{n_in}^3 -> {n_out}^3 {interpolation:8s} " + "  ".join(
            f"{name} {median[name] * 1e3:8.1f} ms" for name in calls), flush=True)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def mb(n) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MiB"


def loops_description() -> str:
    """Which CPU loops ran, on how many threads."""
    from gpuresample.backends import _loops, _native

    if _loops.is_compiled():
        return f"CPU loops: compiled module `{Path(_native.library().__file__).name}`, {_loops.threads()} threads"
    return f"CPU loops: the NumPy/SciPy array path (no compiled module), {_loops.threads()} thread"


def machine_section(sitk_threads: str, load_before, load_after, others: tuple, load_note: str = "",
                    others_note: str = "") -> list:
    """The "## Machine" lines of a report: CPU and loops, versions, load, other processes."""
    return ["## Machine", "",
            f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {loops_description()}; {sitk_threads}",
            "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
            f"- Load average (1, 5, 15 min) before the run: {', '.join(f'{x:.2f}' for x in load_before)}; "
            f"after: {', '.join(f'{x:.2f}' for x in load_after)}{load_note}",
            f"- Other processes used {others[0]:.0f} CPU-seconds during the {others[1]:.0f} s run "
            f"({others[0] / (others[1] * os.cpu_count()):.0%} of the machine; /proc/stat busy time minus this "
            f"run's own){others_note}", ""]


def report(all_results: dict, compiled: dict, load_before, load_after, repeats: int, others: tuple) -> tuple:
    import SimpleITK as sitk
    lines = ["# CPU backend: gpuresample vs SimpleITK and SciPy", ""]
    lines += [f"Written by `benchmarks/cpu_bench.py` (repeats per timing: {repeats}, medians shown; "
              "calls round-robin, one of each per repeat).", ""]
    lines += machine_section(f"SimpleITK default threads {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}",
                             load_before, load_after, others, " (the run itself keeps up to both cores busy)")
    verdicts = []
    lines += ["## Targets", "", "| case | target | gpuresample | other | speed-up | verdict |",
              "|---|---|---|---|---|---|"]
    for case, results in all_results.items():
        for interpolation, other, least in TARGETS:
            r = results[interpolation]["median"]
            ratio = r[other] / r["gpuresample"]
            ok = ratio >= least
            verdicts.append(ok)
            name = {"SimpleITK": {"nearest": "SimpleITK nearest", "linear": "SimpleITK linear",
                                  "cubic": "SimpleITK sitkBSpline"}[interpolation],
                    "scipy": f"zoom order={SCIPY_ORDER[interpolation]}"}[other]
            lines.append(f"| {case} | {interpolation}: >= {least:g}x vs {name} | {ms(r['gpuresample'])} | "
                         f"{ms(r[other])} | {ratio:.2f}x | {'PASS' if ok else 'FAIL'} |")
        for interpolation in INTERPOLATIONS:
            r = results[interpolation]
            worst = max(v for v in (r["transient_tracemalloc"], r["transient_rss"]) if v is not None)
            ok = worst <= r["limit"]
            verdicts.append(ok)
            lines.append(f"| {case} | {interpolation}: transient <= max(input, output) = {mb(r['limit'])} | "
                         f"{mb(worst)} (larger of the two measures) | | {worst / r['limit']:.2f} of limit | "
                         f"{'PASS' if ok else 'FAIL'} |")
    lines += ["", f"Overall: {sum(verdicts)} of {len(verdicts)} targets met.", ""]
    lines += ["## All medians", "", "| case | interpolation | gpuresample | SimpleITK | scipy zoom | "
              "SimpleITK / ours | scipy / ours | ours: min-max of repeats |", "|---|---|---|---|---|---|---|---|"]
    for case, results in all_results.items():
        for interpolation in INTERPOLATIONS:
            r = results[interpolation]["median"]
            lo, hi = results[interpolation]["spread"]["gpuresample"]
            lines.append(f"| {case} | {interpolation} | {ms(r['gpuresample'])} | {ms(r['SimpleITK'])} | "
                         f"{ms(r['scipy'])} | {r['SimpleITK'] / r['gpuresample']:.2f}x | "
                         f"{r['scipy'] / r['gpuresample']:.2f}x | {ms(lo)} - {ms(hi)} |")
    lines += ["", "## First calls (not in the medians)", "",
              "| case | interpolation | first call, this process | "
              "first call, fresh process |", "|---|---|---|---|"]
    for case, results in all_results.items():
        for interpolation in INTERPOLATIONS:
            cold = compiled.get(case, {}).get(interpolation)
            lines.append(f"| {case} | {interpolation} | {ms(results[interpolation]['first_call'])} | "
                         f"{'n/a' if cold is None else ms(cold)} |")
    lines += ["", "Interpolations run in the order nearest, linear, cubic in one process. Nothing compiles at run "
              "time: a fresh process imports the compiled module.", ""]
    lines += ["## Memory of gpuresample (beyond input and output)", "",
              "| case | interpolation | input | output | tracemalloc peak - output | RSS high-water rise - output "
              "(fresh process) | planner's predicted peak (input + output + scratch) |",
              "|---|---|---|---|---|---|---|"]
    for case, results in all_results.items():
        for interpolation in INTERPOLATIONS:
            r = results[interpolation]
            lines.append(f"| {case} | {interpolation} | {mb(r['input_bytes'])} | {mb(r['output_bytes'])} | "
                         f"{mb(r['transient_tracemalloc'])} | {mb(r['transient_rss'])} | "
                         f"{mb(r['planned_peak'])} ({r['slabs']} slab{'s' if r['slabs'] > 1 else ''}) |")
    lines += ["", "## Agreement", "",
              f"Largest |difference| / (data max - data min); interior = outputs sampled at least "
              f"{INTERIOR_MARGIN} input voxels from every edge; 'differ' = fraction of outputs not equal; "
              "'off ties' = the same among outputs with no axis at an exact half-voxel position "
              "(nearest only).", "",
              "| case | interpolation | vs SciPy zoom: max | interior | differ | vs SimpleITK: max | interior | differ "
              "| differ off ties |", "|---|---|---|---|---|---|---|---|---|"]
    for case, results in all_results.items():
        for interpolation in INTERPOLATIONS:
            s, k = results[interpolation]["vs_scipy"], results[interpolation]["vs_sitk"]
            off = "-" if interpolation != "nearest" else (
                "n/a (every output is on a tie)" if k["differ_off_ties"] is None else f"{k['differ_off_ties']:.2%}")
            lines.append(f"| {case} | {interpolation} | {s['max']:.1e} | {s['interior']:.1e} | {s['differ']:.2%} | "
                         f"{k['max']:.1e} | {k['interior']:.1e} | {k['differ']:.2%} | {off} |")
    lines += ["", "Notes: where nearest differs from SimpleITK, the 'off ties' column shows whether it is only "
              "at exact half-voxel positions (ties go up in both by rule, but ITK computes positions "
              "through physical coordinates in floating point and may land a tie just below). SimpleITK's "
              "B-spline prefilter uses mirror boundaries, SciPy's `mode='nearest'` pads 12 edge copies "
              "first, so cubic agrees with SimpleITK in the interior only; gpuresample follows SciPy "
              "(docs/design.md §1). SciPy zoom computes in float64, gpuresample in float32.", ""]
    return "\n".join(lines), all(verdicts)


def oblique_grids(n_in: int, n_out: int, degrees: float):
    """Source grid (spacing 1, origin 0) and a target over the same extent, centred, rotated about axis 0."""
    import gpuresample as gr

    source = gr.Grid((n_in,) * 3, (1.0,) * 3)
    a = np.deg2rad(degrees)
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    spacing = n_in / n_out
    half = (n_out - 1) / 2.0 * spacing
    origin = np.array(source.center) - rotation @ np.full(3, half)
    return source, gr.Grid((n_out,) * 3, (spacing,) * 3, origin, rotation)


def sitk_image(array: np.ndarray, grid):
    """A SimpleITK image of ``array`` on ``grid`` (ITK's index order is the array's reversed)."""
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    image.SetDirection(np.asarray(grid.direction).ravel().tolist())
    return image


def run_oblique(repeats: int) -> dict:
    import SimpleITK as sitk

    import gpuresample as gr

    os.environ["GPURESAMPLE_NUM_THREADS"] = str(OBLIQUE_THREADS)  # the compiled loops
    interpolators = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
    results = {}
    for n_in, n_out, degrees in OBLIQUE_CASES:
        case = f"{n_in}^3 -> {n_out}^3, {degrees:g} deg"
        source, target = oblique_grids(n_in, n_out, degrees)
        volume = np.random.default_rng(0).standard_normal(source.shape).astype(np.float32)
        image = sitk_image(volume, source)
        reference = sitk.Image(list(target.shape), sitk.sitkFloat32)
        reference.SetSpacing(target.spacing)
        reference.SetOrigin(target.origin)
        reference.SetDirection(np.asarray(target.direction).ravel().tolist())
        scale = float(volume.max() - volume.min())
        results[case] = {}
        for interpolation, interpolator in interpolators.items():
            resampler = sitk.ResampleImageFilter()
            resampler.SetReferenceImage(reference)
            resampler.SetTransform(sitk.Transform())
            resampler.SetInterpolator(interpolator)
            resampler.SetDefaultPixelValue(-100.0)
            resampler.SetNumberOfThreads(OBLIQUE_THREADS)
            calls = {
                "gpuresample": lambda: gr.resample(volume, source, target=target, interpolation=interpolation,
                                                   fill=-100.0, backend="cpu"),
                "SimpleITK": lambda: resampler.Execute(image),
            }
            ours = calls["gpuresample"]()
            theirs = sitk.GetArrayFromImage(calls["SimpleITK"]()).transpose(2, 1, 0)
            times = {name: [] for name in calls}
            for _ in range(repeats):
                for name, call in calls.items():
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
            results[case][interpolation] = {
                "median": {name: statistics.median(t) for name, t in times.items()},
                "spread": {name: (min(t), max(t)) for name, t in times.items()},
                "max_diff": float(np.abs(ours.astype(np.float64) - theirs).max() / scale),
                "differ": float(np.mean(ours != theirs)),
                "fill_mismatch": int(np.sum((ours == -100.0) != (theirs == -100.0))),
                "outside": float(np.mean(ours == -100.0)),
            }
            median = results[case][interpolation]["median"]
            print(f"{case} {interpolation:8s} gpuresample {median['gpuresample'] * 1e3:8.1f} ms  "
                  f"SimpleITK {median['SimpleITK'] * 1e3:8.1f} ms", flush=True)
    return results


def oblique_report(results: dict, load_before, load_after, repeats: int, others: tuple) -> tuple:
    lines = ["# CPU backend, oblique targets: gpuresample `target=` vs SimpleITK `Resample` with a reference image",
             "",
             f"Written by `benchmarks/cpu_bench.py --oblique` (repeats per timing: {repeats}, medians shown; calls "
             "round-robin, one of each per repeat). Float32 cubes, spacing 1 mm, onto a grid of the same extent "
             "rotated about axis 0 around the centre (the corners fall outside: fill -100 there); "
             f"both on {OBLIQUE_THREADS} threads.", ""]
    lines += machine_section(f"SimpleITK threads {OBLIQUE_THREADS}", load_before, load_after, others,
                             others_note="; the two columns were measured side by side under the same load.")
    verdicts = []
    lines += ["## Targets", "", "| case | target | gpuresample | SimpleITK | speed-up | verdict |",
              "|---|---|---|---|---|---|"]
    for case, by_interp in results.items():
        for interpolation, least in OBLIQUE_TARGETS:
            r = by_interp[interpolation]["median"]
            ratio = r["SimpleITK"] / r["gpuresample"]
            verdicts.append(ratio >= least)
            lines.append(f"| {case} | {interpolation}: >= {least:g}x vs SimpleITK | {ms(r['gpuresample'])} | "
                         f"{ms(r['SimpleITK'])} | {ratio:.2f}x | {'PASS' if ratio >= least else 'FAIL'} |")
    lines += ["", f"Overall: {sum(verdicts)} of {len(verdicts)} targets met.", ""]
    lines += ["## All medians and agreement", "",
              "| case | interpolation | gpuresample | SimpleITK | SimpleITK / ours | ours: min-max | "
              "max abs diff / range | outputs that differ | fill disagreements | outside (fill) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for case, by_interp in results.items():
        for interpolation, r in by_interp.items():
            m = r["median"]
            lo, hi = r["spread"]["gpuresample"]
            lines.append(f"| {case} | {interpolation} | {ms(m['gpuresample'])} | {ms(m['SimpleITK'])} | "
                         f"{m['SimpleITK'] / m['gpuresample']:.2f}x | {ms(lo)} - {ms(hi)} | {r['max_diff']:.1e} | "
                         f"{r['differ']:.2%} | {r['fill_mismatch']} | {r['outside']:.1%} |")
    lines += ["", "SimpleITK computes linear weights in float64 and casts the result; gpuresample's float32 "
              "input works in float32 (docs/design.md §2), hence differences near float32 rounding.", ""]
    return "\n".join(lines), all(verdicts)


def main_oblique(repeats: int, output: Path) -> int:
    load_before = os.getloadavg()
    start_wall, start_busy, start_own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    results = run_oblique(repeats)
    others = (busy_cpu_seconds() - start_busy - (own_cpu_seconds() - start_own), time.perf_counter() - start_wall)
    text, ok = oblique_report(results, load_before, os.getloadavg(), repeats, others)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per implementation (median)")
    parser.add_argument("--output", type=Path, default=RESULTS / "cpu.md")
    parser.add_argument("--no-compile-times", action="store_true",
                        help="skip the first calls in fresh processes")
    parser.add_argument("--oblique", action="store_true",
                        help="time targets rotated about axis 0 against SimpleITK instead "
                             "(default output: results/cpu-oblique.md)")
    args = parser.parse_args(argv)
    if args.oblique:
        output = args.output if args.output != RESULTS / "cpu.md" else RESULTS / "cpu-oblique.md"
        return main_oblique(args.repeats, output)
    load_before = os.getloadavg()
    print(f"load average before: {load_before}", flush=True)
    warm = np.ones(WARM_PAGES_BYTES // 8)
    del warm
    start_wall, start_busy, start_own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    all_results, compiled = {}, {}
    for n_in, n_out in CASES:
        case = f"{n_in}^3 -> {n_out}^3"
        if not args.no_compile_times:
            compiled[case] = first_call_times(n_in, n_out)
        all_results[case] = run_case(n_in, n_out, args.repeats)
    load_after = os.getloadavg()
    others = (busy_cpu_seconds() - start_busy - (own_cpu_seconds() - start_own), time.perf_counter() - start_wall)
    text, ok = report(all_results, compiled, load_before, load_after, args.repeats, others)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
