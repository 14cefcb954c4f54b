"""Fixtures of the fastfnn.bench tests: timing records as measure.measure_workload returns them."""

import pytest


@pytest.fixture
def records():
    """Four variants' records: FastFNN (median 0.2 s), PyTorch (0.4 s), the floor (0.05 s) and
    the bound (0.025 s)."""
    return [{"name": n, "kind": k, "path": p, "first_epoch_s": first, "times_s": times}
            for n, k, p, first, times in [
                ("fastfnn[numpy]", "fastfnn", "composed", 0.5, [0.2, 0.1, 0.3]),
                ("pytorch", "pytorch", "", 0.6, [0.4, 0.4, 0.4]),
                ("floor", "floor", "GEMMs only", 0.1, [0.05, 0.05, 0.06]),
                ("bound", "bound", "GEMMs on one thread / 2 cores", 0.1, [0.025, 0.02, 0.03]),
            ]]
