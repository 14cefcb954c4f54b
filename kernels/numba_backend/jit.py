"""Compile setup shared by every module of the Numba backend.

The numba import (a broken install still imports this package and reports why), the ``njit``
options, :func:`compiled` (``njit`` with the on-disk cache wherever one can be written), one cache
stamp for the whole package, the typed-scalar helpers of compiled code, and the activation codes.

Assumes: every kernel compiles with ``fastmath=False`` (element-wise results round as the NumPy
reference does); numba >= 0.59. The cache lives where numba puts it for each module:
``$NUMBA_CACHE_DIR`` when set, else ``__pycache__`` next to the modules, else the user-wide numba
cache; all modules of this package resolve to the same folder.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np

from ..base import ACTIVATIONS

try:  # numba is a hard dependency, but a broken install must still report cleanly
    import numba
    from numba import njit, prange, types
    from numba.extending import overload
    IMPORT_ERROR = ""
except Exception as exc:  # pragma: no cover - exercised only without numba
    numba = None
    types = None
    IMPORT_ERROR = f"numba cannot be imported ({type(exc).__name__}: {exc})"
    prange = range

    def njit(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda fn: fn

    def overload(*args, **kwargs):
        return lambda fn: fn


#: Activation names as the small integers compiled code branches on.
ACT_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}  # identity, relu, sigmoid, tanh
IDENTITY = ACT_CODES["identity"]
#: The compute dtypes.
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

JIT = dict(cache=True, fastmath=False)
JIT_PARALLEL = dict(cache=True, fastmath=False, parallel=True)
# Helpers called per row or per element: inlined into their callers at the Numba IR level. A
# real call would increment and decrement the reference count of every array argument, two
# atomic operations each, which costs more than the helper's work.
JIT_INLINE = dict(cache=True, fastmath=False, inline="always")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def compiled(**options):
    """``njit(**options)``; where no cache location is writable, the same without the cache."""
    def decorate(fn):
        try:
            return njit(**options)(fn)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
            if "cannot cache" not in str(exc):
                raise
            return njit(**dict(options, cache=False))(fn)
    return decorate


# ----------------------------------------------------------------------------- one cache stamp
#: A module holds compiled code (or what compiled code reads) when its source has one of these.
_COMPILED_MARKERS = (b"@compiled(", b"intrinsic", b"@overload(")


@functools.lru_cache(maxsize=None)
def package_source_stamp():
    """A hash of every module of this package that holds compiled code: the freshness stamp of
    each cached kernel. Python-only modules (the backend class, the compile notice) are left
    out, so that editing them does not recompile every kernel."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(_PACKAGE_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(_PACKAGE_DIR, name), "rb") as f:
                source = f.read()
            if any(marker in source for marker in _COMPILED_MARKERS):
                digest.update(name.encode() + b"\0" + source + b"\0")
    return digest.hexdigest()


def _install_package_cache_stamp():
    """Make numba's cache of this package's kernels stale when any of its modules changes.

    Numba stamps a cached function with its own source file only, but a cached function holds
    the machine code of the functions it calls (inlined or linked), which live in other modules
    here: without this, editing ``blocks.py`` would leave the cached fused epoch of ``epoch.py``
    running the old code. (Compiled code must therefore read its constants from modules that
    hold compiled code, which are the ones stamped.) The locators below are numba's own (``$NUMBA_CACHE_DIR``, in-tree
    ``__pycache__``, user-wide), restricted to this package's files and stamped with
    :func:`package_source_stamp`; other files keep numba's locators.
    """
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    if any(getattr(cls, "_fastfnn_package", False) for cls in impl._locator_classes):
        return

    class PackageStamp:
        _fastfnn_package = True

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _PACKAGE_DIR:
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return package_source_stamp()

    ours = []
    for name in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator"):
        base = getattr(caching, name, None) or getattr(caching, "_" + name)  # numba < 0.61: _Name
        ours.append(type(base.__name__, (PackageStamp, base), {}))
    impl._locator_classes[:0] = ours


if numba is not None:
    _install_package_cache_stamp()


def cache_location(dispatcher):
    """Where numba keeps ``dispatcher``'s compiled code (every kernel of this package: the same
    folder), as numba itself resolved it, for ``describe()``."""
    impl = getattr(getattr(dispatcher, "_cache", None), "_impl", None)
    locator = getattr(impl, "locator", None)
    if locator is None:  # NullCache: no writable location was found
        return "no cache (no writable location: kernels compile in every process)"
    path = locator.get_cache_path()
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir and os.path.abspath(path).startswith(os.path.abspath(cache_dir)):
        kind = "NUMBA_CACHE_DIR"
    else:
        kind = type(locator).__name__
    return f"{path} ({kind})"


# ----------------------------------------------------------------------------- typed scalars
def cast_like(like, value):
    """``value`` cast to the float dtype of array ``like`` (compiled code only)."""
    raise NotImplementedError


@overload(cast_like, inline="always")
def _ol_cast_like(like, value):
    dt = like.dtype if isinstance(like, types.Array) else like
    if dt == types.float32:
        return lambda like, value: np.float32(value)
    return lambda like, value: np.float64(value)


def input_value(v, lut, x_scale):
    """An input value as the compute dtype: ``lut[v]`` for uint8, else ``T(v) * x_scale``
    (compiled code only)."""
    raise NotImplementedError


@overload(input_value, inline="always")
def _ol_input_value(v, lut, x_scale):
    if isinstance(v, types.Integer) and v.bitwidth == 8 and not v.signed:
        return lambda v, lut, x_scale: lut[v]
    if lut.dtype == types.float32:
        return lambda v, lut, x_scale: np.float32(v) * x_scale
    return lambda v, lut, x_scale: np.float64(v) * x_scale


@compiled(**JIT_INLINE)
def chunk_bounds(total, nchunks, c):
    """Bounds (lo, hi) of chunk c of ``range(total)`` split into ``nchunks`` near-equal parts."""
    total = np.int64(total)
    nchunks = np.int64(nchunks)
    c = np.int64(c)  # a prange index may be unsigned: keep the arithmetic in int64
    base = total // nchunks
    extra = total % nchunks
    lo = c * base + min(c, extra)
    hi = lo + base + (1 if c < extra else 0)
    return lo, hi
