"""Outputs never destroy inputs or unrelated files, and a save changes all its files or none.

* The data file of a two-file format (``.mhd`` + ``.raw``/``.zraw``, ``.nhdr`` +
  ``.raw``/``.raw.gz``) is an output too: it needs ``--force`` when it exists, and it is
  refused when it is an input's data file.
* A multi-file save checks every destination before it replaces the first.
* Staging folders left by a killed process are removed by the next save into that folder.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import io
from test_cli import run

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

GRID = gr.Grid((6, 7, 5), (1.0, 1.2, 2.0), origin=(3.0, -4.0, 5.0))
DATA = np.arange(np.prod(GRID.shape), dtype=np.int16).reshape(GRID.shape)
OLD = b"unrelated contents"


def listing(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ----------------------------------------------------------------- data files of two-file formats
def test_files_written_and_read_name_the_data_file(tmp_path):
    assert io.files_written(tmp_path / "a.mhd") == [tmp_path / "a.mhd", tmp_path / "a.raw"]
    assert io.files_written(tmp_path / "a.mhd", compress=True) == [tmp_path / "a.mhd", tmp_path / "a.zraw"]
    assert io.files_written(tmp_path / "a.nhdr", compress=True) == [tmp_path / "a.nhdr", tmp_path / "a.raw.gz"]
    assert io.files_written(tmp_path / "a.nii.gz") == [tmp_path / "a.nii.gz"]
    io.save(tmp_path / "b.mhd", DATA, GRID)
    io.save(tmp_path / "c.nhdr", DATA, GRID, compress=True)
    assert io.files_read(tmp_path / "b.mhd") == [tmp_path / "b.mhd", tmp_path / "b.raw"]
    assert io.files_read(tmp_path / "c.nhdr") == [tmp_path / "c.nhdr", tmp_path / "c.raw.gz"]
    # a header naming another data file: that file is the input's, whatever its name
    (tmp_path / "d.mhd").write_text((tmp_path / "b.mhd").read_text().replace("b.raw", "elsewhere.raw"))
    assert io.files_read(tmp_path / "d.mhd") == [tmp_path / "d.mhd", tmp_path / "elsewhere.raw"]


def test_files_read_knows_lists_and_numbered_patterns(tmp_path):
    (tmp_path / "list.mhd").write_text("NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                                       "ElementDataFile = LIST\nz0.raw\nz1.raw\n")
    assert io.files_read(tmp_path / "list.mhd")[1:] == [tmp_path / "z0.raw", tmp_path / "z1.raw"]
    (tmp_path / "slices.nhdr").write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 3\nencoding: raw\n"
                                          "data file: s%02d.raw 1 3 1 2\n")
    assert io.files_read(tmp_path / "slices.nhdr")[1:] == [tmp_path / f"s0{i}.raw" for i in (1, 2, 3)]
    (tmp_path / "one.nrrd").write_text("NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                                       "data file: ../elsewhere/one.raw\n")
    assert io.files_read(tmp_path / "one.nrrd") == [tmp_path / "one.nrrd", tmp_path / "../elsewhere/one.raw"]
    io.save(tmp_path / "local.mha", DATA, GRID)
    assert io.files_read(tmp_path / "local.mha") == [tmp_path / "local.mha"]


def test_cli_refuses_to_write_over_the_inputs_data_file(capsys, tmp_path):
    io.save(tmp_path / "scan.mhd", DATA, GRID)
    before = listing(tmp_path)
    code, _out, err = run(capsys, tmp_path / "scan.mhd", tmp_path / "scan.nhdr", "--shape", 10, 10, 10, "--force")
    assert code == 2 and "scan.raw" in err and "input" in err, err
    assert len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == before
    np.testing.assert_array_equal(io.read(tmp_path / "scan.mhd")[0], DATA)


def test_cli_refuses_the_data_file_an_input_header_names(capsys, tmp_path):
    io.save(tmp_path / "b.mhd", DATA, GRID)
    (tmp_path / "scan.mhd").write_text((tmp_path / "b.mhd").read_text().replace("b.raw", "out.raw"))
    os.replace(tmp_path / "b.raw", tmp_path / "out.raw")
    (tmp_path / "b.mhd").unlink()
    code, _out, err = run(capsys, tmp_path / "scan.mhd", tmp_path / "out.nhdr", "--shape", 4, 4, 4, "--force")
    assert code == 2 and "out.raw" in err and "input" in err, err
    np.testing.assert_array_equal(io.read(tmp_path / "scan.mhd")[0], DATA)


def test_cli_needs_force_to_replace_an_existing_data_file(capsys, tmp_path):
    io.save(tmp_path / "ct.nii.gz", DATA, GRID)
    (tmp_path / "notes.raw").write_bytes(OLD)
    code, _out, err = run(capsys, tmp_path / "ct.nii.gz", tmp_path / "notes.mhd", "--shape", 4, 4, 4)
    assert code == 2 and "notes.raw exists" in err and "--force" in err, err
    assert (tmp_path / "notes.raw").read_bytes() == OLD and not (tmp_path / "notes.mhd").exists()
    code, out, err = run(capsys, tmp_path / "ct.nii.gz", tmp_path / "notes.mhd", "--shape", 4, 4, 4, "--dry-run")
    assert code == 0 and "notes.raw exists" in out, out
    code, _out, err = run(capsys, tmp_path / "ct.nii.gz", tmp_path / "notes.mhd", "--shape", 4, 4, 4, "--force")
    assert code == 0, err
    assert io.read(tmp_path / "notes.mhd")[0].shape == (4, 4, 4)


def test_save_refuses_an_unrelated_existing_data_file(tmp_path):
    (tmp_path / "notes.raw").write_bytes(OLD)
    with pytest.raises(ValueError, match=r"notes\.raw.*exists.*force=True"):
        io.save(tmp_path / "notes.mhd", DATA, GRID)
    assert listing(tmp_path) == {"notes.raw": OLD}
    io.save(tmp_path / "notes.mhd", DATA, GRID, force=True)
    np.testing.assert_array_equal(io.read(tmp_path / "notes.mhd")[0], DATA)
    io.save(tmp_path / "notes.mhd", DATA + 1, GRID)   # its own data file: replaced with it
    np.testing.assert_array_equal(io.read(tmp_path / "notes.mhd")[0], DATA + 1)


def test_save_refuses_another_headers_data_file(tmp_path):
    io.save(tmp_path / "scan.mhd", DATA, GRID)
    with pytest.raises(ValueError, match=r"scan\.raw"):
        io.save(tmp_path / "scan.nhdr", DATA + 1, GRID)
    np.testing.assert_array_equal(io.read(tmp_path / "scan.mhd")[0], DATA)


def test_save_refuses_two_destinations_sharing_a_data_file(tmp_path):
    scene = gr.Scene(GRID, volumes={"CT": DATA}, masks={"m": DATA > 3})
    with pytest.raises(ValueError, match=r"a\.raw"):
        io.save(tmp_path / "a.mhd", scene, masks={"m": tmp_path / "a.nhdr"})
    assert listing(tmp_path) == {}


# ----------------------------------------------------------------- all or nothing
def test_save_checks_every_destination_before_replacing_any(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(OLD)
    (tmp_path / "b.nii.gz").mkdir()
    scene = gr.Scene(GRID, volumes={"CT": DATA}, masks={"m": (DATA > 3).astype(np.uint8)})
    with pytest.raises(OSError, match=r"b\.nii\.gz"):
        io.save(tmp_path / "a.nii.gz", scene, masks={"m": tmp_path / "b.nii.gz"})
    assert (tmp_path / "a.nii.gz").read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "b.nii.gz"]


@pytest.mark.parametrize("no_links", [False, True])
def test_a_failing_replace_puts_back_what_was_replaced(tmp_path, monkeypatch, no_links):
    for name in ("a.nii.gz", "b.nii.gz"):
        (tmp_path / name).write_bytes(OLD)
    scene = gr.Scene(GRID, volumes={"CT": DATA}, masks={"m": (DATA > 3).astype(np.uint8)})
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("b.nii.gz") and io.STAGING_PREFIX not in str(dst):
            raise PermissionError(13, "Permission denied")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(io.os, "replace", replace)
    if no_links:   # a file system without hard links: the replaced files are copied aside instead
        def link(*args, **kwargs):
            raise OSError(1, "Operation not permitted")
        monkeypatch.setattr(io.os, "link", link)
    with pytest.raises(OSError, match=r"cannot write .*b\.nii\.gz: Permission denied$") as failed:
        io.save(tmp_path / "a.nii.gz", scene, masks={"m": tmp_path / "b.nii.gz"})
    assert io.STAGING_PREFIX not in str(failed.value)
    assert listing(tmp_path) == {"a.nii.gz": OLD, "b.nii.gz": OLD}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "b.nii.gz"]


def test_cli_with_force_refuses_before_replacing_when_a_mask_output_is_a_folder(capsys, tmp_path):
    io.save(tmp_path / "ct.nii.gz", DATA.astype(np.float32), GRID)
    io.save(tmp_path / "liver.nii.gz", (DATA > 3).astype(np.uint8), GRID)
    (tmp_path / "out.nii.gz").write_bytes(OLD)
    (tmp_path / "out_liver.nii.gz").mkdir()
    code, _out, err = run(capsys, tmp_path / "ct.nii.gz", tmp_path / "out.nii.gz", "--spacing", 2, 2, 2,
                          "--mask", tmp_path / "liver.nii.gz", "--force")
    assert code == 2 and "out_liver.nii.gz" in err and "folder" in err, err
    assert (tmp_path / "out.nii.gz").read_bytes() == OLD


# ----------------------------------------------------------------- stale staging folders
KILLED_SAVE = """
import os, sys, numpy as np, gpuresample as gr
from gpuresample import io
real = io._write
def write(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), 9)
io._write = write
grid = gr.Grid((6, 7, 5), (1.0, 1.2, 2.0))
io.save(sys.argv[1], np.zeros(grid.shape, np.float32), grid)
"""


def test_a_killed_save_leaves_staging_that_the_next_save_removes(tmp_path):
    target = tmp_path / "ct.nii.gz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(gr.__file__)),
                                                         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], check=False, env=env,
                          capture_output=True)
    assert done.returncode == -9, done.stderr
    left = [p for p in tmp_path.iterdir() if p.name.startswith(io.STAGING_PREFIX)]
    assert len(left) == 1 and not target.exists()
    host, dead_pid, _ = left[0].name[len(io.STAGING_PREFIX):].rsplit("-", 2)
    kept = [tmp_path / f"{io.STAGING_PREFIX}{io._staging_tag()}live",          # this (live) process's
            tmp_path / f"{io.STAGING_PREFIX}{host}-{os.getppid()}-parent",      # another live process's
            tmp_path / f"{io.STAGING_PREFIX}otherhost-{dead_pid}-remote",      # another host's: cannot tell
            tmp_path / f"{io.STAGING_PREFIX}k3x9_q2a"]                          # not named by this version
    for folder in kept:
        folder.mkdir()
    io.save(target, np.ones(GRID.shape, np.float32), GRID)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + ["ct.nii.gz"])
