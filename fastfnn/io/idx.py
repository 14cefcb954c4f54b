"""The IDX array format (MNIST's): a validating reader for raw or gzip files and an atomic writer.

An IDX file is a 4-byte magic (two zero bytes, a type byte, a dimension count), then one big-endian
uint32 per dimension, then the values in C order, big-endian. Files may be gzip-compressed.

Everything read is treated as untrusted: the header is checked before any payload is read, the payload
buffer grows with the bytes actually present (a header cannot make it allocate what the file lacks),
and a gzip stream is never inflated past what the header promises (no gzip bombs).
"""

from __future__ import annotations

import os
import zlib
from typing import BinaryIO

import numpy as np

from fastfnn.io.atomic import atomic_write

#: IDX type byte -> big-endian numpy dtype of the stored values.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Largest dimension count accepted; real IDX files have 1 to 3, 4 leaves room without inviting nonsense.
IDX_MAX_NDIM = 4

#: Largest payload accepted (bytes). A corrupt or hostile header can promise anything; MNIST's biggest file
#: is 47 MB, so 4 GiB is generous while still refusing absurd sizes before reading a single payload byte.
IDX_MAX_BYTES = 1 << 32

#: The first two bytes of every gzip stream.
GZIP_MAGIC = b"\x1f\x8b"

# Bytes read (and, for gzip, inflated) per step: bounds the memory one step can take.
_CHUNK = 1 << 20


class _RawReader:
    """Uncompressed byte source; ``prefix`` holds bytes already taken from ``raw`` to sniff the format."""

    def __init__(self, raw: BinaryIO, prefix: bytes):
        self._raw = raw
        self._prefix = prefix

    def read(self, n: int) -> bytes:
        """Return up to ``n`` bytes; fewer only at the end of the file."""
        parts, need = [], n
        if self._prefix:
            parts.append(self._prefix[:need])
            self._prefix = self._prefix[need:]
            need -= len(parts[0])
        while need > 0:
            got = self._raw.read(need)
            if not got:
                break
            parts.append(got)
            need -= len(got)
        return b"".join(parts)


class _GunzipReader:
    """Gzip byte source that inflates at most the number of bytes asked for.

    ``gzip.GzipFile`` buffers ahead, so a small header followed by a huge run of zeros (a gzip bomb) could
    make it inflate more than the caller will ever accept; driving zlib with ``max_length`` keeps the
    inflated total at exactly what was requested. Concatenated gzip members are read as one stream, as
    ``gzip`` does.
    """

    def __init__(self, raw: BinaryIO, prefix: bytes, name: str):
        self._raw = raw
        self._name = name
        self._pending = prefix  # compressed bytes not yet given to zlib
        self._raw_eof = False
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def _more_input(self) -> bytes:
        if self._raw_eof:
            return b""
        got = self._raw.read(_CHUNK)
        self._raw_eof = not got
        return got

    def read(self, n: int) -> bytes:
        """Return up to ``n`` inflated bytes; fewer only at the end of the last gzip member."""
        parts, need = [], n
        while need > 0:
            if self._zlib.eof:
                # End of one member: anything after it must be another member, else the stream is done.
                self._pending = self._zlib.unused_data or self._more_input()
                if not self._pending:
                    break
                self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            if not self._pending:
                self._pending = self._more_input()
            try:
                out = self._zlib.decompress(self._pending, min(need, _CHUNK))
            except zlib.error as exc:
                raise ValueError(f"{self._name}: corrupt gzip data ({exc})") from None
            self._pending = self._zlib.unconsumed_tail
            if out:
                parts.append(out)
                need -= len(out)
            elif not self._pending and self._raw_eof and not self._zlib.eof:
                # No input left, none produced, member unfinished: the .gz file was cut short. (zlib can
                # still hold output of a partly emitted match after its input ran out, hence the extra
                # empty round before this check fires.)
                raise ValueError(f"{self._name}: gzip stream ends early (the .gz file is truncated)")
        return b"".join(parts)


def _read_exact(source, n: int, name: str, what: str, hasher=None) -> bytearray:
    """Read exactly ``n`` bytes of ``what`` from ``source`` or raise ValueError saying how many there were.

    The buffer grows with the data actually present rather than being allocated up front, so a header that
    promises more than the file holds costs no more memory than the file itself.
    """
    buf = bytearray()
    while len(buf) < n:
        got = source.read(min(_CHUNK, n - len(buf)))
        if not got:
            raise ValueError(
                f"{name}: truncated IDX file: expected {n} bytes of {what}, found only {len(buf)}"
            )
        buf += got
        if hasher is not None:
            hasher.update(got)
    return buf


