"""Layer 10: the `fractalgd` command line (typer): parse, load the recipe, call the library, report."""

from fractalgd.cli.app import app, main

__all__ = ["app", "main"]
