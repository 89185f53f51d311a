"""Medical image files with their geometry: NIfTI, NRRD, MetaImage and DICOM series.

``load`` gives a :class:`~gpuresample.Scene` (the image, and masks on the same grid),
``read`` gives one array and its :class:`~gpuresample.Grid`, ``save`` writes either back.

Conventions
-----------
* **Array axes are the file's index axes** ``(i, j, k)``, for every format. nibabel
  already gives ``(i, j, k)``. SimpleITK's ``GetArrayFromImage`` gives ``(k, j, i)``;
  this module returns its transpose (a view, no copy), so ``grid.spacing[0]`` is the
  spacing of index axis ``i`` as the header lists it, and a NIfTI and an NRRD file of
  the same image load to the same array. Saving does the inverse.
* **Physical space is RAS+** (x grows towards the patient's Right, y towards Anterior,
  z towards Superior: nibabel's "world"), in mm. A NIfTI file's ``grid.affine`` is nibabel's
  ``img.affine`` (scaled to mm when the header says metres or microns). SimpleITK
  formats store LPS (ITK's and DICOM's frame): on reading, the first two physical
  coordinates of the origin and of every direction column are negated (LPS -> RAS), and
  on writing negated back. So a grid means the same place whatever format it came from,
  and a file converted from one format to another keeps every voxel where it was.
* ``origin`` is the centre of voxel ``(0, 0, 0)`` in both (NIfTI and ITK agree).
* Directions must be orthonormal (no shear). Directions within
  ``DIRECTION_SNAP_ATOL`` of orthonormal (rounding in float32 headers) are replaced by
  the nearest orthonormal matrix; a larger shear is an error.
* Only 3-D single-component images are read (trailing axes of length 1, as in a
  ``(X, Y, Z, 1)`` NIfTI file, are dropped). Values are those the file stores (NIfTI
  scaling ``scl_slope``/``scl_inter`` and DICOM rescale applied, as nibabel and SimpleITK do).
* Writing: ``bool`` is written as ``uint8`` and ``float16`` as ``float32`` (neither format
  family stores them); every other supported dtype is written as it is. NIfTI files
  get the same affine in the qform and the sform, spatial unit mm.

nibabel (NIfTI) and SimpleITK (the rest) are optional: ``pip install 'gpuresample[io]'``.
Writing DICOM is not supported: a DICOM series needs patient, study and UID metadata
that a resampler does not own; write NIfTI or NRRD instead.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import pytest; _ = pytest.importorskip("nibabel")  # needs the [io] extra
>>> import gpuresample as gr
>>> from gpuresample import io
>>> folder = tempfile.TemporaryDirectory()
>>> grid = gr.Grid((4, 5, 6), (2.0, 1.0, 1.5), origin=(10.0, -5.0, 3.0))
>>> written = io.save(os.path.join(folder.name, "ct.nii.gz"), np.zeros(grid.shape, np.int16), grid)
>>> scene = io.load(os.path.join(folder.name, "ct.nii.gz"))
>>> scene.grid.spacing, scene.grid.origin, list(scene.volumes)
((2.0, 1.0, 1.5), (10.0, -5.0, 3.0), ['ct'])
>>> folder.cleanup()
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .arrays import prepare
from .geometry import Grid
from .geometry import grid_from_affine as _grid_from_affine
from .scene import Scene

#: File name endings and the format each means (DICOM is a folder, not an ending).
NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = {".nrrd": "NRRD", ".nhdr": "NRRD", ".mha": "MetaImage", ".mhd": "MetaImage"}
#: LPS (ITK, DICOM) <-> RAS (nibabel): negate the first two physical coordinates.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: Masks must lie on the image's grid: corner positions within this many voxels.
MASK_GRID_TOL_VOXELS = 1e-3
#: NIfTI spatial units and their size in mm ("unknown" is taken as mm, as most tools do).
NIFTI_UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
#: NIfTI qform/sform code written when no reference header gives one (1 = scanner anatomy).
DEFAULT_NIFTI_XFORM_CODE = 1
#: Name start of the hidden folders files are written into before they are moved into place;
#: the rest of the name is ``<host>-<pid>-<random>`` (see :func:`remove_stale_staging`).
STAGING_PREFIX = ".gpuresample-"
#: Headers whose pixel data is a second file next to them: the data file's ending, as
#: SimpleITK writes it, ``(uncompressed, compressed)``.
DATA_FILE_ENDINGS = {".mhd": (".raw", ".zraw"), ".nhdr": (".raw", ".raw.gz")}
#: Bytes of a header read to find the data files it names (MetaImage, NRRD).
HEADER_BYTES = 1 << 16
#: Most files a numbered data-file pattern is expanded to (a larger one is taken as a single name).
MAX_NUMBERED_FILES = 100_000
#: dtypes the file formats cannot store, and what is written instead.
WRITE_AS = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}

IO_EXTRA = "pip install 'gpuresample[io]'"


# ----------------------------------------------------------------- formats
def split_suffix(path) -> tuple:
    """``(stem, suffix)`` of a file name, knowing double suffixes such as ``.nii.gz``.

    A folder (a DICOM series) has suffix ``""``.

    Examples
    --------
    >>> split_suffix("/data/liver.nii.gz")
    ('liver', '.nii.gz')
    >>> split_suffix("scan.v2.nrrd")
    ('scan.v2', '.nrrd')
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES + tuple(ITK_SUFFIXES):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot and stem else (name, "")


