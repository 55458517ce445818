"""Layer 0: what every other layer may use — errors, class ids, the plane and its views, precision, JAX scoping."""
