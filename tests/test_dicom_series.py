"""DICOM series folders: slices checked before reading (one orientation, distinct and evenly
spaced positions, every DICOM file readable), with one-line errors and nothing from ITK on stderr."""

from __future__ import annotations

import locale
import os

import numpy as np
import pytest

from gpuresample import cli, io

sitk = pytest.importorskip("SimpleITK")

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_series(folder, positions, orientations=None, shape=(6, 5), spacing=(0.7, 0.8)):
    """A DICOM series of 2-D slices at ``positions`` (z, mm) written by SimpleITK with its tags set.

    SimpleITK's DICOM writer sets the process locale to "C"; it is put back afterwards.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        return _write_slices(folder, positions, orientations, shape, spacing)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_slices(folder, positions, orientations, shape, spacing):
    folder.mkdir(parents=True, exist_ok=True)
    for n, z in enumerate(positions):
        orientation = AXIAL if orientations is None else orientations[n]
        image = sitk.GetImageFromArray((np.arange(np.prod(shape)).reshape(shape) + 100 * n).astype(np.int16))
        image.SetSpacing(spacing)
        tags = {
            "0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1.1", "0020|0013": str(n + 1),
            "0020|0032": "\\".join(f"{v:g}" for v in (-10.0, -20.0, z)),
            "0020|0037": "\\".join(f"{v:g}" for v in orientation),
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
        }
        for key, value in tags.items():
            image.SetMetaData(key, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"slice{n:03d}.dcm"))
        writer.Execute(image)
    return folder


def test_an_even_series_reads_with_its_step(tmp_path):
    array, grid = io.read(write_series(tmp_path / "ok", [0.0, 2.5, 5.0, 7.5, 10.0]))
    assert array.shape == (5, 6, 5)
    assert grid.spacing == pytest.approx((0.7, 0.8, 2.5))
    np.testing.assert_array_equal(array[:, :, 3], (np.arange(30).reshape(6, 5) + 300).T)


def test_slices_written_out_of_order_are_sorted_by_position(tmp_path):
    array, grid = io.read(write_series(tmp_path / "shuffled", [5.0, 0.0, 7.5, 2.5]))
    assert grid.spacing[2] == pytest.approx(2.5) and grid.origin[2] == pytest.approx(0.0)
    assert [int(array[0, 0, k]) for k in range(4)] == [100, 300, 0, 200]


def test_a_missing_slice_is_refused_not_averaged(tmp_path):
    folder = write_series(tmp_path / "gap", [0.0, 2.5, 5.0, 15.0, 17.5])    # ITK: 4.375 mm for every slice
    with pytest.raises(OSError, match=r"not evenly spaced: the step is 2\.5 mm but 10 mm between "
                                      r"slice002\.dcm and slice003\.dcm \(missing slices\?\)"):
        io.read(folder)


def test_positions_rounded_to_a_tenth_of_a_mm_are_even(tmp_path):
    _, grid = io.read(write_series(tmp_path / "rounded", [0.0, 0.6, 1.3, 1.9, 2.5]))   # 0.625 mm, rounded
    assert grid.shape[2] == 5


def test_a_missing_thin_slice_is_refused(tmp_path):
    with pytest.raises(OSError, match="not evenly spaced"):
        io.read(write_series(tmp_path / "thin", [0.0, 0.05, 0.1, 0.2, 0.25]))


def test_repeated_positions_are_refused(tmp_path):
    folder = write_series(tmp_path / "twice", [0.0, 2.5, 2.5, 5.0])
    with pytest.raises(OSError, match=r"repeated slice position: slice001\.dcm and slice002\.dcm are both at 2\.5 mm"):
        io.read(folder)


def test_mixed_orientations_are_refused(tmp_path):
    tilted = (1.0, 0.0, 0.0, 0.0, 0.8, 0.6)
    folder = write_series(tmp_path / "mixed", [0.0, 2.5, 5.0, 7.5], [AXIAL] * 3 + [tilted])
    with pytest.raises(OSError, match=r"mixed slice orientations: slice000\.dcm has ImageOrientationPatient "
                                      r"\(1 0 0 0 1 0\), slice003\.dcm has \(1 0 0 0 0\.8 0\.6\)"):
        io.read(folder)


@pytest.mark.parametrize("cut", [10, 3000])
def test_a_truncated_file_is_named(tmp_path, cut):
    folder = write_series(tmp_path / "cut", [0.0, 2.5, 5.0, 7.5], shape=(64, 64))
    damaged = folder / "slice002.dcm"
    os.truncate(damaged, damaged.stat().st_size - cut)
    with pytest.raises(OSError, match=r"slice002\.dcm is a DICOM file that cannot be read \(truncated or damaged\)"):
        io.read(folder)


def test_files_that_are_not_dicom_are_left_alone(tmp_path):
    folder = write_series(tmp_path / "notes", [0.0, 2.5, 5.0])
    (folder / "README.txt").write_text("scan notes")
    assert io.read(folder)[0].shape == (5, 6, 3)


@pytest.mark.parametrize("case", ["gap", "twice", "mixed", "cut"])
def test_the_command_prints_one_line_and_nothing_from_itk(tmp_path, capfd, case):
    pytest.importorskip("nibabel")
    tilted = (1.0, 0.0, 0.0, 0.0, 0.8, 0.6)
    positions = {"gap": [0.0, 2.5, 5.0, 15.0], "twice": [0.0, 2.5, 2.5, 5.0]}.get(case, [0.0, 2.5, 5.0, 7.5])
    folder = write_series(tmp_path / case, positions, [AXIAL] * 3 + [tilted] if case == "mixed" else None)
    if case == "cut":
        os.truncate(folder / "slice001.dcm", 200)
    code = cli.main([str(folder), str(tmp_path / "out.nii.gz"), "--spacing", "1", "1", "1"])
    _out, err = capfd.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gpuresample: error: cannot read {folder}: "), err
    assert "WARNING" not in err and not (tmp_path / "out.nii.gz").exists()
