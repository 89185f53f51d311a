"""gpuresample.io on real files written by nibabel and SimpleITK: geometry, axes, round trips."""

from __future__ import annotations

import gzip
import locale

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import io
from gpuresample.geometry import sampling_positions

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

#: nibabel stores affines in float32: positions agree to this many mm.
FLOAT32_HEADER_MM = 1e-4
#: Output of a linear resample of a field that is linear in position, float64: exact to rounding.
LINEAR_FIELD_ATOL = 1e-9
FIELD_COEFFS = np.array([0.37, -1.3, 2.1])
FIELD_OFFSET = 17.0


def rotation(axis, degrees) -> np.ndarray:
    """A proper rotation (Rodrigues) about ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.deg2rad(degrees)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


OBLIQUE = rotation((1.0, 2.0, 0.5), 23.0)
NEGATIVE_X = np.diag([-1.0, 1.0, 1.0])                  # radiological storage, as many scanners write
OBLIQUE_FLIPPED = OBLIQUE @ np.diag([-1.0, 1.0, 1.0])   # a reflection too (qfac = -1)
SPACING = (0.8, 1.1, 2.5)
SHAPE = (12, 10, 7)
ORIGIN = (-41.5, 23.25, -108.0)


def affine_of(direction, spacing=SPACING, origin=ORIGIN) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction) * np.asarray(spacing)[None, :]
    affine[:3, 3] = origin
    return affine


def all_indices(shape) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, len(shape))


def linear_field(grid: gr.Grid) -> np.ndarray:
    """Values that are a linear function of physical position, at every voxel centre (float64)."""
    positions = grid.index_to_physical(all_indices(grid.shape))
    return (positions @ FIELD_COEFFS + FIELD_OFFSET).reshape(grid.shape)


def header_positions_nifti(path, indices) -> np.ndarray:
    """Physical positions (RAS) of voxel indices, from the file's header alone."""
    affine = nib.load(str(path)).affine
    return indices @ affine[:3, :3].T + affine[:3, 3]


def header_positions_itk(path, indices) -> np.ndarray:
    """Physical positions of voxel indices from SimpleITK's header, converted LPS -> RAS."""
    image = sitk.ReadImage(str(path))
    lps = np.array([image.TransformContinuousIndexToPhysicalPoint([float(v) for v in idx]) for idx in indices])
    return lps * np.array([-1.0, -1.0, 1.0])


def write_nifti(path, data, affine):
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def write_itk(path, data_ijk, spacing, origin_lps, direction_lps):
    image = sitk.GetImageFromArray(np.ascontiguousarray(data_ijk.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in origin_lps])
    image.SetDirection([float(v) for v in np.asarray(direction_lps).ravel()])
    sitk.WriteImage(image, str(path))
    return image


def interior(target: gr.Grid, source: gr.Grid) -> tuple:
    """Output indices whose sampling position lies inside the input on every axis (no edge clamping)."""
    masks = []
    for axis in range(3):
        u = sampling_positions(source, target, axis)
        masks.append((u >= 0) & (u <= source.shape[axis] - 1))
    return np.ix_(*masks)


# ------------------------------------------------------------------ reading NIfTI
@pytest.mark.parametrize("direction", [NEGATIVE_X, OBLIQUE, OBLIQUE_FLIPPED], ids=["negative-x", "oblique", "oblique-flipped"])
def test_nifti_geometry_matches_nibabel_affine(tmp_path, direction):
    data = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    affine = affine_of(direction)
    write_nifti(tmp_path / "a.nii.gz", data, affine)
    array, grid = io.read(tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(array, data)                     # axes (i, j, k), nothing reordered
    assert grid.shape == SHAPE
    np.testing.assert_allclose(grid.spacing, SPACING, rtol=1e-6)   # positive, axis i first
    np.testing.assert_allclose(grid.affine, nib.load(str(tmp_path / "a.nii.gz")).affine, atol=FLOAT32_HEADER_MM)
    indices = all_indices(SHAPE)
    np.testing.assert_allclose(grid.index_to_physical(indices), header_positions_nifti(tmp_path / "a.nii.gz", indices),
                               atol=FLOAT32_HEADER_MM)


def test_nifti_units_are_converted_to_mm(tmp_path):
    image = nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), affine_of(np.eye(3), (0.001, 0.002, 0.003), (0.01, 0, 0)))
    image.header.set_xyzt_units(xyz="meter")
    nib.save(image, str(tmp_path / "m.nii"))
    _, grid = io.read(tmp_path / "m.nii")
    np.testing.assert_allclose(grid.spacing, (1.0, 2.0, 3.0), rtol=1e-6)
    np.testing.assert_allclose(grid.origin, (10.0, 0.0, 0.0), atol=1e-4)


