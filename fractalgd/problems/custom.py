"""Any JAX loss: `loss = "package.module:function"` plus a parameter template.

    θ⁺ = θ − η ∇L(θ; constants),   ∇ by `jax.grad`, vmapped over the pixels

The function takes one run's parameters as a dict of arrays shaped like the template, and the
`[problem.constants]` as keyword arguments, and returns a scalar. The template gives the shapes
and the base point θ₀; a plane sweeps a template entry (`x`, `w[1]`, `m[0,1]`), the seeded
directions `a`, `b` over the flat parameter vector, `eta`, or a constant — all traced, so new values
never recompile. Optional `minima` (flat vectors in template order) name the basins: a run that
converges within `min_tol`·(1 + ‖m‖) of minimum k is `min{k}`, any other fixed point `converged`.
See `configs/custom-example.toml` and `examples/losses.py`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.core.classes import COMMON_CLASSES, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError, UserCodeError
from fractalgd.core.jaxenv import with_x64
from fractalgd.problems.base import (
    POSITIVE,
    REAL,
    HasLoss,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    hyper_arrays,
    plane_vectors,
    tree_sq_dist,
)
from fractalgd.problems.features import HasFeatures

CONVERGED = FIRST_PROBLEM_CLASS
MAX_PARAMETERS = 4096
MAX_DISCOVERED = 32  # without `minima`: attractors named min0 … min31 after the render (by loss, then pixels)


def class_names(n_minima: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, "converged", *(f"min{k}" for k in range(n_minima)))


def load_function(spec: str):
    """`package.module:function` (importable, or from the working directory) or `path/file.py:function`."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError("expected 'package.module:function' or 'path/to/file.py:function'")
    if module_name.endswith(".py"):
        path = Path(module_name)
        spec_obj = importlib.util.spec_from_file_location(path.stem, path)
        if spec_obj is None or not path.is_file():
            raise FileNotFoundError(f"no file '{path}'")
        module = importlib.util.module_from_spec(spec_obj)
        spec_obj.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:  # console scripts do not put the working directory on the path
            sys.path.append(os.getcwd())
        module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AttributeError(f"'{module_name}' has no function '{attr}'")
    return fn


@dataclass(frozen=True)
class CustomKernel(Kernel):
    """The compiled part: the user's function, the template's names and shapes, the minima."""

    fn: object
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    minima: tuple[tuple[float, ...], ...]
    min_tol: float

    def _loss(self, params, consts):
        return call_user_loss(self.fn, params, consts)

    def step(self, state, k):
        consts = {name: v for name, v in k.items() if name != "eta"}
        axes = {name: (0 if jnp.ndim(v) else None) for name, v in consts.items()}
        grad = jax.vmap(jax.grad(self._loss), in_axes=(-1, axes), out_axes=-1)(state, consts)
        return {name: state[name] - k["eta"] * grad[name] for name in self.names}

    def converged_label(self, state, state0, k):
        """`min{k}` within min_tol·(1 + ‖m‖) of listed minimum k, else `converged`."""
        del state0, k
        converged_label = jnp.full(state[self.names[0]].shape[-1:], CONVERGED, jnp.int32)
        for index, minimum in enumerate(self.minima):
            point = unflatten(np.asarray(minimum), self.names, self.shapes)
            target = {n: jnp.asarray(v, state[n].dtype)[..., None] for n, v in point.items()}
            near = tree_sq_dist(state, target) < self.min_tol**2 * (1 + float(np.dot(minimum, minimum)))
            converged_label = jnp.where(near, FIRST_PROBLEM_CLASS + 1 + index, converged_label)
        return converged_label


def unflatten(flat: np.ndarray, names, shapes) -> dict[str, np.ndarray]:
    """Flat vector(s) (size, ...) → dict name → (*shape, ...), in template order."""
    out, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape, dtype=int))
        out[name] = flat[start : start + size].reshape(tuple(shape) + flat.shape[1:])
        start += size
    return out


def coordinate_names(names, shapes) -> list[str]:
    """Plane coordinates of the template entries, in flat order: `x`, `w[0]`, `m[0,1]`."""
    out = []
    for name, shape in zip(names, shapes, strict=True):
        out += [name] if not shape else [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]
    return out


def _template(raw) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...], np.ndarray]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("problem.params: expected a table of parameters, e.g. params = {x = -1.0, y = 2.0}")
    names, shapes, values = [], [], []
    for name, value in raw.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if array is None or array.ndim > 2 or not np.all(np.isfinite(array)) or isinstance(value, bool):
            raise ConfigError(f"problem.params.{name}: expected a number or a (nested) list of numbers, got {value!r}")
        names.append(name)
        shapes.append(array.shape)
        values.append(array.ravel())
    return tuple(names), tuple(shapes), np.concatenate(values)


