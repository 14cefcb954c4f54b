"""Compile setup (numba_backend.jit): the on-disk cache, its fallbacks, one stamp for the package
(so that an edit of any module recompiles what depends on it), and the chunk split."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastfnn.kernels
from fastfnn.kernels.numba_backend.jit import chunk_bounds

from .helpers import NB, requires_numba

pytestmark = requires_numba

_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from {package}.numba_backend import NumbaBackend
    from {package}.numba_backend import contract
    b = NumbaBackend()
    z = np.arange(12.0).reshape(3, 4) - 6
    b.bias_act(z, np.ones(4), "relu")
    stats = np.zeros(2)
    b.softmax_xent(z, np.array([0, 1, 2]), z, stats, 1.0)
    hits = sum(contract.loss_serial.stats.cache_hits.values())
    print("ok", repr(float(stats[0])), hits, b.describe()["cache"])
""")


def _run(package, root, env_extra):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env_extra}
    result = subprocess.run([sys.executable, "-c", _SCRIPT.format(package=package), str(root)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok"), result.stdout
    return result.stdout.split(maxsplit=3)[1:]  # loss, cache hits, cache location


def _copy_of_kernels(tmp_path, name):
    """A copy of the fastfnn.kernels package (with this backend) importable as ``name``."""
    root = tmp_path / "src"
    shutil.copytree(Path(fastfnn.kernels.__file__).parent, root / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_describe_names_the_cache():
    cache = NB.describe()["cache"]
    assert cache.endswith(")") and "no cache" not in cache


def test_unwritable_numba_cache_dir(tmp_path):
    """NUMBA_CACHE_DIR that cannot be created (under a regular file: root ignores permission
    bits, a file parent stops even root): numba falls back to another location, no crash."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    _run("fastfnn.kernels", tmp_path, {"NUMBA_CACHE_DIR": str(blocker / "cache")})


def test_no_writable_cache_anywhere(tmp_path):
    """No cache location at all (in-tree __pycache__ is a file, the user-wide one cannot be
    made): the kernels compile in memory each process and still run."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    root = _copy_of_kernels(tmp_path, "kernels_nocache")
    (root / "kernels_nocache" / "numba_backend" / "__pycache__").write_text("")  # not a folder
    env = {"NUMBA_CACHE_DIR": "", "HOME": str(blocker), "XDG_CACHE_HOME": str(blocker / "x")}
    loss, hits, cache = _run("kernels_nocache", root, env)
    assert cache.startswith("no cache")


def test_editing_any_module_recompiles_its_dependents(tmp_path):
    """A cached kernel holds the code of what it calls from other modules (here the contract's
    loss_serial, loss.py's softmax_xent). After an edit of loss.py, the next process must not
    reuse the cached loss_serial: it recompiles and computes with the new code. An edit of a
    Python-only module (backend.py) keeps the cache."""
    root = _copy_of_kernels(tmp_path, "kernels_edit")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    loss, hits, _ = _run("kernels_edit", root, env)
    assert hits == "0"
    assert _run("kernels_edit", root, env)[:2] == [loss, "1"]  # from the cache
    backend_py = root / "kernels_edit" / "numba_backend" / "backend.py"
    backend_py.write_text(backend_py.read_text() + "\n# a Python-only module: no recompile\n")
    assert _run("kernels_edit", root, env)[:2] == [loss, "1"]
    loss_py = root / "kernels_edit" / "numba_backend" / "loss.py"
    text = loss_py.read_text()
    assert text.count("log_norm = np.log(s)") == 1
    loss_py.write_text(text.replace("log_norm = np.log(s)", "log_norm = np.log(s) + 1.0"))
    new_loss, hits, _ = _run("kernels_edit", root, env)
    assert hits == "0"
    assert float(new_loss) == pytest.approx(float(loss) + 3.0)  # three rows, each + 1


@pytest.mark.parametrize("total,nchunks", [(0, 1), (1, 4), (10, 3), (16, 4), (1000, 7)])
def test_chunk_bounds_split_evenly(total, nchunks):
    bounds = [chunk_bounds(total, nchunks, c) for c in range(nchunks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = np.diff([lo for lo, _ in bounds] + [total])
    assert sizes.max() - sizes.min() <= 1
