"""Sohl-Dickstein's network (anchors.md §1.2–1.6): where is a 2-layer net trainable?

    f(x) = W₁ᵀ φ(W₀ᵀx/√w)/w,   L(θ) = mean_n (f(x_n) − y_n)²,   W₀ ∈ R^{w×w}, W₁ ∈ R^{w}
    φ = tanh(√2·z) | √2·relu(z) | z,   W₀⁺ = W₀ − lr0·∇_{W₀}L,   W₁⁺ = W₁ − lr1·∇_{W₁}L

Mean-field scaling, no biases, width w = 16. Data X, Y ~ N(0, 1) and the initial weights ~ N(0, 1)
are drawn with his key sequence (PRNGKey(seed) split as in his notebook), the same for every
pixel. The bits depend on JAX's PRNG: `prng = "current"` draws with this JAX's defaults, `prng =
"sd2024"` with `jax_threefry_partitionable` off (the default until JAX 0.5, which his 2024 runs
used), switched on only around the draws. Number of points: the number of parameters w² + w = 272
(his rule; w for the identity net), or `points`. `batch` > 0 uses minibatches of that size drawn
with replacement, the same sequence for every pixel so images stay coherent: with "sd2024" his
own sequence (step t uses `split(PRNGKey(42), T)[t]`, his `train`), with "current"
`jax.random.fold_in(key(42), t)`. Planes: (lr0, lr1) on log10 axes, or (offset, lr) with the
offset added to W₀ before every step, as his notebook's `train_step` does (`offset_mode =
"every_step"`, the default; the loss is read at the shifted weights), or once at init (`"init"`).
His grids put the first and last pixel on the bounds: `plane.grid = "endpoints"`.

Two readouts: `measure = "classes"` (our classifier: converged, period, diverged, and
`trainable` — loss at T below the initial loss — with early exit), and `measure = "sd"`, his
convergence measure exactly: vₜ = L(θₜ) for t < T (non-finite → 1e6), normalized by v₀ and
clipped at 1e6; trainable ⇔ mean of the last 20 < 1; score −Σv (trainable) or Σ1/v. The state
carries his sums (the `score`, coloured as his `cdf_img`): over the finite losses, and the count
of non-finite ones, which all give the same v = min(1e6/v₀, 1e6). A run whose weights hold a
NaN has a NaN loss at every later step (NaN·0 is NaN: it reaches every residual, then every
weight), so it is decided there, and a block of such runs stops: its missing steps are counted
as non-finite (`sd_result`), exactly as running them would.

State: ((W₀ (w, w, pixels), W₁ (w, pixels)), (t, and his sums when measure = "sd": SD_SUMS of them)).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fractalgd.core.classes import COMMON_CLASSES, DIVERGED, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.core.jaxenv import with_x64
from fractalgd.problems.base import (
    POSITIVE,
    REAL,
    HasLoss,
    HasScore,
    Kernel,
    Problem,
    RecipeContext,
    check_choice,
    common_label,
    final_common_label,
)
from fractalgd.problems.features import HasFeatures

ACTIVATIONS = ("tanh", "relu", "identity")
MEASURES = ("classes", "sd")
CONVERGED, TRAINABLE = FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 1
CLASS_NAMES = (*COMMON_CLASSES, "converged", "trainable")
MAX_VAL = 1e6  # his clip value
WINDOW = 20  # his "last 20" losses
MINIBATCH_KEY = 42  # his PRNGKey(42)
PRNGS = ("current", "sd2024")
MAX_SD_TABLE = 1 << 22  # steps × batch indices of his minibatch sequence held as a table
MAX_POINTS = 100_000
SD_SUMS = 6  # v₀, Σv, Σ1/v, the last-20 Σv over finite losses; non-finite losses, all and in the last 20
INVARIANT_POINTS = 64  # the attractor invariant: the net's outputs on the first 64 data points


def default_points(width: int, activation: str) -> int:
    """His rule: as many points as parameters (w² + w), except w points for the identity net."""
    return width if activation == "identity" else width * width + width


@contextlib.contextmanager
def prng_bits(prng: str):
    """The PRNG setting of `prng` for the draws inside the block only (never a global switch)."""
    if prng == "sd2024":
        with jax.threefry_partitionable(False):
            yield
    else:
        yield


def _draws(width: int, points: int, seed):
    """His key sequence and draws (traced once: one compile, not one per draw)."""
    rng, sub = jax.random.split(jax.random.PRNGKey(seed))
    k0, k1 = jax.random.split(sub, 2)
    w0 = jax.random.normal(k0, (width, width), jnp.float64)
    w1 = jax.random.normal(k1, (width, 1), jnp.float64)
    rng, sub = jax.random.split(rng)
    x = jax.random.normal(sub, (points, width), jnp.float64)
    rng, sub = jax.random.split(rng)
    y = jax.random.normal(sub, (points, 1), jnp.float64)
    return w0, w1[:, 0], x, y[:, 0]


@functools.lru_cache(maxsize=16)
@with_x64  # his bits are float64 draws, whatever the caller's JAX setting
def instance(width: int, points: int, seed: int, prng: str = "current"):
    """(W₀, W₁, X, Y) in float64, with his notebook's key sequence."""
    with prng_bits(prng), jax.ensure_compile_time_eval():
        draws = jax.jit(_draws, static_argnums=(0, 1))(width, points, np.int64(seed))
        return tuple(np.asarray(a) for a in draws)


