"""The base contract: every kernel has a working default on ``xp``, and ``run_epoch`` picks the path."""

from __future__ import annotations

import numpy as np

from fastfnn.backends import get_backend
from fastfnn.kernels import Backend, EpochJob
from fastfnn.network import init_params
from fastfnn.trainer import new_opt_state

from .conftest import blobs


class BareBackend(Backend):
    """A backend that writes nothing but its name and availability: the defaults do the rest."""

    name = "bare"

    @classmethod
    def availability(cls):
        return True, ""


def _job(backend, solver, output, order):
    X, y = blobs(n=90)
    coefs, intercepts = init_params((X.shape[1], 7, 3), "he", "tanh", np.float64,
                                    np.random.default_rng(5))
    coefs = [backend.asarray(w) for w in coefs]
    intercepts = [backend.asarray(b) for b in intercepts]
    return EpochJob(X=backend.asarray(X), targets=backend.asarray(y), order=order, batch_size=16,
                    coefs=coefs, intercepts=intercepts, activation="tanh", output=output,
                    solver=solver, opt_state=new_opt_state(backend, solver, coefs, intercepts),
                    learning_rate=0.05, momentum=0.9, nesterovs_momentum=True, beta_1=0.9,
                    beta_2=0.999, epsilon=1e-8, alpha=1e-3, t=0, x_scale=1.0,
                    stats=backend.zeros((2,), np.float64))


def test_a_backend_that_overrides_nothing_trains_like_the_numpy_reference():
    order = np.random.default_rng(2).permutation(90)
    for solver in ("sgd", "adam"):
        for output in ("softmax", "sigmoid"):
            bare, ref = _job(BareBackend(), solver, output, order), \
                _job(get_backend("numpy"), solver, output, order)
            assert BareBackend().run_epoch(bare) == "composed"
            get_backend("numpy").run_epoch(ref)
            assert bare.t == ref.t
            for a, b in zip(bare.coefs + bare.intercepts + [bare.stats],
                            ref.coefs + ref.intercepts + [ref.stats]):
                np.testing.assert_array_equal(a, b)


def test_run_epoch_says_which_path_ran():
    numba = get_backend("numba")
    assert numba.run_epoch(_job(numba, "sgd", "softmax", None)) == "fused"
    assert get_backend("numpy").run_epoch(_job(get_backend("numpy"), "sgd", "softmax", None)) \
        == "composed"
