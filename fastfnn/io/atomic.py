"""One way to write a file so that readers see either the old file or the whole new one, never a part.

The new content goes to a temporary file in the destination's folder (``os.replace`` is atomic only
within one file system), which is flushed and fsynced before it is renamed over the target, and the
folder is fsynced after, so a crash cannot leave a renamed-but-empty file or lose the rename. Assumes
a POSIX or Windows file system where ``os.replace`` is atomic; folder fsync is skipped where the
platform cannot do it (Windows).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import IO

#: Modes accepted by :func:`atomic_write`: bytes or UTF-8 text, always a whole new file.
ATOMIC_WRITE_MODES = ("wb", "w")

# Attempts at a free temporary name; 48 random bits make a second attempt already unlikely.
_TEMP_NAME_TRIES = 100


def _create_temp(folder: str, base: str) -> tuple[int, str]:
    """Create and open a new, empty temporary file for ``base`` in ``folder``; return (fd, path)."""
    # O_EXCL: never open a file someone else made; 0o666 lets the umask give the usual permissions
    # (tempfile.mkstemp would leave the finished file readable by its owner only).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_NAME_TRIES):
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file for {base} in {folder}: "
                          f"{_TEMP_NAME_TRIES} random names were all taken")


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable where the platform allows it (POSIX); a no-op elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder as a file
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the data itself is already synced
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a file object whose content replaces ``path`` atomically when the ``with`` block ends.

    Usage: ``with atomic_write(path) as f: f.write(data)``. The file object is a fresh temporary file
    in ``path``'s folder; when the block ends without an error it is flushed, fsynced and renamed
    over ``path`` (an existing file there is replaced), and the folder is fsynced. If the block, the
    flush or the rename raises, the temporary file is removed, ``path`` is left as it was, and the
    error propagates.

    Args:
        path: the file to write (str or os.PathLike). Its folder must exist; it is not created.
        mode: ``"wb"`` (default) for a binary file object, ``"w"`` for UTF-8 text.

    Yields:
        The open temporary file object (binary or text as ``mode`` says).

    Raises:
        ValueError: ``mode`` is not one of ``ATOMIC_WRITE_MODES``.
        OSError: the folder is missing or not writable, or the write or rename fails.
    """
    if mode not in ATOMIC_WRITE_MODES:
        raise ValueError(f"atomic_write mode must be one of {ATOMIC_WRITE_MODES}, got {mode!r}")
    target = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(target)
    fd, tmp = _create_temp(folder, base)
    try:
        text = {"encoding": "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)
