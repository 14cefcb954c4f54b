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


def check_target(path) -> str:
    """Check that :func:`atomic_write` can write a file at ``path``; return its absolute path.

    ``path``: str, bytes or os.PathLike. Every error names ``path`` as given and says what was
    expected: FileNotFoundError for an empty path or a folder that does not exist,
    IsADirectoryError for a path that is a folder, NotADirectoryError when its folder is a file,
    PermissionError when the folder is not writable. The command line checks its output options
    with it before training.
    """
    where = os.fsdecode(path)
    if not where:
        raise FileNotFoundError("'': the path is empty, expected a file name")
    target = os.path.abspath(where)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise IsADirectoryError(f"{where}: the path is a folder, expected a file name")
    if not os.path.exists(folder):
        raise FileNotFoundError(f"{where}: folder {folder} does not exist, expected an existing "
                                "folder")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{where}: {folder} is a file, expected a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{where}: no permission to write in folder {folder}")
    return target


def _naming(exc: OSError, where: str) -> OSError:
    """``exc`` again, its message naming ``where`` (what the user asked for) instead of the
    temporary file."""
    named = type(exc)(f"{where}: cannot write the file ({exc.strerror or exc}), expected a "
                      "writable file in an existing folder")
    named.errno = exc.errno
    return named


@contextlib.contextmanager
def atomic_write(path: str | bytes | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a file object whose content replaces ``path`` atomically when the ``with`` block ends.

    Usage: ``with atomic_write(path) as f: f.write(data)``. The file object is a fresh temporary file
    in ``path``'s folder; when the block ends without an error it is flushed, fsynced and renamed
    over ``path`` (an existing file there is replaced), and the folder is fsynced. If the block, the
    flush or the rename raises, the temporary file is removed, ``path`` is left as it was, and the
    error propagates.

    Args:
        path: the file to write (str, bytes or os.PathLike). Its folder must exist; it is not
            created.
        mode: ``"wb"`` (default) for a binary file object, ``"w"`` for UTF-8 text.

    Yields:
        The open temporary file object (binary or text as ``mode`` says).

    Raises:
        ValueError: ``mode`` is not one of ``ATOMIC_WRITE_MODES``.
        OSError: ``path`` cannot be a file (see :func:`check_target`, checked before anything is
            created), or the write or rename fails; the message names ``path``, never the
            temporary file.
    """
    if mode not in ATOMIC_WRITE_MODES:
        raise ValueError(f"atomic_write mode must be one of {ATOMIC_WRITE_MODES}, got {mode!r}")
    where = os.fsdecode(path)
    target = check_target(path)
    folder, base = os.path.split(target)
    try:
        fd, tmp = _create_temp(folder, base)
    except OSError as exc:
        raise _naming(exc, where) from exc
    try:
        text = {"encoding": "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        # An OSError about another file (raised by the caller's block) is the caller's to report.
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _naming(exc, where) from exc
        raise
    _fsync_folder(folder)
