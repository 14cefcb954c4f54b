"""CUDA sources run on the CPU: compile a .cu module for the host and launch its kernels via ctypes.

The engine of the CUDA emulation (:mod:`.cupy_emulation` puts a CuPy-like face on it). The source is
compiled by g++ behind ``cuda/host_shim.cuh`` (CUDA threads as fibers, ``__syncthreads`` a real
barrier) together with one generated ``extern "C"`` launcher per template instantiation, and the
shared library is cached on disk keyed by the hash of everything that goes into it, so a process
compiles each distinct module once at most and usually loads it from the cache.

Assumes Linux with g++ (``$CXX`` overrides), C++17 and ``<ucontext.h>``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from . import cuda_sources

#: g++ flags: -ffp-contract=off mirrors the device build's --fmad=false (no fused multiply-add).
HOST_FLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Werror",
              "-Wno-unused-function")

_launch_lock = threading.Lock()  # kernels share the shim's static state: one launch at a time


def cache_dir() -> Path:
    """Where compiled host modules are kept: $FASTFNN_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache,
    under fastfnn/cuda-host."""
    root = os.environ.get("FASTFNN_CACHE_DIR")
    if root:
        return Path(root) / "cuda-host"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastfnn" / "cuda-host"


def _launcher_source(code: str, name_expressions) -> str:
    """The translation unit: shim, device source, then per instantiation i the C functions
    ``fastfnn_launch_i(dims, args)`` and ``fastfnn_signature_i()``."""
    lines = [cuda_sources.host_shim(), code]
    for i, name in enumerate(name_expressions):
        lines.append(f'extern "C" int fastfnn_launch_{i}(const unsigned* dims, void** args) '
                     f'{{ return fastfnn_emu::launch(&{name}, dims, args); }}')
        lines.append(f'extern "C" const char* fastfnn_signature_{i}() '
                     f'{{ return fastfnn_emu::signature_of(&{name}); }}')
    return "\n".join(lines) + "\n"


def _compile(unit: str, target: Path) -> None:
    """Compile ``unit`` into the shared library ``target`` (atomically: build beside, rename)."""
    compiler = os.environ.get("CXX") or shutil.which("g++")
    if not compiler:
        raise RuntimeError("the CUDA emulation needs a C++ compiler: g++ was not found "
                           "(set $CXX to another one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "module.cpp"
        src.write_text(unit)
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *HOST_FLAGS, "-o", str(built), str(src)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling the CUDA sources for the host failed:\n{result.stderr}")
        os.replace(built, target)


class HostKernel:
    """One instantiated kernel of a :class:`HostModule`: its parameter codes and its launcher.

    ``signature`` has one character per parameter: ``f d i l u b`` for float, double, int,
    long long, unsigned char and bool scalars, the upper-case letter for a pointer to one.
    """

    def __init__(self, name: str, launcher, signature: str):
        self.name, self._launcher, self.signature = name, launcher, signature

    def launch(self, grid, block, pointers) -> None:
        """Run the kernel over ``grid`` x ``block`` (3-tuples) with ``pointers``: one ctypes
        pointer per parameter, to its value (for a device pointer, to the pointer)."""
        dims = (ctypes.c_uint * 6)(*grid, *block)
        args = (ctypes.c_void_p * len(pointers))(*[ctypes.cast(p, ctypes.c_void_p)
                                                   for p in pointers])
        with _launch_lock:
            self._launcher(dims, args)


class HostModule:
    """The kernels ``name_expressions`` of CUDA source ``code``, compiled for this CPU."""

    def __init__(self, code: str, name_expressions):
        self.names = tuple(name_expressions)
        unit = _launcher_source(code, self.names)
        key = hashlib.sha256("\0".join([unit, *HOST_FLAGS]).encode()).hexdigest()[:32]
        path = cache_dir() / f"module-{key}.so"
        if not path.exists():
            _compile(unit, path)
        self._lib = ctypes.CDLL(str(path))
        self._kernels = {}
        for i, name in enumerate(self.names):
            launcher = getattr(self._lib, f"fastfnn_launch_{i}")
            launcher.restype = ctypes.c_int
            launcher.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            signature = getattr(self._lib, f"fastfnn_signature_{i}")
            signature.restype = ctypes.c_char_p
            self._kernels[name] = HostKernel(name, launcher, signature().decode())

    def kernel(self, name: str) -> HostKernel:
        """The instantiation ``name`` (one of the module's name expressions)."""
        try:
            return self._kernels[name]
        except KeyError:
            raise KeyError(f"{name!r} is not one of this module's name expressions "
                           f"({', '.join(self.names)})") from None
