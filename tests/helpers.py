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


def invoke_cli(args, cwd=None):
    """`python -m fractalgd.cli ARGS` run in this process (no interpreter and jax start-up, ~1.3 s):
    a CompletedProcess (returncode, stdout, stderr). What a process would add to its stderr is added
    here: Python warnings under the interpreter's default filters, and the traceback of an exception.
    """
    import contextlib
    import os
    import subprocess
    import traceback
    import warnings

    from typer.testing import CliRunner

    from fractalgd.cli import app

    with contextlib.chdir(cwd or os.getcwd()), warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        result = CliRunner().invoke(app, [str(a) for a in args])
    stderr = result.stderr + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)


def run_cli(args, in_process: bool, cwd=None, timeout=120):
    """The CLI on `args`: in this process (`invoke_cli`) or as `python -m fractalgd.cli` (a CompletedProcess)."""
    import subprocess
    import sys

    if in_process:
        return invoke_cli(args, cwd)
    cmd = [sys.executable, "-m", "fractalgd.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def in_a_process(cases, keep):
    """Parameters (tuples of argument values) for the process twin of an in-process test: the cases at
    indices `keep` by default, the others marked slow (`make test-all`). Every case runs in-process
    in the default suite."""
    import pytest

    return [pytest.param(*case, marks=() if i in keep else pytest.mark.slow) for i, case in enumerate(cases)]