def test_nifti_trailing_unit_axis_is_dropped_and_scaling_applied(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4, 1)
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(2.0, -5.0)
    nib.save(image, str(tmp_path / "s.nii.gz"))
    array, grid = io.read(tmp_path / "s.nii.gz")
    assert grid.shape == (2, 3, 4)
    np.testing.assert_allclose(array, raw[..., 0] * 2.0 - 5.0)


# ------------------------------------------------------------------ reading SimpleITK formats
@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_itk_axes_and_lps_to_ras(tmp_path, suffix):
    data = np.random.default_rng(1).integers(0, 1000, size=SHAPE).astype(np.int16)
    image = write_itk(tmp_path / f"a{suffix}", data, SPACING, (12.0, -7.5, 30.0), OBLIQUE)
    array, grid = io.read(tmp_path / f"a{suffix}")
    # SimpleITK's own array is (k, j, i); ours is (i, j, k), matching the header's order
    np.testing.assert_array_equal(array, sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    assert array[3, 2, 1] == image.GetPixel(3, 2, 1)
    assert grid.shape == tuple(image.GetSize())
    np.testing.assert_allclose(grid.spacing, image.GetSpacing(), rtol=1e-12)
    indices = all_indices(SHAPE)[::7]
    np.testing.assert_allclose(grid.index_to_physical(indices), header_positions_itk(tmp_path / f"a{suffix}", indices),
                               atol=1e-9)
    np.testing.assert_allclose(grid.origin, (-12.0, 7.5, 30.0))     # LPS origin, as RAS


def test_same_image_from_nifti_and_nrrd_loads_identically(tmp_path):
    data = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32)
    write_nifti(tmp_path / "a.nii", data, affine_of(OBLIQUE_FLIPPED))
    array, grid = io.read(tmp_path / "a.nii")
    io.save(tmp_path / "a.nrrd", array, grid)
    again, again_grid = io.read(tmp_path / "a.nrrd")
    np.testing.assert_array_equal(again, data)
    np.testing.assert_allclose(again_grid.affine, grid.affine, atol=1e-9)
    # the NRRD header, read by SimpleITK itself (LPS), puts every voxel where nibabel's affine does
    indices = all_indices(SHAPE)[::5]
    np.testing.assert_allclose(header_positions_itk(tmp_path / "a.nrrd", indices),
                               header_positions_nifti(tmp_path / "a.nii", indices), atol=FLOAT32_HEADER_MM)


# ------------------------------------------------------------------ load -> resample -> save
@pytest.mark.parametrize("direction", [NEGATIVE_X, OBLIQUE_FLIPPED], ids=["negative-x", "oblique-flipped"])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("target", [{"target_spacing": (1.0, 0.7, 1.3)}, {"target_shape": (9, 13, 11)}],
                         ids=["by-spacing", "by-shape"])
def test_round_trip_keeps_physical_positions(tmp_path, direction, suffix, target):
    source = gr.Grid(SHAPE, SPACING, ORIGIN, direction)
    field = linear_field(source)
    if suffix.startswith(".nii"):
        write_nifti(tmp_path / f"in{suffix}", field, source.affine)
    else:
        write_itk(tmp_path / f"in{suffix}", field, SPACING, np.diag([-1, -1, 1.0]) @ np.array(ORIGIN),
                  np.diag([-1, -1, 1.0]) @ direction)
    scene = io.load(tmp_path / f"in{suffix}", name="field")
    new = scene.resample(**target, volume_interpolation="linear")
    io.save(tmp_path / f"out{suffix}", new)

    indices = all_indices(new.grid.shape)
    header = header_positions_nifti if suffix.startswith(".nii") else header_positions_itk
    from_header = header(tmp_path / f"out{suffix}", indices)
    # 1. the saved header agrees with the target grid
    np.testing.assert_allclose(from_header, new.grid.index_to_physical(indices), atol=FLOAT32_HEADER_MM)
    # 2. the saved values are the field at the positions the saved header gives (interior voxels)
    saved, _ = io.read(tmp_path / f"out{suffix}")
    expected = (from_header @ FIELD_COEFFS + FIELD_OFFSET).reshape(new.grid.shape)
    inside = interior(new.grid, scene.grid)
    assert saved[inside].size > 0
    np.testing.assert_allclose(saved[inside], expected[inside], atol=1e-3)
    np.testing.assert_allclose(new.volumes["field"][inside], linear_field(new.grid)[inside], atol=LINEAR_FIELD_ATOL)
    # 3. the centre of the data did not move (by shape: bounding box kept exactly)
    if "target_shape" in target:
        np.testing.assert_allclose(new.grid.center, scene.grid.center, atol=1e-9)


