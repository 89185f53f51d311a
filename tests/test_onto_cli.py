"""``gpuresample IN OUT --like REF``: a scan and its masks onto another file's grid (docs/design.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import io
from test_cli import run

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

GRID = gr.Grid((14, 16, 10), (1.2, 1.0, 2.0), origin=(-8.0, -7.0, -9.0))


def rotation_x(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])


@pytest.fixture
def files(tmp_path):
    """A CT-like NIfTI file, a mask (NRRD) on its grid, a rotated reference and a far one."""
    rng = np.random.default_rng(0)
    io.save(tmp_path / "ct.nii.gz", rng.normal(0, 100, GRID.shape).astype(np.float32), GRID)
    labels = np.zeros(GRID.shape, np.uint8)
    labels[3:11, 4:12, 2:8] = 1
    labels[6:9, 7:10, 3:6] = 2
    io.save(tmp_path / "liver.nrrd", labels, GRID)
    reference = gr.Grid((12, 18, 11), (1.3, 0.9, 1.6), origin=(-6.0, -9.0, -4.0), direction=rotation_x(20.0))
    io.save(tmp_path / "ref.nii.gz", np.zeros(reference.shape, np.int16), reference)
    far = gr.Grid((4, 4, 4), (1.0, 1.0, 1.0), origin=(300.0, 0.0, 0.0))
    io.save(tmp_path / "far.nii.gz", np.zeros(far.shape, np.int16), far)
    return tmp_path


def test_like_puts_image_and_masks_on_the_reference_grid(capsys, files):
    code, out, err = run(capsys, files / "ct.nii.gz", files / "onto.nii.gz", "--like", files / "ref.nii.gz",
                         "--mask", files / "liver.nrrd", "--fill", "-1000")
    assert code == 0, err
    assert "origin (mm)" in out and "direction (columns)" in out  # the plan shows where the target is
    image, grid = io.read(files / "onto.nii.gz")
    mask, mask_grid = io.read(files / "onto_liver.nii.gz")
    _, reference = io.read(files / "ref.nii.gz")
    assert grid.shape == mask_grid.shape == reference.shape
    np.testing.assert_allclose(grid.affine, reference.affine, atol=1e-5)
    ct, ct_grid = io.read(files / "ct.nii.gz")
    np.testing.assert_array_equal(image, gr.resample(ct, ct_grid, target=reference, fill=-1000))
    assert (image == -1000).any() and (image != -1000).any()
    theirs = sitk.Resample(sitk.ReadImage(str(files / "liver.nrrd")), sitk.ReadImage(str(files / "ref.nii.gz")),
                           sitk.Transform(), sitk.sitkNearestNeighbor, 0.0)
    np.testing.assert_array_equal(mask, sitk.GetArrayFromImage(theirs).transpose(2, 1, 0))
    assert set(np.unique(mask)) == {0, 1, 2}


def test_like_a_reference_that_does_not_overlap_warns_on_one_line(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "far_out.nii.gz", "--like", files / "far.nii.gz")
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuresample: warning: the target grid does not overlap")
    assert (io.read(files / "far_out.nii.gz")[0] == 0).all()


@pytest.mark.parametrize("argv,fragment", [
    (["--like", "REF", "--spacing", "1", "1", "1"], "not allowed with argument"),
    (["--spacing", "1", "1", "1", "--fill", "5"], "--fill applies to --like"),
    (["--like", "missing.nii.gz"], "missing.nii.gz"),
])
def test_like_argument_errors(capsys, files, argv, fragment):
    argv = [a.replace("REF", str(files / "ref.nii.gz")) if a == "REF" else a for a in argv]
    if argv[:2] == ["--like", "missing.nii.gz"]:
        argv[1] = str(files / "missing.nii.gz")
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "x.nii.gz", *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuresample: error: ") and fragment in lines[0], err
