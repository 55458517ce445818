"""Box-counting dimension against zoom depth: one D per keyframe, pooled D with its scatter, and Sohl-Dickstein's pooled median.

For a self-similar boundary D does not depend on the magnification, so D(depth) is a check of
the estimate as much as a measurement. Two estimates per keyframe (fractalgd.analysis):

- box counting as `analyze` does it (cracks of the counted boundary, `cracks.counted_boundary`):
  least-squares slope over the automatic range, with the error model of `fitrange`;
- `sd_dimension(labels)`: Sohl-Dickstein's median of local slopes (anchors.md §1.9); his reported
  number is the median of the local slopes of *all* keyframes pooled, which is written too.

The pooled box-counting D (`pooled_dimension`) goes into every row of dimension.csv, with the
scatter of the keyframes' D about it and the error of the pooled value.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boxcount import box_count, sd_box_count
from fractalgd.analysis.cracks import counted_boundary

COLUMNS = (
    "keyframe", "log2_magnification", "width", "dtype", "boundary_pixels",
    "dimension", "stderr", "fit_min_px", "fit_max_px", "sd_dimension", "note",
    "flat", "stderr_fit", "stderr_offsets", "stderr_local", "drift", "stderr_window", "graph",
    "sd_stderr", "pooled_dimension", "pooled_stderr", "pooled_scatter", "pooled_keyframes",
)  # fmt: skip
ERROR_PARTS = ("stderr_fit", "stderr_offsets", "stderr_local", "drift", "stderr_window")


def keyframe_dimension(labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """D of one keyframe's boundary: (row fields, Sohl-Dickstein local slopes)."""
    mask, ignore = counted_boundary(np.asarray(labels), None)
    row = {"boundary_pixels": int(mask.sum()), "dimension": math.nan, "stderr": math.nan}
    row.update(fit_min_px="", fit_max_px="", sd_dimension=math.nan, note="", flat="", graph="", sd_stderr=math.nan)
    row.update(dict.fromkeys(ERROR_PARTS, math.nan))
    slopes = np.zeros(0)
    notes = []
    try:
        fit = box_count(labels, mode="cracks", ignore=ignore)
        row.update(dimension=fit.dimension, stderr=fit.stderr, fit_min_px=fit.fit_range[0], fit_max_px=fit.fit_range[1])
        row.update({key: getattr(fit, key) for key in ERROR_PARTS}, flat=int(fit.flat), graph=fit.graph)
        notes += list(fit.warnings)
    except AnalysisError as error:  # one class only, or too small: no number rather than a wrong one
        notes.append(str(error))
    try:
        sd = sd_box_count(labels)
        row.update(sd_dimension=sd.dimension, sd_stderr=sd.stderr)
        slopes = sd.local_slopes
    except AnalysisError as error:
        notes.append(f"sd: {error}")
    row["note"] = "; ".join(notes)
    return row, np.asarray(slopes, dtype=np.float64)


def pooled_dimension(rows: list[dict]) -> dict:
    """One box-counting D for the whole zoom, from the keyframes that have one.

    `dimension`: the mean of the keyframes' D weighted by 1/stderr²; `scatter`: their standard
    deviation about it (ddof 1; 0 for one keyframe); `stderr`: the error of the pooled value,
    scatter/√k for k keyframes but never below the smallest keyframe's stderr, because what that
    error holds (pixel scale, window choice, drift) is common to every keyframe and does not
    average out. NaN (written empty) when no keyframe has a D.
    """
    d = np.array([r["dimension"] for r in rows], dtype=float)
    e = np.array([r["stderr"] for r in rows], dtype=float)
    ok = np.isfinite(d) & np.isfinite(e)
    out = {"dimension": math.nan, "stderr": math.nan, "scatter": math.nan, "keyframes": int(ok.sum())}
    if not ok.any():
        return out
    d, e = d[ok], np.maximum(e[ok], 1e-6)  # an exact keyframe (stderr 0) must not take all the weight
    weights = 1.0 / e**2
    mean = float(np.sum(weights * d) / np.sum(weights))
    scatter = float(np.std(d, ddof=1)) if len(d) > 1 else 0.0
    out.update(dimension=mean, scatter=scatter, stderr=max(scatter / math.sqrt(len(d)), float(e.min())))
    return out


def dimension_table(keyframes, spec) -> tuple[list[dict], float | None]:
    """Rows (COLUMNS) for every keyframe, the pooled D in each, and the pooled median of all SD local slopes.

    The median is None when no keyframe has one (written as null, never NaN).
    """
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
    summary = pooled_dimension(rows)
    for row in rows:
        row.update({f"pooled_{k}": v for k, v in summary.items()})
    pooled = np.concatenate(pooled) if pooled else np.zeros(0)
    return rows, float(np.median(pooled)) if pooled.size else None


def dimension_csv(rows: list[dict]) -> str:
    """dimension.csv as text: COLUMNS, one row per keyframe, undefined values left empty."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return text.getvalue()


def _cell(value):
    """A CSV cell: undefined numbers (None, NaN, ±inf) are left empty."""
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def write_dimension(rows: list[dict], pooled: float | None, out_dir, title: str, summary: str = "zoom.json") -> str:
    """Write dimension.csv and dimension.png into `out_dir`; returns the key of both (recorded in
    the `summary` JSON as "dimension_key"). The plot depends only on the table, `pooled` and the
    title, so when the last run recorded the same key and both files are there, nothing is written
    (a rerun with nothing changed skips matplotlib)."""
    import hashlib
    import json
    from pathlib import Path

    from fractalgd.core.version import __version__
    from fractalgd.output import write_text_atomic

    out_dir = Path(out_dir)
    table = dimension_csv(rows)
    key = hashlib.sha256(json.dumps([table, pooled, title, __version__]).encode()).hexdigest()
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
