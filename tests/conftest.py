import fractalgd  # noqa: F401  (configures the XLA host devices before jax is imported)
