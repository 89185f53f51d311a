"""gpuresample.transforms.Resampled on torch CPU tensors (and NumPy): geometry, labels, containers."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr
from gpuresample.transforms import Resampled

torch = pytest.importorskip("torch")

DIRECTION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([-1.0, 1.0, 1.0])
GRID = gr.Grid((18, 20, 8), (0.8, 0.9, 2.5), origin=(12.0, -30.0, 55.0), direction=DIRECTION)
TARGET_SPACING = (1.5, 1.5, 1.5)


def make_case(channels=1, affine_as="torch"):
    scene = gr.phantom(GRID.shape)
    image = np.stack([scene.volumes["CT"] + 10 * c for c in range(channels)])
    affine = torch.from_numpy(GRID.affine) if affine_as == "torch" else GRID.affine.copy()
    return {
        "image": torch.from_numpy(image),                               # (C, X, Y, Z) float32
        "label": torch.from_numpy(scene.masks["Organs"][None] * np.uint8(50)),   # labels 0, 50, ..., 200
        "image_meta_dict": {"affine": affine, "filename_or_obj": "ct.nii.gz"},
        "label_meta_dict": {"affine": affine.clone() if affine_as == "torch" else affine.copy()},
        "case_id": "p001",
    }


def test_torch_case_resampled_with_affines_updated():
    case = make_case(channels=2)
    before = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in case.items()}
    transform = Resampled(["image", "label"], target_spacing=TARGET_SPACING,
                          interpolation={"image": "linear", "label": "label"})
    out = transform(case)
    target = GRID.with_spacing(TARGET_SPACING)
    assert isinstance(out["image"], torch.Tensor) and out["image"].dtype == torch.float32
    assert out["image"].shape == (2,) + target.shape and out["label"].shape == (1,) + target.shape
    assert out["label"].dtype == torch.uint8
    for key in ("image", "label"):
        affine = out[f"{key}_meta_dict"]["affine"]
        assert isinstance(affine, torch.Tensor) and affine.dtype == torch.float64
        np.testing.assert_allclose(affine.numpy(), target.affine, atol=1e-12)
    # the world position of the data's centre did not move, spacing is the one asked for
    np.testing.assert_allclose(gr.Grid(target.shape, TARGET_SPACING, target.origin, target.direction).center,
                               GRID.center, atol=1e-9)
    # values: each channel as gpuresample.resample gives it
    for c in range(2):
        expected = gr.resample(case["image"][c].numpy(), GRID.spacing, target_spacing=TARGET_SPACING)
        np.testing.assert_array_equal(out["image"][c].numpy(), expected)
    # other entries pass through; the input case is untouched
    assert out["case_id"] == "p001" and out["image_meta_dict"]["filename_or_obj"] == "ct.nii.gz"
    assert out is not case and out["image_meta_dict"] is not case["image_meta_dict"]
    for key in ("image", "label"):
        assert torch.equal(case[key], before[key])
    np.testing.assert_array_equal(case["image_meta_dict"]["affine"].numpy(), GRID.affine)


@pytest.mark.parametrize("mode", ["nearest", "label"])
def test_label_keys_keep_label_values(mode):
    case = make_case()
    labels = set(torch.unique(case["label"]).tolist())
    assert len(labels) >= 4 and labels <= {0, 50, 100, 150, 200}
    for target in ({"target_spacing": (1.1, 1.3, 0.9)}, {"target_shape": (7, 9, 15)}):
        out = Resampled(["image", "label"], **target, interpolation=("cubic", mode))(case)
        assert set(torch.unique(out["label"]).tolist()) <= labels
        assert len(set(torch.unique(out["label"]).tolist())) >= 3
    # the check above can fail: linear interpolation of the same labels creates values between them
    smeared = Resampled("label", target_spacing=(1.1, 1.3, 0.9), interpolation="linear")(case)
    assert not set(torch.unique(smeared["label"]).tolist()) <= labels


def test_label_without_meta_shares_the_image_geometry():
    case = make_case(affine_as="numpy")
    del case["label_meta_dict"]
    out = Resampled(["image", "label"], target_spacing=TARGET_SPACING, interpolation=["linear", "nearest"])(case)
    assert out["label"].shape == out["image"].shape
    assert "label_meta_dict" not in out
    assert isinstance(out["image_meta_dict"]["affine"], np.ndarray)
    np.testing.assert_allclose(out["image_meta_dict"]["affine"], GRID.with_spacing(TARGET_SPACING).affine, atol=1e-12)


def test_spacing_entry_and_numpy_arrays():
    scene = gr.phantom((16, 20, 20), (2.5, 0.8, 0.8))
    case = {"image": scene.volumes["CT"], "label": scene.masks["Organs"], "spacing": (2.5, 0.8, 0.8)}
    out = Resampled(["image", "label"], target_spacing=(1.6, 1.6, 1.6), interpolation=("linear", "label"))(case)
    assert isinstance(out["image"], np.ndarray) and out["image"].shape == (25, 10, 10)
    assert out["spacing"] == (1.6, 1.6, 1.6) and case["spacing"] == (2.5, 0.8, 0.8)
    np.testing.assert_array_equal(out["label"], gr.resample(case["label"], (2.5, 0.8, 0.8),
                                                            target_spacing=(1.6, 1.6, 1.6), interpolation="label"))
    # no geometry at all: a target shape still works (1 mm assumed; positions depend only on the shapes)
    bare = {"image": torch.from_numpy(scene.volumes["CT"])}
    shaped = Resampled("image", target_shape=(8, 10, 10))(bare)
    np.testing.assert_array_equal(shaped["image"].numpy(), gr.resample(scene.volumes["CT"], target_shape=(8, 10, 10)))
    fixed = Resampled("image", target_spacing=(5.0, 1.6, 1.6), spacing=(2.5, 0.8, 0.8))(bare)
    assert tuple(fixed["image"].shape) == (8, 10, 10)


def test_image_mappings_with_data_and_affine():
    """TorchIO's Image is a dict with 'data' (C, X, Y, Z) and 'affine' entries; the same structure here."""
    case = make_case(affine_as="numpy")
    subject = {"t1": {"data": case["image"], "affine": GRID.affine.copy(), "type": "intensity"},
               "seg": {"data": case["label"], "affine": GRID.affine.copy(), "type": "label"}}
    out = Resampled(["t1", "seg"], target_shape=(9, 10, 10), interpolation={"seg": "nearest"})(subject)
    target = GRID.with_shape((9, 10, 10))
    assert out["t1"]["type"] == "intensity" and out["t1"] is not subject["t1"]
    assert tuple(out["t1"]["data"].shape) == (1, 9, 10, 10)
    np.testing.assert_allclose(out["seg"]["affine"], target.affine, atol=1e-12)
    np.testing.assert_allclose(subject["t1"]["affine"], GRID.affine)          # untouched
    assert set(torch.unique(out["seg"]["data"]).tolist()) <= {0, 50, 100, 150, 200}


