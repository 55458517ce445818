"""Several processes (or hosts) sharing one tiled render or sweep: who am I, how many are we.

Work is split by a fixed rule, not a scheduler: item k (a tile in row-major order, or a sweep
point) belongs to process k mod P. Every process writes its items as atomic files into the same
output directory, so there is nothing to clobber, and a rerun with any P redoes only what is
missing.

Process discovery, in order (`initialize`):

1. `FRACTALGD_COORDINATOR=host:port` with `FRACTALGD_NUM_PROCESSES` and `FRACTALGD_PROCESS_ID`:
   `jax.distributed.initialize` with these values (process 0 serves the coordinator).
2. SLURM (`SLURM_JOB_ID` set and `SLURM_NTASKS` > 1): `jax.distributed.initialize()`, which reads
   the coordinator, process count and id from SLURM itself.
3. Otherwise one process (index 0 of 1).

`FRACTALGD_DISTRIBUTED=0` skips `jax.distributed` and takes the index and count from the
variables above alone (`FRACTALGD_PROCESS_ID`/`SLURM_PROCID`, `FRACTALGD_NUM_PROCESSES`/
`SLURM_NTASKS`): the split needs no communication, only distinct ids. Each process computes on its
own local devices only (`jax.local_devices()`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_COORDINATOR = "FRACTALGD_COORDINATOR"
ENV_NUM_PROCESSES = "FRACTALGD_NUM_PROCESSES"
ENV_PROCESS_ID = "FRACTALGD_PROCESS_ID"
ENV_DISTRIBUTED = "FRACTALGD_DISTRIBUTED"


class DistributedError(ValueError):
    """Inconsistent process settings; the message names the variable."""


@dataclass(frozen=True)
class ProcessInfo:
    index: int = 0
    count: int = 1
    via: str = "single"  # "single", "env", "jax.distributed (env)", "jax.distributed (slurm)"

    def share(self, n_items: int) -> list[int]:
        """This process's items among 0..n_items−1: k with k mod count = index."""
        return list(range(self.index, n_items, self.count))


_STATE: dict[str, ProcessInfo] = {}


def _env_int(name: str, fallback: str | None = None, default: int | None = None) -> int | None:
    text = os.environ.get(name) or (os.environ.get(fallback) if fallback else None)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise DistributedError(f"{name}: expected an integer, got '{text}'") from None


def detect() -> ProcessInfo:
    """The process index and count from the environment alone (no communication)."""
    count = _env_int(ENV_NUM_PROCESSES, "SLURM_NTASKS", 1)
    index = _env_int(ENV_PROCESS_ID, "SLURM_PROCID", 0)
    if count < 1 or not 0 <= index < count:
        raise DistributedError(f"{ENV_PROCESS_ID}={index} is not in 0..{ENV_NUM_PROCESSES}−1 = {count - 1}")
    return ProcessInfo(index, count, "env" if count > 1 else "single")


def initialize() -> ProcessInfo:
    """Join the process group if the environment names one (idempotent); see the module docstring.

    Must run before the first JAX computation of the process.
    """
    if "info" in _STATE:
        return _STATE["info"]
    info = detect()
    use_jax = os.environ.get(ENV_DISTRIBUTED, "1") not in ("0", "false", "no")
    coordinator = os.environ.get(ENV_COORDINATOR)
    slurm = "SLURM_JOB_ID" in os.environ and info.count > 1 and coordinator is None
    if use_jax and (coordinator or slurm):
        import jax

        if coordinator:
            jax.distributed.initialize(coordinator_address=coordinator, num_processes=info.count, process_id=info.index)
        else:
            jax.distributed.initialize()
        via = f"jax.distributed ({'env' if coordinator else 'slurm'})"
        info = ProcessInfo(jax.process_index(), jax.process_count(), via)
    _STATE["info"] = info
    return info


def current() -> ProcessInfo:
    """The process group joined by `initialize`, or the environment's if it was not called."""
    return _STATE.get("info") or detect()
