"""JAX settings, scoped: importing fractalgd changes no global JAX or XLA setting.

- `use_all_cores()` asks XLA for one single-threaded CPU device per core; it only works before
  jax is first imported, so the CLI calls it first thing (notebook users may call it too).
  One device per core is faster and far steadier on small blocks than XLA's intra-op threading.
- `use_compilation_cache()` keeps compiled programs on disk between runs (the CLI calls it too).
- `x64()` turns on 64-bit types for the duration of a call, for this thread only: float64 renders
  work, and float32 renders compute exactly as they would with x64 on globally.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys


def use_all_cores() -> bool:
    """Set XLA_FLAGS for one host device per core if jax is not imported yet; True if it took effect."""
    if "jax" in sys.modules:
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores or 1}".strip()
    return True


CACHE_MAX_BYTES = 2 << 30  # the persistent compilation cache evicts its oldest entries beyond this


def use_compilation_cache() -> bool:
    """Keep compiled XLA programs on disk between runs (JAX's persistent compilation cache).

    A second `fractalgd render` of the same problem skips most of its compilation (seconds for
    the mlp, the matrix problems and the features). In $FRACTALGD_CACHE, else
    $XDG_CACHE_HOME/fractalgd/jax (~/.cache/fractalgd/jax), at most CACHE_MAX_BYTES;
    FRACTALGD_CACHE="" switches it off, and a JAX_COMPILATION_CACHE_DIR already set is kept.
    Only works before jax is first imported; True if it took effect.
    """
    if "jax" in sys.modules or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return False
    where = os.environ.get("FRACTALGD_CACHE")
    if where is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "fractalgd", "jax")
    if not where:
        return False
    os.environ["JAX_COMPILATION_CACHE_DIR"] = where
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    if importlib.util.find_spec("filelock") is not None:  # JAX bounds the cache only with it
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(CACHE_MAX_BYTES))
    return True


@contextlib.contextmanager
def x64():
    """64-bit types on inside the block (thread-local), whatever the global setting."""
    import jax

    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older JAX spelled it jax.experimental.enable_x64
        from jax.experimental import enable_x64 as scope
    with scope(True):
        yield


def with_x64(fn):
    """Decorator: run `fn` inside `x64()`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with x64():
            return fn(*args, **kwargs)

    return wrapper
