"""P5's compiled part: the SGD/GD step on a deep linear network, its decisions and rank readout.

See `fractalgd.problems.dln_sgd` for the mathematics; `dln_parts` for the sampler, schedules and
the rank. `product`, `entry_loss` and `full_loss` are the plain references the tests check the
hand-written gradients against.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.core.classes import DIVERGED, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.core.jaxenv import with_x64
from fractalgd.problems import dln_parts
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import Kernel, fixed_point_tests, tree_sq_dist, tree_sq_norm


@dataclass(frozen=True)
class Instance:
    target: np.ndarray  # A*, (d, d), rank target_rank, ‖A*‖₂ = 1
    rows: np.ndarray  # observed entries (i, j), int32, (|I|,) each
    cols: np.ndarray


@functools.lru_cache(maxsize=16)
def instance(d: int, target_rank: int, observed: float, seed: int) -> Instance:
    """A* and the observed set of `seed`."""
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((d, target_rank)) @ rng.standard_normal((target_rank, d))
    target /= np.linalg.norm(target, 2)
    mask = rng.random((d, d)) < observed
    rows, cols = np.nonzero(mask)
    return Instance(target, rows.astype(np.int32), cols.astype(np.int32))


def init_weights(d: int, depth: int, init_seed: int) -> np.ndarray:
    """G_ℓ/√d, (L, d, d), entries N(0, 1/d)."""
    return np.random.default_rng([init_seed, 3]).standard_normal((depth, d, d)) / np.sqrt(d)


@dataclass(frozen=True)
class DLNKernel(Kernel):
    """The compiled part of P5: sizes, the observed set, the sampler and the schedule."""

    d: int
    depth: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    target: tuple[float, ...]  # A*, row-major
    noise_seed: int = 0
    rank_tol: float = 1e-3
    batch: int = 1  # 0: full-batch GD
    schedule: str = "constant"
    switch: int = 1000
    eta_ratio: float = 1.0
    lam_ratio: float = 1.0
    rank_floor: float = 1e-6

    history = 2
    block = 256  # pixels per block: (d, d, block) states stay in cache (measured: 256 best, 1024 2× slower)
    carry_as_rows = True  # the layers as one carried array (engine.blocks._rows_packing): dln_sgd 1.26× faster
    # No unroll cap: with the step's factors materialized, unrolled steps are no longer one fusion
    # that recomputes them (engine 128²: unroll 1 / 2 / 4 = 1235 / 1128 / 1058 ms, labels equal;
    # again, interleaved runs, min: 1 / 2 / 4 / 8 = 1959 / 1765 / 1722 / 1695 ms on a slower host).
    unroll = 4

    def prepare(self, hyper):
        eta = hyper["eta"]
        dtype = eta.dtype
        target = jnp.asarray(np.asarray(self.target).reshape(self.d, self.d), dtype)
        mask = np.zeros((self.d, self.d))
        mask[list(self.rows), list(self.cols)] = 1.0
        zero = jnp.zeros((), dtype)
        noise, trial = hyper.get("noise", zero), hyper.get("trial", zero)
        return {
            "eta": eta,
            "lam": hyper["lam"],
            "noise": noise,
            "trial": trial,
            "hash_prefix": dln_parts.hash_prefix(self.noise_seed, jnp.floor(noise), jnp.floor(trial)),
            "target": target,
            "mask": jnp.asarray(mask / len(self.rows), dtype),  # 1/|I| on I: the GD baseline's residual weights
            "rows": jnp.asarray(self.rows),
            "cols": jnp.asarray(self.cols),
        }

    def rates(self, t, k):
        """(η_t, λ_t) per pixel from the schedule."""
        eta = k["eta"] * dln_parts.schedule_factor(self.schedule, t, self.switch, self.eta_ratio)
        lam = k["lam"] * dln_parts.schedule_factor(self.schedule, t, self.switch, self.lam_ratio)
        return eta, lam

    def entries(self, t, q, k):
        """(i, j) per pixel of draw q at step t."""
        width = t.shape[-1]
        noise = jnp.broadcast_to(jnp.floor(k["noise"]), (width,))
        trial = jnp.broadcast_to(jnp.floor(k["trial"]), (width,))
        pick = dln_parts.entry_index(self.noise_seed, noise, trial, t, q, len(self.rows))
        return k["rows"][pick], k["cols"][pick]

    def entry_onehots(self, t, q, k):
        """(e_i, e_j), (d, P) one-hot columns of draw q at step t, with no gather: the observed list
        is static, so e_i[a] is "pick is one of the entries in row a" (a gather per pixel and step
        is XLA:CPU's slowest op here)."""
        dtype = k["eta"].dtype
        pick = dln_parts.entry_index_from(k["hash_prefix"], t, q, len(self.rows))
        hits = [pick == m for m in range(len(self.rows))]

        def onehot(index):
            rows = []
            for a in range(self.d):
                members = [hits[m] for m, value in enumerate(index) if value == a]
                rows.append(functools.reduce(jnp.logical_or, members).astype(dtype) if members else jnp.zeros(pick.shape, dtype))
            return jnp.stack(rows)

        return onehot(self.rows), onehot(self.cols)

    def _entry_factors(self, ws, ei, ej, k):
        """∇_{W_ℓ} ½(A_ij − A*_ij)² = (r·b_ℓ) a_{ℓ−1}ᵀ per pixel, as the pairs (r·b_ℓ, a_{ℓ−1})
        (e_i, e_j: one-hot columns; b_{L} = e_i, a_0 = e_j)."""
        forward = [sm.matvec(ws[0], ej)]  # a_1 = W_1 e_j
        for w in ws[1:]:
            forward.append(sm.matvec(w, forward[-1]))
        backward = [sm.vecmat(ei, ws[-1])]  # b_{L−1} = e_iᵀ W_L
        for w in ws[-2:0:-1]:
            backward.insert(0, sm.vecmat(backward[0], w))
        target_ij = jnp.sum(ei * sm.matvec(k["target"][..., None], ej), axis=0)
        r = jnp.sum(ei * forward[-1], axis=0) - target_ij
        lefts = [r * (backward[layer] if layer < self.depth - 1 else ei) for layer in range(self.depth)]
        rights = [forward[layer - 1] if layer > 0 else ej for layer in range(self.depth)]
        return lefts, rights

    def _full_gradient(self, ws, k):
        """∇_{W_ℓ} C = (W_L⋯W_{ℓ+1})ᵀ R (W_{ℓ−1}⋯W_1)ᵀ with R = (A_θ − A*)∘M/|I|."""
        return sm.chain_gradients(ws, lambda a: (a - k["target"][..., None]) * k["mask"][..., None])

    def step(self, state, k):
        """θ ← (1 − ηλ)θ − η·g: g the mean of `batch` sampled entries' gradients, or (batch 0) of all of I."""
        ws, t = state
        eta, lam = self.rates(t, k)
        c = 1 - eta * lam
        if not self.batch:
            grads = self._full_gradient(ws, k)
            return tuple(c * w - eta * g for w, g in zip(ws, grads, strict=True)), t + 1
        # The factors of each rank-1 term are materialized, so the outer products read them
        # instead of recomputing the chain of products per matrix entry (sm.materialize).
        factors = []
        for q in range(self.batch):
            ei, ej = sm.materialize(self.entry_onehots(t, q, k))
            factors.append(self._entry_factors(ws, ei, ej, k))
        scale = eta / self.batch  # η/B folded into the left factors: the update is their sum
        scaled = [([scale * x for x in lefts], rights) for lefts, rights in factors]
        factors, c = sm.materialize((scaled, c))
        out = []
        for layer, w in enumerate(ws):
            update = functools.reduce(
                jnp.add, [lefts[layer][:, None] * rights[layer][None, :] for lefts, rights in factors]
            )
            out.append(c * w - update)
        return tuple(out), t + 1

    def decided(self, state, history, k):
        """(diverged, converged): SGD iterates stop only at exact fixed points (e.g. θ = 0); a fixed
        point counts only once the schedule is over (before, the step and ridge still change)."""
        del k
        ws, t = state
        (h1, _), (h2, _) = history
        diverged, converged, _ = fixed_point_tests(
            tree_sq_norm(ws), tree_sq_dist(ws, h1), tree_sq_dist(ws, h2), ws[0].dtype
        )
        if self.schedule != "constant":
            converged &= t >= self.switch
        return diverged, converged

    def theta(self, state):
        return state[0]  # the step counter t is not a parameter

    def with_theta(self, state, theta):
        return theta, state[1]

    def rank(self, ws):
        """#{σᵢ(A_θ) > rank_tol·σ₁(A_θ)} per pixel, 0 where σ₁ ≤ rank_floor (‖A*‖₂ = 1 sets the scale)."""
        product = ws[0]
        for w in ws[1:]:
            product = sm.matmul(w, product)
        finite = jnp.isfinite(tree_sq_norm(product))
        return dln_parts.relative_rank(jnp.where(finite, product, 0), self.rank_tol, self.rank_floor)

    def label(self, state, state0, tests, k):
        del state0, k
        diverged, _ = tests
        return jnp.where(diverged, DIVERGED, FIRST_PROBLEM_CLASS + self.rank(state[0])).astype(jnp.int32)

    def final_label(self, state, history, state0, k):
        del history, state0, k
        ws = state[0]
        finite = jnp.isfinite(tree_sq_norm(ws)) & (tree_sq_norm(ws) <= 1e12)
        return jnp.where(finite, FIRST_PROBLEM_CLASS + self.rank(ws), DIVERGED).astype(jnp.int32)


def product(ws):
    """A_θ = W_L⋯W_1 for one run (plain matrices)."""
    out = ws[0]
    for w in ws[1:]:
        out = w @ out
    return out


def entry_loss(ws, i, j, target, lam):
    """½(A_θ,ij − A*_ij)² + (λ/2)‖θ‖² for one run: the reference of the step's gradient."""
    r = product(ws)[i, j] - target[i, j]
    return 0.5 * r * r + 0.5 * lam * sum(jnp.sum(w * w) for w in ws)


def full_loss(ws, rows, cols, target, lam):
    """L_λ(θ) = (1/|I|) Σ_I ½(A_θ,ij − A*_ij)² + (λ/2)‖θ‖² for one run: the GD baseline's loss."""
    r = product(ws)[rows, cols] - target[rows, cols]
    return 0.5 * jnp.mean(r * r) + 0.5 * lam * sum(jnp.sum(w * w) for w in ws)


@functools.lru_cache(maxsize=8)
@with_x64
def gd_start(kernel: DLNKernel, init: tuple[float, ...], eta: float, lam: float, steps: int) -> np.ndarray:
    """The point full-batch GD reaches from `init` (flat, L·d² numbers) after `steps` steps (float64)."""
    gd = DLNKernel(kernel.d, kernel.depth, kernel.rows, kernel.cols, kernel.target, batch=0)
    ws = tuple(jnp.asarray(w[..., None]) for w in np.asarray(init).reshape(kernel.depth, kernel.d, kernel.d))
    coeffs = gd.prepare({"eta": jnp.asarray(eta, jnp.float64), "lam": jnp.asarray(lam, jnp.float64)})
    run = jax.jit(lambda s: jax.lax.fori_loop(0, steps, lambda _, x: gd.step(x, coeffs), s))
    end, _ = run((ws, jnp.zeros(1, jnp.float64)))
    out = np.stack([np.asarray(w)[..., 0] for w in end])
    if not np.all(np.isfinite(out)) or np.sum(out * out) > 1e12:
        raise ConfigError(
            f"problem.start: full-batch GD from the init diverged at start_eta = {eta} (take a smaller one)"
        )
    return out