def test_save_uses_reference_codes_and_mm(tmp_path):
    image = nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), affine_of(NEGATIVE_X))
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=4)       # MNI
    nib.save(image, str(tmp_path / "ref.nii.gz"))
    array, grid = io.read(tmp_path / "ref.nii.gz")
    io.save(tmp_path / "out.nii.gz", array, grid, reference=tmp_path / "ref.nii.gz")
    header = nib.load(str(tmp_path / "out.nii.gz")).header
    assert (int(header["qform_code"]), int(header["sform_code"])) == (1, 4)
    assert header.get_xyzt_units()[0] == "mm"
    io.save(tmp_path / "plain.nii.gz", array, grid)
    plain = nib.load(str(tmp_path / "plain.nii.gz"))
    assert (int(plain.header["qform_code"]), int(plain.header["sform_code"])) == (1, 1)
    np.testing.assert_allclose(plain.get_qform(), plain.get_sform(), atol=FLOAT32_HEADER_MM)


# ------------------------------------------------------------------ dtypes and array kinds
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
@pytest.mark.parametrize("dtype, written", [("uint8", "uint8"), ("int8", "int8"), ("uint16", "uint16"),
                                            ("int16", "int16"), ("int32", "int32"), ("uint32", "uint32"),
                                            ("float32", "float32"), ("float64", "float64"),
                                            ("bool", "uint8"), ("float16", "float32")])
def test_dtypes_are_written_as_documented(tmp_path, suffix, dtype, written):
    values = np.random.default_rng(3).integers(0, 2 if dtype == "bool" else 100, size=(4, 5, 6)).astype(dtype)
    grid = gr.Grid(values.shape, (1.0, 2.0, 3.0))
    io.save(tmp_path / f"a{suffix}", values, grid)
    array, _ = io.read(tmp_path / f"a{suffix}")
    assert array.dtype == np.dtype(written)
    np.testing.assert_array_equal(array, values.astype(written))


def test_save_takes_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    tensor = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    io.save(tmp_path / "t.nii.gz", tensor, gr.Grid((3, 4, 5), (1.0, 1.0, 1.0)))
    np.testing.assert_array_equal(io.read(tmp_path / "t.nii.gz")[0], tensor.numpy())


# ------------------------------------------------------------------ scenes and masks
def test_load_with_masks_in_other_formats_and_save_scene(tmp_path):
    grid = gr.Grid(SHAPE, SPACING, ORIGIN, OBLIQUE)
    ct = np.random.default_rng(4).normal(size=SHAPE).astype(np.float32)
    liver = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 3).astype(np.uint8)
    io.save(tmp_path / "ct.nii.gz", ct, grid)
    io.save(tmp_path / "liver.nrrd", liver, grid)
    io.save(tmp_path / "spleen.mha", liver == 1, grid)
    scene = io.load(tmp_path / "ct.nii.gz", masks=[tmp_path / "liver.nrrd", tmp_path / "spleen.mha"])
    assert list(scene.volumes) == ["ct"] and list(scene.masks) == ["liver", "spleen"]
    np.testing.assert_array_equal(scene.masks["liver"], liver)
    named = io.load(tmp_path / "ct.nii.gz", masks={"Liver": tmp_path / "liver.nrrd"}, name="CT")
    assert list(named.volumes) == ["CT"] and list(named.masks) == ["Liver"]

    new = scene.resample(target_spacing=(1.0, 1.0, 1.0), mask_interpolation="label")
    written = io.save(tmp_path / "ct_1mm.nii.gz", new, masks={"liver": tmp_path / "liver_1mm.nrrd"})
    assert [p.name for p in written] == ["ct_1mm.nii.gz", "liver_1mm.nrrd"]
    again = io.load(tmp_path / "ct_1mm.nii.gz", masks=[tmp_path / "liver_1mm.nrrd"])
    assert set(np.unique(again.masks["liver_1mm"])) <= {0, 1, 2}
    np.testing.assert_array_equal(again.masks["liver_1mm"], new.masks["liver"])
    np.testing.assert_allclose(again.grid.affine, new.grid.affine, atol=FLOAT32_HEADER_MM)


