"""Example losses for `[problem] kind = "custom"` (see configs/custom-example.toml).

A custom loss takes one run's parameters as a dict of JAX arrays shaped like the recipe's
`params` template, and the recipe's `[problem.constants]` as keyword arguments; it returns a
scalar. fractalgd differentiates it with `jax.grad` and vmaps it over the pixels.
"""

import jax.numpy as jnp


def himmelblau(p, a=11.0, b=7.0):
    """(x² + y − a)² + (x + y² − b)²: four minima for a = 11, b = 7, e.g. (3, 2)."""
    x, y = p["x"], p["y"]
    return (x * x + y - a) ** 2 + (x + y * y - b) ** 2


def two_layer_scalar(p, target=1.0):
    """½(w₂ᵀw₁ − target)² for w₁, w₂ ∈ R^d: P1's λ = 0 problem written as a user loss."""
    return 0.5 * (jnp.dot(p["w2"], p["w1"]) - target) ** 2
