"""Writes are all or nothing: a failing save (disk full, a writer error) never leaves a
truncated file, never removes the old one, and never leaves some outputs of a call behind.

A failure is simulated where it really happens: inside the writing library, after it has
written part of the file it was given (as a full disk does).
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import cli, io

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

GRID = gr.Grid((6, 7, 5), (1.0, 1.2, 2.0), origin=(3.0, -4.0, 5.0))
OLD = b"old contents, intact"


def fail_when_writing(monkeypatch, module, attribute, name_part=""):
    """Make ``module.attribute`` write a truncated file at its path, then fail with ENOSPC."""
    real = getattr(module, attribute)

    def writer(image, path, *args, **kwargs):
        if name_part not in str(path):
            return real(image, path, *args, **kwargs)
        with open(path, "wb") as f:
            f.write(b"\x00" * 7)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, attribute, writer)


def listing(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("suffix, module, attribute", [
    (".nii.gz", nib, "save"), (".nrrd", sitk, "WriteImage"), (".mhd", sitk, "WriteImage"),
    (".nhdr", sitk, "WriteImage")])
def test_failing_save_over_an_existing_file_keeps_it(tmp_path, monkeypatch, suffix, module, attribute):
    target = tmp_path / f"ct{suffix}"
    target.write_bytes(OLD)
    before = listing(tmp_path)
    fail_when_writing(monkeypatch, module, attribute)
    with pytest.raises(OSError, match="No space left") as failed:
        io.save(target, np.ones(GRID.shape, np.float32), GRID)
    assert str(target) in str(failed.value) and io.STAGING_PREFIX not in str(failed.value)
    assert listing(tmp_path) == before          # old file intact, no temporary left over


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha", ".mhd", ".nhdr"])
def test_save_replaces_and_leaves_no_temporaries(tmp_path, suffix):
    target = tmp_path / f"ct{suffix}"
    target.write_bytes(OLD)
    data = np.arange(np.prod(GRID.shape), dtype=np.int16).reshape(GRID.shape)
    assert io.save(target, data, GRID) == [target]
    array, grid = io.read(target)
    np.testing.assert_array_equal(array, data)
    assert grid.shape == GRID.shape
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(io.STAGING_PREFIX)]
    if suffix in (".mhd", ".nhdr"):             # the detached data file sits next to its header
        assert (tmp_path / "ct.raw").exists()


def test_scene_with_masks_is_written_all_or_nothing(tmp_path, monkeypatch):
    scene = gr.Scene(GRID, volumes={"CT": np.ones(GRID.shape, np.float32)},
                     masks={"liver": np.ones(GRID.shape, np.uint8), "spleen": np.zeros(GRID.shape, np.uint8)})
    paths = {"CT": tmp_path / "ct.nii.gz", "liver": tmp_path / "liver.nrrd", "spleen": tmp_path / "spleen.nii.gz"}
    fail_when_writing(monkeypatch, nib, "save", name_part="spleen")
    with pytest.raises(OSError, match="No space left"):
        io.save(paths["CT"], scene, masks={"liver": paths["liver"], "spleen": paths["spleen"]})
    assert listing(tmp_path) == {}               # neither the image nor the first mask

    for path in paths.values():
        path.write_bytes(OLD)
    with pytest.raises(OSError, match="No space left"):
        io.save(paths["CT"], scene, masks={"liver": paths["liver"], "spleen": paths["spleen"]})
    assert listing(tmp_path) == {p.name: OLD for p in paths.values()}


def test_masks_into_another_folder_are_staged_there(tmp_path):
    (tmp_path / "masks").mkdir()
    scene = gr.Scene(GRID, volumes={"CT": np.ones(GRID.shape, np.float32)}, masks={"liver": np.ones(GRID.shape, np.uint8)})
    written = io.save(tmp_path / "ct.nii.gz", scene, masks={"liver": tmp_path / "masks" / "liver.nrrd"})
    assert written == [tmp_path / "ct.nii.gz", tmp_path / "masks" / "liver.nrrd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz", "masks"]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["liver.nrrd"]


def test_missing_folder_is_an_oserror_naming_the_file(tmp_path):
    with pytest.raises(OSError, match="cannot write .*nowhere.*ct.nii.gz"):
        io.save(tmp_path / "nowhere" / "ct.nii.gz", np.ones(GRID.shape, np.float32), GRID)


def test_cli_force_with_failing_write_keeps_old_outputs(tmp_path, monkeypatch, capsys):
    io.save(tmp_path / "in.nii.gz", np.random.default_rng(0).normal(size=GRID.shape).astype(np.float32), GRID)
    io.save(tmp_path / "liver.nii.gz", np.ones(GRID.shape, np.uint8), GRID)
    (tmp_path / "out.nii.gz").write_bytes(OLD)
    (tmp_path / "out_liver.nii.gz").write_bytes(OLD)
    fail_when_writing(monkeypatch, nib, "save", name_part="out_liver")
    code = cli.main([str(tmp_path / "in.nii.gz"), str(tmp_path / "out.nii.gz"), "--spacing", "2", "2", "2",
                     "--mask", str(tmp_path / "liver.nii.gz"), "--force"])
    err = capsys.readouterr().err
    assert code == 2 and "No space left" in err, err
    assert (tmp_path / "out.nii.gz").read_bytes() == OLD
    assert (tmp_path / "out_liver.nii.gz").read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii.gz", "liver.nii.gz", "out.nii.gz", "out_liver.nii.gz"]


def test_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "ct.nii.gz"
    gr.io.save(path, np.zeros(GRID.shape, np.float32), GRID)
    path.chmod(0o640)
    gr.io.save(path, np.ones(GRID.shape, np.float32), GRID)
    assert path.stat().st_mode & 0o777 == 0o640
    assert np.all(gr.io.read(path)[0] == 1)


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nrrd"])
def test_a_symlinked_destination_is_written_through(tmp_path, name):
    real_folder = tmp_path / "store"
    real_folder.mkdir()
    real = real_folder / name
    gr.io.save(real, np.zeros(GRID.shape, np.float32), GRID)
    link = tmp_path / name
    link.symlink_to(real)
    gr.io.save(link, np.ones(GRID.shape, np.float32), GRID)
    assert link.is_symlink() and link.resolve() == real
    assert np.all(gr.io.read(real)[0] == 1)
    assert sorted(p.name for p in real_folder.iterdir()) == [name]  # nothing staged left behind


def test_a_two_file_format_behind_a_symlink_is_refused(tmp_path):
    real = tmp_path / "real.nhdr"
    gr.io.save(real, np.zeros(GRID.shape, np.float32), GRID)
    link = tmp_path / "ct.nhdr"
    link.symlink_to(real)
    with pytest.raises(ValueError, match="symbolic link"):
        gr.io.save(link, np.ones(GRID.shape, np.float32), GRID)
    assert np.all(gr.io.read(real)[0] == 0)
