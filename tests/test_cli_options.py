"""The command's --dtype, --out-of-core, huge-plan warnings, unknown options and NaN summaries."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import cli, io
from test_cli import assert_one_line_error, run

nib = pytest.importorskip("nibabel")
pytest.importorskip("SimpleITK")

GRID = gr.Grid((10, 12, 6), (0.9, 0.9, 2.5), origin=(-20.0, 31.0, 4.0), direction=np.diag([-1.0, 1.0, 1.0]))


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    io.save(tmp_path / "ct.nii.gz", rng.normal(0, 100, GRID.shape).astype(np.float32), GRID)
    labels = np.zeros(GRID.shape, np.uint8)
    labels[2:8, 3:9, 1:5] = 1
    io.save(tmp_path / "liver.nrrd", labels, GRID)
    return tmp_path


# ------------------------------------------------------------------ --dtype
def test_dtype_sets_the_image_dtype_and_masks_keep_theirs(capsys, files):
    code, out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--spacing", 1, 1, 1,
                         "--mask", files / "liver.nrrd", "--dtype", "int16")
    assert code == 0, err
    image, _ = io.read(files / "o.nii.gz")
    mask, _ = io.read(files / "o_liver.nii.gz")
    assert image.dtype == np.int16 and mask.dtype == np.uint8
    scene = io.load(files / "ct.nii.gz")
    expected = gr.resample(scene.volumes["ct"], scene.grid, target_spacing=(1.0, 1.0, 1.0), dtype=np.int16)
    np.testing.assert_array_equal(image, expected)
    assert "ct: volume" in out and "int16" in out


def test_dtype_is_checked_like_every_argument(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--isotropic", "--dtype", "complex64")
    assert_one_line_error(code, err, "--dtype", "invalid choice", "float32")


def test_scene_plan_takes_dtypes_per_object():
    scene = gr.phantom()
    plan = scene.plan(target_shape=(8, 8, 8), dtype={"CT": "float16"})
    assert {job.name: str(job.out_dtype) for job in plan.jobs} == {"CT": "float16", "Organs": "uint8"}
    with pytest.raises(ValueError, match="dtype names 'Liver'"):
        scene.plan(target_shape=(8, 8, 8), dtype={"Liver": "float16"})


# ------------------------------------------------------------------ --out-of-core
@pytest.mark.parametrize("ending", [".nii", ".nii.gz"])
def test_out_of_core_writes_what_the_in_memory_run_writes(capsys, files, ending, monkeypatch):
    monkeypatch.setattr(io, "WRITE_BLOCK_BYTES", 1000)  # many blocks of k-planes
    code, _out, err = run(capsys, files / "ct.nii.gz", files / f"a{ending}", "--shape", 17, 9, 11,
                          "--mask", files / "liver.nrrd")
    assert code == 0, err
    code, out, err = run(capsys, files / "ct.nii.gz", files / f"b{ending}", "--shape", 17, 9, 11,
                         "--mask", files / "liver.nrrd", "--out-of-core", "--max-memory", "8KB")
    assert code == 0, err
    assert f"wrote {files / f'b{ending}'}" in out
    for a, b in (("a", "b"), ("a_liver", "b_liver")):
        (x, gx), (y, gy) = io.read(files / f"{a}{ending}"), io.read(files / f"{b}{ending}")
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(gx.affine, gy.affine)
    assert not [p for p in files.iterdir() if p.name.startswith(io.STAGING_PREFIX)]   # staging removed


def test_out_of_core_computes_into_a_memory_map_in_slabs(capsys, files, monkeypatch):
    seen = []
    real = gr.Scene.plan

    def plan(self, *args, **kwargs):
        made = real(self, *args, **kwargs)
        seen.append((kwargs.get("out"), made))
        return made

    monkeypatch.setattr(gr.Scene, "plan", plan)
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "b.nii", "--shape", 17, 9, 11, "--out-of-core",
                          "--max-memory", "8KB")
    assert code == 0, err
    (first, _), (out, ran) = seen[0], seen[-1]
    assert first is None and isinstance(out["ct"], np.memmap)
    assert ran.chunks["ct"] > 1


def test_out_of_core_refuses_formats_it_cannot_stream(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nrrd", "--isotropic", "--out-of-core")
    assert_one_line_error(code, err, "--out-of-core", ".nii or .nii.gz", "o.nrrd")
    assert not (files / "o.nrrd").exists()


def test_out_of_core_refuses_up_front_when_the_disk_is_too_small(capsys, files, monkeypatch):
    monkeypatch.setattr(cli.shutil, "disk_usage", lambda path: type("U", (), {"free": 100})())
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii", "--isotropic", "--out-of-core")
    assert_one_line_error(code, err, "--out-of-core needs", "only 100 B is free")
    assert not any(p.name.startswith((io.STAGING_PREFIX, "o.")) for p in files.iterdir())


def test_a_result_too_big_for_memory_advises_the_commands_option(capsys, files, monkeypatch):
    monkeypatch.setattr("gpuresample.executor.available_host_bytes", lambda: 1 << 20)
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--shape", 1000, 1000, 100)
    assert_one_line_error(code, err, "--out-of-core")
    assert "out=" not in err
    with pytest.raises(MemoryError, match="out= a numpy.memmap"):   # Python callers still get out=
        gr.resample(np.zeros((4, 4, 4), np.float32), target_shape=(400, 400, 500))


def test_size_errors_name_the_commands_options(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--spacing", 1e-9, 1e-9, 1e-9)
    assert_one_line_error(code, err, "choose a larger --spacing or a smaller --shape")


# ------------------------------------------------------------------ --dry-run of a huge plan
def test_dry_run_warns_in_one_line_when_the_result_exceeds_the_memory(capsys):
    code, out, err = run(capsys, "--sample", "--spacing", 0.01, 0.01, 0.01, "--dry-run")
    assert code == 0, err
    assert "dry run" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuresample: warning: the results need"), err
    assert "TiB" in lines[0] and "--out-of-core" in lines[0]


def test_dry_run_of_a_result_that_fits_is_quiet(capsys):
    code, _out, err = run(capsys, "--sample", "--spacing", 1, 1, 1, "--dry-run")
    assert code == 0 and err == ""


def test_dry_run_out_of_core_warns_about_the_disk(capsys, files, monkeypatch):
    monkeypatch.setattr(cli.shutil, "disk_usage", lambda path: type("U", (), {"free": 100})())
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii", "--isotropic", "--out-of-core", "--dry-run")
    assert code == 0
    assert err.count("\n") == 1 and "gpuresample: warning: --out-of-core needs" in err


# ------------------------------------------------------------------ unknown options
@pytest.mark.parametrize("argv, fragments", [
    (["--sapcing", "1", "1", "1"], ["unknown option --sapcing", "did you mean --spacing?"]),
    (["--spac", "1", "1", "1"], ["unknown option --spac", "did you mean --spacing?"]),   # no abbreviations
    (["--isotropic", "--mask-interpolation", "label"], ["unknown option --mask-interpolation",
                                                        "did you mean --mask-interp?"]),
    (["--isotropic", "--dryrun"], ["unknown option --dryrun", "did you mean --dry-run?"]),
    (["--isotropic", "--zzzzzz"], ["unknown option --zzzzzz"]),
    (["--isotropic", "-dash.nii.gz", "o.nii.gz"], ["unknown option -dash.nii.gz", "goes after --"]),
])
def test_unknown_options_are_named(capsys, argv, fragments):
    code, _out, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_negative_numbers_are_values_not_options(capsys, files):
    code, _out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--like", files / "ct.nii.gz",
                          "--fill", "-1000", "--dry-run")
    assert code == 0, err


# ------------------------------------------------------------------ the summary of float results
def test_fill_nan_summarises_the_finite_values(capsys, files):
    bigger = gr.Grid((16, 16, 10), (0.9, 0.9, 2.5), origin=(-17.3, 28.3, -1.0), direction=GRID.direction)
    io.save(files / "ref.nii.gz", np.zeros(bigger.shape, np.uint8), bigger)
    code, out, err = run(capsys, files / "ct.nii.gz", files / "o.nii.gz", "--like", files / "ref.nii.gz",
                         "--fill", "nan")
    assert code == 0, err
    result, _ = io.read(files / "o.nii.gz")
    finite = result[np.isfinite(result)]
    nans = int(np.isnan(result).sum())
    assert nans and finite.size
    line = next(line for line in out.splitlines() if line.strip().startswith("ct: volume"))
    assert "nan .. nan" not in line
    assert f"finite values {finite.min():.6g} .. {finite.max():.6g} ({nans:,} NaN)" in line


def test_summary_of_values_counts_inf_and_all_nan():
    assert cli._values(np.array([1.0, np.inf, -np.inf, np.nan, 3.0])) == "finite values 1 .. 3 (1 NaN, 2 inf)"
    assert cli._values(np.full(3, np.nan, np.float32)) == "no finite values (3 NaN)"
    assert cli._values(np.arange(5, dtype=np.int16)) == "values 0 .. 4"


def test_summary_reads_in_blocks(monkeypatch):
    monkeypatch.setattr(cli, "SUMMARY_BLOCK_BYTES", 8)
    data = np.arange(60, dtype=np.float64).reshape(5, 3, 4)
    data[3, 1, 2] = np.nan
    assert len(list(cli._blocks(data))) == 5
    assert cli._values(data) == "finite values 0 .. 59 (1 NaN)"
    assert cli._unique(np.array([[3, 1], [1, 2]], np.uint8)).tolist() == [1, 2, 3]


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1])
    raise OSError("no RssAnon")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RssAnon from /proc")
def test_out_of_core_keeps_the_result_out_of_memory(capsys, tmp_path, monkeypatch):
    """A 128 MiB result: in memory without --out-of-core; with it, in a file-backed map (page cache,
    not the process's own memory), summarised and written in blocks (of 4 MiB here)."""
    monkeypatch.setattr(io, "WRITE_BLOCK_BYTES", 4 << 20)
    monkeypatch.setattr(cli, "SUMMARY_BLOCK_BYTES", 4 << 20)
    grid = gr.Grid((32, 32, 16), (8.0, 8.0, 32.0))
    io.save(tmp_path / "src.nii", np.random.default_rng(0).normal(size=grid.shape).astype(np.float32), grid)
    peaks = {}
    for mode in (("--out-of-core", "--max-memory", "8MB"), ()):
        base, peak, stop = _rss_anon_kib(), [0], threading.Event()

        def sample(peak=peak, stop=stop):
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_anon_kib())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            code, _out, err = run(capsys, tmp_path / "src.nii", tmp_path / "big.nii", "--shape", 256, 256, 512,
                                  "--force", *mode)
        finally:
            stop.set()
            sampler.join()
        assert code == 0, err
        peaks[bool(mode)] = (peak[0] - base) / 1024
    assert peaks[False] > 120                     # MiB: the result itself
    assert peaks[True] < 40, peaks