def test_channel_last_and_2d():
    volume = torch.rand(12, 14, 3)                                              # 2-D, channels last
    out = Resampled("image", target_shape=(6, 7), channel_axis=-1)({"image": volume})
    assert tuple(out["image"].shape) == (6, 7, 3)
    np.testing.assert_array_equal(out["image"][..., 1].numpy(), gr.resample(volume[..., 1].numpy(), target_shape=(6, 7)))


class TransformedCases(torch.utils.data.Dataset):
    """A map-style dataset: ``transform(cases[i])``, as a pipeline's dataset applies it."""

    def __init__(self, cases, transform):
        self.cases, self.transform = cases, transform

    def __len__(self):
        return len(self.cases)

    def __getitem__(self, i):
        return self.transform(self.cases[i])


def test_in_a_torch_dataloader():
    cases = [make_case(affine_as="numpy") for _ in range(3)]
    transform = Resampled(["image", "label"], target_shape=(16, 16, 16), interpolation=("linear", "nearest"))

    batch = next(iter(torch.utils.data.DataLoader(TransformedCases(cases, transform), batch_size=3)))
    assert tuple(batch["image"].shape) == (3, 1, 16, 16, 16)
    assert tuple(batch["image_meta_dict"]["affine"].shape) == (3, 4, 4)


