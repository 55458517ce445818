"""Do the tests catch a wrong labelling formula? Apply each mutation to a temporary copy and run the tests.

    .venv/bin/python benchmarks/mutation_check.py            # every mutation, its own test file
    .venv/bin/python benchmarks/mutation_check.py --all      # every mutation, the whole suite
    .venv/bin/python benchmarks/mutation_check.py scalar-swap deep-threshold

Each mutation is one exact text replacement (found exactly once, or the script stops: a mutation
that no longer applies must be rewritten, never skipped). A mutation is killed when pytest fails
on the mutated copy; the script exits 1 if any survives. The working tree is never changed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, original text, mutated text, tests that must catch it)
MUTATIONS = {
    "scalar-swap": (
        "fractalgd/problems/scalar.py",
        "jnp.where(nearest, NEAREST, FARTHEST)",
        "jnp.where(nearest, FARTHEST, NEAREST)",
        ["tests/test_scalar.py"],
    ),
    "scalar-ignore-negative-y": (
        "fractalgd/problems/scalar.py",
        "use_a = y >= 0",
        "use_a = y == y",
        ["tests/test_scalar.py"],
    ),
    "matrix-min-loss-half-lam2": (
        "fractalgd/problems/matrix.py",
        "lam * s - 0.5 * lam * lam",
        "lam * s - lam * lam",
        ["tests/test_matrix.py"],
    ),
    "matrix-column-swap": (
        "fractalgd/problems/matrix.py",
        "farthest = (dot <= 0)",
        "farthest = (dot > 0)",
        ["tests/test_matrix.py"],
    ),
    "deep-threshold-not-squared": (
        "fractalgd/problems/deep.py",
        "self.rank_sigma() ** 2, self.rank_at_T",
        "self.rank_sigma(), self.rank_at_T",
        ["tests/test_deep.py"],
    ),
    "sensing-recovered-by-fit": (
        "fractalgd/problems/sensing.py",
        "jnp.where(rel < self.tol, RECOVERED, jnp.where(fit",
        "jnp.where(fit < self.tol, RECOVERED, jnp.where(fit",
        ["tests/test_sensing.py"],
    ),
    "sgd-sampler-entry-0": (
        "fractalgd/problems/dln_parts.py",
        "% jnp.uint32(count)",
        "% jnp.uint32(1)",
        ["tests/test_dln_sgd.py"],
    ),
    "mlp-offset-once": (
        "fractalgd/problems/mlp.py",
        'w0 = w0 + k["offset"]',
        "w0 = w0",
        ["tests/test_mlp_notebook.py"],
    ),
}


def copy_tree(dest: Path) -> None:
    for name in ("fractalgd", "tests", "configs"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def mutate(dest: Path, path: str, old: str, new: str) -> None:
    file = dest / path
    text = file.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"mutation target not found exactly once in {path}: {old!r} (rewrite the mutation)")
    file.write_text(text.replace(old, new))


def run_one(name: str, whole_suite: bool) -> tuple[bool, str, float]:
    path, old, new, tests = MUTATIONS[name]
    with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as tmp:
        dest = Path(tmp)
        copy_tree(dest)
        mutate(dest, path, old, new)
        # the copy comes first on sys.path (python -m pytest adds the cwd), ahead of the editable install
        check = subprocess.run([sys.executable, "-c", "import fractalgd; print(fractalgd.__file__)"], cwd=dest,
                               capture_output=True, text=True)  # fmt: skip
        if not check.stdout.strip().startswith(str(dest)):
            raise SystemExit(f"the mutated copy is not the one imported: {check.stdout.strip()} {check.stderr[-300:]}")
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *([] if whole_suite else tests)]
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
        failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
        return proc.returncode != 0, (failed[0] if failed else proc.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"mutations to run (default all): {', '.join(MUTATIONS)}")
    parser.add_argument("--all", action="store_true", help="run the whole suite on each mutant")
    args = parser.parse_args()
    unknown = set(args.names) - set(MUTATIONS)
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    survived = []
    for name in args.names or MUTATIONS:
        killed, detail, seconds = run_one(name, args.all)
        print(f"{'killed  ' if killed else 'SURVIVED'} {name:28s} {seconds:6.1f} s  {detail}", flush=True)
        if not killed:
            survived.append(name)
    print(f"{len(survived)} survived" + (f": {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
