"""Render directories: the one writer (in-core and tiled), the one check of what may be replaced.

A render directory holds `image.png` (the recipe embedded as the text chunk `fractalgd-recipe`),
`labels.npy` (uint8), `steps.npy` (int32), `meta.json` (written last: a directory with it is
complete) and `recipe.toml`, plus `score.npy` where the problem has a score, `features.npz`
(the limit features: name → float array of the image's shape, in the render's dtype, NaN where
undefined; `fractalgd.pipeline.features`) unless `[render] features = false`, `figure.png` with
`[render] axes` (the image in axes with legend or colour bar, `output.figure`) and `histogram.png`
with `[render] histogram` (decision steps per class). It is assembled in a hidden sibling and
swapped into place (`atomic.replace_directory`).

What may be replaced: nothing, or a render directory (one holding fractalgd's `meta.json`). One of
another recipe only with `force`. Entries of the old directory that the new render does not write
(analyses, a user's notes) are carried over, so a render never deletes what it did not write;
analyses of another recipe are dropped, as they no longer describe the image.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fractalgd.core.errors import ConfigError
from fractalgd.core.precision import numpy_dtype
from fractalgd.output.atomic import json_text, recover_directory, remove_dead_temporaries, replace_directory
from fractalgd.output.figure import draw_figure
from fractalgd.output.histogram import draw_histogram
from fractalgd.output.png import png_bytes
from fractalgd.output.render_files import RenderFiles

META = "meta.json"
RENDER_FILES = ("image.png", "labels.npy", "steps.npy", "score.npy", "features.npz", "recipe.toml", META, "tiles")
# analysis*.json / .png, figure*, histogram*: they describe one recipe's labels
DERIVED_PREFIXES = ("analysis", "figure", "histogram")


def read_meta(path: str | Path) -> dict | None:
    """The fractalgd meta.json of a render directory, or None if `path` is not one."""
    try:
        meta = json.loads((Path(path) / META).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or not {"config", "class_names", "version"} <= meta.keys():
        return None
    return meta


def _same_recipe(meta: dict, config) -> bool:
    mine = json.loads(json.dumps(config.resolved))
    theirs = dict(meta.get("config") or {})
    return {k: v for k, v in theirs.items() if k != "name"} == {k: v for k, v in mine.items() if k != "name"}


def finished_render(path: str | Path, config) -> dict | None:
    """meta.json of a finished render of exactly this recipe at `path` (the one resume check), else None."""
    meta = read_meta(path)
    if meta is None or meta.get("recipe_hash") != config.recipe_hash or not _same_recipe(meta, config):
        return None
    return meta


def check_target(out_dir: str | Path, config, force: bool = False) -> None:
    """Refuse (ConfigError) to write a render to `out_dir` where that would destroy something.

    Allowed: a missing path; a render directory of the same recipe; one of another recipe with
    `force`. Refused: a file, a directory that is not a render directory, another recipe's render.
    """
    out_dir = Path(out_dir)
    recover_directory(out_dir, lambda p: (p / META).is_file())
    remove_dead_temporaries(out_dir.parent)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a render directory; choose another path")
    meta = read_meta(out_dir)
    if meta is None:
        if any(out_dir.iterdir()):
            raise ConfigError(f"--out {out_dir}: a directory that is not a fractalgd render (no meta.json); choose another path")
        return  # an empty directory holds nothing to lose
    if not force and not _same_recipe(meta, config):
        raise ConfigError(f"--out {out_dir}: holds a render of another recipe; pass --force to replace it")


def free_output_dir(config, root: str | Path = "outputs") -> Path:
    """`root/NAME`, or the first of `root/NAME-2`, `-3`, … that is free or holds this same recipe."""
    root = Path(root)
    for k in range(1, 10_000):
        path = root / (config.name if k == 1 else f"{config.name}-{k}")
        recover_directory(path, lambda p: (p / META).is_file())
        if not path.exists() and not path.is_symlink():
            return path
        meta = read_meta(path)
        if meta is not None and _same_recipe(meta, config):
            return path
    raise ConfigError(f"{root}: no free output name for '{config.name}' (10,000 taken)")


def _carry_over(old: Path, new: Path, keep_derived: bool) -> None:
    """Hard-link (or copy) entries of `old` that `new` does not hold into `new`."""
    for entry in old.iterdir():
        if entry.name in RENDER_FILES:
            continue
        if entry.name.startswith(DERIVED_PREFIXES) and not keep_derived:
            continue
        target = new / entry.name
        if target.exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def write_render_directory(
    out_dir: str | Path,
    config,
    meta: dict,
    write_arrays: Callable[[Path], None],
    rgb: np.ndarray | Callable[[], np.ndarray],
    force: bool = False,
) -> Path:
    """Write a render directory: `write_arrays(tmp)` writes the arrays, then image, recipe and meta.

    `rgb` is the image (for a tiled render, its preview), or a function returning it once the
    arrays are written; `meta` may be filled in by `write_arrays` too.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, config, force)
    recipe = config.to_toml()
    old_meta = read_meta(out_dir)
    with replace_directory(out_dir) as tmp:
        write_arrays(tmp)
        rgb = rgb() if callable(rgb) else rgb
        (tmp / "image.png").write_bytes(png_bytes(rgb, recipe))  # always the full-resolution image
        (tmp / "recipe.toml").write_text(recipe)
        if config.render.axes or config.render.histogram:
            files = _render_files(tmp, meta)
            if config.render.axes:
                draw_figure(files, tmp / "figure.png")
            if config.render.histogram:
                draw_histogram(files, tmp / "histogram.png")
        if old_meta is not None:
            _carry_over(out_dir, tmp, keep_derived=_same_recipe(old_meta, config))
        (tmp / META).write_text(json_text(meta))  # last: its presence marks the directory complete
    return out_dir


def _render_files(tmp: Path, meta: dict) -> RenderFiles:
    """The arrays just written (memory-mapped) with the meta about to be written."""
    meta = json.loads(json_text(meta))  # what meta.json will hold (as the figure command reads it)
    score = np.load(tmp / "score.npy", mmap_mode="r") if (tmp / "score.npy").is_file() else None
    labels, steps = (np.load(tmp / n, mmap_mode="r") for n in ("labels.npy", "steps.npy"))
    features = {}
    if (tmp / "features.npz").is_file():
        with np.load(tmp / "features.npz", allow_pickle=False) as npz:
            features = {name: npz[name] for name in npz.files}
    return RenderFiles(labels, steps, meta, score, features, directory=tmp)


def render_rgb(result) -> np.ndarray:
    """The image of a RenderResult (`RenderResult.rgb`)."""
    return result.rgb()


def write_features(path: Path, features: dict, dtype) -> None:
    """features.npz: name → array in `dtype` (the render's), NaN where undefined."""
    np.savez(path, **{name: np.asarray(values, dtype=dtype) for name, values in features.items()})


def save_render(result, out_dir: str | Path, force: bool = False) -> Path:
    """Write a RenderResult as a render directory (atomically; see `check_target`) and return its path."""

    def arrays(tmp: Path) -> None:
        np.save(tmp / "labels.npy", result.labels)
        np.save(tmp / "steps.npy", result.steps)
        if result.score is not None:
            np.save(tmp / "score.npy", result.score)
        if result.features is not None:
            write_features(tmp / "features.npz", result.features, numpy_dtype(result.config.gd.dtype))

    return write_render_directory(out_dir, result.config, result.meta, arrays, render_rgb(result), force)
