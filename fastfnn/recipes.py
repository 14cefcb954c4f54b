"""Recipes: named, documented sets of FastFNN parameters that reach a stated accuracy on a known
data set in a stated time, each ingredient with the reason it is there.

:data:`RECIPES` maps a name to a :class:`Recipe`; :func:`recipe_params` gives a recipe's parameters
with overrides applied (``FastFNN.from_recipe`` and ``fastfnn train --recipe`` use it). The
figures quoted were measured by benchmarks/recipe_mnist.py (2 cores, Numba backend, compile
excluded); they are this machine's, not a promise.
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
    "hidden_layer_sizes": "one wide hidden layer: on two cores, width is cheaper than depth per "
                          "point of accuracy (the fused epoch's first layer skips MNIST's zeros)",
    "solver": "Adam with a one-cycle schedule converges in few epochs without tuning momentum",
    "learning_rate": "one-cycle: warm-up from a 25th of the peak, then cosine annealing to ~0, "
                     "the largest gain per second of any ingredient",
    "learning_rate_init": "the one-cycle peak; higher diverges early, lower under-fits in the "
                          "epochs the budget allows",
    "batch_size": "large enough that the two cores stay busy, small enough for enough steps",
    "max_iter": "the epochs the time budget allows (a fixed schedule: no early stopping)",
    "label_smoothing": "softer targets: less over-confidence, a small gain at no cost",
    "dropout": "regularises the wide layer (it over-fits MNIST in a few epochs without it)",
    "alpha": "a little L2 on top of dropout",
    "n_iter_no_change": "never stop early: the schedule decides when training ends",
    "dtype": "float32: twice the arithmetic of float64 per second",
}

RECIPES: dict[str, Recipe] = {
    "mnist": Recipe(
        "mnist",
        {"hidden_layer_sizes": (1024,), "solver": "adam", "learning_rate": "onecycle",
         "learning_rate_init": 0.002, "batch_size": 256, "max_iter": 10, "label_smoothing": 0.1,
         "dropout": 0.2, "alpha": 0.0001, "n_iter_no_change": float("inf"), "dtype": "float32"},
        _MNIST_REASONS,
        ">= 98.5% test accuracy on MNIST with the whole fit in <= 30 s (2 cores, Numba)"),
    "mnist-long": Recipe(
        "mnist-long",
        {"hidden_layer_sizes": (1024, 1024), "solver": "adam", "learning_rate": "onecycle",
         "learning_rate_init": 0.002, "batch_size": 256, "max_iter": 20,
         "label_smoothing": 0.1, "dropout": 0.2, "augment_shift": 2, "alpha": 0.0001,
         "n_iter_no_change": float("inf"), "dtype": "float32"},
        {**_MNIST_REASONS,
         "hidden_layer_sizes": "two wide layers: the budget buys depth",
         "augment_shift": "random shifts of up to 2 pixels: new images every epoch, the largest "
                          "gain past 98.5% (they cost the fused epoch's sparse first layer)"},
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
