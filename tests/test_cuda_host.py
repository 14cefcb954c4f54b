"""Compiling CUDA sources for the host: one build per distinct source, errors that say why."""

from __future__ import annotations

import ctypes
import os
import shutil

import numpy as np
import pytest

from fastfnn.kernels import cuda_host

pytestmark = pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX") or "g++"),
    reason="no C++ compiler (g++, or $CXX): the CUDA emulation compiles kernels for the host")

CODE = "__global__ void add_one(float* x, int n) { int i = threadIdx.x; if (i < n) x[i] += 1; }"


def test_a_module_compiles_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFNN_CACHE_DIR", str(tmp_path))
    cuda_host.HostModule(CODE, ["add_one"])
    assert len(list((tmp_path / "cuda-host").glob("module-*.so"))) == 1
    monkeypatch.setattr(cuda_host, "_compile", lambda *a: pytest.fail("compiled again"))
    kernel = cuda_host.HostModule(CODE, ["add_one"]).kernel("add_one")
    assert kernel.signature == "Fi"
    x = np.zeros(3, np.float32)
    pointer, n = ctypes.c_void_p(x.ctypes.data), ctypes.c_int(2)
    kernel.launch((1, 1, 1), (4, 1, 1), [ctypes.pointer(pointer), ctypes.pointer(n)])
    np.testing.assert_array_equal(x, [1, 1, 0])


def test_a_compile_error_says_what_the_compiler_said(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFNN_CACHE_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="compiling the CUDA sources for the host failed:"
                                           "(.|\n)*undeclared"):
        cuda_host.HostModule("__global__ void k() { undeclared = 1; }", ["k"])
    with pytest.raises(KeyError, match="'other' is not one of this module's name expressions"):
        cuda_host.HostModule(CODE, ["add_one"]).kernel("other")
