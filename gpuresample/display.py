"""The information display: a plan as a text table and as HTML."""

from __future__ import annotations

import html

#: Binary units for byte counts.
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024


def _fmt(values, digits=4) -> str:
    return " x ".join(f"{v:.{digits}g}" for v in values)


def grid_rows(source, target) -> list:
    """(label, before, after) rows describing two grids."""
    ratio = target.size / source.size
    shift = [round(a - b, 6) for a, b in zip(target.extent, source.extent)]
    return [
        ("dimensions (voxels)", _fmt(source.shape), _fmt(target.shape)),
        ("spacing (mm)", _fmt(source.spacing), _fmt(target.spacing)),
        ("physical size (mm)", _fmt(source.extent, 6), _fmt(target.extent, 6)
         + ("" if not any(shift) else f"  (change {_fmt(shift, 4)})")),
        *_placement_rows(source, target),
        ("voxels", f"{source.size:,}", f"{target.size:,}"),
        ("memory ratio X'Y'Z'/XYZ", "", f"{ratio:.4f}"),
    ]


#: Origins and directions closer than this (mm, direction cosines) are shown as "the same".
PLACEMENT_ATOL = 1e-6


def _placement_rows(source, target) -> list:
    """Origin and direction rows, shown when the target's differ from the source's
    (a target on another grid); none for a target derived by shape or spacing."""
    import numpy as np

    same_direction = np.allclose(source.direction, target.direction, atol=PLACEMENT_ATOL)
    same_centre = np.allclose(source.center, target.center, atol=PLACEMENT_ATOL)
    if same_direction and same_centre:
        return []
    rows = [("origin (mm)", _fmt(source.origin, 6), _fmt(target.origin, 6))]
    if not same_direction:
        rows.append(("direction (columns)", _direction(source.direction), _direction(target.direction)))
    return rows


def _direction(direction) -> str:
    columns = zip(*direction)
    return " ".join("(" + ", ".join(f"{v:.4g}" for v in column) + ")" for column in columns)


def job_rows(jobs) -> list:
    """One row per object: name, role, dtype, interpolation, bytes, backend, slabs, peak."""
    rows = []
    for job in jobs:
        dtype = str(job.in_dtype) if job.in_dtype == job.out_dtype else f"{job.in_dtype}->{job.out_dtype}"
        shape = "" if job.channels == 1 else f" x{job.channels}ch"
        rows.append((job.name + shape, job.role, dtype, job.interpolation.value,
                     format_bytes(job.bytes_before), format_bytes(job.bytes_after), job.backend.name,
                     _chunks(job.chunking), format_bytes(job.chunking.peak_bytes)))
    return rows


def _chunks(chunking) -> str:
    """``"1"``, or the slab count with the output rows per slab: ``"7 (slabs of 16 rows)"``."""
    if chunking.count == 1:
        return "1"
    rows = sorted({b - a for a, b in chunking.slabs}, reverse=True)
    return f"{chunking.count} (slabs of {rows[0]} rows)"


JOB_HEADER = ("object", "role", "dtype", "interpolation", "bytes before", "bytes after", "backend",
              "chunks", "peak memory")


def _table(header, rows) -> list:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def total_line(jobs) -> str:
    """``total: 7.5 MiB -> 11.9 MiB``: the objects' bytes before and after."""
    total_before = sum(j.bytes_before for j in jobs)
    total_after = sum(j.bytes_after for j in jobs)
    return f"total: {format_bytes(total_before)} -> {format_bytes(total_after)}"


def peak_line(jobs) -> str:
    """The plan's overall peak memory, and what ``max_memory`` covers.

    Objects run one after another, so the plan's peak is the largest object's: one slab's
    input rows, output rows and scratch at once. ``max_memory`` limits that figure. Each
    result array is allocated whole before its slabs run, so a chunked run holds its whole
    result besides the slab's scratch: the results are not within ``max_memory``.
    """
    peak = max((j.chunking.peak_bytes for j in jobs), default=0)
    results = sum(j.bytes_after for j in jobs)
    return (f"peak memory: {format_bytes(peak)} (largest slab: input rows + output rows + scratch; "
            f"max_memory limits this, but each result array is allocated whole: {format_bytes(results)} in all)")


def plan_text(source, target, jobs, title="gpuresample plan") -> str:
    lines = [title]
    lines += _table(("", "current", "target"), grid_rows(source, target))
    lines.append("")
    lines += _table(JOB_HEADER, job_rows(jobs))
    lines.append(total_line(jobs))
    lines.append(peak_line(jobs))
    return "\n".join(lines)


def plan_html(source, target, jobs, title="gpuresample plan") -> str:
    def table(header, rows):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return (f"<div class='gpuresample-plan'><strong>{html.escape(title)}</strong>"
            + table(("", "current", "target"), grid_rows(source, target))
            + table(JOB_HEADER, job_rows(jobs))
            + f"<p>{html.escape(total_line(jobs))}<br>{html.escape(peak_line(jobs))}</p></div>")
