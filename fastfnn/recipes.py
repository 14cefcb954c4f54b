"""Recipes: named, documented sets of FastFNN parameters that reach a stated accuracy on a known
data set in a stated time, each ingredient with the reason it is there.

:data:`RECIPES` maps a name to a :class:`Recipe`; :func:`recipe_params` gives a recipe's parameters
with overrides applied (``FastFNN.from_recipe`` and ``fastfnn train --recipe`` use it). The
figures quoted were measured by benchmarks/recipe_mnist.py (2 cores, Numba backend, compile
excluded; 2026-12-01: mnist 98.98% in 13.3 s, mnist-long 99.23% in 71.4 s); they are that
machine's, not a promise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """A named set of parameters: ``params`` (FastFNN's names), ``reasons`` (one line per
    ingredient, why it is there) and ``goal`` (what it reaches, and how it was measured)."""

    name: str
    params: Mapping[str, Any]
    reasons: Mapping[str, str]
    goal: str


_MNIST_REASONS = {
    "hidden_layer_sizes": "one wide hidden layer: enough capacity for 99%, and one layer's "
                          "epoch is about 1.5 s on two cores",
    "solver": "Adam with a one-cycle schedule converges in few epochs without tuning momentum",
    "learning_rate": "one-cycle: warm-up from a 25th of the peak, then cosine annealing to ~0, "
                     "so that the last epochs of a short fit settle at a small step size "
                     "(+0.1 point over a constant rate)",
    "learning_rate_init": "the one-cycle peak (0.003 measured no better)",
    "batch_size": "large enough that the two cores stay busy, small enough for enough steps",
    "max_iter": "the epochs the time budget allows (a fixed schedule: no early stopping)",
    "label_smoothing": "softer targets, less over-confidence: +0.2 point at no cost",
    "augment_shift": "random shifts of up to 1 pixel: new images every epoch, the largest "
                     "gain (+0.3 point; it doubles the epoch: shifted rows are dense, so the "
                     "sparse fused first layer cannot read them); dropout 0.2 on top lost "
                     "0.1 point",
    "alpha": "a little L2 (scikit-learn's default)",
    "n_iter_no_change": "never stop early: the schedule decides when training ends",
    "dtype": "float32: twice the arithmetic of float64 per second",
}

RECIPES: dict[str, Recipe] = {
    "mnist": Recipe(
        "mnist",
        {"hidden_layer_sizes": (1024,), "solver": "adam", "learning_rate": "onecycle",
         "learning_rate_init": 0.002, "batch_size": 256, "max_iter": 8, "label_smoothing": 0.1,
         "augment_shift": 1, "alpha": 0.0001, "n_iter_no_change": float("inf"),
         "dtype": "float32"},
        _MNIST_REASONS,
        ">= 98.5% test accuracy on MNIST with the whole fit in <= 30 s (2 cores, Numba)"),
    "mnist-long": Recipe(
        "mnist-long",
        {"hidden_layer_sizes": (1024, 1024), "solver": "adam", "learning_rate": "onecycle",
         "learning_rate_init": 0.002, "batch_size": 256, "max_iter": 20,
         "label_smoothing": 0.1, "augment_shift": 2, "alpha": 0.0001,
         "n_iter_no_change": float("inf"), "dtype": "float32"},
        {**_MNIST_REASONS,
         "hidden_layer_sizes": "two wide layers: the budget buys depth",
         "augment_shift": "random shifts of up to 2 pixels: more new images for the longer fit; "
                          "dropout 0.2 on top lost 0.05 point and took 1.5x the time"},
        ">= 99.0% test accuracy on MNIST in <= 5 minutes (2 cores, Numba)"),
}


def recipe_params(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters of recipe ``name`` with ``overrides`` (parameter name -> value) on top.

    Raises ValueError naming the recipes known when ``name`` is not one of them. The overrides are
    not checked here: the estimator checks every parameter when fitting.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return {**RECIPES[name].params, **(overrides or {})}
