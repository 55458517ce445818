"""A sweep's outputs: `sweep.csv` and `sweep.png` (D against the parameter), rebuilt from point files.

Several processes may publish at once. Each writes to a private temporary name and renames, then
lists the point files again and republishes if more have appeared: the last rename is made by a
process that had already seen every point written before it, so the final files are complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import socket
from pathlib import Path

FIXED = ("D", "D_err", "fit_min", "fit_max", "seconds", "process", "note")


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


def _private(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{socket.gethostname()}-{os.getpid()}.tmp{path.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    tmp = _private(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def csv_text(sweep, rows: list[dict]) -> str:
    keys = [a.key for a in sweep.axes]
    fractions = list(dict.fromkeys(k for r in rows for k in r if k.startswith("frac_")))
    columns = ["index", *keys, *fractions, *FIXED]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return out.getvalue()


def plot(sweep, rows: list[dict], path: Path) -> None:
    """D ± error against the first parameter; one line per value of the second, if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = sweep.axes[0]
    groups = {}
    for row in rows:
        label = f"{sweep.axes[1].key} = {row[sweep.axes[1].key]:g}" if len(sweep.axes) == 2 else None
        groups.setdefault(label, []).append(row)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, group in groups.items():
        group = sorted(group, key=lambda r: r[first.key])
        x = [r[first.key] for r in group]
        y = [math.nan if r["D"] is None else r["D"] for r in group]  # None: no boundary at that point
        err = [0.0 if r["D_err"] is None or math.isnan(r["D_err"]) else r["D_err"] for r in group]
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, label=label)
    if first.log:
        ax.set_xscale("log")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")  # a smooth curve
    ax.set_xlabel(first.key)
    ax.set_ylabel("box-counting dimension D of the boundary")
    ax.set_title(sweep.name)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = _private(path)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


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
            plot(sweep, rows, out_dir / "sweep.png")
