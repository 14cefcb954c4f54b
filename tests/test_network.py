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


def test_auto_init_follows_the_activation():
    a, _ = init_params((500, 400), "auto", "relu", np.float64, np.random.default_rng(1))
    b, _ = init_params((500, 400), "auto", "sigmoid", np.float64, np.random.default_rng(1))
    assert a[0].std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert np.abs(b[0]).max() <= np.sqrt(6 / 900)


def test_numeric_init_is_a_normal_std_and_depth_zero_is_one_layer():
    coefs, intercepts = init_params((50, 40), 0.01, "relu", np.float64, np.random.default_rng(2))
    assert len(coefs) == 1 and coefs[0].std() == pytest.approx(0.01, rel=0.05)
    with pytest.raises(ValueError, match="init must be"):
        init_params((3, 2), "orthogonal", "relu", np.float64, np.random.default_rng(0))
