"""The CLI's XLA setting (one CPU device per core) for the test process, before anything imports jax.

64-bit types are not switched on globally: the library scopes them itself, and the tests that
compute float64 references with JAX ask for them (`x64` from fractalgd.core.jaxenv).
"""

from fractalgd.core.jaxenv import use_all_cores

use_all_cores()

import pytest  # noqa: E402

from fractalgd.core.jaxenv import x64  # noqa: E402


@pytest.fixture(autouse=True)
def _float64_references():
    """Float64 references computed with JAX inside a test (jax.grad of a loss, a float64 scan)."""
    with x64():
        yield
