"""`[render] histogram = true`: how many steps each class took to be decided (histogram.png).

One outline per class present: the fraction of that class's pixels decided at each step. The
engine decides at its checks only (every C steps, later every 4C), so the bins are the distinct
decision steps when there are few, else log-spaced; pixels still undecided at T sit at T.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fractalgd.colour import legend_colors
from fractalgd.core.version import __version__
from fractalgd.output.atomic import atomic_savefig
from fractalgd.output.names import title_of
from fractalgd.output.render_files import RenderFiles

MAX_SIDE = 4096  # larger renders: a stride sample, as the figure uses
MAX_DISTINCT = 60


def step_histogram(labels: np.ndarray, steps: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges (B+1,), counts (n_classes, B)): decision steps per class on shared bins.

    Bins are centred on the distinct steps when there are at most MAX_DISTINCT of them (each
    bin holds one check), else 40 log-spaced bins from the smallest to the largest step.
    """
    labels, steps = np.asarray(labels).ravel(), np.asarray(steps).ravel().astype(np.int64)
    distinct = np.unique(steps)
    if len(distinct) <= MAX_DISTINCT:
        mids = np.sqrt(distinct[1:] * distinct[:-1]) if len(distinct) > 1 else np.zeros(0)
        lo, hi = distinct[0] / 1.2 if distinct[0] > 0 else 0.5, distinct[-1] * 1.2
        edges = np.concatenate(([lo], mids, [hi]))
    else:
        edges = np.geomspace(max(distinct[0], 1) / 1.05, distinct[-1] * 1.05, 41)
    counts = np.zeros((n_classes, len(edges) - 1), dtype=np.int64)
    for cls in np.unique(labels):
        if cls < n_classes:
            counts[cls] = np.histogram(steps[labels == cls], bins=edges)[0]
    return edges, counts


def draw_histogram(render: RenderFiles, path: str | Path, dpi: int = 120) -> Path:
    """Write the per-class histogram of decision steps as a PNG, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = render.labels.shape
    stride = max(1, math.ceil(max(height, width) / MAX_SIDE))
    labels = np.asarray(render.labels[stride // 2 :: stride, stride // 2 :: stride])
    steps = np.asarray(render.steps[stride // 2 :: stride, stride // 2 :: stride])
    names, options = render.class_names, render.colour_options
    edges, counts = step_histogram(labels, steps, len(names))
    colours = legend_colors(labels, steps, names, **options)
    fig = Figure(figsize=(6.4, 3.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for cls, name in enumerate(names):
        total = counts[cls].sum()
        if total:
            ax.stairs(counts[cls] / total, edges, color=colours[cls], linewidth=1.6, label=f"{name} ({total} px)")
    ax.axvline(options["total_steps"], color="0.5", linestyle="--", linewidth=0.8, label=f"T = {options['total_steps']}")
    ax.set_xscale("log")
    ax.set_xlabel("decision step (log scale; the engine decides every C steps, later every 4C)")
    ax.set_ylabel("fraction of the class's pixels")
    ax.set_title(title_of(render.name, render.meta.get("overrides")), fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=dpi, metadata={"Software": f"fractalgd {__version__}"})
    return Path(path)
