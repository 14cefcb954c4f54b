"""fastfnn.io.idx: IDX round trips for every dtype, raw and gzip; malformed or hostile input refused."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy as np
import pytest

from fastfnn.io import idx

# ------------------------------------------------------------------------------------------------ helpers

def idx_bytes(array: np.ndarray) -> bytes:
    """Reference IDX encoder, written independently of fastfnn.io.idx."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[f"{array.dtype.kind}{array.dtype.itemsize}"]
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def header(type_byte: int, dims: tuple[int, ...], ndim: int | None = None) -> bytes:
    ndim = len(dims) if ndim is None else ndim
    return bytes([0, 0, type_byte, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


def small_idx() -> bytes:
    """A 24-byte int16 file: 12 header bytes, 12 data bytes."""
    return idx_bytes(np.arange(-3, 3, dtype=np.int16).reshape(2, 3))


# ------------------------------------------------------------------------------------------------ tests

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    array = (rng.integers(info.min, info.max, (2, 3, 4), endpoint=True, dtype=dtype) if info
             else rng.standard_normal((2, 3, 4)).astype(dtype))
    path = tmp_path / "a.idx"
    idx.write_idx(path, array)
    assert path.read_bytes() == idx_bytes(array)
    if gz:
        path.write_bytes(gzip.compress(path.read_bytes()))
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        out = idx.read_idx(source)
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("shape", [(5,), (0,), (2, 1, 3, 2)])
def test_idx_shapes_round_trip(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    idx.write_idx(tmp_path / "a", array)
    out = idx.read_idx(tmp_path / "a")
    assert out.shape == shape
    np.testing.assert_array_equal(out, array)


def test_write_idx_takes_big_endian_input_and_replaces_atomically(tmp_path):
    path = tmp_path / "a"
    idx.write_idx(path, np.zeros(3, np.uint8))
    array = np.arange(4, dtype=">f8")
    idx.write_idx(path, array)
    np.testing.assert_array_equal(idx.read_idx(path), array)
    assert os.listdir(tmp_path) == ["a"]  # no temporary file left behind


@pytest.mark.parametrize("array", [np.zeros(3, np.int64), np.zeros(3, np.uint16), np.zeros(3, bool),
                                   np.float32(1.0), np.zeros((1,) * 5, np.uint8)],
                         ids=["int64", "uint16", "bool", "0-d", "5-d"])
def test_write_idx_refuses_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises(ValueError, match="IDX"):
        idx.write_idx(tmp_path / "a", array)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_truncated_at_every_offset(tmp_path, gz):
    full = gzip.compress(small_idx()) if gz else small_idx()
    path = tmp_path / "t.idx"
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        with pytest.raises(ValueError, match=str(path)):
            idx.read_idx(path)


def test_idx_truncated_message_says_found_and_expected(tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(small_idx()[:20])
    with pytest.raises(ValueError, match=r"expected 12 bytes .*found only 8"):
        idx.read_idx(path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_trailing_bytes_rejected(tmp_path, gz):
    path = tmp_path / "t.idx"
    raw = small_idx() + b"\x00"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match="trailing bytes"):
        idx.read_idx(path)


def test_idx_multi_member_gzip_is_one_stream(tmp_path):
    raw = small_idx()
    path = tmp_path / "t.idx.gz"
    path.write_bytes(gzip.compress(raw[:7]) + gzip.compress(raw[7:]))
    np.testing.assert_array_equal(idx.read_idx(path), idx.read_idx(io.BytesIO(raw)))


def test_idx_corrupt_gzip_rejected(tmp_path):
    packed = bytearray(gzip.compress(small_idx()))
    packed[-8] ^= 0xFF  # CRC-32 of the content
    with pytest.raises(ValueError, match="corrupt gzip"):
        idx.read_idx(io.BytesIO(bytes(packed)))


@pytest.mark.parametrize("raw, match", [
    (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "magic"),
    (b"\x00\x02\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "magic"),
    (header(0x0A, (1,)) + b"\x00", "type byte 0x0a"),
    (header(0x08, (), ndim=0), "0 dimensions"),
    (header(0x08, (1,) * 5) + b"\x00", "5 dimensions"),
    (header(0x0E, (0xFFFFFFFF,) * 4), "limit"),
    (header(0x08, (0xFFFFFFFF, 0xFFFFFFFF)), "limit"),
], ids=["magic0", "magic1", "type", "ndim0", "ndim5", "huge4d", "huge2d"])
def test_idx_bad_header_rejected(raw, match):
    with pytest.raises(ValueError, match=match):
        idx.read_idx(io.BytesIO(raw))


def test_idx_gzip_bomb_rejected_quickly_with_bounded_memory():
    # Header promises 10 bytes; the stream then inflates to 50 MB.
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(header(0x08, (10,)))]
    zeros = bytes(1 << 20)
    parts += [packer.compress(zeros) for _ in range(50)]
    bomb = b"".join(parts) + packer.flush()
    assert len(bomb) < 200_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match="trailing bytes"):
            idx.read_idx(io.BytesIO(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 2 << 20


def test_idx_validation_survives_python_O(tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(small_idx()[:-1])
    code = ("import sys; from fastfnn.io.idx import read_idx\n"
            "try:\n    read_idx(sys.argv[1])\nexcept ValueError:\n    sys.exit(0)\nsys.exit(1)\n")
    assert subprocess.run([sys.executable, "-O", "-c", code, str(path)]).returncode == 0
