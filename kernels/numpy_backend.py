"""NumPy reference backend: the base contract's kernels as they are, on the host with NumPy's BLAS.

Every kernel is the default written in :class:`~fastfnn.kernels.base.Backend` on ``xp = numpy``; this
module adds only what is NumPy-specific: availability, BLAS thread limits and the version report.
"""

from __future__ import annotations

import numpy as np

from .base import Backend
from .threads import limit_threads


class NumpyBackend(Backend):
    """Every kernel in plain vectorised NumPy (BLAS for the GEMMs), float32 or float64."""

    name = "numpy"
    xp = np

    @classmethod
    def availability(cls):
        return True, ""

    def thread_limit(self, n_threads):
        return limit_threads(n_threads)

    def describe(self):
        return {"numpy": np.__version__}
