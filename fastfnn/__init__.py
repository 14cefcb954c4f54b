"""FastFNN: fast feedforward neural networks on NumPy, Numba or CUDA, as scikit-learn-style estimators
(FastFNN, a classifier, and FastFNNRegressor)."""

from fastfnn._version import __version__
from fastfnn.backends import available_backends, get_backend
from fastfnn.model import FastFNN, FastFNNRegressor
from fastfnn.sklearn_compat import NotFittedError
from fastfnn.trainer import TrainingDivergedError

__all__ = ["FastFNN", "FastFNNRegressor", "NotFittedError", "TrainingDivergedError", "available_backends",
           "get_backend", "load_dataset", "load_mnist", "to_onnx", "warmup", "__version__"]


def __getattr__(name):
    # Imported only when asked for: the data-set module pulls in urllib/gzip/zipfile.
    if name in ("load_mnist", "load_dataset"):
        from fastfnn import datasets
        return getattr(datasets, name)
    if name == "to_onnx":  # needs the onnx extra only when called
        from fastfnn.onnx_export import to_onnx
        return to_onnx
    if name == "warmup":
        from fastfnn.precompile import warmup
        return warmup
    raise AttributeError(f"module 'fastfnn' has no attribute {name!r}")
