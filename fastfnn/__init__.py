"""FastFNN: fast feedforward neural networks on NumPy, Numba or CUDA, one scikit-learn-style estimator."""

from fastfnn.backends import available_backends, get_backend

__version__ = "0.1.0"
__all__ = ["available_backends", "get_backend", "__version__"]
