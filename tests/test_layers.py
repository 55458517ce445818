"""The architecture as a test: layers as folders, imports only downwards, no import circles.

Every import of a fractalgd module counts, function-local ones included; only the CLI (the top)
may import anything lazily. Importing the package changes no global JAX setting.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fractalgd"

# Low to high: a module may import from its own layer and the layers before it.
LAYERS = [
    ("core",),
    ("analysis", "colour"),
    ("problems",),
    ("config",),
    ("engine",),
    ("pipeline",),
    ("output",),
    ("tiled",),
    ("studies",),
    ("explorer",),
    ("cli",),
]
RANK = {folder: rank for rank, group in enumerate(LAYERS) for folder in group}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every fractalgd module `path` imports (any depth of the syntax tree)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fractalgd"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fractalgd":
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            for alias in node.names:  # `from fractalgd.x import y` may import the module x.y
                if (PACKAGE.joinpath(*node.module.split(".")[1:], alias.name + ".py")).exists():
                    found.add(f"{node.module}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_module_sits_in_a_layer_folder():
    loose = [m for m in graph() if m not in ("fractalgd", "fractalgd.__main__") and layer(m) is None]
    assert not loose, f"modules outside the layer folders: {loose}"


def test_imports_point_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        here = layer(module)
        if here is None or here == "cli":
            continue
        for target in targets:
            there = layer(target)
            if there is None:
                wrong.append(f"{module} imports the package facade {target}")
            elif RANK[there] > RANK[here]:
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    imports = graph()
    edges = {m: {t for t in ts if t in imports and t != m} for m, ts in imports.items() if layer(m) != "cli"}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " → ".join(cycle)


def test_import_is_quiet_and_float64_still_works():
    """`import fractalgd` changes no JAX/XLA setting; a float64 render through the API works."""
    code = (
        "import os, jax, fractalgd; flags = os.environ.get('XLA_FLAGS', '');"
        "print(jax.config.jax_enable_x64, 'device_count' in flags);"
        "cfg = fractalgd.load_config(None, ['plane.resolution=[8,8]', 'gd.steps=20', 'gd.dtype=\"float64\"']);"
        "r = fractalgd.render(cfg); print(r.meta['dtype'], jax.config.jax_enable_x64)"
    )
    env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "float64", "False"]