def file_format(path, writing: bool = False) -> str:
    """``"NIfTI"``, ``"NRRD"``, ``"MetaImage"`` or ``"DICOM"`` (a folder, reading only).

    Raises ``ValueError`` naming the supported endings for anything else.

    Examples
    --------
    >>> file_format("ct.nii.gz"), file_format("seg.NRRD"), file_format("a.mhd")
    ('NIfTI', 'NRRD', 'MetaImage')
    """
    path = Path(path)
    suffix = split_suffix(path)[1].lower()
    if suffix in NIFTI_SUFFIXES:
        return "NIfTI"
    if suffix in ITK_SUFFIXES:
        return ITK_SUFFIXES[suffix]
    if path.is_dir():
        if writing:
            raise ValueError(f"{path} is a folder: writing DICOM series is not supported; "
                             "write .nii.gz, .nrrd, .mha or .mhd")
        return "DICOM"
    endings = ", ".join(NIFTI_SUFFIXES + tuple(ITK_SUFFIXES))
    what = "write" if writing else "read"
    folder = "" if writing else " or a DICOM series folder"
    raise ValueError(f"cannot {what} {str(path)!r}: unknown file type {suffix or '(no ending)'!r}; "
                     f"supported: {endings}{folder}")


def files_written(path, compress: bool = False) -> list:
    """The files :func:`save` writes for ``path``: ``path``, and the data file of a
    ``.mhd`` (``<stem>.raw``, ``.zraw`` compressed) or ``.nhdr`` (``.raw``, ``.raw.gz``) header.

    Examples
    --------
    >>> [p.name for p in files_written("scan.mhd")], [p.name for p in files_written("scan.nhdr", compress=True)]
    (['scan.mhd', 'scan.raw'], ['scan.nhdr', 'scan.raw.gz'])
    """
    path = Path(path)
    stem, suffix = split_suffix(path)
    endings = DATA_FILE_ENDINGS.get(suffix.lower())
    if endings is None:
        return [path]
    return [path, path.with_name(stem + endings[bool(compress)])]


def files_read(path) -> list:
    """The files an image is read from: ``path``, and the data files its header names.

    MetaImage (``ElementDataFile``) and NRRD (``data file``) headers may keep the pixel
    data in other files, named relative to the header's folder (a single name, a
    ``LIST`` or a numbered pattern). A missing or unreadable header gives ``[path]``.
    """
    path = Path(path)
    suffix = split_suffix(path)[1].lower()
    if suffix not in (".mhd", ".mha", ".nhdr", ".nrrd") or not path.is_file():
        return [path]
    try:
        with open(path, "rb") as f:
            text = f.read(HEADER_BYTES).decode("latin-1")
    except OSError:
        return [path]
    names = _metaimage_data_files(text) if suffix in (".mhd", ".mha") else _nrrd_data_files(text)
    return [path] + [path.parent / name for name in names]


def _numbered(value: str) -> list | None:
    """The names of a numbered pattern ``"slice%03d.raw 1 10 1"`` (NRRD may add a
    sub-dimension after the step), or None when ``value`` is not one."""
    fields = value.split()
    if len(fields) < 4 or "%" not in fields[0] or not all(re.fullmatch(r"-?\d+", f) for f in fields[1:4]):
        return None
    first, last, step = (int(f) for f in fields[1:4])
    if step == 0 or abs(last - first) // abs(step) > MAX_NUMBERED_FILES:
        return None
    try:
        return [fields[0] % i for i in range(first, last + (1 if step > 0 else -1), step)]
    except (TypeError, ValueError):
        return None


