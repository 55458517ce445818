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
import os
from pathlib import Path

import numpy as np

COLUMNS = (
    "keyframe", "log2_magnification", "width", "dtype", "boundary_pixels",
    "dimension", "stderr", "fit_min_px", "fit_max_px", "sd_dimension", "note",
    "flat", "stderr_fit", "stderr_offsets", "stderr_local", "drift", "stderr_window", "graph",
    "sd_stderr", "pooled_dimension", "pooled_stderr", "pooled_scatter", "pooled_keyframes",
)  # fmt: skip
ERROR_PARTS = ("stderr_fit", "stderr_offsets", "stderr_local", "drift", "stderr_window")


def keyframe_dimension(labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """D of one keyframe's boundary: (row fields, Sohl-Dickstein local slopes)."""
    from fractalgd.analysis import AnalysisError
    from fractalgd.analysis.boxcount import box_count, sd_box_count
    from fractalgd.analysis.cracks import counted_boundary

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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _cell(value):
    """A CSV cell: non-finite numbers are left empty."""
    return "" if isinstance(value, float) and not math.isfinite(value) else value


def write_dimension_csv(rows: list[dict], path: str | Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    _atomic_write(Path(path), text.getvalue().encode())


def plot_dimension(rows: list[dict], pooled: float | None, path: str | Path, title: str = "") -> None:
    """D ± stderr against log2 magnification, the pooled D ± its scatter, the SD medians and their pooled median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = np.array([r["log2_magnification"] for r in rows], dtype=float)
    d = np.array([r["dimension"] for r in rows], dtype=float)
    err = np.array([r["stderr"] for r in rows], dtype=float)
    sd = np.array([r["sd_dimension"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    ax.errorbar(depth, d, yerr=err, fmt="o-", ms=4, capsize=3, label="box count (flat range) ± stderr")
    ax.plot(depth, sd, "s", ms=4, mfc="none", label="Sohl-Dickstein median of local slopes")
    summary = pooled_dimension(rows)
    if math.isfinite(summary["dimension"]):
        mean, scatter = summary["dimension"], summary["scatter"]
        ax.axhspan(mean - scatter, mean + scatter, color="C0", alpha=0.12)
        ax.axhline(
            mean, color="C0", lw=1, label=f"pooled D {mean:.3f} ± {summary['stderr']:.3f} (scatter {scatter:.3f})"
        )
    if pooled is not None and math.isfinite(pooled):
        ax.axhline(pooled, color="k", ls="--", lw=1, label=f"pooled SD median {pooled:.3f}")
    for x, dt, prev in zip(depth[1:], [r["dtype"] for r in rows[1:]], [r["dtype"] for r in rows[:-1]], strict=True):
        if dt != prev:
            ax.axvline(x - 0.5, color="0.6", lw=0.8, ls=":")
            ax.text(x - 0.45, 0.02, f"→ {dt}", transform=ax.get_xaxis_transform(), fontsize=7, color="0.4")
    ax.set_xlabel("zoom depth: log2 magnification")
    ax.set_ylabel("box-counting dimension D")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    _atomic_write(Path(path), buffer.getvalue())
