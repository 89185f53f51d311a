"""The information display's peak-memory line, and ``help(gr.Plan)`` naming every attribute."""

from __future__ import annotations

import pydoc
import re

import numpy as np

import gpuresample as gr
from gpuresample.display import format_bytes


def _peak_line(plan) -> str:
    lines = [line for line in str(plan).splitlines() if line.startswith("peak memory:")]
    assert len(lines) == 1, str(plan)
    return lines[0]


def test_peak_line_states_the_peak_and_that_results_are_outside_max_memory():
    # 64 MB budget, a 66 MiB result: the work is split, the result is not.
    data = np.zeros((33, 512, 512), np.float32)
    plan = gr.Scene((2.0, 1.0, 1.0), volumes={"CT": data}).plan(target_shape=(66, 512, 512), max_memory="64MB")
    assert plan.chunks["CT"] > 1
    assert plan.peak_bytes <= 64_000_000 < plan.bytes_after["CT"]
    line = _peak_line(plan)
    assert line.startswith(f"peak memory: {format_bytes(plan.peak_bytes)} ")
    assert "max_memory limits this" in line
    assert f"allocated whole: {format_bytes(plan.bytes_after['CT'])} in all" in line
    assert "66.0 MiB" in line
    html = plan._repr_html_()
    assert "peak memory: " in html and "66.0 MiB in all" in html


def test_overall_peak_is_the_largest_objects_and_results_add_up():
    scene = gr.phantom()
    plan = scene.plan(target_spacing=(1.0, 1.0, 1.0))
    peaks = {job.name: job.chunking.peak_bytes for job in plan.jobs}
    assert plan.peak_bytes == max(peaks.values())
    assert min(peaks.values()) < plan.peak_bytes  # CT and its uint8 mask differ
    line = _peak_line(plan)
    assert format_bytes(plan.peak_bytes) in line
    assert format_bytes(sum(plan.bytes_after.values())) in line
    assert str(plan).splitlines()[-2].startswith("total: ")


def test_help_plan_documents_every_attribute():
    plan = gr.phantom((8, 16, 16), (2.0, 1.0, 1.0)).plan(target_shape=(4, 8, 8))
    plan.apply()  # executions filled
    public = {name for name in vars(plan) if not name.startswith("_")}
    public |= {name for name, value in vars(gr.Plan).items()
               if isinstance(value, property) and not name.startswith("_")}
    assert {"scene", "source", "target", "jobs", "executions", "peak_bytes", "memory_ratio"} <= public
    text = pydoc.render_doc(gr.Plan, renderer=pydoc.plaintext)
    attributes = text.split("Attributes", 1)[1].split("Examples", 1)[0]
    documented = set(re.findall(r"^\s*\|?\s*(\w+) :", attributes, re.M))
    assert public <= documented, sorted(public - documented)
    assert "max_memory" in attributes and "allocated whole" in attributes