def test_load_label_map_as_mask(tmp_path):
    grid = gr.Grid((4, 5, 6), (1.0, 1.0, 1.0))
    io.save(tmp_path / "seg.nii.gz", np.ones(grid.shape, np.uint8), grid)
    scene = io.load(tmp_path / "seg.nii.gz", role="mask")
    assert list(scene.masks) == ["seg"] and not scene.volumes


def test_masks_off_the_image_grid_are_refused(tmp_path):
    grid = gr.Grid((4, 5, 6), (1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    io.save(tmp_path / "ct.nii.gz", np.zeros(grid.shape, np.float32), grid)
    io.save(tmp_path / "shifted.nii.gz", np.zeros(grid.shape, np.uint8), gr.Grid((4, 5, 6), (1.0, 1.0, 2.0), (0.5, 0, 0)))
    io.save(tmp_path / "small.nii.gz", np.zeros((4, 5, 5), np.uint8), gr.Grid((4, 5, 5), (1.0, 1.0, 2.0)))
    with pytest.raises(ValueError, match="does not lie on the grid"):
        io.load(tmp_path / "ct.nii.gz", masks=[tmp_path / "shifted.nii.gz"])
    with pytest.raises(ValueError, match=r"shape \(4, 5, 5\)"):
        io.load(tmp_path / "ct.nii.gz", masks=[tmp_path / "small.nii.gz"])


def test_scene_save_needs_a_name_when_ambiguous(tmp_path):
    scene = gr.phantom((6, 8, 8))
    scene = gr.Scene(scene.grid, volumes={"CT": scene.volumes["CT"], "PET": scene.volumes["CT"]})
    with pytest.raises(ValueError, match="pass name="):
        io.save(tmp_path / "a.nii.gz", scene)
    with pytest.raises(ValueError, match="not in the scene"):
        io.save(tmp_path / "a.nii.gz", scene, name="MR")
    assert io.save(tmp_path / "a.nii.gz", scene, name="PET")[0].exists()


# ------------------------------------------------------------------ DICOM series
def write_dicom_series(folder, data_ijk, spacing, origin_lps, direction_lps, series_uid="1.2.826.0.1.3680043.2.1125.1",
                       prefix="slice"):
    """One file per slice along k, with the tags a series reader needs (position, orientation, spacing).

    SimpleITK's DICOM writer (GDCM) sets the process locale to "C"; it is put back, so later
    tests (and their subprocess output decoding) see the locale they started with.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_dicom_slices(folder, data_ijk, spacing, origin_lps, direction_lps, series_uid, prefix)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_dicom_slices(folder, data_ijk, spacing, origin_lps, direction_lps, series_uid, prefix):
    folder.mkdir(parents=True, exist_ok=True)
    volume = sitk.GetImageFromArray(np.ascontiguousarray(data_ijk.transpose(2, 1, 0)))
    volume.SetSpacing(spacing)
    volume.SetOrigin(origin_lps)
    volume.SetDirection(np.asarray(direction_lps).ravel().tolist())
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    orientation = "\\".join(f"{v:.10f}" for v in np.asarray(direction_lps)[:, :2].T.ravel())
    for k in range(data_ijk.shape[2]):
        piece = volume[:, :, k]
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "CT", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.9", "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}", "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.10f}" for v in position), "0020|0037": orientation,
            "0018|0050": f"{spacing[2]:.10f}", "0028|0030": f"{spacing[1]:.10f}\\{spacing[0]:.10f}",
        }
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}{k:03d}.dcm"))
        writer.Execute(piece)


def test_dicom_series_folder(tmp_path):
    data = np.random.default_rng(5).integers(-1000, 1000, size=(10, 8, 6)).astype(np.int16)
    spacing, origin = (0.7, 0.9, 2.0), (-30.0, 12.0, 55.0)
    write_dicom_series(tmp_path / "series", data, spacing, origin, OBLIQUE)
    before = locale.setlocale(locale.LC_ALL)
    array, grid = io.read(tmp_path / "series")
    assert locale.setlocale(locale.LC_ALL) == before  # reading leaves the process locale alone
    np.testing.assert_array_equal(array, data)
    np.testing.assert_allclose(grid.spacing, spacing, atol=1e-6)
    reference = gr.Grid(data.shape, spacing, np.diag([-1, -1, 1.0]) @ np.array(origin), np.diag([-1, -1, 1.0]) @ OBLIQUE)
    indices = all_indices(data.shape)[::3]
    np.testing.assert_allclose(grid.index_to_physical(indices), reference.index_to_physical(indices), atol=1e-6)
    scene = io.load(tmp_path / "series")
    assert list(scene.volumes) == ["series"]


def test_dicom_folder_with_two_series_or_none(tmp_path):
    data = np.zeros((4, 4, 3), np.int16)
    write_dicom_series(tmp_path / "mixed", data, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), "1.2.3.4.1")
    write_dicom_series(tmp_path / "mixed", data, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), "1.2.3.4.2", "other")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="2 DICOM series"):
        io.read(tmp_path / "mixed")
    with pytest.raises(OSError, match="no DICOM series"):
        io.read(tmp_path / "empty")


# ------------------------------------------------------------------ errors
def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        io.read(tmp_path / "missing.nii.gz")
    with pytest.raises(FileNotFoundError, match="series_folder"):
        io.read(tmp_path / "series_folder")
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(ValueError, match="unknown file type '.png'"):
        io.read(tmp_path / "a.png")
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"not a nifti header"))
    with pytest.raises(OSError, match="cannot read .*junk.nii.gz"):
        io.read(tmp_path / "junk.nii.gz")
    (tmp_path / "junk.nrrd").write_bytes(b"NRRD0004\nnonsense\n")
    with pytest.raises(OSError, match=r"cannot read .*junk.nrrd: [^\n]+$"):
        io.read(tmp_path / "junk.nrrd")


def test_shear_4d_and_vector_images_are_refused(tmp_path):
    sheared = np.eye(4)
    sheared[0, 1] = 0.3
    write_nifti(tmp_path / "shear.nii", np.zeros((3, 3, 3), np.float32), sheared)
    with pytest.raises(ValueError, match="shear"):
        io.read(tmp_path / "shear.nii")
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), str(tmp_path / "four.nii"))
    with pytest.raises(ValueError, match=r"3-D images; this one has shape \(3, 3, 3, 2\)"):
        io.read(tmp_path / "four.nii")
    rgb = sitk.Image([4, 4, 4], sitk.sitkVectorUInt8, 3)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.mha"))
    with pytest.raises(ValueError, match="3 components"):
        io.read(tmp_path / "rgb.mha")


def test_save_errors(tmp_path):
    grid = gr.Grid((3, 4, 5), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="writing DICOM"):
        io.save(tmp_path, np.zeros(grid.shape), grid)
    with pytest.raises(ValueError, match="unknown file type '.tif'"):
        io.save(tmp_path / "a.tif", np.zeros(grid.shape), grid)
    with pytest.raises(ValueError, match=r"shape \(3, 4, 4\)"):
        io.save(tmp_path / "a.nii", np.zeros((3, 4, 4)), grid)
    with pytest.raises(TypeError, match="gpuresample.Grid"):
        io.save(tmp_path / "a.nii", np.zeros(grid.shape), (1.0, 1.0, 1.0))
    assert not any(tmp_path.iterdir())


def test_grid_from_affine_snaps_float32_rounding_only():
    noisy = affine_of(OBLIQUE).astype(np.float32).astype(np.float64)
    grid = io.grid_from_affine(SHAPE, noisy)
    d = grid.direction_matrix
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(grid.affine, noisy, atol=1e-5)
