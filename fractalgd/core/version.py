"""The package version, from the installed distribution's metadata (one source of truth: pyproject.toml)."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("fractalgd")
except metadata.PackageNotFoundError:  # run from a checkout with PYTHONPATH=. and no install
    __version__ = "0+unknown"
