"""The ``gpuresample`` command: resample an image file (and its masks) to a new spacing or shape.

::

    gpuresample IN OUT (--spacing S0 S1 S2 | --shape N0 N1 N2 | --isotropic | --like REF [--fill V])
                [--interp nearest|linear|cubic] [--mask M]... [--mask-interp nearest|label|linear|cubic]
                [--volume V]... [--label] [--antialias] [--backend auto|cpu|cupyx|kernels] [--device cpu|cuda]
                [--dtype D] [--max-memory 4GB] [--out-of-core] [--dry-run] [--progress] [--force]
    gpuresample [--sample [OUT]] (--spacing ... | --shape ... | --isotropic) [...]
    gpuresample [options] -- IN OUT        (paths starting with '-')

Rules (also in ``gpuresample --help``):

* It prints the information display (the plan) before anything is computed;
  ``--dry-run`` stops there (after checking every input and output path; an existing
  output is reported, not refused), with a one-line warning when the results need more
  memory than is available (or, with ``--out-of-core``, more disk than is free).
* ``--dtype D`` is the output dtype of IN and the ``--volume`` images (as ``dtype=`` of
  :func:`gpuresample.resample`); masks keep theirs.
* ``--out-of-core`` computes each result slab by slab into a file next to OUT (a
  ``numpy.memmap`` in a hidden staging folder; slabs of ``--max-memory``, default
  ``DEFAULT_STREAM_BYTES``) and writes it into OUT block by block, so results larger than
  the memory work; OUT must be ``.nii`` or ``.nii.gz``. A result that does not fit in memory
  without it is an error that advises it.
* Options are spelled out (no abbreviations); an unknown one is named, with the closest
  option when there is one.
* Axes are the file's index axes ``(i, j, k)`` (see :mod:`gpuresample.io`): ``--spacing``
  and ``--shape`` give one value per index axis, in the header's order.
* ``--isotropic`` is every axis at the smallest input spacing.
* ``--like REF`` puts IN (and its masks) on REF's grid: REF's shape, spacing, origin and
  direction, whatever they are (another scan's file). Voxels outside IN get ``--fill``
  (default 0; masks always 0). A warning says when REF does not overlap IN at all.
* Masks: each ``--mask M`` (one path each; repeat it) must lie on IN's grid. It is written
  next to OUT as ``<OUT stem>_<M stem><OUT ending>``: ``ct_1mm.nii.gz`` with
  ``--mask liver.nrrd`` also writes ``ct_1mm_liver.nii.gz``. Outputs take OUT's format.
  ``--volume V`` adds a continuous image on IN's grid (a probability map, another
  sequence), resampled with ``--interp`` and written by the same rule. A mask with more
  than ``MASK_VALUES_WARNING`` distinct values gets a warning suggesting ``--volume``.
* With no IN it runs on the built-in sample phantom (volume ``CT`` and mask ``Organs``),
  prints the plan and a summary, and writes nothing; ``--sample OUT`` writes the result
  (``OUT`` and ``<OUT stem>_Organs<OUT ending>``).
* Outputs are never overwritten without ``--force``, and never written over an input.
  The data file of a ``.mhd``/``.nhdr`` output (``<OUT stem>.raw``) is an output too,
  and the data files an input header names are inputs too.
* Errors are one line on stderr: exit code 2 for bad arguments, unreadable or unwritable
  files, missing optional packages and unavailable backends; 1 for anything unexpected;
  130 when interrupted.
* Integer images stored as int64/uint64 (common for NIfTI label maps) are resampled and
  written as they are stored (labels beyond 2**53 stay exact).
* NIfTI outputs get the qform/sform codes of IN when IN is a NIfTI file.
* The summary of a float result gives the range of its finite values, and counts NaN and
  infinite voxels (``--fill nan`` leaves NaN outside IN).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__, io
from ._guards import advising, available_host_bytes
from ._validate import SUPPORTED_DTYPES, check_shape, check_spacing, parse_bytes
from .backends import ACCEPTED_NAMES, BACKEND_NAMES, BackendUnavailable
from .display import format_bytes
from .geometry import isotropic
from .planner import DEFAULT_STREAM_BYTES
from .sample import phantom
from .scene import Scene

#: Exit codes.
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Errors that are the user's to fix (arguments, files, installs, devices): exit code 2.
USER_ERRORS = (ValueError, TypeError, OSError, ImportError, BackendUnavailable, MemoryError)
PROG = "gpuresample"
#: A "mask" with more distinct values than this is likely a continuous image (a probability
#: map): label maps rarely have more labels than a uint8 holds.
MASK_VALUES_WARNING = 255
#: Output endings ``--out-of-core`` writes (block by block, never the whole result in memory).
OUT_OF_CORE_SUFFIXES = io.NIFTI_SUFFIXES
#: Bytes of a result read at a time for the summary and the mask checks.
SUMMARY_BLOCK_BYTES = 16 << 20
#: What the size errors advise when they come from the command (Python's are out= and target_*=).
ADVICE = {
    "out_of_core": "rerun with --out-of-core to write it to disk slab by slab (OUT .nii or .nii.gz)",
    "out_of_core_device": "add --device cpu, or rerun with --out-of-core to write it to disk slab by slab",
    "smaller_target": "choose a larger --spacing or a smaller --shape",
}


class UsageError(Exception):
    """A bad command line; the message is shown as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message and exits; we want one line
        if message.startswith("unrecognized arguments: -"):
            message += " (a path starting with '-' goes after --, at the end: ... -- IN OUT; or write ./-name)"
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gpuresample`` command."""
    parser = _Parser(
        prog=PROG, allow_abbrev=False,
        description="Resample a 3-D image (NIfTI, NRRD, MetaImage, DICOM folder) and its masks to a new "
                    "voxel spacing or shape; the physical extent is kept. Prints the plan first.",
        epilog="Masks go next to OUT as <OUT stem>_<mask stem><OUT ending>. With no IN: the built-in "
               "sample phantom (nothing written unless --sample OUT). Errors: one line, exit code 2.")
    parser.add_argument("paths", nargs="*", metavar="IN OUT",
                        help="input file or DICOM folder, and output file (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--spacing", nargs=3, type=float, metavar=("S0", "S1", "S2"),
                        help="target voxel size in mm per index axis (i, j, k); the grid stays centred")
    target.add_argument("--shape", nargs=3, type=int, metavar=("N0", "N1", "N2"),
                        help="target voxels per index axis; the bounding box is kept exactly")
    target.add_argument("--isotropic", action="store_true",
                        help="every axis at the smallest input spacing")
    target.add_argument("--like", metavar="REF",
                        help="put IN (and its masks) on the grid of image file REF: its shape, spacing, origin "
                             "and direction")
    parser.add_argument("--fill", type=float, default=0.0, metavar="V",
                        help="with --like: value of image voxels outside IN (default 0; nan for float images); "
                             "masks get 0")
    parser.add_argument("--interp", default="linear", choices=("nearest", "linear", "cubic"),
                        help="interpolation of the image (default: linear)")
    parser.add_argument("--mask", action="append", default=None, metavar="M",
                        help="a label mask on IN's grid, resampled onto the same target grid (repeat for more)")
    parser.add_argument("--volume", action="append", default=None, metavar="V",
                        help="a further continuous image on IN's grid (e.g. a probability map), resampled "
                             "with --interp (repeat for more)")
    parser.add_argument("--mask-interp", default="nearest", choices=("nearest", "label", "linear", "cubic"),
                        help="interpolation of masks (default: nearest; label: smooth, only the input's labels)")
    parser.add_argument("--label", action="store_true",
                        help="IN is itself a label map: resampled with --mask-interp")
    parser.add_argument("--antialias", action="store_true",
                        help="Gaussian smoothing of the image before downsampling (linear/cubic)")
    parser.add_argument("--backend", default="auto", choices=ACCEPTED_NAMES,
                        metavar="{" + ",".join(BACKEND_NAMES) + "}", help="where to compute (default: auto)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="compute on this device (cuda: stage host data through the GPU)")
    parser.add_argument("--dtype", default=None, metavar="D", choices=[str(d) for d in SUPPORTED_DTYPES],
                        help="output dtype of IN and the --volume images (default: as stored; masks keep "
                             "theirs): " + ", ".join(str(d) for d in SUPPORTED_DTYPES))
    parser.add_argument("--max-memory", metavar="SIZE", default=None,
                        help="memory budget, e.g. 4GB or 512MiB; work is split into slabs to stay within it")
    parser.add_argument("--out-of-core", action="store_true",
                        help="compute slab by slab into a file next to OUT and write OUT block by block: for "
                             "results larger than the memory (OUT .nii or .nii.gz)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, check the paths, compute nothing")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing outputs (the data file of a .mhd/.nhdr output too)")
    parser.add_argument("--sample", action="store_true",
                        help="use the built-in sample phantom as input; the only path, if any, is OUT")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def main(argv=None) -> int:
    """Run the command; returns the exit code (``python -m gpuresample`` and the script exit with it).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad arguments or files (one line on stderr), 1 for a bug,
        130 when interrupted.

    Examples
    --------
    >>> main(["--sample", "--shape", "24", "32", "32", "--dry-run"])  # doctest: +ELLIPSIS
    input: sample phantom (volume 'CT', mask 'Organs')
    gpuresample plan...
    dry run: nothing computed, nothing written
    0
    """
    parser = build_parser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _one_line_warning
            argv = list(sys.argv[1:] if argv is None else argv)
            after = []  # everything after "--" is a path, even "-dash.nii.gz"
            if "--" in argv:
                argv, after = argv[:argv.index("--")], argv[argv.index("--") + 1:]
            _check_option_names(parser, argv)
            args = parser.parse_intermixed_args(argv)  # IN OUT may come after options
            args.paths = list(args.paths) + after
            with advising(**ADVICE):
                return _run(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except UsageError as exc:
        _fail(f"{exc} (see {PROG} --help)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        _fail(_one_line(exc))
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, and a distinct exit code
        _fail(f"internal error: {type(exc).__name__}: {_one_line(exc)} (please report it)")
        return EXIT_INTERNAL


def _check_option_names(parser: argparse.ArgumentParser, argv) -> None:
    """Name the first unknown option (``--sapcing``), with the closest known one.

    Checked before parsing: argparse would first report a missing required option
    (``--spacing``, misspelt) and never name the misspelt one.
    """
    known = sorted(s for action in parser._actions for s in action.option_strings)
    for token in argv:
        if not token.startswith("-") or token == "-" or _is_number(token):
            continue
        name = token.split("=", 1)[0] if token.startswith("--") else token
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        if not token.startswith("--"):
            hint += " (a path starting with '-' goes after --, at the end: ... -- IN OUT; or write ./-name)"
        raise UsageError(f"unknown option {name}{hint}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    return text or type(exc).__name__


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


# ----------------------------------------------------------------- the run
def _run(args) -> int:
    source_in, out = _paths(args)
    target = _target(args)
    max_memory = args.max_memory
    if max_memory is not None:
        parse_bytes(max_memory, "--max-memory")
    if args.out_of_core:
        if out is None and not args.dry_run:
            raise UsageError("--out-of-core writes the result into OUT: give OUT (or --sample OUT)")
        if out is not None and not str(out).lower().endswith(OUT_OF_CORE_SUFFIXES):
            raise UsageError(f"--out-of-core writes .nii or .nii.gz outputs (block by block); OUT is {out}")
        if max_memory is None:
            max_memory = DEFAULT_STREAM_BYTES

    masks, volumes = args.mask or [], args.volume or []
    if source_in is None:
        scene, main_name, inputs = phantom(), "CT", []
        described = "sample phantom (volume 'CT', mask 'Organs')"
        extra_names = ["Organs"]
    else:
        main_name = io.split_suffix(source_in)[0]
        scene = io.load(source_in, masks=masks, volumes=volumes, name=main_name,
                        role="mask" if args.label else "volume")
        inputs = [Path(p) for p in [source_in, *masks, *volumes]] + ([Path(args.like)] if args.like else [])
        described = str(source_in) + (f" with mask(s) {', '.join(masks)}" if masks else "") + (
            f" with volume(s) {', '.join(volumes)}" if volumes else "")
        extra_names = [n for n in scene.names if n != main_name]
        _warn_many_values(scene, main_name)

    outputs = _output_paths(out, main_name, extra_names)
    existing = _check_outputs(outputs, inputs, args.force, args.dry_run)

    target_shape, target_spacing, like = None, None, {}
    if target[0] == "like":
        like = {"target": io.read(target[1])[1], "fill": args.fill}
    elif target[0] == "shape":
        target_shape = target[1]
    elif target[0] == "spacing":
        target_spacing = target[1]
    else:
        target_spacing = isotropic(scene.grid.spacing)
    mask_interp = args.mask_interp
    volume_interp = args.interp
    dtypes = {} if args.dtype is None else {n: args.dtype for n in [main_name, *scene.volumes] if n in scene.names}

    def make_plan(out_arrays=None):
        return scene.plan(target_shape=target_shape, target_spacing=target_spacing,
                          volume_interpolation=volume_interp, mask_interpolation=mask_interp,
                          antialias=args.antialias, progress=args.progress, backend=args.backend,
                          device=args.device, max_memory=max_memory, dtype=dtypes, out=out_arrays, **like)

    plan = make_plan()
    print(f"input: {described}")
    print(plan)
    sys.stdout.flush()
    if args.dry_run:
        _warn_huge(plan, outputs, args.out_of_core)
        print("dry run: nothing computed, nothing written")
        for path in existing:
            print(f"note: {path} exists; the real run needs --force to replace it")
        return EXIT_OK

    staging = None
    try:
        if args.out_of_core:
            staging, arrays = _out_of_core_arrays(plan, outputs)
            plan = make_plan(arrays)
        start = time.perf_counter()
        result = plan.apply()
        seconds = time.perf_counter() - start
        _report_and_write(args, plan, scene, result, out, outputs, source_in, seconds)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return EXIT_OK


def _report_and_write(args, plan, scene, result, out, outputs, source_in, seconds) -> None:
    backends = ", ".join(sorted(set(plan.backends.values())))
    print(f"resampled in {seconds:.2f} s (backend {backends})")
    for name in result.names:
        print("  " + _describe(name, scene, result))
    if out is None:
        print(f"nothing written (to write the result: {PROG} --sample OUT.nii.gz ...)")
        return
    _write(result, outputs, reference=source_in, force=args.force)
    for name, path in outputs.items():
        print(f"wrote {path}  ({name})")


def _disk_needed(plan, outputs: dict) -> int:
    """Disk bytes ``--out-of-core`` needs: every result in the staging folder, and the ``.nii`` files."""
    needed = 0
    for job in plan.jobs:
        path = outputs.get(job.name)
        needed += job.bytes_after * (2 if path is not None and str(path).lower().endswith(".nii") else 1)
    return needed


def _out_of_core_arrays(plan, outputs: dict) -> tuple:
    """``(staging folder, {name: numpy.memmap})``: the results' files, next to OUT.

    The folder is a staging folder of :mod:`gpuresample.io` (left behind by a killed run,
    the next save into that folder removes it). Refused up front when the disk cannot
    hold the results (a memory map written past a full disk would kill the process).
    """
    folder = Path(next(iter(outputs.values()))).parent
    needed, free = _disk_needed(plan, outputs), shutil.disk_usage(folder).free
    if needed > free:
        raise OSError(f"--out-of-core needs {format_bytes(needed)} of disk in {folder} (the results, then the "
                      f"files), only {format_bytes(free)} is free")
    staging = Path(tempfile.mkdtemp(prefix=io.STAGING_PREFIX + io._staging_tag(), dir=folder))
    arrays = {}
    try:
        for number, job in enumerate(plan.jobs):
            arrays[job.name] = np.memmap(staging / f"result{number}.dat", mode="w+", dtype=job.out_dtype,
                                         shape=job.output_shape)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, arrays


def _warn_huge(plan, outputs: dict, out_of_core: bool) -> None:
    """One warning line when the results will not fit where the real run puts them."""
    if out_of_core:
        folder = Path(next(iter(outputs.values()))).parent if outputs else None
        if folder is None:
            return
        needed, free = _disk_needed(plan, outputs), shutil.disk_usage(folder).free
        if needed > free:
            warnings.warn(f"--out-of-core needs {format_bytes(needed)} of disk in {folder}, only "
                          f"{format_bytes(free)} is free: the real run would fail", UserWarning, stacklevel=2)
        return
    needed, free = sum(job.bytes_after for job in plan.jobs), available_host_bytes()
    if free is not None and needed > free:
        warnings.warn(f"the results need {format_bytes(needed)}, more than the {format_bytes(free)} of memory "
                      "available: the real run would fail; add --out-of-core to write them to disk slab by slab",
                      UserWarning, stacklevel=2)


def _paths(args):
    """``(IN or None for the sample, OUT or None)`` from the positional paths."""
    paths = list(args.paths)
    if args.sample or not paths:
        if len(paths) > 1:
            raise UsageError(f"--sample takes at most one path (OUT), got {len(paths)}: {' '.join(paths)}")
        if args.mask or args.volume or args.label:
            raise UsageError("--mask, --volume and --label need an input file IN; the sample has its own mask")
        return None, (paths[0] if paths else None)
    if len(paths) > 2:
        raise UsageError(f"expected IN and OUT, got {len(paths)} paths: {' '.join(paths)}")
    if len(paths) == 1 and not args.dry_run:
        raise UsageError(f"give OUT after IN ({paths[0]}), or --dry-run to only show the plan")
    return paths[0], (paths[1] if len(paths) == 2 else None)


def _target(args):
    if args.fill != 0.0 and args.like is None:
        raise UsageError("--fill applies to --like (voxels outside IN); the other targets cover IN exactly")
    if args.spacing is not None:
        return "spacing", check_spacing(args.spacing, "--spacing", 3)
    if args.shape is not None:
        return "shape", check_shape(args.shape, "--shape", 3)
    if args.like is not None:
        return "like", args.like
    return "isotropic", None


def _output_paths(out, main_name: str, extra_names) -> dict:
    """``{object name: path}``: the image to OUT, mask or volume ``m`` to ``<OUT stem>_<m><OUT ending>``."""
    if out is None:
        return {}
    out = Path(out)
    io.file_format(out, writing=True)
    stem, suffix = io.split_suffix(out)
    paths = {main_name: out}
    for name in extra_names:
        paths[name] = out.with_name(f"{stem}_{name}{suffix}")
    return paths


def _check_outputs(outputs: dict, inputs, force: bool, dry_run: bool = False) -> list:
    """Refuse outputs that are inputs, collide, are folders or have no folder; existing ones need ``force``.

    Every file written counts, the data file of a ``.mhd``/``.nhdr`` output too; every
    file read counts as an input, the data files an input header names too. Returns the
    output files that exist: a dry run reports them instead of refusing.
    """
    input_files = {io._file_key(f): f for p in inputs for f in io.files_read(p)}
    seen, existing = {}, []
    for name, path in outputs.items():
        for file in io.files_written(path):
            what = name if file == path else f"data file of {path.name}"
            key = io._file_key(file)
            if key in input_files:
                read = input_files[key]
                also = "an input" if read.name == file.name else f"an input (the data of {read})"
                raise UsageError(f"output {file} ({what}) is also {also}; write it elsewhere")
            if key in seen:
                raise UsageError(f"{seen[key]!r} and {what!r} would both be written to {file}")
            seen[key] = what
            if not file.parent.is_dir():
                raise UsageError(f"cannot write {file}: folder {file.parent} does not exist")
            if file.is_dir():
                raise UsageError(f"cannot write {file}: it is a folder")
            if os.path.lexists(file) and not force:
                if not dry_run:
                    raise UsageError(f"{file} exists; pass --force to overwrite it")
                existing.append(file)
    return existing


def _warn_many_values(scene: Scene, main_name: str) -> None:
    """Warn about masks with more distinct values than a label map usually has."""
    for name, mask in scene.masks.items():
        count = len(_unique(mask))
        if count > MASK_VALUES_WARNING:
            instead = "drop --label" if name == main_name else "give it with --volume instead of --mask"
            warnings.warn(f"mask {name!r} has {count} distinct values (more than {MASK_VALUES_WARNING}): "
                          "it is resampled as labels; if it is a probability map or another continuous "
                          f"image, {instead}", UserWarning, stacklevel=2)


def _blocks(array):
    """The array in blocks of whole rows along axis 0, each about ``SUMMARY_BLOCK_BYTES``
    (a result on disk is never read whole into memory)."""
    row = max(1, math.prod(array.shape[1:]) * array.dtype.itemsize)
    step = max(1, SUMMARY_BLOCK_BYTES // row)
    for start in range(0, array.shape[0], step):
        yield np.asarray(array[start:start + step])


def _unique(array) -> np.ndarray:
    """The distinct values of ``array``, block by block."""
    found = [np.unique(block) for block in _blocks(array)]
    return np.unique(np.concatenate(found)) if found else np.unique(np.asarray(array))


def _values(array) -> str:
    """``values LO .. HI``: of the finite values of a float array, with counts of NaN and inf."""
    lo = hi = None
    nan = inf = 0
    for block in _blocks(array):
        if block.dtype.kind == "f":
            finite = np.isfinite(block)
            nan += int(np.isnan(block).sum())
            inf += int(block.size - finite.sum()) - int(np.isnan(block).sum())
            block = block[finite]
        if block.size:
            lo = block.min() if lo is None else min(lo, block.min())
            hi = block.max() if hi is None else max(hi, block.max())
    text = "no finite values" if lo is None else f"values {lo:.6g} .. {hi:.6g}"
    if nan or inf:
        counted = ", ".join(f"{n:,} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n)
        text = ("finite " if lo is not None else "") + text + f" ({counted})"
    return text


def _describe(name: str, before: Scene, after: Scene) -> str:
    array = after[name]
    array = array if isinstance(array, np.ndarray) else np.asarray(array)
    shape = " x ".join(str(n) for n in array.shape)
    if name in after.masks:
        labels_before = _unique(before[name])
        labels_after = _unique(array)
        new = "" if np.isin(labels_after, labels_before).all() else "; values not in the input appeared"
        return f"{name}: mask {shape} {array.dtype}, labels {_list(labels_after)} (input: {_list(labels_before)}{new})"
    if array.size == 0:
        return f"{name}: volume {shape} {array.dtype}"
    return f"{name}: volume {shape} {array.dtype}, {_values(array)}"


def _list(values, limit: int = 12) -> str:
    shown = " ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in values[:limit].tolist())
    return shown + (f" ... ({len(values)} values)" if len(values) > limit else "")


def _write(result: Scene, outputs: dict, reference, force: bool = False) -> None:
    """All outputs or none: ``io.save`` moves files into place only once all are written."""
    names = list(outputs)
    first, rest = names[0], {n: outputs[n] for n in names[1:]}
    io.save(outputs[first], result, name=first, masks=rest, reference=reference, force=force)


if __name__ == "__main__":  # pragma: no cover - python -m gpuresample.cli
    sys.exit(main())