@dataclass(frozen=True)
class CustomProblem(Problem, HasLoss, HasFeatures):
    fn: object
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    plane_init: PlaneInit  # θ0 = template (or plane.base) + a·D1 + b·D2; template entries set by the plane
    constants: tuple[tuple[str, float], ...]
    minima: tuple[tuple[float, ...], ...]
    min_tol: float
    eta: float

    kind = "custom"
    run_values = ("eta",)
    defaults = {"loss": "", "params": {}, "constants": {}, "minima": [], "min_tol": 1e-3}
    default_axes = ("a", "b")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> CustomProblem:
        """Import the loss, check it on the template (a scalar, differentiable), build the problem."""
        spec = params["loss"]
        if not spec:
            raise ConfigError("problem.loss: missing; give 'package.module:function' (see configs/custom-example.toml)")
        names, shapes, base = _template(params["params"])
        constants = params["constants"]
        if not isinstance(constants, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in constants.values()
        ):
            raise ConfigError(f"problem.constants: expected a table of numbers, got {constants!r}")
        fn = _import_loss(spec)
        _check_on_template(fn, spec, unflatten(base, names, shapes), constants)
        size = base.size
        if size > MAX_PARAMETERS:
            raise ConfigError(f"problem.params: at most {MAX_PARAMETERS} numbers in the template, got {size}")
        minima = params["minima"]
        for index, minimum in enumerate(minima):
            if not isinstance(minimum, list) or len(minimum) != size:
                raise ConfigError(f"problem.minima[{index}]: needs {size} numbers (the template, flattened)")
        if not params["min_tol"] > 0:
            raise ConfigError(f"problem.min_tol: must be > 0, got {params['min_tol']}")
        base, dir1, dir2 = plane_vectors(ctx, size, "the template's size (flattened)", base_default=base.tolist())
        entries = tuple((name, (i,)) for i, name in enumerate(coordinate_names(names, shapes)))
        return cls(
            fn, names, shapes, PlaneInit(base, dir1, dir2, entries=entries),
            tuple((n, float(v)) for n, v in constants.items()),
            tuple(tuple(float(v) for v in m) for m in minima), params["min_tol"], ctx.eta,
        )  # fmt: skip

    def coordinates(self) -> dict[str, str]:
        entries = dict.fromkeys(coordinate_names(self.names, self.shapes), REAL)
        return entries | {"a": REAL, "b": REAL, "eta": POSITIVE} | dict.fromkeys(dict(self.constants), REAL)

    @property
    def class_names(self) -> tuple[str, ...]:
        """With `minima`: min{k} names their basins. Without: min0 … min{MAX_DISCOVERED−1} are the
        attractors found after the render (`discovers_minima`); a render keeps the names it found."""
        return class_names(len(self.minima) if self.minima else MAX_DISCOVERED)

    @property
    def discovers_minima(self) -> bool:
        """No `minima` listed: converged pixels are named by the attractors found after the render."""
        return not self.minima

    @property
    def kernel(self) -> CustomKernel:
        return CustomKernel(self.fn, self.names, self.shapes, self.minima, self.min_tol)

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """θ₀ = template (or plane.base) + a·D1 + b·D2, entries set by the plane; hyper {eta, constants}."""
        theta = self.plane_init.theta(coords)
        state = {n: v.astype(dtype) for n, v in unflatten(theta, self.names, self.shapes).items()}
        return state, hyper_arrays(coords, {"eta": self.eta, **dict(self.constants)}, dtype)

    def loss(self, state, hyper):
        consts = {name: jnp.asarray(v) for name, v in hyper.items() if name != "eta"}
        axes = {name: (0 if jnp.ndim(v) else None) for name, v in consts.items()}
        return jax.vmap(self.kernel._loss, in_axes=(-1, axes))(state, consts)

    # --- limit features (fractalgd.problems.features): θ is the invariant, grouped to min_tol ---

    def flat_theta(self, state):
        """θ flattened in template order (the order of `minima`), (size, pixels)."""
        return jnp.concatenate([state[n].reshape(-1, state[n].shape[-1]) for n in self.names], axis=0)

    def attractor_tol(self) -> float:
        return self.min_tol


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"it tried to exit (SystemExit: {error.code!r})"
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def call_user_loss(fn, params, consts):
    """The user's loss; anything it raises (an exit included) becomes one UserCodeError naming it."""
    try:
        return fn(params, **consts)
    except UserCodeError:
        raise
    except (Exception, SystemExit) as error:
        name = getattr(fn, "__qualname__", repr(fn))
        raise UserCodeError(f"problem.loss: '{name}' failed while rendering: {_describe(error)}") from None


def _import_loss(spec: str):
    try:
        return load_function(spec)
    except (Exception, SystemExit) as error:  # any import failure is the user's input: one line
        raise UserCodeError(f"problem.loss: cannot import '{spec}': {_describe(error)}") from None


@with_x64
def _check_on_template(fn, spec: str, template: dict, constants: dict) -> None:
    """The loss must return a float scalar on the template and be differentiable there."""
    template = {n: jnp.asarray(v) for n, v in template.items()}
    consts = {n: jnp.asarray(float(v)) for n, v in constants.items()}
    try:
        value = fn(template, **consts)
        shape = jnp.shape(value)
        if shape == ():
            jax.grad(lambda p: fn(p, **consts))(template)
    except (Exception, SystemExit) as error:
        raise UserCodeError(f"problem.loss: '{spec}' failed on the parameter template: {_describe(error)}") from None
    if shape != () or not jnp.issubdtype(jnp.result_type(value), jnp.floating):
        raise ConfigError(f"problem.loss: '{spec}' must return a float scalar, got shape {shape}")
