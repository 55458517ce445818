"""The `fractalgd` command line: parse, load the recipe, call the library, report.

Every command runs inside `guarded`: a bad input (a ConfigError: recipe, option, file, cost)
or an unwritable path is one line on stderr and exit code 2; anything else is one line naming
an internal error and exit code 1 (FRACTALGD_DEBUG=1 shows the traceback instead).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape  # messages may hold brackets ("[sweep]"), not markup
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# rich_markup_mode=None: help texts are plain text, so "[zoom]" is shown, not eaten as markup.
app = typer.Typer(
    no_args_is_help=True, add_completion=True, rich_markup_mode=None, help="Basins of attraction of gradient descent."
)
err = Console(stderr=True)
LONG_RUN_SECONDS = 20  # planned (FLOP-count) time above which a render first prints its measured estimate


def _show_version(value: bool) -> None:
    if value:
        from fractalgd.core.version import __version__

        typer.echo(f"fractalgd {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Basins of attraction of gradient descent: render, figure, zoom, sweep, analyze, trace, serve, bench."""

ConfigArg = Annotated[Path | None, typer.Argument(help="TOML recipe (default: the shipped default recipe).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set gd.eta=0.5 (repeatable).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an output of another recipe (or a file fractalgd did not write).")]


def say(message: str) -> None:
    """One line on stderr, as written: never wrapped (paths stay whole), no markup or highlighting."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """One line on stderr, exit code 2 (a usage error, as click uses)."""
    err.print(f"[bold red]error:[/] {escape(' '.join(str(message).split()))}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def guarded(command):
    """Turn errors into one line and an exit code (see the module docstring)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from fractalgd.core.errors import ConfigError
        from fractalgd.tiled.distributed import DistributedError

        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (ConfigError, DistributedError) as error:
            raise fail(str(error)) from None
        except OSError as error:
            where = error.filename or ""
            raise fail(f"cannot write {where}: {error.strerror or error}".replace("write : ", "write: ")) from None
        except MemoryError:
            raise fail("out of memory: lower plane.resolution or engine.tile") from None
        except KeyboardInterrupt:
            say("interrupted")
            raise typer.Exit(130) from None
        except Exception as error:
            if os.environ.get("FRACTALGD_DEBUG"):
                raise
            message = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            err.print(f"[bold red]internal error:[/] {escape(message)} (FRACTALGD_DEBUG=1 shows where)", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@contextlib.contextmanager
def progress_bar(description: str):
    """A rich progress bar with ETA; yields `update(done, total)`."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    columns += (TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command("render")
@guarded
def render_cli(
    config: ConfigArg = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: outputs/NAME, or NAME-2, … for another recipe).")] = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the estimated cost (time, memory, disk) and stop.")] = False,
) -> None:
    """Render a basin image: image.png, labels.npy, steps.npy, meta.json."""
    from fractalgd.config import ConfigError, load_config
    from fractalgd.output import check_target, free_output_dir, save_render
    from fractalgd.pipeline import render
    from fractalgd.pipeline.cost import check, estimate, planned_seconds, use_tiled
    from fractalgd.tiled.distributed import initialize

    process = initialize()  # before anything starts a JAX backend
    try:
        cfg = load_config(config, set_ or [])
    except ConfigError as error:
        hint = " (a sweep file: run `fractalgd sweep`)" if str(error).startswith("sweep:") else ""
        raise ConfigError(f"{error}{hint}") from None
    tiled = use_tiled(cfg, process.count)
    if tiled and cfg.render.feature is not None:  # out-of-core tiles keep labels and steps only
        raise ConfigError(f"render.color: '{cfg.render.color}' needs an in-memory render (engine.out_of_core = false)")
    if out is not None:
        out_dir = out
        if not (tiled and process.count > 1):  # processes sharing a tiled render all write there
            check_target(out_dir, cfg, force)
    else:
        out_dir = free_output_dir(cfg)
        if out_dir.name != cfg.name:
            taken = out_dir.parent / cfg.name
            say(f"{taken} holds another recipe's render (or other files): writing {out_dir}")
    # Long runs say up front what they will cost, timed by a short calibration run.
    long_run = not dry_run and planned_seconds(cfg) > LONG_RUN_SECONDS
    cost = estimate(cfg, tiled, calibrate=dry_run or long_run)
    check(cost, cfg, out_dir)
    if dry_run:
        typer.echo(f"{out_dir}: {cost.summary()}")
        return
    if long_run:
        say(f"{out_dir}: {cost.summary()}")
    if tiled:
        return _render_tiled(cfg, out_dir, process, force)
    with progress_bar(f"render {cfg.name}") as update:
        result = render(cfg, progress=update)
    save_render(result, out_dir, force=force)
    counts = _fractions(result.meta["counts"])
    say(f"wrote {out_dir}: {counts} ({result.meta['elapsed_s']:.2f} s on {result.meta['device']})")


def _fractions(counts: dict) -> str:
    """'diverged 78.8%, nearest 17.2%, saddle <0.1%': the classes present."""
    total = max(sum(counts.values()), 1)
    return ", ".join(f"{n} {c / total:.1%}" if c / total >= 0.0005 else f"{n} <0.1%" for n, c in counts.items() if c)


def _render_tiled(cfg, out_dir: Path, process, force: bool) -> None:
    """The out-of-core path of `fractalgd render` (fractalgd.tiled): resumable, shared by processes."""
    from fractalgd.tiled.tiles import render_tiled

    tag = f" [process {process.index}/{process.count}]" if process.count > 1 else ""
    with progress_bar(f"render {cfg.name} (tiled){tag}") as update:
        run = render_tiled(cfg, out_dir, progress=update, process=process, force=force)
    if run.meta is None:
        waiting = f"{len(run.waiting)} tiles of other processes not yet done: the last to finish assembles"
        say(f"{out_dir}: {len(run.computed)} tiles done here; {waiting}")
        return
    counts = _fractions(run.meta["counts"])
    done = f"{len(run.computed)} tiles rendered, {run.reused} reused"
    say(f"wrote {out_dir}: {counts} ({done}; {run.meta['elapsed_s']:.2f} s on {run.meta['device']})")


@app.command("figure")
@guarded
def figure_cli(
    render_dir: Annotated[Path, typer.Argument(help="A render directory (labels.npy, steps.npy, meta.json).")],
    out: Annotated[Path | None, typer.Option("--out", help="FILE.png, .pdf or .svg (default: RENDER_DIR/figure.png).")] = None,
    dpi: Annotated[int, typer.Option("--dpi", help="Figure pixels per inch; one image pixel stays one figure pixel.")] = 150,
    cmap: Annotated[str | None, typer.Option("--cmap", help="matplotlib colormap for scores and features.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title (default: the recipe's name and its --set values).")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Draw this array of features.npz with a colour bar.")] = None,
    force: ForceOpt = False,
) -> None:
    """The paper figure of a render: full-resolution image, physical axes, legend, title (PNG, PDF, SVG)."""
    from fractalgd.output.figure import draw_figure
    from fractalgd.output.files import check_file_target
    from fractalgd.output.render_files import load_render

    render = load_render(render_dir)
    path = out if out is not None else Path(render_dir) / "figure.png"
    check_file_target(path, force)
    draw_figure(render, path, dpi=dpi, cmap=cmap, title=title, feature=feature)
    say(f"wrote {path}")


@app.command("sweep")
@guarded
def sweep_cli(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep TOML: a recipe plus a [sweep] table.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: outputs/NAME).")] = None,
    set_: SetOpt = None,
) -> None:
    """Render every point of a parameter grid and box-count its boundary: sweep.csv, sweep.png (resumable)."""
    from fractalgd.output.study_dirs import check_study_dir
    from fractalgd.studies.sweep import load_sweep, run_sweep
    from fractalgd.tiled.distributed import initialize

    process = initialize()  # before anything starts a JAX backend
    spec = load_sweep(sweep_file, set_ or [])
    out_dir = out or Path("outputs") / spec.name
    check_study_dir(out_dir, ("points", "sweep.csv"))
    tag = f" [process {process.index}/{process.count}]" if process.count > 1 else ""
    with progress_bar(f"sweep {spec.name}{tag}") as update:
        run = run_sweep(spec, out_dir, progress=update, process=process)
    done = f"{len(run.computed)} points rendered, {run.reused} reused, {len(run.rows)}/{run.total} finished"
    say(f"{out_dir / 'sweep.csv'}: {done}")


@app.command("info")
@guarded
def info_cli() -> None:
    """Version, devices and precision."""
    import jax

    from fractalgd.core.version import __version__

    devices = jax.devices()
    typer.echo(f"fractalgd {__version__}")
    typer.echo(f"jax {jax.__version__}, backend {jax.default_backend()}")
    typer.echo(f"devices: {len(devices)} × {devices[0].device_kind} ({devices[0].platform})")
    typer.echo("precision: float32 (default), float64 (gd.dtype = \"float64\")")


@app.command("bench")
@guarded
def bench_cli(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller grid and fewer steps.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the records as JSON.")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per case and implementation, at least (a fast one repeats until 0.5 s).")] = 5,
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    size: Annotated[int | None, typer.Option("--size", min=16, max=16384, help="Grid side for every case (default: each case's own, smaller with --quick, larger on GPU).")] = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="Only these cases or problem kinds (repeatable).")] = None,
    force: ForceOpt = False,
) -> None:
    """Every problem's engine against its FLOP floor and the reference pattern (Sohl-Dickstein's step loop)."""
    from fractalgd.output import write_json_atomic
    from fractalgd.output.files import check_file_target
    from fractalgd.studies.bench import format_table, run_bench

    if dtype not in ("float32", "float64"):
        raise fail(f"--dtype: must be float32 or float64, got '{dtype}'")
    if json_out is not None:
        check_file_target(json_out, force, "--json")
    with progress_bar("bench") as update:
        records = run_bench(quick=quick, repeats=repeats, dtype=dtype, progress=update, size=size,
                            cases=tuple(case) if case else None)  # fmt: skip
    if not records:
        raise fail(f"--case: no case named {', '.join(case or [])}")
    typer.echo(format_table(records))
    if json_out is not None:
        write_json_atomic(json_out, records)


@app.command("zoom")
@guarded
def zoom_cli(
    config: Annotated[Path, typer.Argument(help="TOML recipe with a [zoom] table.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: outputs/NAME).")] = None,
    set_: SetOpt = None,
    crf: Annotated[int, typer.Option("--crf", min=0, max=51, help="H.264 quality: 0 lossless, 18 clean, 51 worst.")] = 18,
    size: Annotated[str | None, typer.Option("--size", help="Video frame size WxH, even (default: [zoom] resolution).")] = None,
    overlay: Annotated[bool, typer.Option("--overlay", help="Write the zoom depth and view width into each frame.")] = False,
) -> None:
    """Zoom: keyframes (resumable), zoom.mp4, and the dimension against depth (dimension.csv/png)."""
    from fractalgd.output import write_json_atomic
    from fractalgd.output.study_dirs import check_study_dir
    from fractalgd.studies.video import VideoError, VideoSettings, video_is_current, write_video
    from fractalgd.studies.zoom import load_zoom, render_keyframes
    from fractalgd.studies.zoom_dimension import dimension_table, pooled_dimension, write_dimension

    settings = VideoSettings(_frame_size(size), crf, overlay)
    spec, base = load_zoom(config, set_ or [])
    out_dir = out or Path("outputs") / base.name
    check_study_dir(out_dir, ("keyframes", "zoom.json"))
    with progress_bar(f"keyframes {base.name}") as update:
        run = render_keyframes(spec, base, out_dir, progress=update)
    if run.stopped:
        err.print(f"[yellow]{escape(run.stopped)}[/]", highlight=False, soft_wrap=True)
    summary = {"name": base.name, "fps": spec.fps, "stopped": run.stopped}
    summary["keyframes"] = [k.record(spec) for k in run.keyframes]
    rows, pooled = dimension_table(run.keyframes, spec)
    summary["dimension_key"] = write_dimension(rows, pooled, out_dir, base.name)
    summary["pooled_median_dimension"] = pooled
    summary["pooled_dimension"] = pooled_dimension(rows)  # D over keyframes, with its scatter and error
    video = out_dir / "zoom.mp4"
    summary["frames"] = video_is_current(spec, run.keyframes, base, video, settings)
    reused_video = summary["frames"] is not None
    if not reused_video:
        try:
            with progress_bar("video frames") as update:
                summary["frames"] = write_video(spec, run.keyframes, base, video, progress=update, settings=settings)
        except VideoError as error:
            write_json_atomic(out_dir / "zoom.json", summary)
            raise fail(str(error)) from None
    write_json_atomic(out_dir / "zoom.json", summary)
    reused = sum(not k.rendered for k in run.keyframes)
    elapsed = sum(k.elapsed_s for k in run.keyframes)
    frames = f"{summary['frames']} frames" + (" (video unchanged: not re-encoded)" if reused_video else "")
    say(f"wrote {out_dir}: {len(run.keyframes)} keyframes ({reused} reused, {elapsed:.1f} s), {frames}")


def _frame_size(text: str | None) -> tuple[int, int] | None:
    """--size WxH → (W, H): positive and even (H.264 with 4:2:0 chroma needs even sides)."""
    if text is None:
        return None
    from fractalgd.config import ConfigError

    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        raise ConfigError(f"--size: expected WxH, e.g. 1280x720, got '{text}'")
    size = (int(w), int(h))
    if min(size) < 2 or size[0] % 2 or size[1] % 2 or max(size) > 8192:
        raise ConfigError(f"--size: both sides must be even, from 2 to 8192, got {text}")
    return size


@app.command("serve")
@guarded
def serve_cli(
    config: ConfigArg = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only; others expose it, with a warning).")
    ] = "127.0.0.1",
    resolution: Annotated[int, typer.Option("--resolution", min=8, max=4096, help="Longer image side.")] = 512,
    set_: SetOpt = None,
) -> None:
    """Interactive explorer in the browser: zoom, pan, class fractions, D, recipe and zoom export.

    Prints the page's URL with a random token: only a page opened from that URL can use the server.
    """
    from fractalgd.config import load_config
    from fractalgd.explorer.server import serve

    cfg = load_config(config, set_ or [])
    try:
        serve(cfg, host, port, resolution, announce=typer.echo)
    except OSError as error:
        raise fail(f"cannot listen on {host}:{port}: {error}") from None


@app.command("analyze")
@guarded
def analyze_cli(
    path: Annotated[Path, typer.Argument(help="Render directory (labels.npy + meta.json) or a 2-D .npy label array.")],
    classes: Annotated[str | None, typer.Option("--classes", help="Boundary of one pair: a,b (names, or ids).")] = None,
    box: Annotated[int, typer.Option("--box", min=1, help="Box side (px) of the basin entropies.")] = 5,
    method: Annotated[str, typer.Option("--method", help="boxcount | sd | uncertainty (re-runs the engine).")] = "boxcount",
    json_out: Annotated[Path | None, typer.Option("--json", help="Where to write the JSON (default: analysis-METHOD.json next to the input).")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Instead: statistics of one limit feature (features.npz) per class, and its image.")] = None,
    force: ForceOpt = False,
) -> None:
    """Fractal dimension of the basin boundary (D ± error, fit range), basin entropy, Wada test."""
    from fractalgd.output.analysis_files import check_report_target, load_input, write_report
    from fractalgd.pipeline import analyze

    if feature is not None:
        return _analyze_feature(path, feature, json_out, force)
    if method not in ("boxcount", "sd", "uncertainty"):
        raise fail(f"--method: must be boxcount, sd or uncertainty, got '{method}'")
    labels, names, config, default_json = load_input(path, need_config=method == "uncertainty", method=method)
    json_path = json_out or default_json
    check_report_target(json_path, path, force)
    pair = [c.strip() for c in classes.split(",")] if classes else None
    # Only the uncertainty exponent runs the engine long enough to need a progress bar.
    engine = method == "uncertainty" and config is not None
    bar = progress_bar("uncertainty exponent") if engine else contextlib.nullcontext(None)
    with bar as update:
        result = analyze(labels, names, classes=pair, box=box, method=method, config=config, progress=update)
    json_path, plot_path = write_report(result, json_path, path)
    lo, hi = result["fit_range"]
    unit = "of the view" if method == "uncertainty" else "px"
    typer.echo(f"D = {result['dimension']:.4f} ± {result['stderr']:.4f} ({method}, fit range {lo:g}..{hi:g} {unit})")
    sd = result["sd_dimension"]
    typer.echo(f"Sohl-Dickstein median slope {sd:.4f}" if sd is not None else "Sohl-Dickstein mode: n/a")
    typer.echo(f"Sb = {result['basin_entropy']:.4f}, Sbb = {result['boundary_basin_entropy']:.4f} (box {box} px)")
    if "wada" in result:
        wada = result["wada"]
        typer.echo(f"Wada: {'yes' if wada['wada'] else 'no'} (p = {wada['p']:.3f} at r = {wada['r']} px)")
    for warning in result["warnings"]:
        say(f"warning: {warning}")
    say(f"wrote {json_path} and {plot_path}")


def _analyze_feature(path: Path, feature: str, json_out: Path | None, force: bool) -> None:
    from fractalgd.analysis.features import feature_summary
    from fractalgd.output.analysis_files import load_feature, load_input, write_feature_report
    from fractalgd.output.files import check_file_target

    if not Path(path).is_dir():
        raise fail(f"--feature: '{path}' must be a render directory (with features.npz)")
    labels, names, _, _ = load_input(path)
    values = load_feature(path, feature)
    json_path = json_out or Path(path) / f"feature-{feature}.json"
    check_file_target(json_path, force, "--json")
    check_file_target(Path(json_path).with_suffix(".png"), force, "--json")
    summary = feature_summary(values, labels, names, feature)
    json_path, png_path = write_feature_report(summary, values, json_path)
    for label, stats in {"all": summary["all"], **summary["classes"]}.items():
        if stats["defined"]:
            q = stats["quantiles"]
            typer.echo(f"{label}: {feature} median {q['0.5']:.6g} [{stats['min']:.6g}, {stats['max']:.6g}] "
                       f"({stats['defined']}/{stats['pixels']} px defined)")  # fmt: skip
        else:
            typer.echo(f"{label}: {feature} undefined ({stats['pixels']} px)")
    err.print(f"wrote {json_path} and {png_path}", highlight=False)


@app.command("trace")
@guarded
def trace_cli(
    config: ConfigArg = None,
    at: Annotated[str, typer.Option("--at", help="The pixel: X,Y in the plane's coordinates (physical values).")] = "",
    out: Annotated[Path | None, typer.Option("--out", help="PNG to write (default: outputs/NAME-trace.png).")] = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
) -> None:
    """One pixel's GD run: singular values, effective rank, norm and loss against time (PNG)."""
    from fractalgd.config import load_config
    from fractalgd.output.files import check_file_target
    from fractalgd.output.plots import plot_trace
    from fractalgd.studies.trace import parse_at, trace_pixel

    cfg = load_config(config, set_ or [])
    x, y = parse_at(at)
    path = out or Path("outputs") / f"{cfg.name}-trace.png"
    check_file_target(path, force)
    trace = trace_pixel(cfg, x, y)
    title = f"{cfg.name} at {cfg.plane.x.param}={x:g}, {cfg.plane.y.param}={y:g}"
    path = plot_trace(trace, path, title)
    say(f"{path}: {trace.label} (decided at step {trace.decided_at})")


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: temporaries are removed on the way out


def main() -> None:
    from fractalgd.core.allocator import keep_freed_memory
    from fractalgd.core.jaxenv import use_all_cores, use_compilation_cache

    use_all_cores()  # one XLA CPU device per core: before anything imports jax
    use_compilation_cache()  # compiled programs kept between runs
    keep_freed_memory()  # a tile's freed arrays serve the next without page faults
    signal.signal(signal.SIGTERM, _terminate)
    app()


if __name__ == "__main__":
    main()
