"""The zoom video's encoder: uint8 RGB frames → H.264 MP4 through imageio-ffmpeg (ffmpeg ships in its wheel)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fractalgd.output.atomic import atomic_path


class VideoError(RuntimeError):
    """The video cannot be written (no encoder); the CLI turns it into one line."""


def encode_video(
    frames, path: str | Path, size: tuple[int, int], fps: int, total: int, progress=None, crf: int = 18
) -> int:
    """Write uint8 RGB frames of `size` (W, H) to an H.264 MP4 (constant rate factor `crf`: 0 is
    lossless, 18 visually clean, 23 x264's default, 51 the worst), atomically; returns the frame count."""
    if not (isinstance(crf, int) and 0 <= crf <= 51):
        raise VideoError(f"--crf: must be an integer in [0, 51], got {crf!r}")
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError("the zoom video needs imageio-ffmpeg (pip install 'imageio-ffmpeg>=0.5')") from None
    with atomic_path(path, keep_suffix=True) as tmp:  # ffmpeg picks the format by the suffix
        return _encode(imageio_ffmpeg, frames, tmp, size, fps, total, progress, crf)


def _encode(imageio_ffmpeg, frames, tmp: Path, size, fps: int, total: int, progress, crf: int) -> int:
    writer = imageio_ffmpeg.write_frames(
        str(tmp), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=2, quality=None,
        output_params=["-crf", str(crf), "-preset", "medium"], ffmpeg_log_level="error",
    )  # fmt: skip
    count = 0
    try:
        with warnings.catch_warnings():
            # ffmpeg is a subprocess that execs at once; JAX's warning about fork() and threads
            # concerns children that keep running Python, so it does not apply.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
            count += 1
            if progress is not None:
                progress(count, total)
    finally:
        writer.close()
    return count