@functools.lru_cache(maxsize=8)
@with_x64
def sd_minibatches(steps: int, batch: int, points: int) -> np.ndarray:
    """His minibatch indices, (steps, batch) int32: step t draws randint(split(PRNGKey(42), T)[t])."""
    # prepare() runs under the engine's trace: draw the table now, as concrete numbers
    with prng_bits("sd2024"), jax.ensure_compile_time_eval():
        keys = jax.random.split(jax.random.PRNGKey(MINIBATCH_KEY), steps)
        draw = jax.vmap(lambda k: jax.random.randint(k, (batch,), 0, points))
        return np.asarray(draw(keys), dtype=np.int32)


def sd_measure(losses, max_val: float = MAX_VAL):
    """His `convergence_measure` on loss histories (..., T) → (trainable, score) (anchors.md §1.6).

    As documented there, non-finite losses count as max_val (his code multiplies them by 0,
    which gives NaN: see the report).
    """
    v = np.where(np.isfinite(losses), losses, max_val)
    v = np.minimum(v / v[..., :1], max_val)
    trainable = np.mean(v[..., -WINDOW:], axis=-1) < 1
    return trainable, np.where(trainable, -np.sum(v, axis=-1), np.sum(1 / v, axis=-1))


@dataclass(frozen=True)
class MLPKernel(Kernel):
    width: int
    activation: str
    points: int
    batch: int
    seed: int
    every_step_offset: bool
    sd_steps: int  # T when measure = "sd" (0 otherwise): the last-20 window starts at T − 20
    prng: str = "current"
    table_steps: int = 0  # > 0: minibatches from his sequence, a (table_steps, batch) index table
    # Pixels per block: a block's activations (n, w, block) stay in cache. Measured (width 16, 272
    # points): float32 fastest at 64; float64 at 32 (13.0 against 15.0 µs a pixel-step at 64).
    block: int = 64
    unroll = 1  # engine 64² × 500, interleaved runs (min): unroll 1 / 2 / 4 = 5.95 / 6.52 / 6.38 s

    def prepare(self, hyper):
        dtype = hyper["lr0"].dtype
        _, _, x, y = instance(self.width, self.points, self.seed, self.prng)
        # Xᵀ as its own contiguous constant: ∇W₀ = Xᵀ∂Z then reads it row by row (XLA:CPU's
        # product with a transposed operand ran at half the rate in float64).
        xt = np.ascontiguousarray(x.T)
        coeffs = {**hyper, "x": jnp.asarray(x, dtype), "xt": jnp.asarray(xt, dtype), "y": jnp.asarray(y, dtype)}
        if self.batch and self.table_steps:
            coeffs["batches"] = jnp.asarray(sd_minibatches(self.table_steps, self.batch, self.points))
        return coeffs

    def _phi(self, z):
        if self.activation == "tanh":
            return jnp.tanh(math.sqrt(2.0) * z)
        if self.activation == "relu":
            return math.sqrt(2.0) * jnp.maximum(z, 0)
        return z

    def residual(self, w0, w1, x, y):
        """f(x_n) − y_n for ONE run: W₀ (w, w), W₁ (w,), x (n, w) → (n,)."""
        z = jnp.matmul(x, w0, precision=lax.Precision.HIGHEST) / math.sqrt(self.width)
        return jnp.matmul(self._phi(z), w1, precision=lax.Precision.HIGHEST) / self.width - y

    def _dphi(self, z, h):
        """φ′(z), given h = φ(z)."""
        if self.activation == "tanh":
            return math.sqrt(2.0) * (1.0 - h * h)
        if self.activation == "relu":
            return jnp.where(z > 0, math.sqrt(2.0), 0.0).astype(z.dtype)
        return jnp.ones_like(z)

    def gradient(self, params, x, y, xt=None):
        """(∇_{W₀}L, ∇_{W₁}L) of the mean squared error on (x, y), and the residuals (n, P).

        The data are the same for every pixel, so the products with X are shared-data GEMMs over
        a whole block: Z = X·[W₀ of every pixel] is one (n × w)·(w × w·P) product, ∇W₀ = Xᵀ·∂Z
        another; the per-pixel parts (W₁, the activation) are elementwise over (n, w, P).
        `xt`: Xᵀ, contiguous (default x.T).
            z = XW₀/√w,  h = φ(z),  f = hᵀW₁/w,  r = f − y,  ∂f = 2r/n
            ∇W₁ = Σₙ ∂f·h/w,  ∂z = (∂f ⊗ W₁/w)·φ′(z),  ∇W₀ = Xᵀ∂z/√w
        """
        w0, w1 = params
        n, w = x.shape
        pixels = w0.shape[-1]
        z, h, r = self._forward(params, x, y)
        df = (2.0 / n) * r
        g1 = jnp.sum(df[:, None, :] * h, axis=0) / self.width
        dz = (df[:, None, :] * (w1[None] / self.width)) * self._dphi(z, h)
        xt = x.T if xt is None else xt
        g0 = jnp.matmul(xt, dz.reshape(n, w * pixels), precision=lax.Precision.HIGHEST).reshape(w, w, pixels)
        return (g0 / math.sqrt(self.width), g1), r

    def _forward(self, params, x, y):
        """(z, h, r), each (n, w, P) or (n, P), for the pixels of a block: Z = X·W₀/√w is one
        shared-data GEMM over all of them."""
        w0, w1 = params
        n, w = x.shape
        z = jnp.matmul(x, w0.reshape(w, -1), precision=lax.Precision.HIGHEST).reshape(n, w, -1) / math.sqrt(self.width)
        h = self._phi(z)
        return z, h, jnp.sum(h * w1[None], axis=1) / self.width - y[:, None]

    def block_loss(self, params, k):
        """L(θ) on the full data per pixel, as shared-data GEMMs over the block (the readouts, the
        features' loss and its Hessian-vector products: jax differentiates through the GEMMs,
        not through one tiny product per pixel). `residual` is the plain per-run form."""
        r = self._forward(params, k["x"], k["y"])[2]
        return jnp.mean(r * r, axis=0)

    def step(self, state, k):
        (w0, w1), acc = state
        t = acc[0]
        if self.every_step_offset:
            w0 = w0 + k["offset"]
        x, xt, y = k["x"], k["xt"], k["y"]
        if self.batch:
            # One draw per step for every pixel: all pixels of a run carry the same t.
            step = t.reshape(-1)[0].astype(jnp.int32)
            if self.table_steps:  # his sequence (clamped past its end)
                idx = lax.dynamic_index_in_dim(k["batches"], step, keepdims=False)
            else:
                key = jax.random.fold_in(jax.random.key(MINIBATCH_KEY), step)
                idx = jax.random.randint(key, (self.batch,), 0, self.points)
            x, xt, y = x[idx], xt[:, idx], y[idx]
        (g0, g1), r = self.gradient((w0, w1), x, y, xt)
        new = (w0 - k["lr0"] * g0, w1 - k["lr1"] * g1)
        if not self.sd_steps:
            return new, (t + 1,)
        # His readout: the full-batch loss at θ_t, before the update.
        value = jnp.mean(r * r, axis=0) if not self.batch else self.block_loss((w0, w1), k)
        finite = jnp.isfinite(value)
        value = jnp.where(finite, value, MAX_VAL)
        _, loss0, total, inverse, last, bad, bad_window = acc
        loss0 = jnp.where(t == 0, value, loss0)
        v = jnp.minimum(value / loss0, MAX_VAL)
        in_window = t >= self.sd_steps - WINDOW
        good = jnp.where(finite, v, 0)  # the non-finite ones are counted, and summed in sd_result
        sums = (total + good, inverse + jnp.where(finite, 1 / v, 0), last + jnp.where(in_window, good, 0))
        return new, (t + 1, loss0, *sums, bad + ~finite, bad_window + (in_window & ~finite))

    def theta(self, state):
        return state[0]  # (W₀, W₁); the step counter and his running sums are not parameters

    def with_theta(self, state, theta):
        return theta, state[1]

    def decided(self, state, history, k):
        if self.sd_steps:  # his measure needs every step's loss: decided once the rest are all NaN
            return (jnp.any(jnp.isnan(state[0][1]), axis=0),)
        return super().decided(state, history, k)

    def label(self, state, state0, tests, k):
        del state0, k
        if self.sd_steps:
            return self.sd_label(state[1])
        return common_label(tests, jnp.full(tests[0].shape, CONVERGED))

    def sd_result(self, acc):
        """(trainable, score) from the sums carried in the state after t steps: the T − t steps
        not run (a stopped block: its runs' weights hold a NaN) are non-finite losses."""
        t, loss0, total, inverse, last, bad, bad_window = acc
        window = min(WINDOW, self.sd_steps)
        bad = bad + (self.sd_steps - t)
        bad_window = bad_window + (self.sd_steps - jnp.maximum(t, self.sd_steps - window))
        v_bad = jnp.minimum(MAX_VAL / loss0, MAX_VAL)  # every non-finite loss's v
        trainable = (last + bad_window * v_bad) / window < 1
        return trainable, jnp.where(trainable, -(total + bad * v_bad), inverse + bad / v_bad)

    def sd_label(self, acc):
        trainable, _ = self.sd_result(acc)
        return jnp.where(trainable, TRAINABLE, DIVERGED).astype(jnp.int32)

    def final_label(self, state, history, state0, k):
        if self.sd_steps:
            return self.sd_label(state[1])
        params0 = state0[0]
        if self.every_step_offset:
            params0 = (params0[0] + k["offset"], params0[1])
        below = self.block_loss(state[0], k) < self.block_loss(params0, k)
        rest = final_common_label(state[0], tuple(h[0] for h in history))
        return jnp.where(below, TRAINABLE, rest).astype(jnp.int32)


