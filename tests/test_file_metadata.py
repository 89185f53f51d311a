"""NIfTI qform/sform codes survive io.load -> resample -> io.save, and the command."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import cli, io

nib = pytest.importorskip("nibabel")

AFFINE = np.array([[-1.0, 0, 0, 90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]])


def nifti(path, codes=(4, 4), array=None):
    """A NIfTI file with qform/sform codes ``codes`` (4: MNI152, as the MNI templates carry)."""
    array = np.arange(6 * 7 * 5, dtype=np.float32).reshape(6, 7, 5) if array is None else array
    image = nib.Nifti1Image(array, AFFINE)
    image.set_qform(AFFINE, code=codes[0])
    image.set_sform(AFFINE, code=codes[1])
    nib.save(image, str(path))
    return path


def codes_of(path):
    header = nib.load(str(path)).header
    return int(header["qform_code"]), int(header["sform_code"])


@pytest.mark.parametrize("codes", [(4, 4), (2, 4), (1, 2)])
def test_load_then_save_keeps_the_codes(tmp_path, codes):
    scene = io.load(nifti(tmp_path / "mni.nii.gz", codes))
    assert scene.metadata["mni"] == {"qform_code": codes[0], "sform_code": codes[1]}
    io.save(tmp_path / "copy.nii.gz", scene)
    assert codes_of(tmp_path / "copy.nii.gz") == codes


def test_codes_survive_a_resample_and_each_object_keeps_its_own(tmp_path):
    nifti(tmp_path / "t1.nii.gz", (2, 4))
    nifti(tmp_path / "seg.nii.gz", (1, 2), np.ones((6, 7, 5), np.uint8))
    scene = io.load(tmp_path / "t1.nii.gz", masks=[tmp_path / "seg.nii.gz"])
    new = scene.resample(target_spacing=(0.5, 0.5, 0.5))
    assert new.metadata == scene.metadata
    io.save(tmp_path / "t1_half.nii.gz", new, name="t1", masks={"seg": tmp_path / "seg_half.nii.gz"})
    assert codes_of(tmp_path / "t1_half.nii.gz") == (2, 4)
    assert codes_of(tmp_path / "seg_half.nii.gz") == (1, 2)


def test_a_reference_still_wins_and_plain_arrays_get_the_default(tmp_path):
    scene = io.load(nifti(tmp_path / "mni.nii.gz", (4, 4)))
    nifti(tmp_path / "ref.nii.gz", (1, 2))
    io.save(tmp_path / "a.nii.gz", scene, reference=tmp_path / "ref.nii.gz")
    assert codes_of(tmp_path / "a.nii.gz") == (1, 2)
    array, grid = io.read(tmp_path / "mni.nii.gz")
    io.save(tmp_path / "b.nii.gz", array, grid)
    assert codes_of(tmp_path / "b.nii.gz") == (io.DEFAULT_NIFTI_XFORM_CODE,) * 2
    io.save(tmp_path / "c.nii.gz", gr.Scene(grid, volumes={"x": np.asarray(array)}))
    assert codes_of(tmp_path / "c.nii.gz") == (io.DEFAULT_NIFTI_XFORM_CODE,) * 2


def test_unset_codes_are_written_as_the_default(tmp_path):
    scene = io.load(nifti(tmp_path / "odd.nii.gz", (0, 2)))
    io.save(tmp_path / "out.nii.gz", scene)
    assert codes_of(tmp_path / "out.nii.gz") == (io.DEFAULT_NIFTI_XFORM_CODE, 2)


def test_the_command_writes_the_codes_the_input_had(tmp_path, capsys):
    pytest.importorskip("SimpleITK")
    nifti(tmp_path / "mni.nii.gz", (2, 4))
    nifti(tmp_path / "seg.nii.gz", (2, 4), np.ones((6, 7, 5), np.uint8))
    code = cli.main([str(tmp_path / "mni.nii.gz"), str(tmp_path / "out.nii"), "--spacing", "2", "2", "2",
                     "--mask", str(tmp_path / "seg.nii.gz")])
    assert code == 0, capsys.readouterr().err
    assert codes_of(tmp_path / "out.nii") == (2, 4)
    assert codes_of(tmp_path / "out_seg.nii") == (2, 4)
