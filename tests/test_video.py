"""The zoom video's frames: area-averaged sampling, the depth overlay, frame size, and no re-encode of an
unchanged video."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_zoom import zoom_setup
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.core.plane import View
from fractalgd.studies import video
from fractalgd.studies.video import VideoSettings, footprint, render_frames, sample_layer, video_is_current, write_video
from fractalgd.studies.zoom import render_keyframes

A, B = np.array([240.0, 40.0, 40.0]), np.array([40.0, 40.0, 240.0])


def _pyramid(image: np.ndarray, levels: int = 4) -> list:
    out = [image.astype(np.float32)]
    for _ in range(levels):
        i = out[-1]
        out.append(0.25 * (i[0::2, 0::2] + i[1::2, 0::2] + i[0::2, 1::2] + i[1::2, 1::2]))
    return out


def _stripes(n: int = 128, axis: int = 0) -> np.ndarray:
    image = np.empty((n, n, 3))
    if axis == 0:
        image[0::2], image[1::2] = A, B  # one-pixel rows
    else:
        image[:, 0::2], image[:, 1::2] = A, B
    return image


@pytest.mark.parametrize("ratio", [1.5, 1.7, 2.0, 2.6, 3.3, 5.0])
@pytest.mark.parametrize("axis", [0, 1])
def test_stripes_finer_than_a_frame_pixel_average_to_their_mean(ratio, axis):
    """One-pixel stripes seen through frame pixels `ratio` keyframe pixels wide (a zoom between
    keyframes): every frame pixel is the mean colour; point sampling would give aliased rows of A and B."""
    pyramid = _pyramid(_stripes(256, axis=axis))
    n = 40  # the frame lies inside the keyframe: 40 · 5 < 256
    frame_view = View((0.0, 0.0), (n * ratio / 256, n * ratio / 256))
    rows, cols, rgb = sample_layer(pyramid, View((0.0, 0.0), (1.0, 1.0)), (0.0, 0.0), frame_view, (n, n))
    assert rgb.shape == (n, n, 3)
    np.testing.assert_allclose(rgb, np.broadcast_to((A + B) / 2, rgb.shape), atol=0.5)


@pytest.mark.parametrize("ratio", [1.5, 2.0, 2.6, 4.0, 5.0])
def test_a_checkerboard_finer_than_a_frame_pixel_averages_to_its_mean(ratio):
    """A one-pixel checkerboard (period 2 along both axes) seen through frame pixels `ratio`
    keyframe pixels wide: every frame pixel is the mean colour (A + B)/2, with no moiré."""
    n = 256
    image = np.where(((np.arange(n)[:, None] + np.arange(n)) % 2 == 0)[..., None], A, B)
    pyramid = _pyramid(image)
    m = 40  # 40 · 5 < 256: the frame lies inside the keyframe
    frame_view = View((0.0, 0.0), (m * ratio / n, m * ratio / n))
    rows, cols, rgb = sample_layer(pyramid, View((0.0, 0.0), (1.0, 1.0)), (0.0, 0.0), frame_view, (m, m))
    assert (rows, cols) == (slice(0, m), slice(0, m))
    np.testing.assert_allclose(rgb, np.broadcast_to((A + B) / 2, rgb.shape), atol=0.5)


def test_resolved_stripes_stay_sharp_and_the_box_is_continuous():
    pyramid = _pyramid(_stripes())
    rows, cols, rgb = sample_layer(pyramid, View((0.0, 0.0), (1.0, 1.0)), (0.0, 0.0), View((0.0, 0.0), (0.25, 0.25)), (32, 32))
    np.testing.assert_allclose(rgb[0::2], np.broadcast_to(A, rgb[0::2].shape), atol=1e-3)  # one frame pixel per pixel
    np.testing.assert_allclose(rgb[1::2], np.broadcast_to(B, rgb[1::2].shape), atol=1e-3)
    r = np.linspace(0.2, 1.999, 400)
    widths = np.array([footprint(x) for x in r])
    assert np.all(widths >= np.maximum(r, 1.0)) and np.all(np.diff(widths) >= 0)
    assert footprint(1.0) == 1.0 and footprint(2.0 - 1e-12) == pytest.approx(2.0)  # = 1 pixel of the next level


def test_overlay_and_frame_size(tmp_path):
    spec, base = zoom_setup()
    keys = render_keyframes(spec, base, tmp_path).keyframes
    names, steps = base.problem.class_names, base.gd.steps
    size = VideoSettings(size=(160, 120))
    plain = list(render_frames(spec, keys, names, steps, True, size))
    marked = VideoSettings(size=(160, 120), overlay=True)
    marked = list(render_frames(spec, keys, names, steps, True, marked, axes=(base.plane.x, base.plane.y)))
    assert plain[0].shape == (120, 160, 3) and len(plain) == len(marked) == spec.frame_count()
    for a, b in zip(plain, marked, strict=True):
        changed = np.any(a != b, axis=2)
        assert changed.any() and not changed[: a.shape[0] * 3 // 4].any()  # text in the lowest quarter only


def test_an_unchanged_video_is_not_encoded_again(tmp_path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    spec, base = zoom_setup(resolution=[48, 32])
    keys = render_keyframes(spec, base, tmp_path).keyframes
    path = tmp_path / "zoom.mp4"
    settings = VideoSettings(crf=23)
    assert video_is_current(spec, keys, base, path, settings) is None
    count = write_video(spec, keys, base, path, settings=settings)
    assert video_is_current(spec, keys, base, path, settings) == count
    assert video_is_current(spec, keys, base, path, VideoSettings(crf=30)) is None  # another quality
    assert video_is_current(spec, keys, base, path, VideoSettings(crf=23, overlay=True)) is None
    spec2, _ = zoom_setup(resolution=[48, 32], fps=12)
    assert video_is_current(spec2, keys, base, path, settings) is None  # other timing
    manifest = json.loads((tmp_path / "video.json").read_text())
    assert manifest["frames"] == count and manifest["video"] == "zoom.mp4"
    path.unlink()
    assert video_is_current(spec, keys, base, path, settings) is None  # no video, nothing to reuse


@pytest.mark.filterwarnings("ignore:os.fork")
def test_zoom_rerun_with_nothing_changed_skips_the_encoder(tmp_path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    runner = CliRunner()
    out = tmp_path / "z"
    args = ["zoom", "configs/zoom-p1.toml", "--out", str(out), "--set", "gd.steps=200", "--set", "zoom.keyframes=3"]
    args += ["--set", "zoom.resolution=[96,96]", "--set", "zoom.frames_per_doubling=20", "--crf", "20"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    video_bytes = (out / "zoom.mp4").read_bytes()
    stamp = (out / "zoom.mp4").stat().st_mtime_ns
    plot_stamp = (out / "dimension.png").stat().st_mtime_ns

    def no_encoder(*a, **k):
        raise AssertionError("the encoder ran for an unchanged video")

    monkeypatch.setattr(video, "encode_video", no_encoder)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "not re-encoded" in again.output and (out / "zoom.mp4").read_bytes() == video_bytes
    assert (out / "zoom.mp4").stat().st_mtime_ns == stamp  # untouched, not rewritten with equal bytes
    assert (out / "dimension.png").stat().st_mtime_ns == plot_stamp  # same table, same title: not replotted
    renamed = runner.invoke(app, [*args, "--set", "name=zoom-renamed"])  # the title changes, the pixels do not
    assert renamed.exit_code == 0 and "not re-encoded" in renamed.output, renamed.output
    assert (out / "dimension.png").stat().st_mtime_ns != plot_stamp
    assert json.loads((out / "zoom.json").read_text())["frames"] == 2 * 20 + 1
    changed = runner.invoke(app, [*args[:-1], "28"])  # another crf: encoded again (here: our stub)
    assert changed.exit_code == 1 and "encoder ran" in changed.output
