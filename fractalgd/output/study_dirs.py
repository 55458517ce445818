"""Output directories of studies (zoom, sweep): resumable, so reused — but never a directory of something else."""

from __future__ import annotations

from pathlib import Path

from fractalgd.core.errors import ConfigError


def check_study_dir(out_dir: str | Path, markers: tuple[str, ...]) -> None:
    """`out_dir` must be missing, empty, or hold one of `markers` (a directory of the same study)."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a directory; choose another path")
    if any(out_dir.iterdir()) and not any((out_dir / m).exists() for m in markers):
        raise ConfigError(f"--out {out_dir}: holds files of something else (none of {', '.join(markers)}); choose another path")
