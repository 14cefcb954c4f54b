"""The CuPy stand-in of the CUDA emulation: counting, argument checks, barriers that hold."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from fastfnn.kernels import cupy_emulation as cp

pytestmark = pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX") or "g++"),
    reason="no C++ compiler (g++, or $CXX): the CUDA emulation compiles kernels for the host")

BARRIER_KERNELS = r"""
// Reverses each block's 8 elements through shared memory: wrong unless the barrier holds.
template <typename T>
__global__ void reverse_blocks(const T* x, T* out) {
    __shared__ T tile[8];
    int base = blockIdx.x * blockDim.x;
    tile[threadIdx.x] = x[base + threadIdx.x];
    __syncthreads();
    out[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}
__global__ void scale(float* x, float by, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * by;
}
"""


@pytest.fixture(scope="module")
def module():
    return cp.RawModule(code=BARRIER_KERNELS, name_expressions=["reverse_blocks<double>", "scale"])


def test_barriers_hold_between_threads_of_a_block(module):
    x = cp.array(np.arange(24, dtype=np.float64))
    out = cp.empty((24,), np.float64)
    module.get_function("reverse_blocks<double>")((3,), (8,), (x, out))
    np.testing.assert_array_equal(cp.asnumpy(out), np.arange(24).reshape(3, 8)[:, ::-1].ravel())


def test_kernels_without_barriers_cover_the_grid(module):
    x = cp.array(np.ones(1000, np.float32))
    module.get_function("scale")((4,), (256,), (x, np.float32(3), np.int32(1000)))
    np.testing.assert_array_equal(cp.asnumpy(x), np.full(1000, 3, np.float32))


@pytest.mark.parametrize("args,message", [
    ((np.ones(3, np.float32), np.float32(1), np.int32(3)), "expected a device array of float32"),
    ((cp.array(np.ones(3)), np.float32(1), np.int32(3)), "C-contiguous float32 array, got float64"),
    ((cp.array(np.ones((3, 2), np.float32))[:, 0], np.float32(1), np.int32(3)),
     "C-contiguous: False"),
    ((cp.array(np.ones(3, np.float32)), 1.0, np.int32(3)), "expected a numpy.float32 scalar"),
    ((cp.array(np.ones(3, np.float32)), np.float32(1)), "takes 3 arguments, got 2"),
])
def test_arguments_are_checked_against_the_kernel_signature(module, args, message):
    with pytest.raises(TypeError, match=message):
        module.get_function("scale")((1,), (4,), args)


def test_counters_count_launches_allocations_and_syncs(module):
    x = cp.zeros((10,), np.float32)
    cp.counters.reset()
    y = x * 2                       # an element-wise kernel into a new array
    x += 1                          # in place: a launch, no allocation
    module.get_function("scale")((1,), (32,), (x, np.float32(2), np.int32(10)))
    view = x[2:5]                   # a view: nothing
    total = cp.sum(x)               # a reduction into a new 0-d array
    x[0] = total                    # a copy kernel
    assert cp.counters.snapshot() == (5, 2, 0)
    float(total)
    cp.asnumpy(view)
    cp.cuda.get_current_stream().synchronize()
    assert cp.counters.syncs == 3
    assert isinstance(y, cp.ndarray) and isinstance(total, cp.ndarray) and total.ndim == 0


def test_a_captured_graph_replays_its_kernels_as_one_launch(module):
    x = cp.array(np.ones(4, np.float32))
    stream = cp.cuda.Stream()
    with stream:
        stream.begin_capture()
        for _ in range(3):
            module.get_function("scale")((1,), (4,), (x, np.float32(2), np.int32(4)))
        assert stream.is_capturing()
        graph = stream.end_capture()
    np.testing.assert_array_equal(cp.asnumpy(x), np.ones(4))  # captured, not run
    cp.counters.reset()
    graph.launch(stream)
    graph.launch(stream)
    assert cp.counters.launches == 2
    np.testing.assert_array_equal(cp.asnumpy(x), np.full(4, 64))


def test_array_operations_are_refused_during_a_capture():
    x = cp.zeros((3,), np.float32)
    stream = cp.cuda.Stream()
    stream.begin_capture()
    try:
        with pytest.raises(RuntimeError, match="array operation ran during a stream capture"):
            x += 1
        with pytest.raises(RuntimeError, match="cannot allocate during a stream capture"):
            cp.empty((2,), np.float32)
    finally:
        stream.end_capture()
