"""NumPy reference backend: the base contract's kernels as they are, on the host with NumPy's BLAS.

Every kernel is the default written in :class:`~fastfnn.kernels.base.Backend` on ``xp = numpy``; this
module adds only what is NumPy-specific: availability, BLAS thread limits and the version report.
"""

from __future__ import annotations

import contextlib

import numpy as np
from threadpoolctl import threadpool_limits

from .base import Backend


class NumpyBackend(Backend):
    """Every kernel in plain vectorised NumPy (BLAS for the GEMMs), float32 or float64."""

    name = "numpy"
    xp = np

    @classmethod
    def availability(cls):
        return True, ""

    def thread_limit(self, n_threads):
        if n_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=n_threads, user_api="blas")

    def describe(self):
        return {"numpy": np.__version__}
