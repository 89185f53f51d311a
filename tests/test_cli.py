"""The gpuresample command: plan display, dry runs, real runs on files, naming, errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import cli, io

nib = pytest.importorskip("nibabel")
pytest.importorskip("SimpleITK")

GRID = gr.Grid((10, 12, 6), (0.9, 0.9, 2.5), origin=(-20.0, 31.0, 4.0),
               direction=np.diag([-1.0, 1.0, 1.0]))


@pytest.fixture
def files(tmp_path):
    """A small CT-like NIfTI file and a label mask on its grid (NRRD)."""
    rng = np.random.default_rng(0)
    ct = rng.normal(0, 100, GRID.shape).astype(np.float32)
    labels = np.zeros(GRID.shape, np.uint8)
    labels[2:8, 3:9, 1:5] = 1
    labels[4:6, 5:7, 2:4] = 2
    io.save(tmp_path / "ct.nii.gz", ct, GRID)
    io.save(tmp_path / "liver.nrrd", labels, GRID)
    return tmp_path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuresample: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------ sample (the README's main job)
def test_sample_runs_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--shape", 24, 32, 32)
    assert code == 0, err
    plan_at, result_at = out.index("gpuresample plan"), out.index("resampled in")
    assert plan_at < result_at                          # the display comes before the run
    assert "96 x 128 x 128" in out and "24 x 32 x 32" in out and "memory ratio" in out
    assert "Organs: mask 24 x 32 x 32 uint8, labels 0 1 2 3 4" in out
    assert "nothing written" in out
    assert not any(tmp_path.iterdir())


def test_sample_isotropic_as_a_command():
    done = subprocess.run([sys.executable, "-m", "gpuresample", "--isotropic"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "spacing (mm)             2.5 x 0.8 x 0.8      0.8 x 0.8 x 0.8" in done.stdout
    assert "300 x 128 x 128" in done.stdout and "Traceback" not in done.stderr


def test_sample_written_with_naming_rule(capsys, tmp_path):
    code, out, err = run(capsys, "--sample", tmp_path / "iso.nii.gz", "--spacing", 5, 5, 5)
    assert code == 0, err
    scene = io.load(tmp_path / "iso.nii.gz", masks={"Organs": tmp_path / "iso_Organs.nii.gz"})
    expected = gr.phantom().grid.with_spacing((5.0, 5.0, 5.0))
    assert scene.grid.shape == expected.shape
    np.testing.assert_allclose(scene.grid.affine, expected.affine, atol=1e-4)
    assert set(np.unique(scene.masks["Organs"])) <= {0, 1, 2, 3, 4}
    assert f"wrote {tmp_path / 'iso_Organs.nii.gz'}" in out


# ------------------------------------------------------------------ files
def test_dry_run_prints_plan_and_writes_nothing(capsys, files):
    code, out, err = run(capsys, files / "ct.nii.gz", files / "out.nii.gz", "--spacing", 1, 1, 1,
                         "--mask", files / "liver.nrrd", "--dry-run")
    assert code == 0, err
    assert "gpuresample plan" in out and "liver" in out and "dry run" in out
    assert "10 x 12 x 6" in out and "9 x 11 x 15" in out
    assert not (files / "out.nii.gz").exists() and not (files / "out_liver.nii.gz").exists()
    code, out, err = run(capsys, files / "ct.nii.gz", "--isotropic", "--dry-run")   # no OUT needed
    assert code == 0 and "0.9 x 0.9 x 0.9" in out


@pytest.mark.parametrize("mask_interp", ["nearest", "label"])
def test_real_run_writes_image_and_masks_on_the_target_grid(capsys, files, mask_interp):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "ct_1mm.nii.gz", "--spacing", 1, 1, 1,
                         "--mask", files / "liver.nrrd", "--mask-interp", mask_interp, "--interp", "cubic")
    assert code == 0, err
    expected = GRID.with_spacing((1.0, 1.0, 1.0))
    image, image_grid = io.read(files / "ct_1mm.nii.gz")
    mask, mask_grid = io.read(files / "ct_1mm_liver.nii.gz")      # <OUT stem>_<mask stem><OUT ending>
    for grid in (image_grid, mask_grid):
        assert grid.shape == expected.shape
        np.testing.assert_allclose(grid.affine, expected.affine, atol=1e-4)
    assert image.dtype == np.float32 and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2}
    scene = io.load(files / "ct.nii.gz", masks=[files / "liver.nrrd"])
    direct = scene.resample(target_spacing=(1.0, 1.0, 1.0), volume_interpolation="cubic",
                            mask_interpolation=mask_interp)
    np.testing.assert_array_equal(image, direct.volumes["ct"])
    np.testing.assert_array_equal(mask, direct.masks["liver"])
    header = nib.load(str(files / "ct_1mm.nii.gz")).header
    assert int(header["sform_code"]) == 1 and header.get_xyzt_units()[0] == "mm"


def test_shape_and_chunked_run_match(capsys, files):
    code, out, err = run(capsys, files / "ct.nii.gz", files / "a.nrrd", "--shape", 20, 7, 9)
    assert code == 0, err
    whole = io.load(files / "ct.nii.gz").plan(target_shape=(20, 7, 9)).peak_bytes
    code, out, err = run(capsys, files / "ct.nii.gz", files / "b.mha", "--shape", 20, 7, 9,
                         "--max-memory", int(whole * 0.6), "--progress")
    assert code == 0, err
    assert "slabs of" in out                           # the display shows the chunking
    a, a_grid = io.read(files / "a.nrrd")
    b, b_grid = io.read(files / "b.mha")
    assert a.shape == (20, 7, 9)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a_grid.affine, b_grid.affine, atol=1e-9)
    np.testing.assert_allclose(a_grid.extent, GRID.extent, rtol=1e-6)   # by shape: box kept (float32 header)


def test_label_map_input_and_int64_storage(capsys, tmp_path):
    labels = np.zeros((8, 8, 8), np.int64)
    labels[2:6, 2:6, 2:6] = 7
    labels[3:5, 3:5, 3:5] = 100000
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0]), dtype=np.int64), str(tmp_path / "seg.nii.gz"))
    code, out, err = run(capsys, tmp_path / "seg.nii.gz", tmp_path / "seg_1mm.nii.gz", "--spacing", 1, 1, 1,
                         "--label", "--mask-interp", "label")
    assert code == 0, err
    assert "mask" in out and "label" in out
    result, grid = io.read(tmp_path / "seg_1mm.nii.gz")
    assert result.dtype == np.int64 and grid.shape == (16, 16, 16)     # written back as stored
    assert set(np.unique(result)) == {0, 7, 100000}
    huge = labels * 2**40 + (labels > 0)  # labels beyond 32 bits (and 2**53 - 1 + 1 apart: not floats)
    huge[labels == 100000] = 2**62 + 1
    nib.save(nib.Nifti1Image(huge, np.eye(4), dtype=np.int64), str(tmp_path / "huge.nii.gz"))
    code, out, err = run(capsys, tmp_path / "huge.nii.gz", tmp_path / "huge_out.nii.gz", "--isotropic",
                         "--label", "--mask-interp", "label")
    assert code == 0, err
    result, _ = io.read(tmp_path / "huge_out.nii.gz")
    assert result.dtype == np.int64 and set(np.unique(result)) == set(np.unique(huge))  # every label exact


# ------------------------------------------------------------------ overwriting
def test_existing_output_needs_force(capsys, files):
    out_path = files / "out.nii.gz"
    out_path.write_bytes(b"keep me")
    code, out, err = run(capsys, files / "ct.nii.gz", out_path, "--spacing", 2, 2, 2)
    assert_one_line_error(code, err, "exists", "--force")
    assert out_path.read_bytes() == b"keep me" and out == ""
    code, out, err = run(capsys, files / "ct.nii.gz", out_path, "--spacing", 2, 2, 2, "--dry-run")
    assert code == 0 and err == "", err               # a dry run previews, and says what a real run needs
    assert "gpuresample plan" in out and f"note: {out_path} exists; the real run needs --force" in out
    assert out_path.read_bytes() == b"keep me"
    # a mask output that exists counts too
    (files / "new_liver.nii.gz").write_bytes(b"keep")
    code, out, err = run(capsys, files / "ct.nii.gz", files / "new.nii.gz", "--spacing", 2, 2, 2,
                         "--mask", files / "liver.nrrd")
    assert_one_line_error(code, err, "new_liver.nii.gz", "exists")
    assert not (files / "new.nii.gz").exists()
    code, out, err = run(capsys, files / "ct.nii.gz", out_path, "--spacing", 2, 2, 2, "--force")
    assert code == 0, err
    assert io.read(out_path)[1].spacing == pytest.approx((2.0, 2.0, 2.0))


def test_never_writes_over_an_input(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "ct.nii.gz", "--spacing", 2, 2, 2, "--force")
    assert_one_line_error(code, err, "is also an input")


# ------------------------------------------------------------------ errors: one line, exit code 2
@pytest.mark.parametrize("argv, fragments", [
    ([], ["one of the arguments --spacing --shape --isotropic --like is required"]),
    (["--spacing", "1", "1", "1", "--shape", "2", "2", "2"], ["not allowed with"]),
    (["--spacing", "1", "-1", "1"], ["--spacing", "> 0"]),
    (["--spacing", "1", "nan", "1"], ["--spacing"]),
    (["--spacing", "1", "1"], ["--spacing", "3 argument"]),
    (["--shape", "4", "0", "4"], ["--shape", ">= 1"]),
    (["--shape", "4", "4.5", "4"], ["--shape", "invalid int"]),
    (["--isotropic", "--interp", "spline"], ["--interp", "invalid choice"]),
    (["--isotropic", "--backend", "opencl"], ["--backend", "invalid choice"]),
    (["--isotropic", "--max-memory", "lots"], ["--max-memory", "2GB"]),
    (["--isotropic", "--nonsense"], ["unknown option --nonsense"]),
    (["--isotropic", "--sample", "a.nii.gz", "b.nii.gz"], ["at most one path"]),
    (["--isotropic", "--mask", "m.nii.gz"], ["need an input file"]),
    (["--isotropic", "--volume", "v.nii.gz"], ["need an input file"]),
])
def test_bad_arguments(capsys, argv, fragments):
    code, _out, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_bad_files(capsys, files):
    (files / "junk.nii.gz").write_bytes(b"\x1f\x8b garbage")
    (files / "ct.png").write_bytes(b"\x89PNG")
    cases = [
        ([files / "missing.nii.gz", files / "o.nii.gz"], ["no such file", "missing.nii.gz"]),
        ([files / "junk.nii.gz", files / "o.nii.gz"], ["cannot read", "junk.nii.gz"]),
        ([files / "ct.png", files / "o.nii.gz"], ["unknown file type"]),
        ([files / "ct.nii.gz", files / "o.tiff"], ["cannot write", "unknown file type"]),
        ([files / "ct.nii.gz", files / "nowhere" / "o.nii.gz"], ["does not exist"]),
        ([files / "ct.nii.gz"], ["give OUT"]),
        ([files / "ct.nii.gz", files / "o.nii.gz", files / "p.nii.gz"], ["expected IN and OUT"]),
    ]
    for paths, fragments in cases:
        code, _out, err = run(capsys, *paths, "--isotropic")
        assert_one_line_error(code, err, *fragments)
    assert not (files / "o.nii.gz").exists()


def test_mask_off_grid(capsys, files):
    io.save(files / "moved.nii.gz", np.zeros(GRID.shape, np.uint8),
            gr.Grid(GRID.shape, GRID.spacing, (0.0, 0.0, 0.0), GRID.direction))
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--mask", files / "moved.nii.gz")
    assert_one_line_error(code, err, "does not lie on the grid")


def test_unavailable_backend_is_a_one_line_error(capsys, files):
    reason = gr.available_backends()["cupyx"]
    if reason is None:
        pytest.skip("cupyx backend runs here; nothing to refuse")
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--backend", "cupyx")
    assert_one_line_error(code, err)
    assert not (files / "o.nii.gz").exists()


def test_cubic_mask_warning_is_one_line(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--mask", files / "liver.nrrd",
                         "--mask-interp", "cubic", "--dry-run")
    assert code == 0
    assert err.strip().splitlines() == [line for line in err.strip().splitlines() if line.startswith("gpuresample: warning:")]
    assert "cubic" in err and "'liver'" in err


def test_entry_point_errors_have_no_traceback(tmp_path):
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "gpuresample", str(tmp_path / "nope.nrrd"), str(tmp_path / "o.nrrd"),
                           "--shape", "4", "4", "4"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"gpuresample: error: no such file: '{tmp_path / 'nope.nrrd'}'"]
    helped = subprocess.run([sys.executable, "-m", "gpuresample", "--help"], capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "--mask-interp" in helped.stdout


# ------------------------------------------------------------------ masks, volumes, folders
def test_mask_takes_one_path_and_leaves_in_and_out_positional(capsys, files):
    """``--mask M`` before IN OUT used to swallow them as more masks."""
    io.save(files / "spleen.nii.gz", np.zeros(GRID.shape, np.uint8), GRID)
    code, _out, err = run(capsys, "--mask", files / "liver.nrrd", "--mask", files / "spleen.nii.gz",
                         files / "ct.nii.gz", files / "o.nii.gz", "--spacing", 2, 2, 2)
    assert code == 0, err
    assert sorted(p.name for p in files.iterdir() if p.name.startswith("o")) == [
        "o.nii.gz", "o_liver.nii.gz", "o_spleen.nii.gz"]
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "p.nii.gz", "--isotropic",
                          "--mask", files / "liver.nrrd", files / "spleen.nii.gz")
    assert_one_line_error(code, err, "expected IN and OUT")


def test_volume_option_resamples_continuous_images_with_the_volume_interpolation(capsys, files):
    rng = np.random.default_rng(3)
    probability = rng.random(GRID.shape).astype(np.float32)
    io.save(files / "prob.nii.gz", probability, GRID)
    code, out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--shape", 20, 24, 12,
                         "--volume", files / "prob.nii.gz", "--mask", files / "liver.nrrd", "--interp", "cubic")
    assert code == 0 and not [line for line in err.splitlines() if "compiling the CPU loops" not in line], err
    assert "prob    volume  float32  cubic" in out
    written, grid = io.read(files / "o_prob.nii.gz")
    want = gr.resample(probability, GRID.spacing, target_shape=(20, 24, 12), interpolation="cubic")
    np.testing.assert_array_equal(written, want)
    assert grid.shape == (20, 24, 12)


def test_mask_with_many_values_gets_a_hint(capsys, files):
    probability = np.random.default_rng(4).random(GRID.shape).astype(np.float32)
    io.save(files / "prob.nii.gz", probability, GRID)
    code, out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--dry-run",
                         "--mask", files / "prob.nii.gz")
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuresample: warning: mask 'prob' has"), err
    assert f"more than {cli.MASK_VALUES_WARNING}" in lines[0] and "--volume" in lines[0]
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--dry-run",
                         "--mask", files / "liver.nrrd")
    assert code == 0 and err == "", err               # a real label map: no warning


def test_folder_without_dicom_series_is_one_line(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    done = subprocess.run([sys.executable, "-m", "gpuresample", str(tmp_path / "notes"), str(tmp_path / "o.nii.gz"),
                           "--isotropic"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"gpuresample: error: cannot read {tmp_path / 'notes'}: no DICOM series in this folder"]
