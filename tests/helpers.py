"""Small shared helpers for the tests."""

from __future__ import annotations

import functools

import numpy as np

from fractalgd.config import config_from_dict, load_config

# Shipped recipes at a smoke-test size: non-square (rows and columns cannot be swapped unseen);
# 20 steps stay under one decision chunk (check_every = 32), so each compiles one chunk body.
SMALL = ("plane.resolution=[8,6]", "gd.steps=20")


def p1_config(**sections):
    """The Fig-3 recipe with table-level overrides, e.g. gd={"eta": 0.8}."""
    base = load_config("configs/p1-fig3.toml").resolved
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return config_from_dict(raw)


def touches_other_label(labels: np.ndarray) -> np.ndarray:
    """True where a pixel's 3×3 neighbourhood holds another label (a boundary pixel)."""
    padded = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    out = np.zeros(labels.shape, dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            out |= padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] != labels
    return out


@functools.cache
def small_render(path: str, point: int | None = None):
    """`pipeline.render` of a shipped recipe at SMALL (a sweep file: of its point `point`), once
    per session: several tests read the same small renders, and their compiles cost seconds each.

    Callers only read the result.
    """
    from fractalgd.pipeline import render
    from fractalgd.studies.sweep import load_sweep

    if point is None:
        return render(load_config(path, list(SMALL)))
    sweep = load_sweep(path, list(SMALL))
    return render(sweep.config(sweep.points()[point]))