def _parse_idx(source, name: str, hasher=None) -> np.ndarray:
    """Read one IDX stream from ``source`` (a ``_RawReader``/``_GunzipReader``), validating as it goes."""
    magic = _read_exact(source, 4, name, "header", hasher)
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{name}: not an IDX file: magic starts with bytes {magic[0]:#04x} {magic[1]:#04x}, "
            "expected 0x00 0x00"
        )
    type_byte, ndim = magic[2], magic[3]
    if type_byte not in IDX_DTYPES:
        known = ", ".join(f"{t:#04x}" for t in IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX type byte {type_byte:#04x}, expected one of {known}")
    if not 1 <= ndim <= IDX_MAX_NDIM:
        raise ValueError(f"{name}: IDX header gives {ndim} dimensions, expected 1 to {IDX_MAX_NDIM}")
    dims_bytes = _read_exact(source, 4 * ndim, name, "dimensions", hasher)
    dims = tuple(int(d) for d in np.frombuffer(dims_bytes, ">u4"))
    dtype = IDX_DTYPES[type_byte]
    # Python ints cannot overflow, so the product is exact however large the header's dimensions are.
    count = 1
    for d in dims:
        count *= d
    nbytes = count * dtype.itemsize
    if nbytes > IDX_MAX_BYTES:
        raise ValueError(
            f"{name}: IDX header promises shape {dims} of {dtype.name} = {nbytes} bytes, "
            f"more than the {IDX_MAX_BYTES}-byte limit (IDX_MAX_BYTES)"
        )
    payload = _read_exact(source, nbytes, name, f"data for shape {dims} of {dtype.name}", hasher)
    # One byte more tells "exactly the promised size" from "trailing bytes" while inflating at most 1 byte.
    if source.read(1):
        raise ValueError(
            f"{name}: IDX file has trailing bytes after the {nbytes} bytes of data its header promises "
            f"(shape {dims} of {dtype.name}); expected the file to end there"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder == ">" else array


def _read_idx_stream(f: BinaryIO, name: str, hasher) -> np.ndarray:
    """Sniff raw or gzip from the first bytes of ``f`` and parse the IDX stream it holds."""
    # Sniff with a read rather than peek/seek so non-seekable streams (HTTP responses, pipes) work too.
    prefix = f.read(2)
    if prefix == GZIP_MAGIC:
        return _parse_idx(_GunzipReader(f, prefix, name), name, hasher)
    return _parse_idx(_RawReader(f, prefix), name, hasher)


def read_idx(path_or_fileobj: str | os.PathLike | BinaryIO, hasher=None) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (detected from its first bytes, not its name).

    Args:
        path_or_fileobj: a path (str or os.PathLike) or a binary file object open for reading; file
            objects need not be seekable (HTTP responses and pipes work).
        hasher: optional hashlib object fed every uncompressed byte of the file, in order, so a caller
            can check a digest of the content without reading it twice.

    Returns:
        An array with the shape the header gives (1 to ``IDX_MAX_NDIM`` dimensions) and the dtype its type
        byte gives — uint8, int8, int16, int32, float32 or float64 — in native byte order.

    Raises:
        ValueError: the header is malformed (magic, type byte, dimension count, a size beyond
            ``IDX_MAX_BYTES``), the data is shorter or longer than the header promises, or the gzip stream
            is corrupt or truncated. The message names the file, what was found and what was expected.
    """
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        name = os.fspath(path_or_fileobj)
        with open(name, "rb") as f:
            return _read_idx_stream(f, name, hasher)
    name = str(getattr(path_or_fileobj, "name", "<file object>"))
    return _read_idx_stream(path_or_fileobj, name, hasher)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes (header, then big-endian values in C order) of ``array``, uncompressed.

    Args:
        array: 1 to ``IDX_MAX_NDIM`` dimensions, dtype uint8, int8, int16, int32, float32 or float64 (any
            byte order). Other dtypes are refused rather than silently converted.

    Raises:
        ValueError: the dtype, dimension count or a dimension size cannot be represented in IDX.
    """
    array = np.asarray(array)
    type_byte = next((t for t, dt in IDX_DTYPES.items() if dt.kind == array.dtype.kind
                      and dt.itemsize == array.dtype.itemsize), None)
    if type_byte is None:
        supported = ", ".join(dt.name for dt in IDX_DTYPES.values())
        raise ValueError(f"IDX cannot store dtype {array.dtype}; expected one of {supported}")
    if not 1 <= array.ndim <= IDX_MAX_NDIM:
        raise ValueError(f"IDX needs 1 to {IDX_MAX_NDIM} dimensions, got an array of shape {array.shape}")
    if any(d >= 1 << 32 for d in array.shape):
        raise ValueError(f"IDX dimensions are uint32; shape {array.shape} does not fit")
    header = bytes([0, 0, type_byte, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[type_byte]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an uncompressed IDX file at ``path``, atomically.

    Args:
        path: destination file (str or os.PathLike); its folder must exist.
        array: 1 to ``IDX_MAX_NDIM`` dimensions, dtype uint8, int8, int16, int32, float32 or float64 (any byte
            order; stored big-endian). Other dtypes are refused rather than silently converted.

    Raises:
        ValueError: the dtype, dimension count or a dimension size cannot be represented in IDX.
    """
    encoded = encode_idx(array)  # refuse what IDX cannot hold before touching the file system
    with atomic_write(path) as f:
        f.write(encoded)
