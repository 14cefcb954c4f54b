"""Recipes: their parameters, overrides, refusals, the command line's --recipe, and a small-budget
accuracy check of the mnist recipe (the full runs are benchmarks/recipe_mnist.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fastfnn import FastFNN
from fastfnn.cli import main
from fastfnn.params import resolve
from fastfnn.recipes import RECIPES, recipe_params


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_is_valid_and_gives_a_reason_for_each_ingredient(name):
    recipe = RECIPES[name]
    resolve(recipe.params)
    assert set(recipe.params) <= set(recipe.reasons)
    assert FastFNN.from_recipe(name).get_params() == {**FastFNN().get_params(), **recipe.params}


def test_overrides_replace_the_recipes_values():
    model = FastFNN.from_recipe("mnist", backend="numpy", max_iter=3, random_state=7)
    assert (model.backend, model.max_iter, model.random_state) == ("numpy", 3, 7)
    assert model.learning_rate == RECIPES["mnist"].params["learning_rate"]
    assert recipe_params("mnist", {"dropout": 0.5})["dropout"] == 0.5


def test_an_unknown_recipe_or_parameter_is_refused():
    with pytest.raises(ValueError, match=r"unknown recipe 'cifar'; expected one of \['mnist'"):
        FastFNN.from_recipe("cifar")
    with pytest.raises(TypeError, match="learning_rate_max"):
        FastFNN.from_recipe("mnist", learning_rate_max=1.0)


def _fake_mnist(n=400, seed=0):
    """Small MNIST-shaped uint8 data: ((X, y), (X_test, y_test))."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    return (X, y), (X[:100], y[:100])


def test_train_recipe_takes_the_recipe_and_the_options_given(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("fastfnn.datasets.load_mnist", lambda *a, **k: _fake_mnist())
    out = tmp_path / "model.npz"
    assert main(["train", "--recipe", "mnist", "--epochs", "1", "--dropout", "0.3",
                 "--backend", "numpy", "--hidden", "16", "--out", str(out), "--quiet"]) == 0
    params = FastFNN.load(out).get_params()
    recipe = RECIPES["mnist"].params
    assert (params["max_iter"], params["dropout"], params["hidden_layer_sizes"]) == (1, 0.3, (16,))
    for name in ("learning_rate", "label_smoothing", "solver", "batch_size",
                 "learning_rate_init"):
        assert params[name] == recipe[name], name


def test_the_mnist_recipe_learns_on_a_small_budget(mnist_uint8):
    (X, y), (X_test, y_test) = mnist_uint8
    model = FastFNN.from_recipe("mnist", hidden_layer_sizes=(128,), max_iter=4, batch_size=64,
                               random_state=0)
    model.fit(X[:6000], y[:6000])
    assert model.score(X_test[:2000], y_test[:2000]) > 0.9
