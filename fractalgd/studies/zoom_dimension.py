"""Box-counting dimension against zoom depth: one D per keyframe, and Sohl-Dickstein's pooled median.

For a self-similar boundary D does not depend on the magnification, so D(depth) is a check of
the estimate as much as a measurement. Two estimates per keyframe (fractalgd.analysis):

- `box_count(boundary_mask(labels))`: least-squares slope over the automatic flat range, with its
  error bar (regression plus lattice-offset spread);
- `sd_dimension(labels)`: Sohl-Dickstein's median of local slopes (anchors.md §1.9); his reported
  number is the median of the local slopes of *all* keyframes pooled, which is written too.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

COLUMNS = (
    "keyframe", "log2_magnification", "width", "dtype", "boundary_pixels",
    "dimension", "stderr", "fit_min_px", "fit_max_px", "sd_dimension", "note",
)  # fmt: skip


def keyframe_dimension(labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """D of one keyframe's boundary: (row fields, Sohl-Dickstein local slopes)."""
    from fractalgd.analysis import AnalysisError
    from fractalgd.analysis.boundary import boundary_mask
    from fractalgd.analysis.boxcount import box_count, sd_dimension

    mask = boundary_mask(labels)
    row = {"boundary_pixels": int(mask.sum()), "dimension": math.nan, "stderr": math.nan}
    row.update(fit_min_px="", fit_max_px="", sd_dimension=math.nan, note="")
    slopes = np.zeros(0)
    notes = []
    try:
        fit = box_count(mask)
        row.update(dimension=fit.dimension, stderr=fit.stderr, fit_min_px=fit.fit_range[0], fit_max_px=fit.fit_range[1])
        notes += list(getattr(fit, "warnings", ()))
    except AnalysisError as error:  # one class only, or too small: no number rather than a wrong one
        notes.append(str(error))
    try:
        row["sd_dimension"], slopes = sd_dimension(labels)
    except AnalysisError as error:
        notes.append(f"sd: {error}")
    row["note"] = "; ".join(notes)
    return row, np.asarray(slopes, dtype=np.float64)


def dimension_table(keyframes, spec) -> tuple[list[dict], float]:
    """Rows (COLUMNS) for every keyframe and the pooled median of all local slopes."""
    rows, pooled = [], []
    for key in keyframes:
        fields, slopes = keyframe_dimension(np.load(key.directory / "labels.npy"))
        rows.append({
            "keyframe": key.index,
            "log2_magnification": key.index * math.log2(spec.factor),
            "width": key.view.size[0],
            "dtype": key.dtype,
            **fields,
        })  # fmt: skip
        pooled.append(slopes[np.isfinite(slopes)])
    pooled = np.concatenate(pooled) if pooled else np.zeros(0)
    return rows, float(np.median(pooled)) if pooled.size else math.nan


def dimension_csv(rows: list[dict]) -> str:
    """dimension.csv as text: COLUMNS, one row per keyframe, undefined values left empty."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()})
    return text.getvalue()


def write_dimension(rows: list[dict], pooled: float, out_dir, title: str, summary: str = "zoom.json") -> str:
    """Write dimension.csv and dimension.png into `out_dir`; returns the key of both (recorded in
    the `summary` JSON as "dimension_key"). The plot depends only on the table and the title, so when
    the last run recorded the same key and the files are there, nothing is written (a rerun with
    nothing changed skips matplotlib)."""
    import hashlib
    import json
    from pathlib import Path

    from fractalgd.core.version import __version__
    from fractalgd.output import write_text_atomic

    out_dir = Path(out_dir)
    table = dimension_csv(rows)
    key = hashlib.sha256(json.dumps([table, title, __version__]).encode()).hexdigest()
    try:
        previous = json.loads((out_dir / summary).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        previous = None
    unchanged = isinstance(previous, dict) and previous.get("dimension_key") == key
    if unchanged and (out_dir / "dimension.png").is_file() and (out_dir / "dimension.csv").is_file():
        return key
    from fractalgd.output.plots import plot_dimension

    write_text_atomic(out_dir / "dimension.csv", table)
    plot_dimension(rows, pooled, out_dir / "dimension.png", title=title)
    return key
