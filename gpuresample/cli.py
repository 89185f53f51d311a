"""The ``gpuresample`` command: resample an image file (and its masks) to a new spacing or shape.

::

    gpuresample IN OUT (--spacing S0 S1 S2 | --shape N0 N1 N2 | --isotropic | --like REF [--fill V])
                [--interp nearest|linear|cubic] [--mask M]... [--mask-interp nearest|label|linear|cubic]
                [--volume V]... [--label] [--antialias] [--backend auto|cpu|cupyx|kernels] [--device cpu|cuda]
                [--max-memory 4GB] [--dry-run] [--progress] [--force]
    gpuresample [--sample [OUT]] (--spacing ... | --shape ... | --isotropic) [...]
    gpuresample [options] -- IN OUT        (paths starting with '-')

Rules (also in ``gpuresample --help``):

* It prints the information display (the plan) before anything is computed;
  ``--dry-run`` stops there (after checking every input and output path; an existing
  output is reported, not refused).
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
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__, io
from ._validate import check_shape, check_spacing, parse_bytes
from .backends import ACCEPTED_NAMES, BACKEND_NAMES, BackendUnavailable
from .geometry import isotropic
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
        prog=PROG,
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
    parser.add_argument("--max-memory", metavar="SIZE", default=None,
                        help="memory budget, e.g. 4GB or 512MiB; work is split into slabs to stay within it")
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
            args = parser.parse_intermixed_args(argv)  # IN OUT may come after options
            args.paths = list(args.paths) + after
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
    plan = scene.plan(target_shape=target_shape, target_spacing=target_spacing,
                      volume_interpolation=volume_interp, mask_interpolation=mask_interp,
                      antialias=args.antialias, progress=args.progress, backend=args.backend,
                      device=args.device, max_memory=max_memory, **like)
    print(f"input: {described}")
    print(plan)
    sys.stdout.flush()
    if args.dry_run:
        print("dry run: nothing computed, nothing written")
        for path in existing:
            print(f"note: {path} exists; the real run needs --force to replace it")
        return EXIT_OK

    start = time.perf_counter()
    result = plan.apply()
    seconds = time.perf_counter() - start
    backends = ", ".join(sorted(set(plan.backends.values())))
    print(f"resampled in {seconds:.2f} s (backend {backends})")
    for name in result.names:
        print("  " + _describe(name, scene, result))
    if out is None:
        print(f"nothing written (to write the result: {PROG} --sample OUT.nii.gz ...)")
        return EXIT_OK
    _write(result, outputs, reference=source_in, force=args.force)
    for name, path in outputs.items():
        print(f"wrote {path}  ({name})")
    return EXIT_OK


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
        count = len(np.unique(np.asarray(mask)))
        if count > MASK_VALUES_WARNING:
            instead = "drop --label" if name == main_name else "give it with --volume instead of --mask"
            warnings.warn(f"mask {name!r} has {count} distinct values (more than {MASK_VALUES_WARNING}): "
                          "it is resampled as labels; if it is a probability map or another continuous "
                          f"image, {instead}", UserWarning, stacklevel=2)


def _describe(name: str, before: Scene, after: Scene) -> str:
    array = np.asarray(after[name])
    shape = " x ".join(str(n) for n in array.shape)
    if name in after.masks:
        labels_before = np.unique(np.asarray(before[name]))
        labels_after = np.unique(array)
        new = "" if np.isin(labels_after, labels_before).all() else "; values not in the input appeared"
        return f"{name}: mask {shape} {array.dtype}, labels {_list(labels_after)} (input: {_list(labels_before)}{new})"
    if array.size == 0:
        return f"{name}: volume {shape} {array.dtype}"
    return f"{name}: volume {shape} {array.dtype}, values {array.min():.6g} .. {array.max():.6g}"


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
