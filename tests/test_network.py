"""Parameter initialisation."""

import numpy as np
import pytest

from fastfnn.network import init_params


def test_he_and_xavier_scales():
    rng = np.random.default_rng(0)
    (w_he,), _ = init_params((400, 300), "he", "relu", np.float64, rng)
    assert w_he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    (w_x,), (b,) = init_params((400, 300), "xavier", "tanh", np.float32, rng)
    bound = np.sqrt(6 / 700)
    assert np.abs(w_x).max() <= bound and np.abs(w_x).max() > 0.95 * bound
    assert w_x.dtype == np.float32 and not b.any()


@pytest.mark.parametrize("activation,factor", [("relu", 6), ("tanh", 6), ("identity", 6),
                                               ("sigmoid", 2)])
def test_auto_init_is_scikit_learns_glorot(activation, factor):
    """Weights and biases uniform in +-sqrt(factor / (n_in + n_out)), as MLPClassifier._init_coef
    (the default was He for ReLU before)."""
    coefs, intercepts = init_params((500, 400, 3), "auto", activation, np.float64,
                                    np.random.default_rng(1))
    for w, b in zip(coefs, intercepts):
        bound = np.sqrt(factor / sum(w.shape))
        assert bound >= np.abs(w).max() > 0.9 * bound
        assert bound >= np.abs(b).max() > 0
    again, _ = init_params((500, 400, 3), "glorot", activation, np.float64,
                           np.random.default_rng(1))
    np.testing.assert_array_equal(coefs[0], again[0])


def test_numeric_init_is_a_normal_std_and_depth_zero_is_one_layer():
    coefs, intercepts = init_params((50, 40), 0.01, "relu", np.float64, np.random.default_rng(2))
    assert len(coefs) == 1 and coefs[0].std() == pytest.approx(0.01, rel=0.05)
    with pytest.raises(ValueError, match="init must be"):
        init_params((3, 2), "orthogonal", "relu", np.float64, np.random.default_rng(0))
