"""The `fractalgd` command line: parse, load the recipe, call the library, report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Basins of attraction of gradient descent.")
err = Console(stderr=True)

ConfigArg = Annotated[Path | None, typer.Argument(help="TOML recipe (default: configs/default.toml).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set gd.eta=0.5 (repeatable).")]


def fail(message: str) -> typer.Exit:
    """One line on stderr, exit code 2 (a usage error, as click uses)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@contextlib.contextmanager
def progress_bar(description: str):
    """A rich progress bar with ETA; yields `update(done, total)`."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    columns += (TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command("render")
def render_cli(
    config: ConfigArg = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: outputs/NAME).")] = None,
    set_: SetOpt = None,
) -> None:
    """Render a basin image: image.png, labels.npy, steps.npy, meta.json."""
    from fractalgd.config import ConfigError, load_config
    from fractalgd.io import save_render
    from fractalgd.pipeline import render

    try:
        cfg = load_config(config, set_ or [])
    except ConfigError as error:
        raise fail(str(error)) from None
    out_dir = out or Path("outputs") / cfg.name
    with progress_bar(f"render {cfg.name}") as update:
        result = render(cfg, progress=update)
    save_render(result, out_dir)
    counts = ", ".join(f"{n} {c / result.labels.size:.1%}" for n, c in result.meta["counts"].items() if c)
    err.print(f"{out_dir}: {counts} ({result.meta['elapsed_s']:.2f} s on {result.meta['device']})", highlight=False)


@app.command("info")
def info_cli() -> None:
    """Version, devices and precision."""
    import jax

    from fractalgd import __version__

    devices = jax.devices()
    typer.echo(f"fractalgd {__version__}")
    typer.echo(f"jax {jax.__version__}, backend {jax.default_backend()}")
    typer.echo(f"devices: {len(devices)} × {devices[0].device_kind} ({devices[0].platform})")
    typer.echo("precision: float32 (default), float64 (gd.dtype = \"float64\")")


@app.command("bench")
def bench_cli(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller grid and fewer steps.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the records as JSON.")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per case.")] = 5,
) -> None:
    """P1 engine against the reference pattern (Sohl-Dickstein's step loop), same process."""
    from fractalgd.bench import format_table, run_bench
    from fractalgd.io import write_json_atomic

    with progress_bar("bench") as update:
        records = run_bench(quick=quick, repeats=repeats, progress=update)
    typer.echo(format_table(records))
    if json_out is not None:
        write_json_atomic(json_out, records)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
