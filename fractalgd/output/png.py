"""PNG files that carry their recipe (the iTXt chunk `fractalgd-recipe`), so any image can be redrawn exactly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from fractalgd.output.atomic import write_bytes_atomic

RECIPE_CHUNK = "fractalgd-recipe"


def png_bytes(rgb: np.ndarray, recipe: str | None = None) -> bytes:
    """PNG of an (H, W, 3) uint8 image, with the recipe text chunk when given."""
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_itxt(RECIPE_CHUNK, recipe, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(path: str | Path, rgb: np.ndarray, recipe: str | None = None) -> Path:
    return write_bytes_atomic(path, png_bytes(rgb, recipe))


def read_recipe(path: str | Path) -> str:
    """The recipe TOML embedded in a fractalgd PNG."""
    with Image.open(path) as image:
        image.load()
        return image.text[RECIPE_CHUNK]


def figure_png(fig, recipe: str | None, **savefig) -> bytes:
    """A matplotlib figure as PNG bytes carrying the recipe."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return png_bytes(np.asarray(image.convert("RGB")), recipe)
