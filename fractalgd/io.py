"""Files: render directories written atomically, PNGs that carry their recipe.

A render directory holds `image.png` (the recipe embedded as the text chunk `fractalgd-recipe`),
`labels.npy` (uint8), `steps.npy` (int32), `meta.json` and `recipe.toml`. It is assembled in a
hidden sibling directory and renamed into place, so a crash never leaves a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from fractalgd.render import class_colors, colorize, colorize_score

RECIPE_CHUNK = "fractalgd-recipe"


def write_png(path: Path, rgb: np.ndarray, recipe: str | None = None) -> None:
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_itxt(RECIPE_CHUNK, recipe, zip=True)
    Image.fromarray(rgb).save(path, pnginfo=info)


def read_recipe(path: str | Path) -> str:
    """The recipe TOML embedded in a fractalgd PNG."""
    with Image.open(path) as image:
        image.load()
        return image.text[RECIPE_CHUNK]


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path):
    """Yield a fresh temporary directory that replaces `out_dir` only if the block succeeds."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def annotated_figure(rgb: np.ndarray, result, path: Path, recipe: str) -> None:
    """The image with axes in plane coordinates and a legend with class fractions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    plane = result.config.plane
    names = result.config.problem.class_names
    colors = class_colors(names)
    total = result.labels.size
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=150)
    ax.imshow(rgb, extent=plane.extent(), origin="upper", interpolation="nearest", aspect="auto")
    for axis, setter in ((plane.x, ax.set_xlabel), (plane.y, ax.set_ylabel)):
        setter(f"log10 {axis.param}" if axis.scale == "log10" else axis.param)
    counts = result.meta["counts"]
    handles = [
        Patch(color=colors[i], label=f"{n} ({counts[n] / total:.1%})") for i, n in enumerate(names) if counts[n]
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(result.config.name)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".tmp.png"))
    plt.close(fig)
    with Image.open(path.with_suffix(".tmp.png")) as image:
        write_png(path, np.asarray(image.convert("RGB")), recipe)
    path.with_suffix(".tmp.png").unlink()


def save_render(result, out_dir: str | Path) -> Path:
    """Write a RenderResult as a render directory (atomically) and return its path."""
    config = result.config
    recipe = config.to_toml()
    rgb = colorize(
        result.labels,
        result.steps,
        config.problem.class_names,
        config.gd.steps,
        shade=config.render.shade,
        equalize=config.render.equalize,
    )
    score = getattr(result, "score", None)
    if score is not None:  # a scalar readout (mlp measure = "sd") is drawn as Sohl-Dickstein draws it
        rgb = colorize_score(score)
    with atomic_directory(out_dir) as tmp:
        np.save(tmp / "labels.npy", result.labels)
        if score is not None:
            np.save(tmp / "score.npy", score)
        np.save(tmp / "steps.npy", result.steps)
        write_json(tmp / "meta.json", result.meta)
        (tmp / "recipe.toml").write_text(recipe)
        if config.render.axes:
            annotated_figure(rgb, result, tmp / "image.png", recipe)
        else:
            write_png(tmp / "image.png", rgb, recipe)
    return Path(out_dir)


def write_json_atomic(path: str | Path, data) -> None:
    """Write JSON to a temporary sibling, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
