"""Zoom sequences: view arithmetic, precision switch, resume, the video, bad [zoom] tables, D vs depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.colour import colorize
from fractalgd.config import ConfigError, ZoomSpec, load_config, parse_zoom
from fractalgd.core.plane import View
from fractalgd.core.precision import LAST_ULPS, MIN_ULPS, pixel_ulps
from fractalgd.core.precision import resolvable_dtype as keyframe_dtype
from fractalgd.pipeline import pixels
from fractalgd.studies.video import compose_frame, frame_views, keyframe_pyramid, render_frames, write_video
from fractalgd.studies.zoom import frame_position, interpolate, next_center, render_keyframes
from tests.helpers import in_a_process, run_cli

TINY = {"resolution": [32, 32], "keyframes": 4, "frames_per_doubling": 3, "fps": 10}


def zoom_setup(**zoom):
    """(spec, base config) for a small zoom of P1 Fig 3 at 32², 200 steps, float32."""
    base = load_config("configs/zoom-p1.toml", ["gd.steps=200"])
    table = {"center": [-1.3984375, 0.9921875], "start_width": 2.0, "auto_target": True, **TINY, **zoom}
    return parse_zoom(table, base.plane), base


def spec_of(**kw) -> ZoomSpec:
    args = {"center": (0.3, -0.2), "start_width": 2.0, "factor": 2.0, "keyframes": 6, "resolution": (40, 30)}
    args.update(frames_per_doubling=4, fps=10, auto_target=False)
    args.update(kw)
    return ZoomSpec(**args)


# --- view arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.5, 2.0, 3.0])
def test_keyframe_views_nest_and_shrink_geometrically(factor):
    spec = spec_of(factor=factor)
    views = [spec.keyframe_view(k) for k in range(spec.keyframes)]
    for k, (a, b) in enumerate(zip(views, views[1:], strict=False)):
        assert a.contains(b) and not b.contains(a)
        assert b.size[0] == pytest.approx(a.size[0] / factor, rel=1e-15)
        assert a.size[1] / a.size[0] == pytest.approx(30 / 40)  # the height follows the aspect ratio
        assert a.center == b.center == spec.center
        assert math.log(a.size[0]) == pytest.approx(math.log(2.0) - k * math.log(factor), abs=1e-12)


def test_auto_target_views_nest_on_any_labels():
    rng = np.random.default_rng(0)
    for factor in (1.2, 2.0, 4.0):
        view = View((0.5, -1.0), (1.0, 0.75))
        for _ in range(5):
            labels = (rng.random((30, 40)) < rng.random()).astype(np.uint8)
            labels[:, : rng.integers(0, 40)] = 2
            nxt = View(next_center(labels, view, factor), (view.size[0] / factor, view.size[1] / factor))
            assert view.contains(nxt)
            view = nxt


@pytest.mark.parametrize("centers", [((0.3, -0.2), (0.3, -0.2)), ((0.3, -0.2), (0.55, -0.05))])
def test_interpolation_hits_keyframes_and_keeps_the_fixed_point(centers):
    f = 2.0
    a = View(centers[0], (2.0, 1.5))
    b = View(centers[1], (1.0, 0.75))
    assert a.contains(b)
    offset0, v0 = interpolate(a, b, f, 0.0)
    assert v0 == a and offset0 == (0.0, 0.0)  # t = 0 is keyframe a exactly
    _, v1 = interpolate(a, b, f, 1.0)
    for got, want in zip(v1.center + v1.size, b.center + b.size, strict=True):
        assert got == pytest.approx(want, abs=1e-15)
    # p = (f c_b − c_a)/(f − 1) is fixed: it sits at the same fraction of every interpolated view.
    p = [(f * cb - ca) / (f - 1) for ca, cb in zip(a.center, b.center, strict=True)]
    fractions = []
    previous = a
    for t in np.linspace(0, 1, 11):
        _, v = interpolate(a, b, f, float(t))
        assert math.log(v.size[0]) == pytest.approx(math.log(a.size[0]) - t * math.log(f))  # log width linear in t
        assert previous.contains(v) and v.contains(b)  # interpolated views nest between the keyframes
        fractions.append([(pi - c) / s for pi, c, s in zip(p, v.center, v.size, strict=True)])
        previous = v
    np.testing.assert_allclose(fractions, np.broadcast_to(fractions[0], (11, 2)), atol=1e-12)
    if centers[0] == centers[1]:  # a fixed centre stays exactly fixed
        assert all(interpolate(a, b, f, t)[1].center == a.center for t in (0.1, 0.5, 0.9))


def test_frame_positions():
    spec = spec_of(factor=2.0, frames_per_doubling=4)
    n = spec.frames_per_keyframe
    assert n == 4 and spec_of(factor=4.0, frames_per_doubling=4).frames_per_keyframe == 8
    assert spec.frame_count() == (spec.keyframes - 1) * n + 1
    positions = [frame_position(spec, j, spec.keyframes) for j in range(spec.frame_count())]
    for k in range(spec.keyframes):
        assert positions[k * n] == (k, 0.0)
    ts = [t for _, t in positions]
    assert all(0 <= t < 1 for t in ts) and positions[-1] == (spec.keyframes - 1, 0.0)


# --- precision ----------------------------------------------------------------------------------


def test_precision_switch_and_float64_limit_at_the_predicted_depth():
    spec = spec_of(center=(1.5, 1.5), start_width=4.0, resolution=(32, 32))
    cfg = load_config("configs/p1-fig3.toml")
    axes = (cfg.plane.x, cfg.plane.y)
    spacing0 = 4.0 / 32
    # Predicted from the ulps of 1.5 alone: spacing_k = spacing0·2^−k ≥ MIN_ULPS·ulp (LAST_ULPS for
    # the most precise dtype, here float64: a problem without double-double).
    last32 = math.floor(math.log2(spacing0 / (MIN_ULPS["float32"] * float(np.spacing(np.float32(1.5))))))
    last64 = math.floor(math.log2(spacing0 / (LAST_ULPS * float(np.spacing(1.5)))))
    assert (last32, last64) == (16, 49)  # 2^−3−k / 2^−23 ≥ 16 and 2^−3−k / 2^−52 ≥ 1
    dtypes = [keyframe_dtype(spec.keyframe_view(k), (32, 32), axes, "float32", "float64") for k in range(last64 + 2)]
    assert dtypes[: last32 + 1] == ["float32"] * (last32 + 1)
    assert dtypes[last32 + 1 : last64 + 1] == ["float64"] * (last64 - last32)
    assert dtypes[last64 + 1] is None
    assert keyframe_dtype(spec.keyframe_view(3), (32, 32), axes, "float64") == "float64"  # never downgraded
    # At 0 the resolution is eps·tiny (no limit in practice); on a log10 axis the spacing is ln10·10^c·Δ.
    assert pixel_ulps(View((0.0, 0.0), (1e-30, 1e-30)), (32, 32), axes, "float32") > 1e6
    log_axes = (
        load_config("configs/p1-fig3.toml", ["plane.x={param='eta', min=-1.0, max=1.0, scale='log10'}"]).plane.x,
    ) * 2
    ulps = pixel_ulps(View((0.0, 0.0), (1e-3, 1e-3)), (10, 10), log_axes, "float64")
    assert ulps == pytest.approx(math.log(10) * 1e-4 / np.spacing(1.0))


def test_precision_chain_into_double_double_at_the_predicted_depths():
    # A polynomial problem continues past float64: float64 keeps 16 ulps of headroom (double-double
    # follows), double-double is the last dtype (1 ulp of 2⁻⁵²·2⁻⁵³ at 1.5).
    spec = spec_of(center=(1.5, 1.5), start_width=4.0, resolution=(32, 32))
    axes = (load_config("configs/p1-fig3.toml").plane.x,) * 2
    spacing0 = 4.0 / 32
    last32 = math.floor(math.log2(spacing0 / (MIN_ULPS["float32"] * 2.0**-23)))
    last64 = math.floor(math.log2(spacing0 / (MIN_ULPS["float64"] * 2.0**-52)))
    last_dd = math.floor(math.log2(spacing0 / (LAST_ULPS * 2.0**-105)))
    assert (last32, last64, last_dd) == (16, 45, 102)
    dtypes = [keyframe_dtype(spec.keyframe_view(k), (32, 32), axes, "float32", "double-double") for k in range(110)]
    assert dtypes[: last32 + 1] == ["float32"] * (last32 + 1)
    assert dtypes[last32 + 1 : last64 + 1] == ["float64"] * (last64 - last32)
    assert dtypes[last64 + 1 : last_dd + 1] == ["double-double"] * (last_dd - last64)
    assert set(dtypes[last_dd + 1 :]) == {None}


def test_zoom_stops_at_float64_limit_with_the_depth(tmp_path):
    # A problem without double-double (a user loss): pixels 3, 1.5, 0.75 ulp of float64 apart at
    # 1.5: keyframes 0 and 1 render, 2 cannot.
    width = 48 * 2.0**-52
    base = load_config("configs/custom-example.toml", ["gd.steps=20"])
    zoom = {"center": [1.5, 1.5], "start_width": width, "auto_target": False, **TINY, "resolution": [16, 16]}
    run = render_keyframes(parse_zoom({**zoom, "keyframes": 5}, base.plane), base, tmp_path)
    assert [k.index for k in run.keyframes] == [0, 1] and {k.dtype for k in run.keyframes} == {"float64"}
    assert "keyframe 2" in run.stopped and "float64" in run.stopped and "stops at keyframe 1" in run.stopped
    with pytest.raises(ConfigError, match="float64's limit"):
        render_keyframes(parse_zoom({**zoom, "start_width": width / 8}, base.plane), base, tmp_path / "deep")


def test_zoom_continues_in_double_double_and_stops_at_its_limit(tmp_path):
    # P1: pixels 3, 1.5, 0.75 ulp of double-double apart at 1.5 (ulp 2⁻⁵²·2⁻⁵³): keyframes 0, 1
    # render in double-double with centres given as decimal strings, keyframe 2 cannot.
    width = 48 * 2.0**-105
    center = ["1.5000000000000000000000000000001", "1.5"]
    spec, base = zoom_setup(center=center, start_width=width, resolution=[16, 16], keyframes=5, auto_target=False)
    assert spec.center_lo[0] == pytest.approx(1e-31, rel=1e-6) and spec.center_lo[1] == 0.0
    run = render_keyframes(spec, base, tmp_path)
    assert [k.index for k in run.keyframes] == [0, 1] and {k.dtype for k in run.keyframes} == {"double-double"}
    assert "double-double's limit" in run.stopped and "stops at keyframe 1" in run.stopped
    recipe = load_config(run.keyframes[1].directory / "recipe.toml")
    assert recipe.gd.dtype == "double-double" and recipe.plane.x.deep[:2] == (spec.center[0], spec.center_lo[0])
    assert recipe.resolved["plane"]["x"]["center"] == "1.5000000000000000000000000000001"


# --- resume -------------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def counting_engine(monkeypatch):
    calls = []
    real = pixels.launch_batch

    def launch_batch(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pixels, "launch_batch", launch_batch)
    return calls


def test_resume_after_interrupt_recomputes_nothing(tmp_path, monkeypatch):
    calls = counting_engine(monkeypatch)
    spec, base = zoom_setup()  # auto_target: each centre depends on the previous keyframe's labels
    fresh = render_keyframes(spec, base, tmp_path / "fresh")
    per_keyframe = len(calls) // spec.keyframes
    assert per_keyframe >= 1 and len(calls) == per_keyframe * spec.keyframes

    def stop_after_two(done, total):
        if done == 2:
            raise Interrupt

    calls.clear()
    with pytest.raises(Interrupt):
        render_keyframes(spec, base, tmp_path / "run", progress=stop_after_two)
    assert len(calls) == 2 * per_keyframe
    calls.clear()
    resumed = render_keyframes(spec, base, tmp_path / "run")
    assert len(calls) == (spec.keyframes - 2) * per_keyframe  # only the missing keyframes
    assert [k.rendered for k in resumed.keyframes] == [False, False, True, True]
    for a, b in zip(fresh.keyframes, resumed.keyframes, strict=True):
        assert a.view == b.view and a.dtype == b.dtype
        np.testing.assert_array_equal(np.load(a.directory / "labels.npy"), np.load(b.directory / "labels.npy"))
        assert (a.directory / "recipe.toml").read_text().replace("fresh", "") == (
            b.directory / "recipe.toml"
        ).read_text()
    calls.clear()
    again = render_keyframes(spec, base, tmp_path / "run")
    assert calls == [] and not any(k.rendered for k in again.keyframes)
    # Another factor: keyframe 0 has the same recipe and is reused, the deeper ones are not.
    spec2, base2 = zoom_setup(factor=3.0)
    changed = render_keyframes(spec2, base2, tmp_path / "run")
    assert [k.rendered for k in changed.keyframes] == [False, True, True, True]
    assert len(calls) == (spec2.keyframes - 1) * per_keyframe


# --- video --------------------------------------------------------------------------------------


def test_frames_hit_keyframes_and_do_not_pop(tmp_path):
    for auto in (False, True):
        spec, base = zoom_setup(auto_target=auto)
        run = render_keyframes(spec, base, tmp_path / str(auto))
        keys = run.keyframes
        names, steps = base.problem.class_names, base.gd.steps
        cache = {}

        def pyramids(i, keys=keys):
            return cache.setdefault(i, keyframe_pyramid(keys[i], names, steps, True))

        shape = (32, 32)
        frames = list(render_frames(spec, keys, names, steps, True))
        n = spec.frames_per_keyframe
        assert len(frames) == spec.frame_count() == len(list(frame_views(spec, keys)))
        for k, key in enumerate(keys):
            rgb = colorize(np.load(key.directory / "labels.npy"), np.load(key.directory / "steps.npy"), names, steps)
            if k + 1 < len(keys):  # outside the finer keyframe, frame k·n is keyframe k pixel for pixel
                outside = np.ones(shape, dtype=bool)
                outside[8:24, 8:24] = False
                if not auto:
                    np.testing.assert_array_equal(frames[k * n][outside], rgb[outside])
                # t → 1 is the next keyframe's frame: no jump at the seam.
                offset, view = interpolate(key.view, keys[k + 1].view, spec.factor, 1.0)
                end = compose_frame(k, 1.0, offset, view, keys, pyramids, shape).astype(int)
                assert np.abs(end - frames[(k + 1) * n]).max() <= (0 if not auto else 255)
                assert np.mean(end != frames[(k + 1) * n]) < 0.01
            else:
                np.testing.assert_array_equal(frames[-1], rgb)  # the last frame is the deepest keyframe


@pytest.mark.filterwarnings("ignore:os.fork")  # the reader's ffmpeg subprocess execs at once
def test_video_has_the_expected_frames_and_size(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    spec, base = zoom_setup(resolution=[48, 32])
    run = render_keyframes(spec, base, tmp_path)
    path = tmp_path / "zoom.mp4"
    count = write_video(spec, run.keyframes, base, path)
    assert count == (spec.keyframes - 1) * spec.frames_per_keyframe + 1
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(32, 48, 3) for f in reader]
    assert meta["size"] == (48, 32) and meta["codec"] == "h264" and meta["fps"] == spec.fps
    assert len(frames) == count
    first = next(render_frames(spec, run.keyframes, base.problem.class_names, base.gd.steps, True))
    assert np.abs(frames[0].astype(int) - first).mean() < 12  # lossy, but the same picture
    assert not list(tmp_path.glob(".zoom*"))  # no temporary file left


# --- the [zoom] table and the CLI --------------------------------------------------------------


def test_final_width_gives_the_first_keyframe_no_wider():
    plane = load_config("configs/p1-fig3.toml").plane
    for start, final, factor in ((4.0, 0.5, 2.0), (4.0, 0.4, 2.0), (3.0, 0.01, 3.0), (1.0, 1.0, 2.0)):
        spec = parse_zoom({"start_width": start, "final_width": final, "factor": factor}, plane)
        widths = [spec.keyframe_view(k).size[0] for k in range(spec.keyframes)]
        assert widths[-1] <= final * (1 + 1e-12) and (len(widths) == 1 or widths[-2] > final)
    with pytest.raises(ConfigError, match="zoom.final_width"):
        parse_zoom({"keyframes": 3, "final_width": 0.1}, plane)
    with pytest.raises(ConfigError, match="zoom.colour"):
        parse_zoom({"colour": 1}, plane)


BAD = [
    ("zoom.factor=1.0", "zoom.factor"),
    ("zoom.factor=0.5", "zoom.factor"),
    ("zoom.keyframes=0", "zoom.keyframes"),
    ("zoom.center=[9.0,0.0]", "zoom.center"),
    ("zoom.resolution=[33,32]", "zoom.resolution"),
]


def check_bad_zoom(tmp_path, override, key, in_process):
    out = tmp_path / "never"
    result = run_cli(["zoom", "configs/zoom-p1.toml", "--out", out, "--set", override], in_process)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("override, key", BAD)
def test_bad_zoom_config_is_one_line_exit_2(tmp_path, override, key):
    check_bad_zoom(tmp_path, override, key, in_process=True)


@pytest.mark.parametrize("override, key", in_a_process(BAD, keep=(0,)))
def test_bad_zoom_config_in_a_process_is_one_line_on_its_stderr(tmp_path, override, key):
    check_bad_zoom(tmp_path, override, key, in_process=False)


def test_render_ignores_zoom_but_validates_it(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(
        app, ["render", "configs/zoom-p1.toml", "--out", str(tmp_path / "r"), "--set", "plane.resolution=[16,16]"]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["render", "configs/zoom-p1.toml", "--set", "zoom.factor=1"])
    assert bad.exit_code == 2 and "zoom.factor" in bad.output


def test_zoom_cli_end_to_end_with_dimension_of_a_smooth_boundary(tmp_path):
    """λ = 0, η = 0.8: GD converges inside the ellipse (u+v)²/(2/η+y) + (u−v)²/(2/η−y) < 4
    (papers.md, Liang & Montúfar), a smooth curve: D = 1 at every depth (positive control)."""
    pytest.importorskip("fractalgd.analysis.boxcount")
    pytest.importorskip("imageio_ffmpeg")
    import csv
    import json

    c = math.sqrt(3.0)  # u = v = √3 is on the ellipse for y = 0.5, η = 0.8
    args = [
        "--set",
        "problem.lam=0.0",
        "--set",
        "gd.eta=0.8",
        "--set",
        "gd.steps=400",
        "--set",
        "zoom.auto_target=false",
    ]
    args += ["--set", f"zoom.center=[{c!r},{c!r}]", "--set", "zoom.start_width=1.0", "--set", "zoom.keyframes=3"]
    args += ["--set", "zoom.resolution=[128,128]", "--set", "zoom.frames_per_doubling=2"]
    out = tmp_path / "z"
    result = CliRunner().invoke(app, ["zoom", "configs/zoom-p1.toml", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    assert (out / "zoom.mp4").is_file() and (out / "dimension.png").is_file()
    rows = list(csv.DictReader((out / "dimension.csv").open()))
    assert [int(r["keyframe"]) for r in rows] == [0, 1, 2]
    for row in rows:
        assert abs(float(row["dimension"]) - 1.0) < 0.15, row  # smooth curve (tolerance: pixel-scale bias)
        assert float(row["stderr"]) >= 0
    summary = json.loads((out / "zoom.json").read_text())
    assert summary["frames"] == 2 * 2 + 1 and len(summary["keyframes"]) == 3
    assert abs(summary["pooled_median_dimension"] - 1.0) < 0.2
    assert len(list((out / "keyframes").iterdir())) == 3
