"""Scene, Plan and the information display (docs/design.md §5, README "In one minute")."""

from __future__ import annotations

import numpy as np
import pytest

import gpuresample as gr


@pytest.fixture(scope="module")
def scene():
    return gr.phantom((24, 40, 40), (2.5, 0.8, 0.8))


def test_plan_display_shows_everything(scene):
    plan = scene.plan(target_spacing=(1.0, 1.0, 1.0))
    text = str(plan)
    assert "24 x 40 x 40" in text and "60 x 32 x 32" in text          # dimensions
    assert "2.5 x 0.8 x 0.8" in text and "1 x 1 x 1" in text           # spacing
    assert "60 x 32 x 32" in text and "memory ratio" in text          # size, ratio
    assert f"{plan.memory_ratio:.4f}" in text
    assert "CT" in text and "Organs" in text and "cpu" in text
    assert "150 KiB" in text or "KiB" in text                           # bytes
    assert "chunks" in text and "peak memory" in text
    html = plan._repr_html_()
    assert html.startswith("<div") and "<table>" in html and "Organs" in html


def test_memory_ratio_and_bytes(scene):
    plan = scene.plan(target_shape=(12, 20, 20))
    assert plan.memory_ratio == pytest.approx(12 * 20 * 20 / (24 * 40 * 40))
    assert plan.bytes_before == {"CT": 24 * 40 * 40 * 4, "Organs": 24 * 40 * 40}
    assert plan.bytes_after == {"CT": 12 * 20 * 20 * 4, "Organs": 12 * 20 * 20}
    assert plan.backends == {"CT": "cpu", "Organs": "cpu"}
    assert plan.source == scene.grid and plan.target.shape == (12, 20, 20)


def test_extent_change_shown_by_spacing(scene):
    plan = scene.plan(target_spacing=(7.0, 7.0, 7.0))
    assert "change" in str(plan)  # extent differs by less than one target voxel and the display says so


def test_apply_does_what_plan_showed(scene):
    plan = scene.plan(target_shape=(30, 50, 20), volume_interpolation="cubic", mask_interpolation="label")
    new = plan.apply()
    assert new.grid == plan.target
    direct = gr.resample(scene.volumes["CT"], scene.grid.spacing, target_shape=(30, 50, 20), interpolation="cubic")
    np.testing.assert_array_equal(new.volumes["CT"], direct)
    masks = gr.resample(scene.masks["Organs"], scene.grid.spacing, target_shape=(30, 50, 20), interpolation="label")
    np.testing.assert_array_equal(new.masks["Organs"], masks)


def test_seed_positional_form():
    ct = np.random.default_rng(0).random((64, 64, 32)).astype(np.float32)
    liver = (ct > 0.5).astype(np.uint8)
    scene = gr.Scene(gr.Grid((64, 64, 32), (0.25, 0.25, 0.5)), volumes={"CT": ct}, masks={"Liver": liver})
    new = scene.resample(["CT"], [32, 32, 16], [0.5, 0.5, 1.0], gr.Interpolation.LINEAR, gr.Interpolation.NEAREST)
    assert new.names == ["CT"] and new.volumes["CT"].shape == (32, 32, 16)
    both = scene.resample(None, [32, 32, 16], None, "linear", "nearest")
    assert both.masks["Liver"].shape == (32, 32, 16) and set(np.unique(both.masks["Liver"])) <= {0, 1}


def test_masks_and_volumes_stay_aligned(scene):
    """Resampling the mask and the volume separately or together gives the same grid and values."""
    new = scene.resample(target_spacing=(1.3, 1.1, 0.9))
    alone = scene.resample(["Organs"], target_spacing=(1.3, 1.1, 0.9))
    np.testing.assert_array_equal(new.masks["Organs"], alone.masks["Organs"])
    assert new.volumes["CT"].shape == new.masks["Organs"].shape == new.grid.shape


def test_cubic_mask_warns(scene):
    with pytest.warns(UserWarning, match="cubic"):
        scene.plan(target_shape=(10, 10, 10), mask_interpolation="cubic")


def test_scene_from_spacing_takes_shape():
    s = gr.Scene((1.0, 2.0), volumes={"img": np.zeros((5, 6), np.float32)})
    assert s.grid.shape == (5, 6) and s.grid.spacing == (1.0, 2.0)
    assert s.resample(target_shape=(10, 3)).volumes["img"].shape == (10, 3)


def test_plan_with_max_memory_shows_chunks(scene):
    plan = scene.plan(target_shape=(48, 80, 80), max_memory="200KB")
    assert plan.chunks["CT"] > 1
    assert plan.peak_bytes <= 200_000
    new = plan.apply()
    whole = scene.resample(target_shape=(48, 80, 80))
    np.testing.assert_array_equal(new.volumes["CT"], whole.volumes["CT"])
    np.testing.assert_array_equal(new.masks["Organs"], whole.masks["Organs"])