def _metaimage_data_files(text: str) -> list:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, equals, value = line.partition("=")
        if not equals or key.strip().lower() != "elementdatafile":
            continue
        value = value.strip()
        if value.upper() == "LOCAL" or not value:
            return []
        if value.upper().startswith("LIST"):
            return [name.strip() for name in lines[index + 1:] if name.strip()]
        return _numbered(value) or [value]
    return []


def _nrrd_data_files(text: str) -> list:
    lines = text.split("\n")
    for index, line in enumerate(lines):
        line = line.rstrip("\r")
        if not line:  # the blank line ends the header
            return []
        key, colon, value = line.partition(":")
        if not colon or key.strip().lower() not in ("data file", "datafile"):
            continue
        value = value.strip()
        if value.upper().startswith("LIST"):
            return [name.strip() for name in lines[index + 1:] if name.strip()]
        return _numbered(value) or [value]
    return []


def _file_key(path: Path):
    """What identifies a file: device and inode when it exists, else its resolved path."""
    try:
        stat = os.stat(path)
    except OSError:
        return str(Path(path).resolve())
    return (stat.st_dev, stat.st_ino)


def _nibabel():
    try:
        import nibabel
    except ImportError as exc:
        raise ImportError(f"NIfTI files need nibabel: {IO_EXTRA}") from exc
    return nibabel


def _simpleitk(what: str):
    try:
        import SimpleITK
    except ImportError as exc:
        raise ImportError(f"{what} files need SimpleITK: {IO_EXTRA}") from exc
    return SimpleITK