@dataclass(frozen=True)
class MLPProblem(Problem, HasLoss, HasScore, HasFeatures):
    width: int
    activation: str
    points: int
    batch: int
    seed: int
    offset: float
    offset_mode: str
    measure: str
    steps: int
    eta: float
    prng: str = "current"
    dtype: str = "float32"  # gd.dtype: float64 blocks are half as wide (MLPKernel.block)

    kind = "mlp"
    run_values = ("eta", "offset")
    defaults = {
        "width": 16,
        "activation": "tanh",
        "points": 0,  # 0: his rule (#params, or width for the identity net)
        "batch": 0,  # 0: full batch
        "seed": 0,
        "offset": 0.0,
        "offset_mode": "every_step",  # his train_step: the offset is added before every step
        "prng": "current",  # "sd2024": his 2024 random bits (jax_threefry_partitionable off)
        "measure": "classes",
    }
    default_axes = ("lr0", "lr1")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> MLPProblem:
        check_choice(params, "activation", ACTIVATIONS)
        check_choice(params, "measure", MEASURES)
        check_choice(params, "offset_mode", ("init", "every_step"))
        check_choice(params, "prng", PRNGS)
        if params["prng"] == "sd2024" and params["batch"] and ctx.steps * params["batch"] > MAX_SD_TABLE:
            raise ConfigError(f"gd.steps: his minibatch sequence is held as a table, steps·batch at most {MAX_SD_TABLE}")
        width = params["width"]
        if not 1 <= width <= 256:
            raise ConfigError(f"problem.width: must be in 1..256, got {width}")
        points = params["points"] or default_points(width, params["activation"])
        if not 1 <= points <= MAX_POINTS or params["batch"] < 0 or params["batch"] > points:
            raise ConfigError(
                f"problem.points must be in 0..{MAX_POINTS} (0: automatic) and problem.batch in 0..points (0: full batch)"
            )
        if params["measure"] == "sd" and ctx.steps < 2:
            raise ConfigError("gd.steps: the sd measure needs at least 2 steps")
        if "lr" in ctx.axes and {"lr0", "lr1"} & set(ctx.axes):  # (equal axes are refused by the config already)
            raise ConfigError(f"plane.y.param: the axes '{ctx.axes[0]}' and '{ctx.axes[1]}' set the same learning rate")
        if ctx.base or ctx.dir1 or ctx.dir2:
            raise ConfigError("plane.base/dir1/dir2: not used by 'mlp' (its planes are lr0, lr1, lr, offset)")
        return cls(
            width, params["activation"], points, params["batch"], params["seed"], params["offset"],
            params["offset_mode"], params["measure"], ctx.steps, ctx.eta, params["prng"], ctx.dtype,
        )  # fmt: skip

    def coordinates(self) -> dict[str, str]:
        return {"lr0": POSITIVE, "lr1": POSITIVE, "lr": POSITIVE, "offset": REAL}

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def kernel(self) -> MLPKernel:
        sd_steps = self.steps if self.measure == "sd" else 0
        every = self.offset_mode == "every_step"
        table = self.steps if self.prng == "sd2024" and self.batch else 0
        block = 32 if self.dtype == "float64" else 64
        return MLPKernel(
            self.width, self.activation, self.points, self.batch, self.seed, every, sd_steps, self.prng, table, block
        )

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """((W₀ + offset at init, W₁), sums) per pixel; hyper {lr0, lr1, offset}."""
        size = next(iter(coords.values())).shape[0]
        w0, w1, _, _ = instance(self.width, self.points, self.seed, self.prng)
        offset = np.broadcast_to(coords.get("offset", self.offset), (size,))
        lr = coords.get("lr", self.eta)
        hyper = {
            "lr0": np.asarray(coords.get("lr0", lr), dtype),
            "lr1": np.asarray(coords.get("lr1", lr), dtype),
            "offset": np.asarray(offset if self.offset_mode == "every_step" else 0.0, dtype),
        }
        start = w0[..., None] + (offset if self.offset_mode == "init" else 0.0)
        params = (np.broadcast_to(start, (*w0.shape, size)).astype(dtype), np.repeat(w1[:, None], size, 1).astype(dtype))
        zeros = np.zeros(size, dtype)
        acc = (zeros,) + ((zeros,) * SD_SUMS if self.measure == "sd" else ())
        return (params, acc), hyper

    def loss(self, state, hyper):
        """L(θ) on the full data per pixel."""
        kernel = self.kernel
        return kernel.block_loss(kernel.theta(state), kernel.prepare(hyper))

    @with_x64
    def score(self, state) -> np.ndarray | None:
        """His signed score per pixel (measure = "sd"), else None."""
        if self.measure != "sd":
            return None
        _, score = self.kernel.sd_result(tuple(jnp.asarray(a) for a in state[1]))
        return np.asarray(score, dtype=np.float64)

    # --- limit features (fractalgd.problems.features) ---

    def feature_names(self) -> tuple[str, ...]:
        return ("score",) if self.measure == "sd" else ()

    def limit_features(self, state, hyper) -> dict:
        """His signed score (measure = "sd": −Σv if trainable, else Σ1/v)."""
        del hyper
        if self.measure != "sd":
            return {}
        return {"score": self.kernel.sd_result(state[1])[1]}

    def invariant(self, state):
        """f(x_n) on the first INVARIANT_POINTS data points: permuting hidden units (and, for tanh,
        flipping the signs of one unit's weights) leaves the net's function unchanged."""
        _, _, x, _ = instance(self.width, self.points, self.seed)
        w0 = state[0][0]
        count = min(self.points, INVARIANT_POINTS)
        x = jnp.asarray(x[:count], w0.dtype)
        # One shared-data GEMM over the block's pixels (a vmapped tiny product per pixel is slow on CPU).
        return self.kernel._forward(state[0], x, jnp.zeros(count, w0.dtype))[2]
