"""Parameter initialisation of a chain of dense layers (He, Xavier or a normal std), on the host.

The passes through the layers are on the compute floor: :mod:`fastfnn.kernels.composed`.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

INITS = ("he", "xavier")


def init_params(layer_sizes, init, activation, dtype, rng):
    """Draw fresh weights for the layer chain ``layer_sizes`` (n_in, h1, ..., n_out).

    init: ``"he"`` (normal, std sqrt(2 / n_in)), ``"xavier"`` (Glorot uniform, bound
    sqrt(6 / (n_in + n_out))), ``"auto"`` (He for ReLU, Xavier otherwise) or a positive number used
    as the std of a zero-mean normal. Biases start at zero.
    Returns (coefs, intercepts): lists of NumPy arrays (n_in, n_out) and (n_out,) of ``dtype``.
    """
    if init == "auto":
        init = "he" if activation == "relu" else "xavier"
    coefs, intercepts = [], []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        if init == "he":
            w = rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)
        elif init == "xavier":
            bound = math.sqrt(6.0 / (n_in + n_out))
            w = rng.uniform(-bound, bound, (n_in, n_out))
        elif isinstance(init, Real):
            w = rng.standard_normal((n_in, n_out)) * float(init)
        else:
            raise ValueError(f"init must be 'he', 'xavier', 'auto' or a positive std, got {init!r}")
        coefs.append(np.ascontiguousarray(w, dtype=dtype))
        intercepts.append(np.zeros(n_out, dtype=dtype))
    return coefs, intercepts
