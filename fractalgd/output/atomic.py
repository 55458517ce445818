"""The one way files are written: complete or not at all, and never over what fractalgd did not write.

- `write_bytes_atomic` (and its text / JSON / figure / .npy forms): the data go to a hidden
  temporary sibling, are fsync'ed and renamed over the target, so a reader (or a crash) sees the
  old file or the new one, never half of one. JSON is strict: NaN and infinities become null.
- `replace_directory`: a directory built in a hidden sibling replaces the target by an atomic
  exchange (Linux `renameat2(RENAME_EXCHANGE)`), so at every instant the old or the new directory
  is complete at its path. Where the exchange is not available it falls back to two renames and
  leaves the old directory recoverable under `.NAME.fractalgd-old-PID` for the length of one
  rename; `recover_directory` (run before every write) puts a complete directory back and
  removes the temporaries of dead processes. The temporaries of a live run are removed when it
  ends, by error or interrupt included.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import math
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np

from fractalgd.core.version import __version__

TEMP_MARK = ".fractalgd-"  # every temporary sibling is named ".NAME.fractalgd-KIND-HOST-PID-RANDOM"


def _host() -> str:
    return socket.gethostname().replace("-", "_")  # "-" separates the fields of temporary names


def _temp_name(target: Path, kind: str) -> Path:
    tag = f"{_host()}-{os.getpid()}"
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARK}{kind}-{tag}-", dir=target.parent))
    _normal_mode(path, directory=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: Path, directory: bool) -> None:
    """The mode open() or mkdir() would give (mkstemp and mkdtemp make private 0600 / 0700 entries)."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False):
    """Yield a temporary sibling path to write `path` through; renamed over `path` only on success.

    For writers that stream (ffmpeg, npz, band by band); the data are fsync'ed before the rename.
    `keep_suffix`: the temporary ends in the target's suffix too (for writers that pick the format
    by it); otherwise it ends in ".tmp", so globs of finished files never see it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}{TEMP_MARK}file-{_host()}-{os.getpid()}-"
    suffix = path.suffix if keep_suffix else ".tmp"
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    _normal_mode(tmp, directory=False)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a fsync'ed temporary sibling and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def finite_json(value):
    """`value` with every NaN or infinite float replaced by None (JSON null), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer)):
        return finite_json(value.item())
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def json_text(data) -> str:
    """Strict JSON (no NaN/Infinity tokens): undefined values are null."""
    return json.dumps(finite_json(data), indent=2, allow_nan=False) + "\n"


def write_json_atomic(path: str | Path, data) -> Path:
    return write_text_atomic(path, json_text(data))


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buffer.getvalue())


def atomic_savefig(fig, path: str | Path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (the format follows the suffix unless given)."""
    path = Path(path)
    fmt = kwargs.pop("format", path.suffix.lstrip(".").lower() or "png")
    if fmt in ("png", "pdf", "svg"):  # marks the file as ours (output.files.written_by_fractalgd)
        kwargs.setdefault("metadata", {"Software" if fmt == "png" else "Creator": f"fractalgd {__version__}"})
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, **kwargs)
    return write_bytes_atomic(path, buffer.getvalue())


# --- directories ------------------------------------------------------------------------------


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ≥ 3.15); False where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


_TEMP_RE = re.compile(r"^\.(?P<name>.+)" + re.escape(TEMP_MARK) + r"(?P<kind>new|old|file)-(?P<host>[^-]+)-(?P<pid>\d+)-")


def process_alive(host: str, pid: int) -> bool:
    """Whether process `pid` of `host` may still run (another host's: assumed alive)."""
    if host.replace("-", "_") != _host():
        return True  # another host's run: not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temporaries(directory: str | Path) -> int:
    """Remove the temporary files and directories of dead processes in `directory`; returns how many.

    A run killed with SIGKILL cannot clean up after itself: the next run in the same place does.
    """
    directory, removed = Path(directory), 0
    if not directory.is_dir():
        return 0
    for entry in directory.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and not process_alive(match["host"], int(match["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                if match["kind"] == "old":
                    continue  # a render waiting to be put back: recover_directory's to judge
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


def recover_directory(target: str | Path, complete=lambda p: True) -> None:
    """Repair what a killed `replace_directory` of `target` left behind.

    If `target` is missing, a complete new directory (`complete(path)`) is renamed into place,
    else the old one is put back; then the temporaries of dead processes are removed.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return
    dead = []
    for entry in target.parent.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and match["name"] == target.name and match["kind"] != "file":
            if not process_alive(match["host"], int(match["pid"])):
                dead.append((match["kind"], entry))
    if not target.exists():
        for wanted in ("new", "old"):
            for kind, entry in dead:
                if kind == wanted and entry.exists() and (kind == "old" or complete(entry)):
                    os.rename(entry, target)
                    break
            if target.exists():
                break
    for _, entry in dead:
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def replace_directory(target: str | Path):
    """Yield a fresh temporary directory that replaces `target` if, and only if, the block succeeds.

    The caller decides beforehand whether `target` may be replaced; this only makes the swap safe.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = _temp_name(target, "new")
    old = None
    try:
        yield new
        _fsync_dir(new)
        if not target.exists():
            os.rename(new, target)
        elif _renameat2_exchange(new, target):
            old = new  # the exchange put the previous directory at the temporary path
        else:
            old = _temp_name(target, "old")
            old.rmdir()
            os.rename(target, old)  # from here until the next rename, the old render waits at `old`
            try:
                os.rename(new, target)
            except BaseException:
                os.rename(old, target)  # put the old render back
                old = None
                raise
        _fsync_dir(target.parent)
    finally:
        for leftover in (new, old):
            if leftover is not None and leftover.exists() and leftover != target:
                shutil.rmtree(leftover, ignore_errors=True)
