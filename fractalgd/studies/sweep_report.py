"""A sweep's outputs: `sweep.csv` and `sweep.png` (D against the parameter), rebuilt from point files.

Several processes may publish at once. Each writes to a private temporary name and renames, then
lists the point files again and republishes if more have appeared: the last rename is made by a
process that had already seen every point written before it, so the final files are complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from fractalgd.output import write_text_atomic
from fractalgd.output.plots import plot_sweep

FIXED = ("D", "D_err", "fit_min", "fit_max", "seconds", "process", "note", "pixels")


def done_rows(out_dir: Path, hashes: dict[int, str]) -> dict[int, dict]:
    """Rows of the points whose json file holds the current hash (others are to be redone)."""
    rows = {}
    for index, digest in hashes.items():
        try:
            data = json.loads((out_dir / "points" / f"{index:04d}.json").read_text())
        except (OSError, ValueError):
            continue
        if data.get("hash") == digest:
            rows[index] = data["row"]
    return rows


def _cell(value):
    """A CSV cell: floats exactly (repr), undefined numbers (NaN, ±inf) empty."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def csv_text(sweep, rows: list[dict]) -> str:
    keys = [a.key for a in sweep.axes]
    fractions = list(dict.fromkeys(k for r in rows for k in r if k.startswith("frac_")))
    columns = ["index", *keys, *fractions, *FIXED]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def publish(sweep, out_dir: Path, hashes: dict[int, str]) -> list[dict]:
    """Rewrite sweep.csv (and sweep.png) from the finished points until no new point appears."""
    seen = None
    while True:
        rows = [row for _, row in sorted(done_rows(out_dir, hashes).items())]
        if seen is not None and len(rows) == seen:
            return rows
        seen = len(rows)
        write_text_atomic(out_dir / "sweep.csv", csv_text(sweep, rows))
        if rows:
            plot_sweep(sweep, rows, out_dir / "sweep.png")
