"""Atomic output: write to a temporary file in the destination folder, rename on success.

A crash or a user mistake mid-write never leaves a half-written result under the final name. Every way the
destination can be wrong (a folder where the file should go, a file where a folder should be, a full or
read-only disk) becomes one `InputDataError` naming the path; the temporary file is removed in every case.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mocap.errors import InputDataError

# OS errors that mean "this destination cannot take the output", not a bug in mocap.
_DESTINATION_ERRORS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "file too large for this file system",
    errno.EISDIR: "is a folder; give a file name",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EEXIST: "a file stands where a folder is needed",
}


def destination_error(path: str | os.PathLike, e: OSError) -> InputDataError | None:
    """The user-facing error for an OS error while writing ``path``, or None when it is not about the destination."""
    reason = _DESTINATION_ERRORS.get(e.errno)
    if reason is None:
        return None
    return InputDataError(f"{path}: cannot write ({reason}); nothing was written")


def check_destination(*paths: str | os.PathLike) -> None:
    """Raise now what writing each of ``paths`` would raise later (a folder where the file goes, a file where a
    folder is needed), so that a command refuses before its long work, not after writing half its outputs."""
    for path in map(Path, paths):
        if path.is_dir():
            raise InputDataError(f"{path}: is a folder; give a file name")
        _check_folders(path.parent, path)


def _check_folders(folder: Path, target: Path) -> None:
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            raise InputDataError(f"{p}: is a file, but a folder is needed here" + (f" (for {target})" if p != target else ""))


def ensure_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` (and its parents), or raise InputDataError when a file is in the way."""
    path = Path(path)
    _check_folders(path, path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (destination_error(path, e) or InputDataError(f"{path}: cannot create the folder ({e.strerror or e})")) from None
    return path


@contextmanager
def _user_errors(path: Path) -> Iterator[None]:
    """OSErrors that are the user's (a folder in the way, a full disk) become one InputDataError naming ``path``."""
    try:
        yield
    except OSError as e:
        error = destination_error(path, e)
        if error is None:
            raise
        raise error from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit it replaces ``path`` atomically.

    The temporary file keeps the final suffix so that libraries which infer the format from it work.
    An OS error about the destination raised by the writer (a full disk...) becomes an InputDataError.
    """
    path = Path(path)
    check_destination(path)
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise (destination_error(path, e) or InputDataError(f"{path}: cannot write here ({e.strerror or e})")) from None
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results should be readable like any other file
    try:
        with _user_errors(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on normal exit it replaces the folder ``path`` (a file there is
    an error, not replaced)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputDataError(f"{path}: is a file, but a folder is needed here")
    ensure_folder(path.parent)
    tmp = None
    try:
        with _user_errors(path):
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_buffer(path: str | os.PathLike) -> Iterator[io.BytesIO]:
    """Yield an in-memory file; on normal exit its bytes go to ``path`` through `atomic_path`.

    For writers that misbehave when the disk fills mid-write: h5py crashes the interpreter and zipfile
    (np.savez) prints "seek of closed file" from its finaliser. They only ever see memory; the disk sees one
    plain write whose failure is a clean error.
    """
    buf = io.BytesIO()
    yield buf
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Write a matplotlib figure atomically (format from the suffix of ``path``) and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **savefig_kwargs)
    finally:
        plt.close(fig)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
