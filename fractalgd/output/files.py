"""Which existing files fractalgd may replace: only its own (a command never overwrites a user's file)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from fractalgd.core.errors import ConfigError

SOFTWARE = "fractalgd"  # the PNG "Software" text of every figure fractalgd writes


def written_by_fractalgd(path: str | Path) -> bool:
    """Whether the file at `path` is one fractalgd wrote: a PNG, PDF or SVG it marked, or one of its JSON reports."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".pdf":  # the Info dictionary, near the end (matplotlib writes it last)
            return _tail(path, 1 << 16).find(f"/Creator ({SOFTWARE} ".encode()) >= 0
        if path.suffix.lower() == ".svg":  # the metadata block, at the top
            with open(path, "rb") as f:
                head = f.read(1 << 13)
            return head.find(f"<dc:title>{SOFTWARE} ".encode()) >= 0 and head.find(b"<dc:creator>") >= 0
        if path.suffix.lower() == ".png":
            with Image.open(path) as image:
                text = getattr(image, "text", {}) or {}
            return str(text.get("Software", "")).startswith(SOFTWARE) or any(k.startswith("fractalgd") for k in text)
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return "fractalgd" in data or {"method", "dimension"} <= data.keys() or "keyframes" in data
            return isinstance(data, list) and all(isinstance(r, dict) and {"case", "impl"} <= r.keys() for r in data)
    except (OSError, ValueError, UnicodeDecodeError, Image.DecompressionBombError):
        return False
    return False


def check_file_target(path: str | Path, force: bool = False, option: str = "--out") -> None:
    """Refuse (ConfigError) to replace an existing file fractalgd did not write, unless `force`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    if path.exists() and not force and not written_by_fractalgd(path):
        raise ConfigError(f"{option} {path}: exists and was not written by fractalgd; choose another path or pass --force")


def _tail(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - size))
        return f.read()
