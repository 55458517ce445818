"""P5's parts: the SGD entry sampler, the η/λ schedules and the relative rank readout.

Sampler. Step t of a run draws `batch` observed entries uniformly, with replacement, by a
counter-based hash of (noise seed, the pixel's noise coordinates, t, q) for q < batch: no state,
the same draw wherever the pixel runs (any block, tile or device), and every pixel with the same
noise coordinates sees the same sequence. The hash is MurmurHash3's 32-bit finalizer chained over
the words; the index is the hash modulo the number of observed entries (bias below
count/2³² ≤ 6·10⁻⁸).

Schedules. η_t = η·f_η(t) and λ_t = λ·f_λ(t) with f(0) = 1:
- "constant": f = 1;
- "step": f = 1 for t < switch, then the ratio (`eta_ratio`, `lam_ratio`);
- "exponential": f = ratio^(min(t, switch)/switch), a geometric anneal from 1 to the ratio over
  the first `switch` steps, constant afterwards.

Rank. #{σᵢ(A) > tol·σ₁(A)}, and 0 when σ₁(A) ≤ floor: relative to the matrix itself, so a run
whose every singular value decays together is not counted as full rank. σ₁² comes from
(tr G^32)^(1/32) with G = AᵀA, which lies in [σ₁², m^(1/32)·σ₁²] (at most 5.2 % high for m = 5),
and the count from Sylvester's law of inertia on G − (tol·σ₁)²I; no eigensolver, elementwise
over pixels.
"""

from __future__ import annotations

import jax.numpy as jnp

from fractalgd.problems import smallmat as sm

SCHEDULES = ("constant", "step", "exponential")
_WORDS = (0x9E3779B9, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1)
POWER_SQUARINGS = 5  # σ₁² from tr(G^(2^5)): at most m^(1/32) high


def _fmix(h):
    """MurmurHash3's 32-bit finalizer (uint32 → uint32, a bijection with full avalanche)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _word(x):
    """An integer-valued float or int array (or Python int) as uint32 words (two's complement)."""
    return jnp.asarray(x).astype(jnp.int32).astype(jnp.uint32)


def _chain(h, words):
    """h with each (word, salt) mixed in turn: the finalizer over h ^ word·salt."""
    for word, salt in words:
        h = _fmix(h ^ (_word(word) * jnp.uint32(salt)))
    return h


def hash_prefix(noise_seed: int, n1, n2):
    """The hash chain over (noise seed, n1, n2): fixed for a run, so computed once per block."""
    return _chain(_fmix(_word(noise_seed) ^ jnp.uint32(_WORDS[0])), ((n1, _WORDS[1]), (n2, _WORDS[2])))


def entry_index(noise_seed: int, n1, n2, t, q: int, count: int):
    """Index into the observed list (int32 per pixel) of draw q at step t."""
    return entry_index_from(hash_prefix(noise_seed, n1, n2), t, q, count)


def entry_index_from(prefix, t, q: int, count: int):
    """`entry_index` from the run's `hash_prefix`: the chain continued over (t, q), modulo count."""
    return (_chain(prefix, ((t, _WORDS[3]), (q, _WORDS[4]))) % jnp.uint32(count)).astype(jnp.int32)


def schedule_factor(kind: str, t, switch: int, ratio: float):
    """f(t) of the schedule `kind` (see the module docstring), as an array like t."""
    if kind == "constant" or ratio == 1.0:
        return jnp.ones_like(t)
    if kind == "step":
        return jnp.where(t < switch, 1.0, ratio).astype(t.dtype)
    return jnp.power(jnp.asarray(ratio, t.dtype), jnp.minimum(t, switch) / switch)


def top_eigenvalue_bound(g):
    """(tr g^(2^k))^(1/2^k) for symmetric PSD g (m, m, P): in [λ_max, m^(1/2^k)·λ_max], k = POWER_SQUARINGS.

    Each squaring is renormalized by its trace, so nothing over- or underflows; g = 0 gives 0.
    """
    m = g.shape[0]
    trace = sum(g[i, i] for i in range(m))
    safe = jnp.where(trace > 0, trace, 1.0)
    h = g / safe
    log_est = jnp.log(safe)
    for j in range(1, POWER_SQUARINGS + 1):
        h = sm.matmul(h, h)
        tj = sum(h[i, i] for i in range(m))
        tj = jnp.where(tj > 0, tj, 1.0)
        h = h / tj
        log_est = log_est + jnp.log(tj) / 2**j
    return jnp.where(trace > 0, jnp.exp(log_est), 0.0)


def relative_rank(a, tol: float, floor: float):
    """#{σᵢ(a) > tol·σ₁(a)} per pixel for a (n, m, P), 0 where σ₁(a) ≤ floor (int32)."""
    g = sm.matmul_tn(a, a)
    largest = top_eigenvalue_bound(g)  # ≈ σ₁², at most 5 % high for m ≤ 5
    count = sm.count_above(g, tol * tol * largest)
    return jnp.where(largest > floor * floor, count, 0).astype(jnp.int32)
