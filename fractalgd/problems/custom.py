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

from fractalgd.problems.base import (
    COMMON_CLASSES,
    FIRST_PROBLEM_CLASS,
    add_directions,
    check_axes,
    common_label,
    final_common_label,
    orthonormal_directions,
    period_tests,
    tree_sq_dist,
)

KIND = "custom"
PARAMS = {"loss": "", "params": {}, "constants": {}, "minima": [], "min_tol": 1e-3}
DEFAULT_AXES = ("a", "b")
CONVERGED = FIRST_PROBLEM_CLASS


def class_names(n_minima: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, "converged", *(f"min{k}" for k in range(n_minima)))


CLASS_NAMES = class_names(0)


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
class CustomKernel:
    """The compiled part: the user's function, the template's names and shapes, the minima."""

    fn: object
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    minima: tuple[tuple[float, ...], ...]
    min_tol: float

    history = 4

    def prepare(self, hyper):
        return dict(hyper)

    def _loss(self, params, consts):
        return self.fn(params, **consts)

    def step(self, state, k):
        consts = {name: v for name, v in k.items() if name != "eta"}
        axes = {name: (0 if jnp.ndim(v) else None) for name, v in consts.items()}
        grad = jax.vmap(jax.grad(self._loss), in_axes=(-1, axes), out_axes=-1)(state, consts)
        return {name: state[name] - k["eta"] * grad[name] for name in self.names}

    def decided(self, state, history, k):
        del k
        return period_tests(state, history, state[self.names[0]].dtype)

    def label(self, state, state0, tests, k):
        del state0, k
        converged_label = jnp.full(tests[0].shape, CONVERGED, jnp.int32)
        for index, minimum in enumerate(self.minima):
            point = unflatten(np.asarray(minimum), self.names, self.shapes)
            target = {n: jnp.asarray(v, state[n].dtype)[..., None] for n, v in point.items()}
            near = tree_sq_dist(state, target) < self.min_tol**2 * (1 + float(np.dot(minimum, minimum)))
            converged_label = jnp.where(near, FIRST_PROBLEM_CLASS + 1 + index, converged_label)
        return common_label(tests, converged_label)

    def final_label(self, state, history, state0, k):
        del state0, k
        return final_common_label(state, history)


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


@dataclass(frozen=True)
class CustomProblem:
    fn: object
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    base: tuple[float, ...]
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]
    constants: tuple[tuple[str, float], ...]
    minima: tuple[tuple[float, ...], ...]
    min_tol: float
    eta: float

    kind = KIND

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(len(self.minima))

    @property
    def kernel(self) -> CustomKernel:
        return CustomKernel(self.fn, self.names, self.shapes, self.minima, self.min_tol)

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """θ₀ = template (or plane.base) + a·D1 + b·D2, entries set by the plane; hyper {eta, constants}."""
        size = next(iter(coords.values())).shape[0]
        theta = np.repeat(np.asarray(self.base, dtype=np.float64)[:, None], size, 1)
        theta = add_directions(theta, coords, self.dir1, self.dir2)
        for index, name in enumerate(coordinate_names(self.names, self.shapes)):
            if name in coords:
                theta[index] = coords[name]
        state = {n: v.astype(dtype) for n, v in unflatten(theta, self.names, self.shapes).items()}
        fixed = {"eta": self.eta, **dict(self.constants)}
        return state, {n: np.asarray(coords.get(n, v), dtype=dtype) for n, v in fixed.items()}


def _template(raw) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...], np.ndarray]:
    from fractalgd.config import ConfigError

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


def build(params: dict, gd: dict, plane: dict, view) -> CustomProblem:
    """Import the loss, check it on the template (a scalar, differentiable), build the problem."""
    from fractalgd.config import ConfigError

    spec = params["loss"]
    if not spec:
        raise ConfigError("problem.loss: missing; give 'package.module:function' (see configs/custom-example.toml)")
    names, shapes, base = _template(params["params"])
    constants = params["constants"]
    if not isinstance(constants, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in constants.values()
    ):
        raise ConfigError(f"problem.constants: expected a table of numbers, got {constants!r}")
    try:
        fn = load_function(spec)
    except Exception as error:  # any import failure is the user's input: one line
        raise ConfigError(f"problem.loss: cannot import '{spec}': {type(error).__name__}: {error}") from None
    template = {n: jnp.asarray(v) for n, v in unflatten(base, names, shapes).items()}
    consts = {n: jnp.asarray(float(v)) for n, v in constants.items()}
    try:
        value = fn(template, **consts)
        shape = jnp.shape(value)
        if shape == ():
            jax.grad(lambda p: fn(p, **consts))(template)
    except Exception as error:
        message = " ".join(f"{type(error).__name__}: {error}".split())
        raise ConfigError(f"problem.loss: '{spec}' failed on the parameter template: {message[:300]}") from None
    if shape != () or not jnp.issubdtype(jnp.result_type(value), jnp.floating):
        raise ConfigError(f"problem.loss: '{spec}' must return a float scalar, got shape {shape}")

    size = base.size
    coords = coordinate_names(names, shapes)
    allowed = (*coords, "a", "b", "eta", *constants)
    check_axes(view, KIND, allowed)
    for key in ("base", "dir1", "dir2"):
        if plane[key] and len(plane[key]) != size:
            raise ConfigError(f"plane.{key}: needs {size} numbers (the template, flattened), got {len(plane[key])}")
    minima = params["minima"]
    for index, minimum in enumerate(minima):
        if not isinstance(minimum, list) or len(minimum) != size:
            raise ConfigError(f"problem.minima[{index}]: needs {size} numbers (the template, flattened)")
    if not params["min_tol"] > 0:
        raise ConfigError(f"problem.min_tol: must be > 0, got {params['min_tol']}")
    seeded = orthonormal_directions(size, plane["seed"]) if size > 1 else (np.ones(1), np.ones(1))
    return CustomProblem(
        fn,
        names,
        shapes,
        tuple(plane["base"] or base.tolist()),
        tuple(plane["dir1"] or seeded[0]),
        tuple(plane["dir2"] or seeded[1]),
        tuple((n, float(v)) for n, v in constants.items()),
        tuple(tuple(float(v) for v in m) for m in minima),
        params["min_tol"],
        gd["eta"],
    )