def _reason(exc: BaseException) -> str:
    """A library's error as one line (SimpleITK's messages span several, source paths first)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if not any("ERROR:" in line for line in lines):  # e.g. nibabel's "Expected N bytes, got M ...\n - damaged?"
        return " ".join(lines)
    last = lines[-1]
    return last.split("ERROR:", 1)[-1].strip() if "ERROR:" in last else last


# ----------------------------------------------------------------- geometry
def grid_from_affine(shape, affine, source: str = "affine") -> Grid:
    """:meth:`gpuresample.Grid.from_affine`, with ``source`` (e.g. the file) named in errors.

    Examples
    --------
    >>> import numpy as np
    >>> g = grid_from_affine((10, 20, 30), np.diag([-2.0, 1.0, 3.0, 1.0]))
    >>> g.spacing, g.direction[0]
    ((2.0, 1.0, 3.0), (-1.0, 0.0, 0.0))
    """
    return _grid_from_affine(shape, affine, source=source)


# ----------------------------------------------------------------- reading
def read(path) -> tuple:
    """One image file (or DICOM series folder) as ``(array, grid)``.

    Parameters
    ----------
    path : str or path-like
        ``.nii``/``.nii.gz`` (nibabel), ``.nrrd``/``.nhdr``/``.mha``/``.mhd`` (SimpleITK), or a
        folder holding one DICOM series (SimpleITK's GDCM reader, slices sorted by position).

    Returns
    -------
    array : numpy.ndarray
        Indexed ``(i, j, k)`` as the file's header (see the module notes); for
        uncompressed NIfTI a read-only memory map, else in memory.
    grid : Grid
        Spacing in mm and origin/direction in RAS+ physical space.

    Raises
    ------
    FileNotFoundError, OSError
        Missing or unreadable file (the message names it and says why).
    ValueError
        Unknown file type, not 3-D, several components per voxel, or a sheared affine.
    ImportError
        nibabel or SimpleITK missing for this format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    kind = file_format(path)
    if kind == "NIfTI":
        array, grid = _read_nifti(path)
    else:
        array, grid = _read_itk(path, kind)
    return array, grid


def read_grid(path) -> Grid:
    """The grid of an image file (or DICOM series folder) from its header alone, as :func:`read` gives it.

    Examples
    --------
    >>> import tempfile, numpy as np, gpuresample as gr
    >>> folder = tempfile.mkdtemp()
    >>> _ = save(folder + "/a.nii.gz", np.zeros((4, 5, 6), np.float32), gr.Grid((4, 5, 6), (2.0, 1.0, 1.0)))
    >>> read_grid(folder + "/a.nii.gz")
    Grid(shape=(4, 5, 6), spacing=(2, 1, 1), origin=(0, 0, 0))
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    kind = file_format(path)
    if kind == "NIfTI":
        nib = _nibabel()
        try:
            image = nib.load(str(path))  # the header; the data stays on disk
            unit = image.header.get_xyzt_units()[0] if hasattr(image.header, "get_xyzt_units") else "unknown"
            affine = np.array(image.affine, dtype=np.float64)
        except Exception as exc:
            raise OSError(f"cannot read {path}: {_reason(exc)}") from exc
        affine[:3, :] *= NIFTI_UNIT_MM.get(unit, 1.0)
        return grid_from_affine(_three_d(image.shape, path), affine, source=str(path))
    if kind == "DICOM":
        return read(path)[1]
    sitk = _simpleitk(kind)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except (RuntimeError, OSError) as exc:
        raise OSError(f"cannot read {path}: {_reason(exc)}") from exc
    size = _three_d(reader.GetSize(), path)
    direction_lps = np.array(reader.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction_lps * np.array(reader.GetSpacing())[None, :]
    affine[:3, 3] = LPS_TO_RAS @ np.array(reader.GetOrigin(), dtype=np.float64)
    return grid_from_affine(size, affine, source=str(path))


def _three_d(shape, path) -> tuple:
    shape = tuple(int(n) for n in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ValueError(f"{path}: gpuresample.io reads 3-D images; this one has shape {shape}")
    return shape


def _read_nifti(path: Path):
    nib = _nibabel()
    try:
        image = nib.load(str(path))
        header = image.header
        unit = header.get_xyzt_units()[0] if hasattr(header, "get_xyzt_units") else "unknown"
        affine = np.array(image.affine, dtype=np.float64)
    except Exception as exc:  # nibabel's ImageFileError, truncated gzip, permissions, ...
        raise OSError(f"cannot read {path}: {_reason(exc)}") from exc
    shape = _three_d(image.shape, path)
    try:
        array = np.asanyarray(image.dataobj).reshape(shape, order="A")
    except Exception as exc:  # e.g. data shorter than the header says
        raise OSError(f"cannot read {path}: {_reason(exc)}") from exc
    affine[:3, :] *= NIFTI_UNIT_MM.get(unit, 1.0)
    return array, grid_from_affine(shape, affine, source=str(path))


def _read_itk(path: Path, kind: str):
    sitk = _simpleitk(kind)
    short = _short_pixel_data(sitk, path) if kind != "DICOM" else None
    if short:  # checked first: SimpleITK would print to stderr, then say "No such file or directory"
        raise OSError(f"cannot read {path}: {short}")
    try:
        if kind == "DICOM":
            image = _read_dicom_series(sitk, path)
        else:
            image = sitk.ReadImage(str(path))
    except (RuntimeError, OSError) as exc:
        raise OSError(f"cannot read {path}: {_reason(exc)}") from exc
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel "
                         f"({image.GetPixelIDTypeAsString()}); gpuresample.io reads single-component images")
    size = image.GetSize()  # (i, j, k, ...)
    if image.GetDimension() != 3:
        raise ValueError(f"{path}: gpuresample.io reads 3-D images; this one has size {size} (i, j, k, ...)")
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (k, j, i) -> (i, j, k), a view
    direction_lps = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction_lps * np.array(image.GetSpacing())[None, :]
    affine[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin(), dtype=np.float64)
    return array, grid_from_affine(tuple(size), affine, source=str(path))


def _short_pixel_data(sitk, path: Path) -> str | None:
    """Why SimpleITK could not read ``path`` when its pixel data is missing or shorter than the
    header says (SimpleITK then reports "No such file or directory"); None when it is not that.

    Only uncompressed data is measured: the bytes after an attached header, or the one
    data file a detached header names.
    """
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        pixel = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID(), reader.GetNumberOfComponents())
        itemsize = sitk.GetArrayViewFromImage(pixel).itemsize
        expected = int(np.prod(reader.GetSize(), dtype=np.int64)) * reader.GetNumberOfComponents() * itemsize
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except (RuntimeError, OSError, ValueError):
        return None
    text = head.decode("latin-1").lower()
    encoding = re.search(r"^\s*encoding\s*:\s*(\S+)", text, re.MULTILINE)
    if re.search(r"^\s*compresseddata\s*=\s*true", text, re.MULTILINE) or (encoding and encoding.group(1) != "raw"):
        return None
    files = files_read(path)
    if len(files) > 2:
        return None
    if len(files) == 2:
        data = files[1]
        if not data.is_file():
            return f"its data file {data} does not exist"
        available, where = data.stat().st_size, f"its data file {data} holds"
    else:
        if split_suffix(path)[1].lower() in (".mha", ".mhd"):  # the header ends with its ElementDataFile line
            start = head.find(b"ElementDataFile")
            end = head.find(b"\n", start) + 1 if start >= 0 else 0
        else:  # NRRD: a blank line ends the header
            start = head.find(b"\n\n")
            end = start + 2 if start >= 0 else 0
        if end <= 0:
            return None
        available, where = path.stat().st_size - end, "the file holds"
    if available >= expected:
        return None
    return f"expected {expected} bytes of pixel data, {where} {max(available, 0)}: it is truncated or damaged"


def _read_dicom_series(sitk, folder: Path):
    reader = sitk.ImageSeriesReader()
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK prints "No Series were found" over 3 lines
    try:
        series = reader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    if not series:  # _read_itk puts "cannot read <folder>: " in front
        raise OSError("no DICOM series in this folder")
    if len(series) > 1:
        raise OSError(f"it holds {len(series)} DICOM series ({', '.join(series)}); put each series in its own folder")
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), series[0]))
    return reader.Execute()


def load(path, masks: Mapping | Sequence | None = None, *, name: str | None = None,
         role: str = "volume", volumes: Mapping | Sequence | None = None) -> Scene:
    """An image file, and optional mask files on the same grid, as a :class:`~gpuresample.Scene`.

    Parameters
    ----------
    path : str or path-like
        The image: NIfTI, NRRD, MetaImage, or a DICOM series folder (see :func:`read`).
    masks : mapping of str to path, or sequence of paths, optional
        Label masks. A mapping gives their names; a sequence names each by its file stem
        (``liver.nii.gz`` -> ``"liver"``). Each must have the image's shape and lie on its
        grid (voxel corners within ``MASK_GRID_TOL_VOXELS`` voxels), in any supported format.
    name : str, optional
        Name of the image in the scene (default: its file stem, e.g. ``"ct"`` for ``ct.nii.gz``).
    role : {'volume', 'mask'}
        Load the image itself as a mask (a label map resampled with the mask interpolation).
    volumes : mapping of str to path, or sequence of paths, optional
        Further continuous images on the same grid (e.g. a probability map, a second
        sequence), named like the masks and resampled with the volume interpolation.

    Returns
    -------
    Scene
        With the image under ``name`` and the masks; ``scene.grid`` is the image's grid.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import pytest; _ = pytest.importorskip("nibabel")  # needs the [io] extra
    >>> import gpuresample as gr
    >>> folder = tempfile.TemporaryDirectory()
    >>> ct, liver = (os.path.join(folder.name, f) for f in ("ct.nii.gz", "liver.nii.gz"))
    >>> grid = gr.Grid((8, 8, 4), (1.0, 1.0, 2.5))
    >>> _ = save(ct, np.zeros(grid.shape, np.float32), grid)
    >>> _ = save(liver, np.ones(grid.shape, np.uint8), grid)
    >>> scene = load(ct, masks=[liver])
    >>> list(scene.volumes), list(scene.masks)
    (['ct'], ['liver'])
    >>> new = scene.resample(target_spacing=(1.0, 1.0, 1.0), mask_interpolation="label")
    >>> new.grid.shape
    (8, 8, 10)
    >>> folder.cleanup()
    """
    if role not in ("volume", "mask"):
        raise ValueError(f"role={role!r} is not a role; allowed: 'volume', 'mask'")
    name = split_suffix(path)[0] if name is None else str(name)
    array, grid = read(path)
    named = _named_masks(masks)
    extra = _named_masks(volumes)
    if name in named:
        raise ValueError(f"mask name {name!r} is also the image's name; pass name= or name the masks")
    for clash in [n for n in extra if n in named or n == name]:
        raise ValueError(f"volume name {clash!r} is already taken by the image or a mask; name the volumes")
    loaded = {n: _read_on_grid(p, grid, path, "mask") for n, p in named.items()}
    more = {n: _read_on_grid(p, grid, path, "volume") for n, p in extra.items()}
    if role == "mask":
        return Scene(grid, volumes=more, masks={name: array, **loaded})
    return Scene(grid, volumes={name: array, **more}, masks=loaded)


def _read_on_grid(path, grid: Grid, image_path, what: str) -> np.ndarray:
    """The array of ``path``, which must lie on ``grid`` (the grid of ``image_path``)."""
    array, own_grid = read(path)
    if own_grid.shape != grid.shape:
        raise ValueError(f"{what} {str(path)!r} has shape {own_grid.shape}, "
                         f"the image {str(image_path)!r} has shape {grid.shape}")
    misfit = grid.misfit_voxels(own_grid)
    if misfit > MASK_GRID_TOL_VOXELS:
        raise ValueError(f"{what} {str(path)!r} does not lie on the grid of {str(image_path)!r}: its voxels are "
                         f"up to {misfit:.3g} voxels away (allowed {MASK_GRID_TOL_VOXELS:g}); "
                         "resample it onto the image first")
    return array


def _named_masks(masks) -> dict:
    if masks is None:
        return {}
    if isinstance(masks, Mapping):
        return {str(k): v for k, v in masks.items()}
    if isinstance(masks, (str, os.PathLike)):
        masks = [masks]
    named = {}
    for mask_path in masks:
        stem = split_suffix(mask_path)[0]
        if stem in named:
            raise ValueError(f"two masks are named {stem!r} ({named[stem]}, {mask_path}); "
                             "pass a mapping {name: path} to name them")
        named[stem] = mask_path
    return named


# ----------------------------------------------------------------- writing
def save(path, data, grid: Grid | None = None, *, name: str | None = None, masks: Mapping | None = None,
         reference=None, compress: bool = False, force: bool = False) -> list:
    """Write an array with its grid, or objects of a :class:`~gpuresample.Scene`, to image files.

    Parameters
    ----------
    path : str or path-like
        ``.nii``/``.nii.gz`` (nibabel) or ``.nrrd``/``.nhdr``/``.mha``/``.mhd`` (SimpleITK).
        An existing file is replaced, but only once every file of the call has been
        written (into a hidden folder next to it, then moved in with ``os.replace``): a
        save that fails leaves existing files as they were and writes none of the others.
        A ``.mhd``/``.nhdr`` header also writes its data file (see :func:`files_written`).
    data : array or Scene
        An array (NumPy, CuPy, a torch tensor, ...) indexed ``(i, j, k)``, with ``grid``;
        or a scene, from which ``name`` (default: its only volume, or its only object) goes
        to ``path``.
    grid : Grid, optional
        The array's grid (required for an array; a scene has its own).
    name : str, optional
        Which object of a scene goes to ``path``.
    masks : mapping of str to path, optional
        Further objects of a scene to write, ``{name: path}`` (e.g. the masks).
    reference : path, optional
        A NIfTI file whose qform/sform codes the NIfTI output takes (e.g. the file the
        data was loaded from); otherwise both codes are ``DEFAULT_NIFTI_XFORM_CODE``.
    compress : bool
        Compress NRRD/MetaImage pixel data (NIfTI compresses when the name ends in ``.gz``).
    force : bool
        Replace an existing data file (``<stem>.raw``, ...) of a ``.mhd``/``.nhdr``
        destination even when it is not the data file of the header being replaced
        (without it, such a file is refused: it may hold another image's data).

    Returns
    -------
    list of pathlib.Path
        The files written, ``path`` first (the image files named, not their data files).

    Raises
    ------
    ValueError
        Two destinations would write one file, or a data file would replace one that is
        not the destination header's own (without ``force``).
    OSError
        A destination is a folder, or a file cannot be written; nothing was changed.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import pytest; _ = pytest.importorskip("SimpleITK")  # needs the [io] extra
    >>> import gpuresample as gr
    >>> folder = tempfile.TemporaryDirectory()
    >>> grid = gr.Grid((3, 4, 5), (1.0, 2.0, 3.0), origin=(5.0, 6.0, 7.0))
    >>> [p.name for p in save(os.path.join(folder.name, "a.nrrd"), np.ones(grid.shape, np.uint8), grid)]
    ['a.nrrd']
    >>> array, read_grid = read(os.path.join(folder.name, "a.nrrd"))
    >>> array.shape, read_grid.spacing, read_grid.origin
    ((3, 4, 5), (1.0, 2.0, 3.0), (5.0, 6.0, 7.0))
    >>> folder.cleanup()
    """
    if isinstance(data, Scene):
        if grid is not None:
            raise ValueError("grid= is for arrays; a Scene carries its own grid")
        todo = [(path, data[_scene_object(data, name)])] + [
            (mask_path, data[mask_name]) for mask_name, mask_path in (masks or {}).items()]
        grid = data.grid
    else:
        if masks is not None or name is not None:
            raise ValueError("name= and masks= pick objects of a Scene; data is an array")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a gpuresample.Grid for an array, got {type(grid).__name__}")
        todo = [(path, data)]
    for out_path, _ in todo:  # check every name before writing anything
        file_format(out_path, writing=True)
    check_destinations([Path(out_path) for out_path, _ in todo], compress, force)
    written = [Path(out_path) for out_path, _ in todo]
    with _StagedFiles() as staged:
        for out_path, array in todo:
            _write(staged.path_for(Path(out_path)), _host(array), grid, reference, compress, shown=Path(out_path))
        staged.publish()
    return written


def check_destinations(paths, compress: bool = False, force: bool = False) -> None:
    """Refuse destinations :func:`save` must not write, before anything is written.

    Every file of every destination (see :func:`files_written`) is checked: none may be
    written twice, none may be a folder, and an existing data file is replaced only
    when it is the data file the existing destination header names (or ``force``).
    """
    seen = {}
    for path in paths:
        files = files_written(path, compress)
        for file in files:
            key = _file_key(file)
            if key in seen:
                raise ValueError(f"{seen[key]} and {path} would both write {file}; give them different names")
            seen[key] = path
            if file.is_dir():
                raise OSError(f"cannot write {file}: it is a folder")
        if len(files) == 2 and not force and os.path.lexists(files[1]):
            own = {_file_key(f) for f in files_read(path)[1:]} if path.is_file() else set()
            if _file_key(files[1]) not in own:
                raise ValueError(f"cannot write {path}: its data file {files[1]} exists and is not the data file "
                                 f"of an existing {path.name} (it may hold another image's data); pass force=True "
                                 "to replace it, or choose another name")


def _staging_tag() -> str:
    """``<host>-<pid>-``: who made a staging folder (see :func:`remove_stale_staging`)."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process, alive
        return True
    return True


def remove_stale_staging(folder) -> list:
    """Remove the staging folders in ``folder`` left by processes of this host that no longer exist.

    A save killed before it finished (``kill -9``, a power cut) leaves its hidden
    ``STAGING_PREFIX`` folder behind; :func:`save` calls this for every folder it writes
    into. Folders of live processes, of other hosts (a shared file system) and with
    names not made by this version are kept. Returns the folders removed.
    """
    if os.name != "posix":  # os.kill(pid, 0) is a check only on POSIX
        return []
    host = _staging_tag().rsplit("-", 2)[0]
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        parts = entry.name[len(STAGING_PREFIX):].rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not _process_exists(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


class _StagedFiles:
    """Write files into hidden folders next to their destinations, then move them all in.

    Every file a writer makes (a ``.nhdr``/``.mhd`` header and its ``.raw``/``.zraw``
    data file too) is moved into place with :func:`os.replace`, which is atomic within a
    file system: data files first, headers last. Until :meth:`publish`, nothing at the
    destinations changes, so a failing write leaves existing files as they were; the
    staging folders are removed on exit either way. Should a move fail (a destination
    that cannot be replaced), the files already moved are put back: every replaced file
    was first hard-linked (or copied) into the staging folder.

    A file that replaces another keeps the old one's permission bits (not the umask's). A
    destination that is a symbolic link is written through: the file it points to is
    replaced (staged in that file's folder) and the link stays. Formats with a separate data
    file are refused behind a link (a reader would look for the data next to the link).
    """

    def __init__(self):
        self._folders: dict = {}  # destination folder -> staging folder
        self._targets: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for staging in self._folders.values():
            shutil.rmtree(staging, ignore_errors=True)
        return False

    def path_for(self, path: Path) -> Path:
        """Where to write the file that will end up at ``path`` (or where its link points)."""
        if path.is_symlink():
            if str(path).lower().endswith((".nhdr", ".mhd")):
                raise ValueError(f"cannot write {path} through a symbolic link: it has a separate data file; "
                                 "write to the real path, or use .nrrd/.mha/.nii.gz")
            path = Path(os.path.realpath(path))
        folder = path.parent
        if folder not in self._folders:
            remove_stale_staging(folder)
            try:
                self._folders[folder] = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX + _staging_tag(), dir=folder))
            except OSError as exc:
                raise OSError(f"cannot write {path}: {_reason(exc)}") from exc
        self._targets.append(path)
        return self._folders[folder] / path.name

    def publish(self) -> None:
        """Move every staged file to its destination folder (data files first, then headers).

        All or nothing: on a failing move, the destinations already changed are restored.
        """
        targets = {(path.parent, path.name) for path in self._targets}
        moves = []
        for folder, staging in self._folders.items():
            names = sorted(os.listdir(staging), key=lambda name: ((folder, name) in targets, name))
            moves += [(staging, folder, name) for name in names]
        done = []  # (destination, kept copy of the old file or None)
        try:
            for staging, folder, name in moves:
                destination = folder / name
                kept = None
                if os.path.lexists(destination):
                    kept = staging / REPLACED_FOLDER / name
                    kept.parent.mkdir(exist_ok=True)
                    _keep(destination, kept)
                    shutil.copymode(destination, staging / name)  # a replaced file keeps its permission bits
                try:
                    os.replace(staging / name, destination)
                except OSError as exc:
                    raise OSError(f"cannot write {destination}: {exc.strerror or _reason(exc)}") from exc
                done.append((destination, kept))
        except BaseException:
            for destination, kept in reversed(done):
                try:
                    if kept is None:
                        os.unlink(destination)
                    else:
                        os.replace(kept, destination)
                except OSError:
                    pass
            raise


#: Sub-folder of a staging folder holding the files a save replaces, until it has succeeded.
REPLACED_FOLDER = ".replaced"


def _keep(path: Path, kept: Path) -> None:
    """``kept`` becomes the file at ``path`` (a hard link: no copy; a copy where links fail)."""
    try:
        os.link(path, kept, follow_symlinks=False)
    except (OSError, NotImplementedError):  # no hard links on this file system (or no linkat)
        shutil.copy2(path, kept, follow_symlinks=False)


def _scene_object(scene: Scene, name):
    if name is not None:
        if name not in scene.names:
            raise ValueError(f"name={name!r} is not in the scene; have {scene.names}")
        return name
    if len(scene.volumes) == 1:
        return next(iter(scene.volumes))
    if len(scene.names) == 1:
        return scene.names[0]
    raise ValueError(f"the scene holds {scene.names}; pass name= to choose what goes to the file "
                     "(and masks={name: path} for the rest)")


def _host(array) -> np.ndarray:
    host = prepare(array, "cpu").array
    return host if isinstance(host, np.ndarray) else np.asarray(host)


def _write(path: Path, array: np.ndarray, grid: Grid, reference, compress: bool, shown: Path | None = None) -> None:
    """Write ``array`` to ``path``; errors name ``shown`` (the destination of a staged file)."""
    if tuple(array.shape) != grid.shape:
        raise ValueError(f"array has shape {tuple(array.shape)}, the grid has shape {grid.shape}")
    if grid.ndim != 3:
        raise ValueError(f"gpuresample.io writes 3-D images; the grid has {grid.ndim} axes")
    dtype = WRITE_AS.get(array.dtype, array.dtype)
    array = array.astype(dtype, copy=False)
    kind = file_format(path, writing=True)
    if kind == "NIfTI":
        _write_nifti(path, array, grid, reference, shown or path)
    else:
        _write_itk(path, array, grid, kind, compress, shown or path)


def _write_nifti(path: Path, array, grid: Grid, reference, shown: Path) -> None:
    nib = _nibabel()
    codes = (DEFAULT_NIFTI_XFORM_CODE, DEFAULT_NIFTI_XFORM_CODE)
    if reference is not None and file_format(reference) == "NIfTI":
        header = nib.load(str(reference)).header
        codes = (int(header["qform_code"]) or DEFAULT_NIFTI_XFORM_CODE,
                 int(header["sform_code"]) or DEFAULT_NIFTI_XFORM_CODE)
    image = nib.Nifti1Image(array, grid.affine, dtype=array.dtype)  # explicit: int64 too, as given
    image.set_qform(grid.affine, code=codes[0])
    image.set_sform(grid.affine, code=codes[1])
    image.header.set_xyzt_units(xyz="mm")
    try:
        nib.save(image, str(path))
    except Exception as exc:
        raise OSError(f"cannot write {shown}: {_reason(exc)}") from exc


def _write_itk(path: Path, array, grid: Grid, kind: str, compress: bool, shown: Path) -> None:
    sitk = _simpleitk(kind)
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0))  # (i, j, k) -> SimpleITK's (k, j, i)
    image.SetSpacing(grid.spacing)
    image.SetOrigin(tuple(float(v) for v in LPS_TO_RAS @ np.array(grid.origin)))
    image.SetDirection(tuple(float(v) for v in (LPS_TO_RAS @ grid.direction_matrix).ravel()))
    try:
        sitk.WriteImage(image, str(path), bool(compress))
    except (RuntimeError, OSError) as exc:
        raise OSError(f"cannot write {shown}: {_reason(exc)}") from exc


__all__ = ["check_destinations", "file_format", "files_read", "files_written", "grid_from_affine", "load", "read",
           "read_grid", "remove_stale_staging", "save", "split_suffix"]
