"""Record the golden corpus: what today's ``gpuresample.resample`` returns, case by case.

Run from the repository root::

    python tests/golden/make_golden.py            # writes tests/golden/corpus.json

Every case is a deterministic input (a recipe: shape, dtype, kind of values, seed) and the
exact keyword arguments of one ``gr.resample`` call on the CPU backend. The corpus keeps,
per case, the output's shape, dtype and the SHA-256 of its bytes (C order, native byte
order), a few sample values for readable diffs, or, when the library refuses the call,
the exception type. ``tests/test_golden.py`` recomputes every case and compares.

The corpus is self-describing: the test rebuilds inputs and arguments from the JSON
(with :func:`make_input` and :func:`decode_args` below), so a later change to the case
list here does not change what an existing corpus checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus.json"
FORMAT = 1

if str(ROOT) not in sys.path:  # run as a script from a checkout: use the checkout's library
    sys.path.insert(0, str(ROOT))

import gpuresample as gr  # noqa: E402

DTYPES = ("float16", "float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32",
          "uint64", "int64", "bool")
INTERPOLATIONS = ("nearest", "linear", "cubic", "label")
#: The dtypes the geometries beyond plain up/downsampling are recorded for.
SUBSET = ("float32", "uint8", "int16", "float64")
#: Label maps (a handful of labels) recorded with ``nearest`` and ``label`` on every geometry.
LABEL_SUBSET = ("uint8", "int16")
SHAPE = (7, 9, 11)
#: Chunked cases use more rows: with cubic, a slab also keeps prefilter states, so a tiny
#: volume never splits within a budget smaller than its unsplit peak.
CHUNK_SHAPE = (24, 9, 11)
SAMPLES = 8


# --------------------------------------------------------------------------- inputs

def make_input(recipe: dict) -> np.ndarray:
    """The input array a recipe describes (``shape``, ``dtype``, ``kind``, ``seed``).

    Kinds: ``values`` (random values over the dtype's range; normal * 100 for floats),
    ``labels`` (blocky label map with a handful of labels), ``specials`` (float values
    with NaN, +inf and -inf at a few voxels), ``big_labels`` (uint16 labels 0, 300, 600).
    """
    shape, dtype, kind = tuple(recipe["shape"]), np.dtype(recipe["dtype"]), recipe["kind"]
    rng = np.random.default_rng(recipe["seed"])
    if kind == "values":
        if dtype == np.bool_:
            return rng.random(shape) < 0.5
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        return (rng.standard_normal(shape) * 100.0).astype(dtype)
    if kind in ("labels", "big_labels"):
        if kind == "big_labels":
            palette = np.array([0, 300, 600])
        elif dtype == np.bool_:
            palette = np.array([0, 1])
        elif dtype.kind == "i":
            palette = np.array([0, -3, 1, 4, 7])
        else:
            palette = np.array([0, 1, 2, 5, 9])
        coarse = rng.integers(0, len(palette), size=tuple(-(-n // 3) for n in shape))
        blocks = coarse[tuple(np.arange(n)[(slice(None),) + (None,) * (len(shape) - 1 - i)] // 3
                              for i, n in enumerate(shape))]
        noise = rng.random(shape) < 0.15  # a few isolated voxels with another label
        labels = np.where(noise, rng.integers(0, len(palette), size=shape), blocks)
        return palette[labels].astype(dtype)
    if kind == "specials":
        x = (rng.standard_normal(shape) * 100.0).astype(dtype)
        flat = x.reshape(-1)
        spots = rng.choice(flat.size, size=6, replace=False)
        flat[spots[:3]] = np.nan
        flat[spots[3]] = np.inf
        flat[spots[4]] = -np.inf
        flat[spots[5]] = np.nan
        return x
    raise ValueError(f"unknown input kind {kind!r}")


def values(dtype: str, shape=SHAPE, seed=0) -> dict:
    return {"shape": list(shape), "dtype": dtype, "kind": "values", "seed": seed}


def labels(dtype: str, shape=SHAPE, seed=1) -> dict:
    return {"shape": list(shape), "dtype": dtype, "kind": "labels", "seed": seed}


def specials(dtype: str, shape=SHAPE, seed=2) -> dict:
    return {"shape": list(shape), "dtype": dtype, "kind": "specials", "seed": seed}


# --------------------------------------------------------------------------- arguments

def encode_grid(grid) -> dict:
    return {"grid": {"shape": list(grid.shape), "spacing": list(grid.spacing), "origin": list(grid.origin),
                     "direction": [list(row) for row in grid.direction]}}


def encode_number(value):
    """JSON has no NaN or infinity: those become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def decode_args(encoded: dict) -> dict:
    """Keyword arguments for ``gr.resample`` from their JSON form."""
    args = {}
    for key, value in encoded.items():
        if isinstance(value, dict) and "grid" in value:
            g = value["grid"]
            value = gr.Grid(g["shape"], g["spacing"], origin=g["origin"], direction=g["direction"])
        elif key in ("target_shape",):
            value = tuple(value)
        elif key in ("spacing", "target_spacing") and isinstance(value, list):
            value = tuple(value)
        elif key == "fill" and isinstance(value, str):
            value = float(value)
        args[key] = value
    return args


def rotation(axis, degrees) -> np.ndarray:
    """The 3x3 rotation by ``degrees`` about the unit vector along ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    t = np.deg2rad(degrees)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(t) * kx + (1.0 - np.cos(t)) * (kx @ kx)


def centred_target(source, shape, spacing, direction) -> "gr.Grid":
    """A grid of ``shape``/``spacing``/``direction`` whose centre is the source's centre."""
    direction = np.asarray(direction, dtype=np.float64)
    centre = np.asarray(source.origin) + source.direction_matrix @ ((np.asarray(source.shape) - 1) / 2 * np.asarray(source.spacing))
    origin = centre - direction @ ((np.asarray(shape) - 1) / 2 * np.asarray(spacing, dtype=np.float64))
    return gr.Grid(shape, spacing, origin=origin, direction=direction)


SOURCE_SPACING = (1.0, 1.2, 0.9)
SOURCE = gr.Grid(SHAPE, SOURCE_SPACING)

#: Geometries: name -> (keyword arguments as JSON, the spatial shape of the input).
GEOMETRIES = {
    "up": ({"spacing": [1.0, 1.0, 1.0], "target_shape": [10, 13, 16]}, SHAPE),
    "down": ({"spacing": [1.0, 1.0, 1.0], "target_shape": [4, 5, 6]}, SHAPE),
    # mixed: up along axes 0 and 2, down along axis 1 (the same bounding box)
    "aniso_shape": ({"spacing": [2.5, 0.8, 0.8], "target_shape": [10, 6, 13]}, SHAPE),
    # by spacing: the grid stays centred, the extent changes by under one voxel
    "aniso_spacing": ({"spacing": [2.5, 0.8, 0.8], "target_spacing": [1.1, 1.7, 0.6]}, SHAPE),
    # a target grid with axes 1 and 2 flipped (axis-aligned: per-axis tables)
    "flip": ({"spacing": list(SOURCE_SPACING),
              "target": encode_grid(centred_target(SOURCE, (8, 7, 12), (0.9, 1.5, 0.8),
                                                   np.diag([1.0, -1.0, -1.0]))),
              "fill": 0}, SHAPE),
    # axes 0 and 2 swapped and axis 0 flipped, shifted so part of it lies outside: fill
    "permute_flip": ({"spacing": list(SOURCE_SPACING),
                      "target": encode_grid(gr.Grid((9, 8, 6), (1.1, 1.0, 1.3), origin=(9.0, 2.0, -1.5),
                                                    direction=[[0.0, 0.0, -1.0], [0.0, 1.0, 0.0],
                                                               [1.0, 0.0, 0.0]])),
                      "fill": 3}, SHAPE),
    # rotated 20 degrees about axis 0: oblique, with voxels outside the data
    "oblique20": ({"spacing": list(SOURCE_SPACING),
                   "target": encode_grid(centred_target(SOURCE, (9, 10, 12), (0.8, 1.1, 0.9),
                                                        rotation((1.0, 0.0, 0.0), 20.0))),
                   "fill": 0}, SHAPE),
    # rotated 35 degrees about an oblique axis, larger than the data: many fill voxels
    "oblique_axis": ({"spacing": list(SOURCE_SPACING),
                      "target": encode_grid(centred_target(SOURCE, (10, 11, 9), (1.1, 1.3, 1.4),
                                                           rotation((1.0, 2.0, -1.5), 35.0))),
                      "fill": 5}, SHAPE),
    # the geometries of the chunked cases, on CHUNK_SHAPE input
    "chunk_up": ({"spacing": [1.0, 1.0, 1.0], "target_shape": [30, 13, 16]}, CHUNK_SHAPE),
    "chunk_down": ({"spacing": [1.0, 1.0, 1.0], "target_shape": [12, 5, 6]}, CHUNK_SHAPE),
    "chunk_aniso_shape": ({"spacing": [2.5, 0.8, 0.8], "target_shape": [40, 6, 13]}, CHUNK_SHAPE),
    "chunk_oblique20": ({"spacing": list(SOURCE_SPACING),
                         "target": encode_grid(centred_target(gr.Grid(CHUNK_SHAPE, SOURCE_SPACING), (26, 10, 12),
                                                              (0.8, 1.1, 0.9), rotation((1.0, 0.0, 0.0), 20.0))),
                         "fill": 0}, CHUNK_SHAPE),
}

#: Fill per output dtype for the geometries with ``fill``: a value every output dtype holds.
FILLS = {"oblique_axis": {"float16": -7.5, "float32": float("nan"), "float64": -7.5, "uint8": 7, "int16": -5,
                          "bool": 1}}


def fill_for(geometry: str, out_dtype: str, recipe: dict):
    fill = GEOMETRIES[geometry][0].get("fill")
    if fill is None:
        return None
    if geometry in FILLS and recipe["kind"] != "labels":
        fill = FILLS[geometry].get(out_dtype, fill)
    return fill


# --------------------------------------------------------------------------- cases

def case_list() -> list:
    """Every case: ``{"id", "input": recipe, "args": JSON keyword arguments}``."""
    cases = []
    seen = set()

    def add(case_id, recipe, args):
        assert case_id not in seen, case_id
        seen.add(case_id)
        args = {k: v for k, v in args.items() if v is not None}
        args.setdefault("backend", "cpu")
        cases.append({"id": case_id, "input": recipe, "args": args})

    def geometry_args(geometry, recipe, interpolation, out_dtype=None, **extra):
        base = dict(GEOMETRIES[geometry][0])
        fill = fill_for(geometry, out_dtype or recipe["dtype"], recipe)
        if fill is not None:
            base["fill"] = encode_number(fill)
        base["interpolation"] = interpolation
        if out_dtype is not None:
            base["dtype"] = out_dtype
        base.update(extra)
        return base

    # 1. every dtype x every interpolation, upsampling and downsampling
    for geometry in ("up", "down"):
        for dtype in DTYPES:
            for interp in INTERPOLATIONS:
                add(f"{geometry}/{dtype}/{interp}", values(dtype), geometry_args(geometry, values(dtype), interp))
    # label maps of every integer dtype (and bool, and float32) with the two label-keeping interpolations
    for geometry in ("up", "down"):
        for dtype in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bool", "float32"):
            for interp in ("nearest", "label"):
                add(f"{geometry}/labels-{dtype}/{interp}", labels(dtype), geometry_args(geometry, labels(dtype), interp))

    # 2. the other geometries on a representative subset
    def subset_cases(geometry, prefix=None, interps=INTERPOLATIONS, **extra):
        prefix = prefix or geometry
        for dtype in SUBSET:
            for interp in interps:
                add(f"{prefix}/{dtype}/{interp}", values(dtype), geometry_args(geometry, values(dtype), interp, **extra))
        for dtype in LABEL_SUBSET:
            for interp in ("nearest", "label"):
                add(f"{prefix}/labels-{dtype}/{interp}", labels(dtype),
                    geometry_args(geometry, labels(dtype), interp, **extra))

    for geometry in ("aniso_shape", "aniso_spacing", "flip", "permute_flip", "oblique20", "oblique_axis"):
        subset_cases(geometry)

    # antialias=True downsampling (linear and cubic; the others are refused)
    subset_cases("down", prefix="antialias-down", antialias=True)
    subset_cases("aniso_spacing", prefix="antialias-aniso", interps=("linear", "cubic"), antialias=True)
    add("antialias-oblique20/float32/linear", values("float32"),
        geometry_args("oblique20", values("float32"), "linear", antialias=True))

    # chunked with a small memory budget (max_memory filled in by chunk_budgets; equal to unchunked)
    for geometry in ("up", "aniso_shape", "oblique20"):
        for dtype in SUBSET:
            for interp in INTERPOLATIONS:
                recipe = values(dtype, shape=CHUNK_SHAPE)
                add(f"chunked-{geometry}/{dtype}/{interp}", recipe,
                    geometry_args("chunk_" + geometry, recipe, interp, max_memory="CHUNKED"))
        for dtype in LABEL_SUBSET:
            for interp in ("nearest", "label"):
                recipe = labels(dtype, shape=CHUNK_SHAPE)
                add(f"chunked-{geometry}/labels-{dtype}/{interp}", recipe,
                    geometry_args("chunk_" + geometry, recipe, interp, max_memory="CHUNKED"))
    for interp in ("linear", "cubic"):
        recipe = values("float32", shape=CHUNK_SHAPE)
        add(f"chunked-antialias-down/float32/{interp}", recipe,
            geometry_args("chunk_down", recipe, interp, antialias=True, max_memory="CHUNKED"))

    # 2-D input
    for name, args in (("2d-up", {"spacing": [1.0, 1.0], "target_shape": [13, 16]}),
                       ("2d-aniso", {"spacing": [0.7, 1.6], "target_spacing": [1.2, 0.9]})):
        for dtype in SUBSET:
            for interp in INTERPOLATIONS:
                add(f"{name}/{dtype}/{interp}", values(dtype, shape=(9, 11)), {**args, "interpolation": interp})
        for dtype in LABEL_SUBSET:
            for interp in ("nearest", "label"):
                add(f"{name}/labels-{dtype}/{interp}", labels(dtype, shape=(9, 11)), {**args, "interpolation": interp})
    add("2d-down-antialias/float32/linear", values("float32", shape=(9, 11)),
        {"spacing": [1.0, 1.0], "target_shape": [4, 5], "interpolation": "linear", "antialias": True})

    # 4-D with channel_axis (channels first and last)
    for name, shape, axis in (("4d-ch0", (3,) + SHAPE, 0), ("4d-chlast", SHAPE + (2,), 3)):
        for dtype in SUBSET:
            for interp in INTERPOLATIONS:
                add(f"{name}/{dtype}/{interp}", values(dtype, shape=shape),
                    {"spacing": [1.0, 1.0, 1.0], "target_shape": [10, 6, 13], "interpolation": interp,
                     "channel_axis": axis})
        for dtype in LABEL_SUBSET:
            for interp in ("nearest", "label"):
                add(f"{name}/labels-{dtype}/{interp}", labels(dtype, shape=shape),
                    {"spacing": [1.0, 1.0, 1.0], "target_shape": [10, 6, 13], "interpolation": interp,
                     "channel_axis": axis})
    add("4d-ch0-antialias/float32/linear", values("float32", shape=(3,) + SHAPE),
        {"spacing": [1.0, 1.0, 1.0], "target_shape": [4, 5, 6], "interpolation": "linear", "antialias": True,
         "channel_axis": 0})

    # 3. an output dtype other than the input's
    conversions = [("float32", "uint8"), ("float32", "int16"), ("float32", "float16"), ("float32", "float64"),
                   ("float32", "bool"), ("float64", "float32"), ("float64", "int32"), ("float64", "uint64"),
                   ("float16", "float32"), ("int16", "float32"), ("int16", "uint8"), ("int16", "int64"),
                   ("uint8", "float32"), ("uint8", "int16"), ("uint16", "float64"), ("int64", "float32"),
                   ("uint64", "int8"), ("bool", "float32"), ("bool", "uint8")]
    for geometry in ("up", "aniso_shape"):
        for src, dst in conversions:
            for interp in INTERPOLATIONS:
                add(f"cast-{geometry}/{src}-to-{dst}/{interp}", values(src),
                    geometry_args(geometry, values(src), interp, out_dtype=dst))
    label_conversions = [("uint8", "int64"), ("uint8", "float32"), ("int16", "uint8"), ("int16", "int8"),
                         ("int64", "uint16"), ("bool", "uint8"), ("float32", "uint8")]
    for src, dst in label_conversions:
        for interp in ("nearest", "label", "linear"):
            add(f"cast-up/labels-{src}-to-{dst}/{interp}", labels(src), geometry_args("up", labels(src), interp,
                                                                                     out_dtype=dst))
    big = {"shape": list(SHAPE), "dtype": "uint16", "kind": "big_labels", "seed": 3}
    for interp in ("nearest", "label", "linear"):
        add(f"cast-up/big-labels-uint16-to-uint8/{interp}", big, geometry_args("up", big, interp, out_dtype="uint8"))
        add(f"cast-up/big-labels-uint16-to-int16/{interp}", big, geometry_args("up", big, interp, out_dtype="int16"))
    for interp in ("nearest", "label"):  # fill the label's input dtype cannot hold
        add(f"cast-oblique20/labels-int16-to-float32-fill/{interp}", labels("int16"),
            {**geometry_args("oblique20", labels("int16"), interp, out_dtype="float32"), "fill": 0.5})

    # 4. NaN and infinities in float input
    for dtype in ("float16", "float32", "float64"):
        for geometry in ("up", "down", "aniso_shape", "oblique20"):
            for interp in INTERPOLATIONS:
                add(f"specials-{geometry}/{dtype}/{interp}", specials(dtype),
                    geometry_args(geometry, specials(dtype), interp))
    for dtype in ("float32", "float64"):
        for interp in ("nearest", "linear", "cubic"):
            recipe = specials(dtype, shape=CHUNK_SHAPE)
            add(f"chunked-specials-up/{dtype}/{interp}", recipe,
                geometry_args("chunk_up", recipe, interp, max_memory="CHUNKED"))
            add(f"specials-up/{dtype}-to-uint8/{interp}", specials(dtype),
                geometry_args("up", specials(dtype), interp, out_dtype="uint8"))
            add(f"specials-up/{dtype}-to-float16/{interp}", specials(dtype),
                geometry_args("up", specials(dtype), interp, out_dtype="float16"))
        add(f"antialias-specials-down/{dtype}/linear", specials(dtype),
            geometry_args("down", specials(dtype), "linear", antialias=True))
    return cases


# --------------------------------------------------------------------------- running

def chunk_budget(data: np.ndarray, args: dict) -> tuple:
    """A ``max_memory`` small enough for at least 3 slabs (2 when that is all that fits), and
    the slab count it gives. Uses the planner (an internal) only to choose the budget; the
    corpus keeps the budget as a plain number of bytes."""
    from gpuresample.job import build_job

    call = {k: v for k, v in decode_args(args).items() if k != "max_memory"}
    if "target" in call:
        call["onto"] = call.pop("target")
    spacing = call.pop("spacing", None)
    whole = build_job(data, spacing, **call).chunking
    best = None
    for step in range(50):  # from just below the unsplit peak down, in steps of 2%
        budget = whole.peak_bytes - 1 - step * whole.peak_bytes // 50
        if budget < 1:
            break
        try:
            count = build_job(data, spacing, max_memory=budget, **call).chunking.count
        except MemoryError:
            break
        if count > 1:
            best = (budget, count)
        if count >= 3:
            break
    return best


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def nan_canonical_digest(array: np.ndarray) -> str:
    """The digest with every NaN written as the same NaN (tells a NaN-bits-only change apart)."""
    array = np.array(array, copy=True)
    array[np.isnan(array)] = np.nan
    return digest(array)


def scalar(value):
    value = value.item()
    if isinstance(value, float):
        return repr(value)  # exact, and NaN/inf stay readable
    return value


def sample_values(array: np.ndarray) -> list:
    """``[flat index, value]`` pairs at :data:`SAMPLES` evenly spread voxels (C order)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.size == 0:
        return []
    picks = sorted(set(np.linspace(0, flat.size - 1, SAMPLES).round().astype(int).tolist()))
    return [[i, scalar(flat[i])] for i in picks]


def summary(array: np.ndarray) -> dict:
    out = {"sha256": digest(array), "shape": list(array.shape), "dtype": str(array.dtype)}
    if array.dtype.kind == "f":
        finite = array[np.isfinite(array)]
        out["samples"] = sample_values(array)
        out["nan_count"] = int(np.isnan(array).sum())
        out["inf_count"] = int(np.isinf(array).sum())
        out["finite_min"] = repr(float(finite.min())) if finite.size else None
        out["finite_max"] = repr(float(finite.max())) if finite.size else None
        if out["nan_count"]:
            out["sha256_nan_canonical"] = nan_canonical_digest(array)
    else:
        out["samples"] = sample_values(array)
    return out


def run_case(case: dict) -> dict:
    """Compute one case: ``{"result": summary}`` or ``{"refused": type name, "message": ...}``,
    with ``warnings`` (the categories of the warnings raised, in order)."""
    data = make_input(case["input"])
    before = digest(data)
    args = decode_args(case["args"])
    spacing = args.pop("spacing", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = gr.resample(data, spacing, **args)
        except (ValueError, TypeError) as error:
            message = str(error)
            outcome = {"refused": type(error).__name__,
                       "message": message if len(message) <= 160 else message[:157] + "..."}
        else:
            outcome = {"result": summary(np.asarray(result))}
    outcome["warnings"] = [w.category.__name__ for w in caught]
    if digest(data) != before:
        raise AssertionError(f"{case['id']}: the input was modified")
    return outcome


def git_head() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_loops() -> str:
    """Which CPU loops ran: the native library's file name, or "numba"."""
    try:
        from gpuresample.backends import _native
        lib = _native.library()
    except Exception as error:  # noqa: BLE001 (informational only)
        return f"unknown ({type(error).__name__})"
    return "numba" if lib is None else Path(getattr(lib, "_name", "native")).name


def main() -> int:
    start = time.perf_counter()
    cases = case_list()
    records = []
    chunk_pairs = []
    unsplittable = []
    for case in cases:
        if case["args"].get("max_memory") == "CHUNKED":
            best = chunk_budget(make_input(case["input"]), case["args"])
            if best is None:  # every split needs more than the whole (cubic's prefilter states)
                unsplittable.append(case["id"])
                continue
            budget, count = best
            case["args"]["max_memory"] = budget
            case["slabs"] = count
        case["input_sha256"] = digest(make_input(case["input"]))
        case.update(run_case(case))
        records.append(case)
        if "slabs" in case:
            whole = dict(case["args"])
            del whole["max_memory"]
            chunk_pairs.append((case, whole))
    # a chunked result must equal the unchunked one: record the comparison with each chunked case
    differing = []
    for case, whole_args in chunk_pairs:
        whole = run_case({"id": case["id"] + " (unchunked)", "input": case["input"], "args": whole_args})
        same = whole.get("result", {}).get("sha256") == case.get("result", {}).get("sha256") \
            and whole.get("refused") == case.get("refused")
        case["equals_unchunked"] = same
        if not same:
            case["unchunked"] = whole
            differing.append(case["id"])
    header = {
        "format": FORMAT,
        "library_version": gr.__version__,
        "git_commit": git_head(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_loops": cpu_loops(),
        "hash": "sha256 of the output's bytes, C order, native byte order (" + sys.byteorder + "-endian)",
        "cases": len(records),
        "refused": sum("refused" in r for r in records),
        "chunked_differing_from_unchunked": differing,
        "chunked_left_out_unsplittable": unsplittable,
    }
    # one case per line: a changed case is a one-line diff
    lines = ",\n".join(json.dumps(record, allow_nan=False) for record in records)
    CORPUS.write_text('{"header": ' + json.dumps(header, indent=1, allow_nan=False) + ',\n"cases": [\n'
                      + lines + "\n]}\n")
    elapsed = time.perf_counter() - start
    print(f"wrote {CORPUS.relative_to(ROOT)}: {len(records)} cases ({header['refused']} refused), "
          f"{len(differing)} chunked differing from unchunked, {elapsed:.1f} s")
    for case_id in unsplittable:
        print(f"  left out (no max_memory splits it into slabs): {case_id}")
    for case_id in differing:
        print(f"  chunked differs from unchunked: {case_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
