"""A render read back from its directory (or taken from a RenderResult), for figures: arrays,
plane, classes and colour settings from `meta.json` alone — no problem is built, no user code runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fractalgd.colour import FIRST_STEP
from fractalgd.core.errors import ConfigError
from fractalgd.core.plane import Axis, Plane


@dataclass
class RenderFiles:
    """labels (H, W) uint8, steps (H, W) int32, meta (meta.json), score (H, W) or None, and
    features: {name: (H, W) array} of `features.npz` (empty where there is none)."""

    labels: np.ndarray
    steps: np.ndarray
    meta: dict
    score: np.ndarray | None = None
    features: dict = field(default_factory=dict)
    directory: Path | None = None

    @property
    def config(self) -> dict:
        return self.meta.get("config") or {}

    @property
    def plane(self) -> Plane:
        plane = self.config["plane"]
        height, width = self.labels.shape
        x, y = plane["x"], plane["y"]
        return Plane(
            Axis(x["param"], float(x["min"]), float(x["max"]), x.get("scale", "linear"), width),
            Axis(y["param"], float(y["min"]), float(y["max"]), y.get("scale", "linear"), height),
        )

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names") or {}
        if names:  # meta.json names every class of the problem (no need to read a large label array)
            count = max(int(k) + 1 for k in names)
        else:
            count = int(np.max(self.labels)) + 1 if self.labels.size else 0
        return [str(names.get(str(i), i)) for i in range(count)]

    @property
    def colour_options(self) -> dict:
        """Keyword arguments of `colour.colorize` after the class names: total_steps, shade, equalize, first_step."""
        render = self.config.get("render") or {}
        engine = self.config.get("engine") or {}
        return {
            "total_steps": int(self.meta.get("steps") or (self.config.get("gd") or {}).get("steps", 1)),
            "shade": bool(render.get("shade", True)),
            "equalize": bool(render.get("equalize", False)),
            "first_step": int(engine.get("check_every", FIRST_STEP)),
        }

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.config.get("name") or "render")

    @classmethod
    def from_result(cls, result) -> RenderFiles:
        """The arrays and meta of a `pipeline.RenderResult` (`meta["config"]` is the resolved recipe)."""
        return cls(result.labels, result.steps, result.meta, result.score)


def _npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ConfigError(f"'{path}' is not a readable .npy array: {error}") from None


def load_render(directory: str | Path) -> RenderFiles:
    """Read a render directory (labels.npy, steps.npy, meta.json; score.npy and features.npz
    where present). Arrays are memory-mapped, so a tiled render is not read whole."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"'{directory}': not a directory (give a render directory, e.g. outputs/default)")
    missing = [n for n in ("labels.npy", "steps.npy", "meta.json") if not (directory / n).is_file()]
    if missing:
        raise ConfigError(f"'{directory}' is not a render directory (no {', '.join(missing)})")
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"'{directory / 'meta.json'}' is not readable JSON: {error}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "plane" not in meta["config"]:
        raise ConfigError(f"'{directory / 'meta.json'}': not a fractalgd meta.json (no config.plane)")
    labels, steps = _npy(directory / "labels.npy"), _npy(directory / "steps.npy")
    if labels.ndim != 2 or steps.shape != labels.shape:
        raise ConfigError(f"'{directory}': labels.npy and steps.npy must be 2-D arrays of one shape")
    score = _npy(directory / "score.npy") if (directory / "score.npy").is_file() else None
    features = {}
    if (directory / "features.npz").is_file():
        try:
            with np.load(directory / "features.npz", allow_pickle=False) as npz:
                features = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError) as error:
            raise ConfigError(f"'{directory / 'features.npz'}' is not a readable .npz archive: {error}") from None
    return RenderFiles(labels, steps, meta, score, features, directory)
