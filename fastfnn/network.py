"""Parameter initialisation of a chain of dense layers (scikit-learn's Glorot, He, Xavier or a normal
std), on the host.

The passes through the layers are on the compute floor: :mod:`fastfnn.kernels.composed`.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

INITS = ("glorot", "he", "xavier")

#: scikit-learn's Glorot factor: bound sqrt(factor / (n_in + n_out)), 2 for the logistic activation.
GLOROT_FACTOR = {"sigmoid": 2.0}
DEFAULT_GLOROT_FACTOR = 6.0


def init_params(layer_sizes, init, activation, dtype, rng):
    """Draw fresh weights for the layer chain ``layer_sizes`` (n_in, h1, ..., n_out).

    init: ``"glorot"`` or ``"auto"`` (scikit-learn's MLP initialisation: weights and biases uniform
    in +-sqrt(f / (n_in + n_out)), f = 2 for the "sigmoid" activation, else 6), ``"he"`` (normal,
    std sqrt(2 / n_in)), ``"xavier"`` (Glorot-uniform weights, bound sqrt(6 / (n_in + n_out))) or a
    positive number used as the std of a zero-mean normal; biases start at zero except for glorot.
    activation: the hidden activation as the kernels name it.
    Returns (coefs, intercepts): lists of NumPy arrays (n_in, n_out) and (n_out,) of ``dtype``.
    """
    if init == "auto":
        init = "glorot"
    coefs, intercepts = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        b = np.zeros(n_out)
        if init == "glorot":
            bound = math.sqrt(GLOROT_FACTOR.get(activation, DEFAULT_GLOROT_FACTOR) / (n_in + n_out))
            w = rng.uniform(-bound, bound, (n_in, n_out))
            b = rng.uniform(-bound, bound, n_out)
        elif init == "he":
            w = rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)
        elif init == "xavier":
            bound = math.sqrt(6.0 / (n_in + n_out))
            w = rng.uniform(-bound, bound, (n_in, n_out))
        elif isinstance(init, Real):
            w = rng.standard_normal((n_in, n_out)) * float(init)
        else:
            raise ValueError(f"init must be one of {['auto', *INITS]} or a positive std, got "
                             f"{init!r}")
        coefs.append(np.ascontiguousarray(w, dtype=dtype))
        intercepts.append(b.astype(dtype))
    return coefs, intercepts
