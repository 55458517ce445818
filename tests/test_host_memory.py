"""Freed host memory kept for reuse (`fractalgd.core.allocator`): the next arrays fault no pages."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHURN = """
import resource
import numpy as np

def faults():  # minor page faults of 10 rounds of ten 3 MiB arrays, allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        arrays = [np.ones(3 << 17) for _ in range(10)]
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
default = faults()
from fractalgd.core.allocator import keep_freed_memory
took = keep_freed_memory()
faults()
print(default, took, faults())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_freed_arrays_are_reused_without_page_faults():
    """By default glibc trims the 30 MiB freed each round and the next round faults every page in
    again (7 680 pages of 4 KiB a round); kept, a round after the first faults (almost) none."""
    out = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, check=True).stdout.split()
    default, took, kept = int(out[0]), out[1] == "True", int(out[2])
    assert took
    assert default > 10 * 3000  # trimmed and faulted in again
    assert kept < 500
