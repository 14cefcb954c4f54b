"""fastfnn.io.atomic: the new content replaces the target whole, and a failed write changes nothing."""

import os
import stat

import pytest

from fastfnn.io import atomic
from fastfnn.io.atomic import atomic_write


def test_binary_write_creates_then_replaces(tmp_path):
    path = tmp_path / "f.bin"
    with atomic_write(path) as f:
        f.write(b"old")
    with atomic_write(str(path), "wb") as f:
        f.write(b"\x00new\n")
    assert path.read_bytes() == b"\x00new\n"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind


def test_text_write_is_utf8(tmp_path):
    path = tmp_path / "f.txt"
    with atomic_write(path, "w") as f:
        f.write("épsilon\n")
    assert path.read_bytes().replace(b"\r\n", b"\n") == "épsilon\n".encode("utf-8")


def test_target_is_untouched_until_the_block_ends(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new")
        f.flush()
        assert path.read_bytes() == b"old"
    assert path.read_bytes() == b"new"


@pytest.mark.parametrize("exists", [True, False], ids=["existing-target", "no-target"])
def test_error_in_block_removes_temp_and_keeps_target(tmp_path, exists):
    path = tmp_path / "f"
    if exists:
        path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == (["f"] if exists else [])
    if exists:
        assert path.read_bytes() == b"old"


def test_failed_rename_removes_temp_and_keeps_target(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"kept")

    def refuse(source, target):
        raise PermissionError(13, "Permission denied", source, target)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as caught:
        with atomic_write(path) as f:
            f.write(b"new")
    # named as the user gave it, never the hidden temporary file
    assert str(caught.value) == (f"{path}: cannot write the file (Permission denied), expected a "
                                 "writable file in an existing folder")
    assert caught.value.errno == 13
    assert os.listdir(tmp_path) == ["f"] and path.read_bytes() == b"kept"


@pytest.mark.parametrize("name,error,message", [
    ("", FileNotFoundError, "'': the path is empty, expected a file name"),
    (".", IsADirectoryError, "{tmp}: the path is a folder, expected a file name"),
    ("missing/f", FileNotFoundError,
     "missing/f: folder {tmp}/missing does not exist, expected an existing folder"),
    ("file/f", NotADirectoryError, "file/f: {tmp}/file is a file, expected a folder"),
])
def test_a_path_that_cannot_be_written_is_refused_by_name_before_anything(
        tmp_path, monkeypatch, name, error, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_bytes(b"kept")
    path = str(tmp_path) if name == "." else name
    expected = message.format(tmp=tmp_path)
    with pytest.raises(error) as caught:
        atomic.check_target(path)
    assert str(caught.value) == expected
    with pytest.raises(error) as caught:
        with atomic_write(path) as f:
            f.write(b"new")
    assert str(caught.value) == expected
    assert os.listdir(tmp_path) == ["file"]


def test_an_unwritable_folder_is_refused_by_name(tmp_path, monkeypatch):
    # os.access stands in for the permission bits, which root (CI containers) ignores
    monkeypatch.setattr(os, "access", lambda where, how: os.fspath(where) != str(tmp_path))
    with pytest.raises(PermissionError) as caught:
        atomic.check_target(tmp_path / "f")
    assert str(caught.value) == f"{tmp_path / 'f'}: no permission to write in folder {tmp_path}"


def test_bytes_paths_are_written(tmp_path):
    with atomic_write(os.fsencode(tmp_path / "f")) as f:
        f.write(b"x")
    assert (tmp_path / "f").read_bytes() == b"x"


def test_file_and_folder_are_fsynced_before_and_after_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))),
                                                  real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace",)), real_replace(a, b))[1])
    with atomic_write(tmp_path / "f") as f:
        f.write(b"x")
    expected = [("fsync", False), ("replace",)]
    if os.name == "posix":
        expected.append(("fsync", True))
    assert events == expected


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_gets_umask_permissions_not_private_temp_ones(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644


def test_bad_mode_and_missing_folder_raise_and_write_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"mode must be one of \('wb', 'w'\), got 'ab'"):
        with atomic_write(tmp_path / "f", "ab"):
            pass
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "missing" / "f"):
            pass
    assert os.listdir(tmp_path) == []


def test_taken_temporary_names_are_skipped(tmp_path, monkeypatch):
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".f.aaaa.tmp").write_bytes(b"someone else's")
    with atomic_write(tmp_path / "f") as f:
        f.write(b"x")
    assert (tmp_path / ".f.aaaa.tmp").read_bytes() == b"someone else's"
    assert (tmp_path / "f").read_bytes() == b"x"
