"""The warm-up run (fastfnn.kernels.warmup): it reaches every epoch path and refuses unknown names."""

from __future__ import annotations

import pytest

from fastfnn.backends import available_backends, get_backend
from fastfnn.kernels.warmup import DTYPES, INPUTS, check_choices, warm_up


def _recording(backend):
    """The same backend, recording how each epoch ran and which dtypes its weights had."""
    runs = []

    class Recording(type(backend)):
        def run_epoch(self, job):
            path = super().run_epoch(job)
            runs.append((path, job.coefs[0].dtype.name, job.X.dtype.name, job.targets.ndim,
                         job.solver, job.batch_size, job.output, job.sample_weight is not None))
            return path

    return Recording(), runs


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_warm_up_runs_every_combination_asked_for(name):
    if available_backends()[name]:
        pytest.skip(f"{name}: {available_backends()[name]}")
    backend, runs = _recording(get_backend(name))
    assert warm_up(backend, dtypes=("float64",), inputs=INPUTS) == [
        "float64 weights, uint8 inputs", "float64 weights, float inputs"]
    assert {r[1] for r in runs} == {"float64"}
    assert {r[2] for r in runs} == {"uint8", "float64"}
    assert {r[3] for r in runs} == {1, 2}  # class labels and multi-label indicators
    assert {r[4] for r in runs} == {"sgd", "adam"}
    assert {r[5] for r in runs} >= {1, 96}  # per-example and whole-set steps
    assert {r[6] for r in runs} == {"softmax", "sigmoid", "squared_error"}
    assert {r[7] for r in runs} == {False, True}  # sample weights too
    if name == "numba":  # the fused epoch and the BLAS one (large dense batches)
        assert {r[0] for r in runs} == {"fused", "blas"}
        assert {r[7] for r in runs if r[0] == "blas"} == {False, True}


def test_unknown_names_are_refused_before_anything_runs():
    backend, runs = _recording(get_backend("numpy"))
    with pytest.raises(ValueError, match=r"unknown dtype 'float16'; expected some of"):
        warm_up(backend, dtypes=("float32", "float16"))
    with pytest.raises(ValueError, match=r"unknown input kind 'int8'"):
        check_choices(DTYPES, ("uint8", "int8"))
    assert runs == []