def test_errors():
    case = make_case()
    with pytest.raises(ValueError, match="got neither"):
        Resampled("image")
    with pytest.raises(ValueError, match="interpolation"):
        Resampled("image", target_shape=(4, 4, 4), interpolation="spline")
    with pytest.raises(ValueError, match="not in keys"):
        Resampled("image", target_shape=(4, 4, 4), interpolation={"lable": "nearest"})
    with pytest.raises(ValueError, match="one per key"):
        Resampled(["image", "label"], target_shape=(4, 4, 4), interpolation=["linear"])
    with pytest.raises(ValueError, match="target_spacing"):
        Resampled("image", target_spacing=(1.0, -1.0, 1.0))
    with pytest.raises(KeyError, match="'mask'"):
        Resampled(["image", "mask"], target_shape=(4, 4, 4))(case)
    kept = Resampled(["image", "mask"], target_shape=(4, 4, 4), allow_missing_keys=True)(case)
    assert tuple(kept["image"].shape) == (1, 4, 4, 4)
    with pytest.raises(ValueError, match="no geometry"):
        Resampled("image", target_spacing=(1.0, 1.0, 1.0))({"image": torch.zeros(4, 4, 4)})
    with pytest.raises(ValueError, match="spatial axes"):
        Resampled("image", target_shape=(4, 4, 4))({"image": torch.zeros(2, 2, 4, 4, 4)})
    moved = make_case()
    moved["label_meta_dict"]["affine"] = moved["label_meta_dict"]["affine"].clone()
    moved["label_meta_dict"]["affine"][0, 3] += 5.0
    with pytest.raises(ValueError, match="share one grid"):
        Resampled(["image", "label"], target_shape=(4, 4, 4))(moved)
    with pytest.raises(ValueError, match="without 'data' and 'affine'"):
        Resampled("image", target_shape=(4, 4, 4))({"image": {"data": torch.zeros(1, 4, 4, 4)}})
    with pytest.raises(TypeError, match="dictionary"):
        Resampled("image", target_shape=(4, 4, 4))(torch.zeros(4, 4, 4))
    assert "Resampled(keys=('image',)" in repr(Resampled("image", target_shape=(4, 4, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for torch (none here)")
def test_cuda_tensors_stay_on_the_device():
    pytest.importorskip("cupy")
    case = make_case()
    case = {k: (v.cuda() if k in ("image", "label") else v) for k, v in case.items()}
    out = Resampled(["image", "label"], target_spacing=TARGET_SPACING, interpolation=("linear", "label"))(case)
    assert out["image"].is_cuda and out["label"].is_cuda
    cpu = Resampled(["image", "label"], target_spacing=TARGET_SPACING, interpolation=("linear", "label"))(make_case())
    torch.testing.assert_close(out["image"].cpu(), cpu["image"], rtol=1e-5, atol=1e-3)
    assert torch.equal(out["label"].cpu(), cpu["label"])


# ------------------------------------------------------------------ real pipelines, where installed
def test_in_a_monai_compose(tmp_path):
    monai_transforms = pytest.importorskip("monai.transforms", reason="MONAI not installed (optional)")
    pytest.importorskip("nibabel")
    from gpuresample import io
    scene = gr.phantom(GRID.shape)
    io.save(tmp_path / "ct.nii.gz", scene.volumes["CT"], GRID)
    io.save(tmp_path / "seg.nii.gz", scene.masks["Organs"], GRID)
    pipeline = monai_transforms.Compose([
        monai_transforms.LoadImaged(keys=["image", "label"]),
        monai_transforms.EnsureChannelFirstd(keys=["image", "label"]),
        Resampled(["image", "label"], target_spacing=TARGET_SPACING, interpolation=("linear", "label")),
        monai_transforms.ScaleIntensityd(keys="image"),
    ])
    out = pipeline({"image": str(tmp_path / "ct.nii.gz"), "label": str(tmp_path / "seg.nii.gz")})
    target = GRID.with_spacing(TARGET_SPACING)
    assert type(out["image"]).__name__ == "MetaTensor"
    assert tuple(out["image"].shape) == (1,) + target.shape
    np.testing.assert_allclose(out["image"].affine.numpy(), target.affine, atol=1e-4)
    assert set(torch.unique(out["label"]).tolist()) <= {0, 1, 2, 3, 4}


def test_in_a_torchio_compose(tmp_path):
    tio = pytest.importorskip("torchio", reason="TorchIO not installed (optional)")
    scene = gr.phantom(GRID.shape)
    subject = tio.Subject(
        image=tio.ScalarImage(tensor=torch.from_numpy(scene.volumes["CT"][None]), affine=GRID.affine),
        label=tio.LabelMap(tensor=torch.from_numpy(scene.masks["Organs"][None]), affine=GRID.affine))
    pipeline = tio.Compose([Resampled(["image", "label"], target_spacing=TARGET_SPACING,
                                      interpolation={"label": "nearest"}), tio.ZNormalization()])
    out = pipeline(subject)
    target = GRID.with_spacing(TARGET_SPACING)
    assert isinstance(out, tio.Subject) and isinstance(out["label"], tio.LabelMap)
    assert out["image"].spatial_shape == target.shape
    np.testing.assert_allclose(out["image"].affine, target.affine, atol=1e-9)
    assert subject["image"].spatial_shape == GRID.shape
    # images read from files load lazily: 'data' and 'affine' appear on first access
    from gpuresample import io
    io.save(tmp_path / "ct.nii.gz", scene.volumes["CT"], GRID)
    io.save(tmp_path / "seg.nrrd", scene.masks["Organs"], GRID)
    lazy = tio.Subject(image=tio.ScalarImage(tmp_path / "ct.nii.gz"), label=tio.LabelMap(tmp_path / "seg.nrrd"))
    from_file = pipeline(lazy)
    assert from_file["image"].spatial_shape == target.shape
    np.testing.assert_allclose(from_file["image"].affine, target.affine, atol=1e-4)


# ------------------------------------------------------------------ labels, affine entry, scalars, inverse
def test_torchio_label_maps_default_to_nearest():
    tio = pytest.importorskip("torchio", reason="TorchIO not installed (optional)")
    scene = gr.phantom(GRID.shape)
    labels = scene.masks["Organs"][None] * np.uint8(3)                       # {0, 3, 6, ...}
    subject = tio.Subject(image=tio.ScalarImage(tensor=torch.from_numpy(scene.volumes["CT"][None]), affine=GRID.affine),
                          label=tio.LabelMap(tensor=torch.from_numpy(labels), affine=GRID.affine))
    out = Resampled(["image", "label"], target_spacing=TARGET_SPACING)(subject)
    assert set(torch.unique(out["label"].data).tolist()) <= set(np.unique(labels).tolist())
    expected = gr.resample(labels[0], GRID, target_spacing=TARGET_SPACING, interpolation="nearest")
    np.testing.assert_array_equal(out["label"].data[0].numpy(), expected)
    # the image still gets linear
    np.testing.assert_array_equal(out["image"].data[0].numpy(),
                                  gr.resample(scene.volumes["CT"], GRID, target_spacing=TARGET_SPACING))


def test_label_typed_mappings_default_to_nearest_and_plain_integers_warn():
    case = make_case(affine_as="numpy")
    subject = {"seg": {"data": case["label"], "affine": GRID.affine.copy(), "type": "label"}}
    out = Resampled("seg", target_shape=(9, 10, 10))(subject)
    assert set(torch.unique(out["seg"]["data"]).tolist()) <= {0, 50, 100, 150, 200}
    with pytest.warns(UserWarning, match=r"'label' holds uint8 values and is resampled with linear"):
        Resampled(["image", "label"], target_shape=(9, 10, 10))(case)
    with warnings_as_errors():  # named explicitly: no warning
        Resampled(["image", "label"], target_shape=(9, 10, 10), interpolation=("linear", "linear"))(case)


def warnings_as_errors():
    import warnings
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")

    class Done:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            context.__exit__(*exc)
    return Done()


def test_a_top_level_affine_entry_is_used_and_updated():
    scene = gr.phantom(GRID.shape)
    case = {"image": torch.from_numpy(scene.volumes["CT"][None]), "affine": torch.from_numpy(GRID.affine)}
    out = Resampled("image", target_shape=(9, 10, 4))(case)
    target = GRID.with_shape((9, 10, 4))
    assert isinstance(out["affine"], torch.Tensor)
    np.testing.assert_allclose(out["affine"].numpy(), target.affine, atol=1e-12)
    spaced = Resampled("image", target_spacing=TARGET_SPACING)(case)           # needs the affine's spacing
    assert tuple(spaced["image"].shape[1:]) == GRID.with_spacing(TARGET_SPACING).shape
    ignored = Resampled("image", target_shape=(9, 10, 4), affine_key=None)(case)
    np.testing.assert_array_equal(ignored["affine"].numpy(), GRID.affine)


def test_scalar_targets_mean_every_axis():
    case = make_case(affine_as="numpy")
    out = Resampled("image", target_spacing=1.5)(case)
    assert tuple(out["image"].shape[1:]) == GRID.with_spacing((1.5, 1.5, 1.5)).shape
    two_d = Resampled("image", target_shape=6, spacing=(1.0, 2.0))({"image": torch.rand(12, 14)})
    assert tuple(two_d["image"].shape) == (6, 6)
    assert tuple(Resampled("image", target_shape=5)({"image": torch.rand(1, 8, 8, 8)})["image"].shape) == (1, 5, 5, 5)


def test_arguments_after_keys_are_keyword_only():
    with pytest.raises(TypeError):
        Resampled("image", (1.5, 1.5, 1.5))


def test_aliases_in_the_transform():
    case = make_case(affine_as="numpy")
    out = Resampled("image", target_shape=(9, 10, 4), interpolation="trilinear")(case)
    np.testing.assert_array_equal(out["image"].numpy(),
                                  Resampled("image", target_shape=(9, 10, 4), interpolation="linear")(case)["image"].numpy())


@pytest.mark.parametrize("geometry", ["meta_dict", "affine_entry", "mapping"])
def test_inverse_brings_a_prediction_back_onto_the_source_grid(geometry):
    case = make_case(affine_as="numpy")
    labels = case["label"]
    if geometry == "affine_entry":
        case = {"image": case["image"], "label": labels, "affine": GRID.affine.copy()}
    elif geometry == "mapping":
        case = {"image": {"data": case["image"], "affine": GRID.affine.copy()},
                "label": {"data": labels, "affine": GRID.affine.copy(), "type": "label"}}
    forward = Resampled(["image", "label"], target_spacing=TARGET_SPACING,
                        interpolation=None if geometry == "mapping" else {"label": "nearest"})
    small = forward(case)
    assert "resampled_grids" in small
    # a "prediction" on the resampled grid: the resampled labels themselves, under a new key, no geometry
    resampled_label = small["label"]["data"] if geometry == "mapping" else small["label"]
    small["pred"] = resampled_label.clone()
    back = forward.inverse(small, keys=["label", "pred"])
    assert "resampled_grids" not in back
    got_label = back["label"]["data"] if geometry == "mapping" else back["label"]
    assert tuple(got_label.shape) == tuple(labels.shape) == tuple(back["pred"].shape)
    assert back["pred"].dtype == torch.uint8
    assert set(torch.unique(back["pred"]).tolist()) <= {0, 50, 100, 150, 200}            # label-safe
    np.testing.assert_array_equal(back["pred"].numpy(), got_label.numpy())
    # nearest there and back: most voxels return to their own label
    agreement = float((back["pred"] == labels).float().mean())
    assert agreement > 0.9, agreement
    if geometry == "affine_entry":
        np.testing.assert_allclose(back["affine"], GRID.affine, atol=1e-9)
    with pytest.raises(ValueError, match="recording the grids"):
        forward.inverse(case)


def test_inverse_inside_a_dataloader_loop():
    """Forward in the dataset, predict on the batch, invert one case at a time."""
    cases = [make_case(affine_as="numpy") for _ in range(2)]
    forward = Resampled(["image", "label"], target_shape=(9, 10, 6), interpolation={"label": "nearest"})

    batch = next(iter(torch.utils.data.DataLoader(TransformedCases(cases, forward), batch_size=2)))
    prediction = (batch["image"] > 0).to(torch.uint8)                           # the "network"
    for i in range(2):
        one = {"pred": prediction[i], "resampled_grids": {k: v[i] for k, v in batch["resampled_grids"].items()}}
        back = forward.inverse(one, keys="pred")
        assert tuple(back["pred"].shape) == (1,) + GRID.shape
