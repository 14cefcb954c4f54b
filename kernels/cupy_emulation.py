"""A NumPy-backed stand-in for the part of the ``cupy`` API the CuPy backend uses, with counters.

With ``FASTFNN_CUDA_EMULATE=1`` the CuPy backend imports this module as ``cupy``: device arrays are
:class:`ndarray` (a NumPy subclass held in host memory), NumPy-style calls on them run NumPy, and
:class:`RawModule` compiles the backend's CUDA sources for the host (:mod:`.cuda_host`) and launches
them there, checking every argument against the kernel's parameter types (dtype, C-contiguity,
exact scalar types) as CUDA would not.

:data:`counters` counts what would cost on a GPU: ``launches`` (every raw kernel, every NumPy-style
call on device arrays: ufuncs, reductions, matmul as cuBLAS, fancy indexing, copies into arrays),
``allocations`` (every new device buffer: creation functions and results not written into an
``out``) and ``syncs`` (device-to-host reads: :func:`asnumpy`, ``.get()``, ``float()``/``int()``/
``bool()``/``.item()`` of a device array, stream synchronisation). Tests read and reset them to hold
the backend to its budgets. Streams run their work at once, in order; a stream capture records raw
kernel launches into a :class:`Graph` (and refuses any other device work meanwhile, as the backend
captures raw kernels only), whose ``launch`` replays them and counts one launch. Assumes
single-threaded use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy

from . import cuda_host

__version__ = "emulated"


@dataclass
class Counters:
    """What the emulated device has been asked to do since the last :meth:`reset`."""

    launches: int = 0
    allocations: int = 0
    syncs: int = 0

    def reset(self) -> None:
        """Set every count to zero."""
        self.launches = self.allocations = self.syncs = 0

    def snapshot(self) -> tuple[int, int, int]:
        """(launches, allocations, syncs) now."""
        return self.launches, self.allocations, self.syncs


counters = Counters()

#: The raw kernel launches recorded by the stream capture under way, or None.
_capture = None


def _launched():
    """Count one launch of an array operation; refuse it during a stream capture (the emulation
    records raw kernels only, which is all the backend captures)."""
    if _capture is not None:
        raise RuntimeError("the CUDA emulation captures raw kernel launches only; an array "
                           "operation ran during a stream capture")
    counters.launches += 1


def _host(a):
    """The plain NumPy view of a device array (anything else unchanged)."""
    return a.view(numpy.ndarray) if isinstance(a, ndarray) else a


def _host_all(values):
    if isinstance(values, (tuple, list)):
        return type(values)(_host_all(v) for v in values)
    if isinstance(values, dict):
        return {k: _host_all(v) for k, v in values.items()}
    return _host(values)


def _device(result, fresh: bool):
    """Wrap a NumPy result as a device array (0-d for scalars, as CuPy's reductions return);
    count an allocation when ``fresh`` (it is a new buffer, not a view or an ``out``)."""
    if isinstance(result, tuple):
        return tuple(_device(r, fresh) for r in result)
    if isinstance(result, numpy.generic):
        result = numpy.asarray(result)
    if isinstance(result, numpy.ndarray):
        if fresh and result.base is None:
            counters.allocations += 1
        return result.view(ndarray)
    return result


class ndarray(numpy.ndarray):  # noqa: N801 - cupy's name
    """A device array of the emulation: NumPy memory, every operation counted as on a GPU."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _launched()
        if out is not None:
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*_host_all(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result, fresh=True)

    def __array_function__(self, func, types, args, kwargs):
        result = func(*_host_all(args), **_host_all(kwargs))
        if kwargs.get("out") is not None:
            _launched()
            return kwargs["out"]
        if isinstance(result, (bool, int, float)):  # CuPy answers with a 0-d device array
            result = numpy.asarray(result)
        fresh = isinstance(result, numpy.generic) or (
            isinstance(result, numpy.ndarray) and result.base is None)
        if fresh:  # a new result was computed (views such as .T are free)
            _launched()
        return _device(result, fresh=True)

    # Indexing: basic slices are views (free); array indices gather or scatter (a launch).
    def __getitem__(self, key):
        result = _host(self)[_host_all(key)]
        if isinstance(result, numpy.ndarray) and result.base is None:
            _launched()
            return _device(result, fresh=True)
        if isinstance(result, numpy.generic):  # an element is a 0-d view, as in CuPy
            key = key if isinstance(key, tuple) else (key,)
            return _host(self)[(*_host_all(key), Ellipsis)].view(ndarray)
        return result.view(ndarray) if isinstance(result, numpy.ndarray) else result

    def __setitem__(self, key, value):
        _launched()
        _host(self)[_host_all(key)] = _host(value)

    # Methods NumPy implements without dispatching: route them through counted calls.
    def argmax(self, axis=None, out=None):
        return numpy.argmax(self, axis=axis, out=out)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and numpy.dtype(dtype) == self.dtype:
            return self
        _launched()
        return _device(_host(self).astype(dtype, order=order, casting=casting), fresh=True)

    def copy(self, order="C"):
        _launched()
        return _device(_host(self).copy(order=order), fresh=True)

    def fill(self, value):
        _launched()
        _host(self).fill(value)

    def take(self, indices, axis=None, out=None):
        return numpy.take(self, indices, axis=axis, out=out)

    def set(self, host):
        """Copy the host array ``host`` (same shape) into this one (host-to-device: no launch,
        no sync)."""
        if _capture is not None:
            raise RuntimeError("the CUDA emulation cannot copy from the host during a capture")
        _host(self)[...] = numpy.asarray(host)

    # Device-to-host reads.
    def get(self):
        """A NumPy copy on the host (a host synchronisation)."""
        counters.syncs += 1
        return _host(self).copy()

    def item(self, *args):
        counters.syncs += 1
        return _host(self).item(*args)

    def tolist(self):
        counters.syncs += 1
        return _host(self).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())


