"""The CLI's XLA setting (one CPU device per core) for the test process, before anything imports jax.

64-bit types are not switched on globally: the library scopes them itself, and the tests that
compute float64 references with JAX ask for them (`x64` from fractalgd.core.jaxenv).

Compiled programs are shared through JAX's persistent compilation cache, in a directory made for
this session and removed at its end (so every run starts cold and measures the same work): many
tests compile programs that differ from an earlier test's only in Python objects the package keys
its in-process caches on (a sweep's points, one recipe rendered by several tests, the CLI's
subprocesses), and XLA's compile of an unrolled kernel costs seconds. The cache key covers the
program, the XLA flags and the devices, so a hit runs the very executable a miss would build.
Set JAX_COMPILATION_CACHE_DIR yourself to keep a cache between runs instead.
"""

import atexit
import os
import shutil
import tempfile

from fractalgd.core.jaxenv import use_all_cores

use_all_cores()
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="fractalgd-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache  # subprocesses (CLI, tile and sweep workers) share it
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import pytest  # noqa: E402

from fractalgd.core.jaxenv import x64  # noqa: E402


@pytest.fixture(autouse=True)
def _float64_references():
    """Float64 references computed with JAX inside a test (jax.grad of a loss, a float64 scan)."""
    with x64():
        yield
