"""Images in, images out: nibabel and SimpleITK images through gr.resample, and every form of target=."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from gpuresample import images, io

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")

RNG = np.random.default_rng(7)
VOLUME = RNG.random((20, 24, 16)).astype(np.float32)
AFFINE = np.array([[-2.0, 0, 0, 30], [0, 2.0, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])


def nifti(array=VOLUME, affine=AFFINE, sform_code=4, qform_code=2):
    image = nib.Nifti1Image(array, affine)
    image.set_sform(affine, code=sform_code)
    image.set_qform(affine, code=qform_code)
    return image


def itk(array=VOLUME, spacing=(2.0, 2.0, 3.0), origin=(1.0, 2.0, 3.0), direction=None):
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))  # (x, y, z) array axes
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(tuple(np.asarray(direction, float).ravel()))
    return image


def test_nibabel_in_nibabel_out_with_the_target_geometry_and_the_source_codes():
    out = gr.resample(nifti(), target_spacing=(1.0, 1.0, 1.5))
    assert isinstance(out, nib.Nifti1Image)
    grid = gr.Grid.from_affine(VOLUME.shape, AFFINE).with_spacing((1.0, 1.0, 1.5))
    np.testing.assert_array_equal(out.affine, grid.affine)
    assert out.shape == grid.shape == (40, 48, 32)
    assert out.get_sform(coded=True)[1] == 4 and out.get_qform(coded=True)[1] == 2
    expected = gr.resample(VOLUME, gr.Grid.from_affine(VOLUME.shape, AFFINE), target_spacing=(1.0, 1.0, 1.5))
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), expected)
    assert out.get_data_dtype() == np.float32


def test_nibabel_dtype_follows_the_result():
    labels = (VOLUME * 4).astype(np.uint8)
    out = gr.resample(nifti(labels), target_shape=(10, 12, 8), interpolation="label", dtype=np.int16)
    assert out.get_data_dtype() == np.int16 and np.asanyarray(out.dataobj).dtype == np.int16


def test_simpleitk_in_simpleitk_out_in_its_own_axis_order():
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image = itk(direction=direction)
    image.SetMetaData("PatientName", "phantom")
    out = gr.resample(image, target_shape=(10, 12, 8))  # (x, y, z) as GetSize() reads
    assert isinstance(out, sitk.Image)
    assert out.GetSize() == (10, 12, 8)
    assert out.GetSpacing() == pytest.approx((4.0, 4.0, 6.0))
    source = gr.Grid((20, 24, 16), (2.0, 2.0, 3.0), (1.0, 2.0, 3.0), direction)
    target = source.with_shape((10, 12, 8))
    assert out.GetOrigin() == pytest.approx(target.origin, abs=1e-12)
    assert out.GetDirection() == pytest.approx(tuple(direction.ravel()))
    assert out.GetMetaData("PatientName") == "phantom"
    expected = gr.resample(VOLUME, source, target_shape=(10, 12, 8))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out).transpose(2, 1, 0), expected)


def test_simpleitk_2d():
    plane = VOLUME[:, :, 0]
    image = sitk.GetImageFromArray(np.ascontiguousarray(plane.T))
    image.SetSpacing((0.5, 2.0))
    out = gr.resample(image, target_spacing=(1.0, 1.0))
    assert out.GetSize() == (10, 48) and out.GetSpacing() == (1.0, 1.0)


def test_a_spacing_that_disagrees_with_the_image_is_a_value_error():
    with pytest.raises(ValueError, match=r"spacing=\(1\.0, 1\.0, 1\.0\) disagrees"):
        gr.resample(nifti(), (1.0, 1.0, 1.0), target_shape=(5, 5, 5))
    with pytest.raises(ValueError, match="spacing"):
        gr.resample(itk(), (3.0, 2.0, 2.0), target_shape=(5, 5, 5))  # the (z, y, x) order is not the image's
    out = gr.resample(itk(), (2.0, 2.0, 3.0), target_shape=(5, 5, 5))  # its own spacing is fine
    assert out.GetSize() == (5, 5, 5)


def test_a_bare_array_by_spacing_needs_a_spacing():
    with pytest.raises(ValueError, match="spacing is missing"):
        gr.resample(VOLUME, target_spacing=(2.0, 2.0, 2.0))
    # by dimensions, the spacing does not matter and stays optional
    assert gr.resample(VOLUME, target_shape=(5, 6, 7)).shape == (5, 6, 7)


@pytest.mark.parametrize("form", ["grid", "nibabel", "simpleitk", "path", "shape_affine", "mapping"])
def test_every_form_of_target_gives_the_same_result(tmp_path, form):
    source = gr.Grid.from_affine(VOLUME.shape, AFFINE)
    target = gr.Grid((12, 10, 9), (2.5, 3.0, 2.0), origin=(10.0, -5.0, 20.0))
    expected = gr.resample(VOLUME, source, target=target)
    if form == "grid":
        given = target
    elif form == "nibabel":
        given = nib.Nifti1Image(np.zeros(target.shape, np.uint8), target.affine)
    elif form == "simpleitk":  # ITK's physical frame is LPS: the same grid has x and y negated
        flip = np.diag([-1.0, -1.0, 1.0])
        given = itk(np.zeros(target.shape, np.float32), target.spacing, tuple(flip @ np.array(target.origin)),
                    flip @ target.direction_matrix)
    elif form == "path":
        given = tmp_path / "reference.nii.gz"
        io.save(given, np.zeros(target.shape, np.uint8), target)
    elif form == "shape_affine":
        given = (target.shape, target.affine)
    else:
        given = {"data": np.zeros((1,) + target.shape), "affine": target.affine}
    got = gr.resample(VOLUME, source, target=given)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_a_path_target_reads_only_the_header(tmp_path, monkeypatch):
    target = gr.Grid((12, 10, 9), (2.5, 3.0, 2.0))
    path = tmp_path / "reference.nii.gz"
    io.save(path, np.zeros(target.shape, np.uint8), target)
    monkeypatch.setattr(io, "read", lambda *a, **k: pytest.fail("the data was read"))
    assert io.read_grid(path).shape == target.shape
    assert gr.resample(VOLUME, (1, 1, 1), target=path).shape == target.shape


def test_image_onto_another_image():
    out = gr.resample(nifti(), target=itk(np.zeros((8, 8, 8), np.float32)), fill=-1.0)
    assert isinstance(out, nib.Nifti1Image) and out.shape == (8, 8, 8)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    expected_affine = flip @ gr.Grid((8, 8, 8), (2.0, 2.0, 3.0), (1.0, 2.0, 3.0)).affine
    np.testing.assert_allclose(out.affine, expected_affine, atol=1e-12)


def test_bad_targets_name_target():
    with pytest.raises(TypeError, match="target must be"):
        gr.resample(VOLUME, (1, 1, 1), target=3.5)
    with pytest.raises(FileNotFoundError, match="no such file"):
        gr.resample(VOLUME, (1, 1, 1), target="/nonexistent/reference.nii.gz")
    with pytest.raises(ValueError, match="target"):
        gr.resample(VOLUME, (1, 1, 1), target=((4, 4, 4), np.zeros((4, 4))))


def test_grid_physical_to_index_inverts_index_to_physical():
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    grid = gr.Grid((30, 20, 10), (0.7, 1.3, 2.9), (4.0, -2.0, 11.0), rotation)
    index = np.random.default_rng(4).uniform(-5, 35, size=(50, 3))
    np.testing.assert_allclose(grid.physical_to_index(grid.index_to_physical(index)), index, atol=1e-12)
    with pytest.raises(ValueError, match="points"):
        grid.physical_to_index([1.0, 2.0])


def test_grid_repr_shows_a_direction_that_is_not_the_identity():
    assert "direction" not in repr(gr.Grid((2, 2, 2), (1, 1, 1)))
    flipped = gr.Grid((2, 2, 2), (1, 1, 1), direction=np.diag([-1.0, 1.0, 1.0]))
    assert "direction=((-1, 0, 0), (0, 1, 0), (0, 0, 1))" in repr(flipped)


def test_images_module_recognises_only_images():
    assert images.is_image(nifti()) and images.is_image(itk())
    assert not images.is_image(VOLUME) and not images.is_image({"data": VOLUME})