# ---------------------------------------------------------------- creation and transfer
def _new(array):
    if _capture is not None:
        raise RuntimeError("the CUDA emulation cannot allocate during a stream capture")
    counters.allocations += 1
    return array.view(ndarray)


def empty(shape, dtype=float, order="C"):
    """An uninitialised device array (one allocation)."""
    return _new(numpy.empty(shape, dtype=dtype, order=order))


def zeros(shape, dtype=float, order="C"):
    """A zero-filled device array (one allocation, one launch to fill it)."""
    _launched()
    return _new(numpy.zeros(shape, dtype=dtype, order=order))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    """A device array holding ``obj`` (a host-to-device copy: one allocation, no sync)."""
    return _new(numpy.array(_host(obj), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asarray(obj, dtype=None, order=None):
    """``obj`` as a device array, without a copy when it already is one of that dtype."""
    if isinstance(obj, ndarray) and (dtype is None or numpy.dtype(dtype) == obj.dtype):
        return obj
    return array(obj, dtype=dtype, order=order or "K")


def asnumpy(a):
    """A host NumPy copy of device array ``a`` (a host synchronisation)."""
    if isinstance(a, ndarray):
        return a.get()
    return numpy.asarray(a)


def __getattr__(name):
    """Everything else NumPy has (functions, ufuncs, dtypes) is NumPy's: called on device arrays it
    dispatches through :class:`ndarray`'s hooks and is counted there."""
    return getattr(numpy, name)


# ---------------------------------------------------------------- raw kernels
_SCALARS = {"f": numpy.float32, "d": numpy.float64, "i": numpy.int32, "l": numpy.int64,
            "u": numpy.uint8, "b": numpy.bool_}
_CTYPES = {"f": "c_float", "d": "c_double", "i": "c_int32", "l": "c_int64", "u": "c_uint8",
           "b": "c_bool"}


class RawKernel:
    """A kernel of a :class:`RawModule`; call it as CuPy's: ``kernel(grid, block, args)``."""

    def __init__(self, host_kernel: cuda_host.HostKernel):
        self._kernel = host_kernel

    def __call__(self, grid, block, args, shared_mem=0):
        import ctypes

        grid, block = (tuple(g) + (1,) * (3 - len(g)) for g in (grid, block))
        signature = self._kernel.signature
        if len(args) != len(signature):
            raise TypeError(f"{self._kernel.name} takes {len(signature)} arguments, "
                            f"got {len(args)}")
        keep, pointers = [], []
        for position, (code, arg) in enumerate(zip(signature, args)):
            where = f"{self._kernel.name} argument {position}"
            if code.isupper():
                want = numpy.dtype(_SCALARS[code.lower()])
                if isinstance(arg, numpy.uint64) and arg == 0:  # a null device pointer
                    value = ctypes.c_void_p(0)
                elif not isinstance(arg, ndarray):
                    raise TypeError(f"{where}: expected a device array of {want}, got "
                                    f"{type(arg).__name__}")
                elif arg.dtype != want or not arg.flags.c_contiguous:
                    raise TypeError(f"{where}: expected a C-contiguous {want} array, got "
                                    f"{arg.dtype} (C-contiguous: {arg.flags.c_contiguous})")
                else:
                    value = ctypes.c_void_p(arg.ctypes.data)
            else:
                want = _SCALARS[code]
                if type(arg) is not want:
                    raise TypeError(f"{where}: expected a numpy.{want.__name__} scalar, got "
                                    f"{type(arg).__name__} (CuPy would pass it with another "
                                    "size or type)")
                value = getattr(ctypes, _CTYPES[code])(arg.item())
            keep.append(value)
            pointers.append(ctypes.pointer(value))
        if _capture is not None:  # recorded into the graph being captured, run when it launches
            _capture.append((self._kernel, grid, block, pointers, (keep, args)))
            return
        counters.launches += 1
        self._kernel.launch(grid, block, pointers)


class RawModule:
    """CuPy's RawModule over :class:`cuda_host.HostModule` (``options`` are the device compiler's
    and do not apply on the host; the host build has its own, :data:`cuda_host.HOST_FLAGS`)."""

    def __init__(self, code, options=(), name_expressions=()):
        self._module = _host_module(code, tuple(name_expressions))

    def get_function(self, name):
        """The kernel instantiated as ``name``."""
        return RawKernel(self._module.kernel(name))


@functools.lru_cache(maxsize=None)
def _host_module(code, name_expressions):
    return cuda_host.HostModule(code, name_expressions)


# ---------------------------------------------------------------- the device
class Graph:
    """A captured sequence of raw kernel launches; :meth:`launch` replays it as one launch."""

    def __init__(self, launches):
        self._launches = launches

    def launch(self, stream=None):  # noqa: ARG002 - cupy's signature; one stream here
        """Run every captured kernel, in order (counted as one launch, as a CUDA graph is)."""
        counters.launches += 1
        for kernel, grid, block, pointers, _ in self._launches:
            kernel.launch(grid, block, pointers)


class Stream:
    """A CUDA stream: work runs in order at once here; capture records raw kernel launches."""

    def __init__(self, null=False, non_blocking=False, ptds=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        """Wait for the device (a host synchronisation)."""
        counters.syncs += 1

    def begin_capture(self, mode=None):  # noqa: ARG002 - cupy's signature
        """Start recording raw kernel launches instead of running them."""
        global _capture
        if _capture is not None:
            raise RuntimeError("a stream capture is already under way")
        _capture = []

    def end_capture(self):
        """Stop recording; return the :class:`Graph` of what was recorded."""
        global _capture
        launches, _capture = _capture, None
        return Graph(launches)

    def is_capturing(self):
        """Whether a capture is under way."""
        return _capture is not None


class _Runtime:
    class CUDARuntimeError(RuntimeError):
        """Never raised by the emulation; named so callers can catch CuPy's error."""

    @staticmethod
    def getDeviceCount():  # noqa: N802 - cupy's name
        return 1

    @staticmethod
    def runtimeGetVersion():  # noqa: N802 - cupy's name
        return 0

    @staticmethod
    def getDeviceProperties(device):  # noqa: N802,ARG004 - cupy's name and signature
        return {"name": b"CUDA emulation on the host CPU", "totalGlobalMem": 0}


class _Device:
    id = 0


class _Cuda:
    runtime = _Runtime()

    @staticmethod
    def get_current_stream():
        return Stream()

    Device = _Device
    Stream = Stream
    Graph = Graph


cuda = _Cuda()
