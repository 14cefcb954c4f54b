"""fastfnn.kernels — the compute floor: one module per backend, one Backend class per module.

Backends are registered by name and imported lazily, so an unavailable optional dependency (CuPy)
costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib

if __name__ == "kernels":  # a checkout's root on sys.path: "import kernels" finds the folder
    # Numba keeps one on-disk cache per source file, whatever name imported it: kernels compiled
    # under this name pickle their types under it, and every later fit that loads them fails
    # with "No module named 'kernels'". (Copies elsewhere, with caches of their own, may take
    # other names: the cache tests do.)
    raise ImportError("this folder is the package fastfnn.kernels; import it as fastfnn.kernels, "
                      "not as 'kernels'")

from .base import ACTIVATIONS, OUTPUTS, Backend, EpochJob

#: Registry: backend name -> "module:Class" inside this package. Adding a backend is adding one
#: module and one line here.
REGISTRY: dict[str, str] = {
    "numpy": "numpy_backend:NumpyBackend",
    "numba": "numba_backend:NumbaBackend",
    "cupy": "cupy_backend:CupyBackend",
}


def backend_class(name: str) -> type[Backend]:
    """Import and return the Backend subclass registered as ``name`` (KeyError if unknown).

    Raises ImportError when the backend's module needs a library that is not installed.
    """
    module_name, class_name = REGISTRY[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


__all__ = ["ACTIVATIONS", "OUTPUTS", "Backend", "EpochJob", "REGISTRY", "backend_class"]
