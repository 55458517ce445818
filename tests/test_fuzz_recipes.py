"""Fuzzing recipes: random mutations of every shipped config end in a valid Config or one ConfigError.

Never another exception, never a hang. A sample of the valid mutants renders at a tiny size, and a
few malformed command lines go through the CLI (one line on stderr, exit code 2, no traceback).
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path

import pytest

from fractalgd.config import ConfigError, config_from_dict, read_toml
from fractalgd.pipeline import render
from tests.helpers import in_a_process, run_cli

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.toml") if not p.name.startswith("sweep"))
NASTY = [
    0, -1, 1, 2, 3, 7, 2**31, 10**12, -(10**9), 2**63 - 1,
    0.0, -0.0, 1e-320, 1e308, -1e308, math.nan, math.inf, -math.inf, 0.5, -3.5,
    True, False, "", ".", "..", "../x", "/tmp/x", "a" * 5000, "custom", "subprocess:run", "float16", "log10",
    [], [1], [0, 0], [1, 2, 3], [math.nan, 1.0], [[1.0, 2.0], [3.0]], ["a", "b"], [2**40, 1], [10**9, 10**9],
    {}, {"x": 1.0}, {"kind": "custom", "loss": "subprocess:run"},
]  # fmt: skip


def leaves(raw: dict, prefix=()):
    """Every (path, value) of a recipe dict, tables included."""
    for key, value in raw.items():
        yield (*prefix, key), value
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))


def mutate(raw: dict, rng: random.Random) -> dict:
    raw = copy.deepcopy(raw)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p, _ in leaves(raw)]
        path = rng.choice(paths)
        node = raw
        for part in path[:-1]:
            node = node[part]
        action, old = rng.random(), node[path[-1]]
        if action < 0.4 and isinstance(old, (int, float)) and not isinstance(old, bool):
            node[path[-1]] = type(old)(old * rng.choice([0.5, 0.9, 1.1, 2])) if old else rng.choice([1, 0.5])
        elif action < 0.75:
            node[path[-1]] = copy.deepcopy(rng.choice(NASTY))
        elif action < 0.85:
            del node[path[-1]]
        else:
            node[rng.choice(["zz", "colour", path[-1] + "_"])] = copy.deepcopy(rng.choice(NASTY))
    return raw


def test_mutated_recipes_give_a_config_or_one_config_error():
    rng = random.Random(1234)
    bases = [read_toml(p) for p in CONFIGS]
    valid, refused, start = [], 0, time.perf_counter()
    for trial in range(600):
        raw = mutate(bases[trial % len(bases)], rng)
        try:
            config = config_from_dict(raw)
        except ConfigError as error:
            message = str(error)
            assert message and "\n" not in message.strip() and len(message) < 2000, message
            refused += 1
            continue
        valid.append(config)
    assert refused > 100 and len(valid) > 50  # the mutations do both
    assert time.perf_counter() - start < 120
    # A sample of the valid mutants renders (tiny), or is refused cleanly by its cost check.
    rendered = 0
    # At the shipped-recipe smoke size (tests.helpers.SMALL): a mutant whose kernel is the shipped
    # one runs the programs already compiled for test_cli's renders.
    for config in rng.sample(valid, 12):
        small = config.with_values({"plane.resolution": [8, 6], "gd.steps": min(config.gd.steps, 20)})
        result = render(small)
        assert result.labels.shape == (6, 8) and result.labels.max() < len(small.problem.class_names)
        rendered += 1
    assert rendered == 12


BAD_COMMAND_LINES = [
    ["render", "configs/p1-fig3.toml", "--set", "gd.steps=1000000000000"],
    ["render", "configs/p1-fig3.toml", "--set", "plane.resolution=[1000000000,1000000000]"],
    ["render", "configs/p1-fig3.toml", "--set", "plane.resolution=[1000000,1000000]"],
    ["render", "configs/p1-fig3.toml", "--set", "plane.resolution=[1099511627776,1]"],
    ["render", "configs/p1-fig3.toml", "--set", "name=../x"],
    ["render", "configs/p1-fig3.toml", "--set", 'name=""'],
    ["render", "configs/p1-fig3.toml", "--set", "gd.eta=nan"],
    ["render", "configs/p1-fig3.toml", "--set", "engine.unroll=100000"],
    ["render", "configs/p1-fig3.toml", "--set", "plane.base=[nan, 1.0]"],
    ["render", "configs/nope.toml"],
    ["render", "configs/p1-fig3.toml", "--set", "problem"],
    ["analyze", "configs/p1-fig3.toml"],
    ["trace", "configs/p1-fig3.toml", "--at", "nan,1"],
    ["sweep", "configs/p1-fig3.toml"],
    ["zoom", "configs/p1-fig3.toml"],
]


def check_bad_command_line(tmp_path, args, in_process):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if args[0] in ("render", "zoom", "sweep") else []
    start = time.perf_counter()
    result = run_cli([*args, *extra], in_process, cwd=ROOT)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr, result.stderr
    assert not out.exists() and time.perf_counter() - start < 60


@pytest.mark.parametrize("args", BAD_COMMAND_LINES)
def test_bad_command_lines_are_one_line_and_exit_2(tmp_path, args):
    check_bad_command_line(tmp_path, args, in_process=True)


@pytest.mark.parametrize("args", in_a_process([(a,) for a in BAD_COMMAND_LINES], keep=(4, 9, 11)))
def test_bad_command_lines_in_a_process_are_one_line_on_its_stderr(tmp_path, args):
    """Through `python -m fractalgd.cli` (test_safety runs the too-large requests so)."""
    check_bad_command_line(tmp_path, args, in_process=False)
