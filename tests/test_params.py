"""The hyper-parameter table: resolution, refusals that say what was wrong, command-line text, and
the estimator and trainer built from it."""

from __future__ import annotations

import inspect
import os
from dataclasses import fields

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn.kernels import ACTIVATIONS
from fastfnn.params import BY_NAME, PARAMETERS, defaults, resolve
from fastfnn.trainer import TrainConfig


def test_defaults_resolve_to_the_trainers_forms():
    hp = resolve(defaults())
    assert hp["hidden_layer_sizes"] == (100,) and hp["activation"] == "relu"
    assert hp["dtype"] is np.float32 and hp["batch_size"] == "auto" and hp["n_jobs"] is None
    assert type(hp["learning_rate_init"]) is float and type(hp["max_iter"]) is int


def test_aliases_and_conversions():
    hp = resolve({"hidden_layer_sizes": 50, "activation": "logistic", "dtype": np.float64,
                  "batch_size": None, "n_jobs": -1, "alpha": 1, "shuffle": np.bool_(False)})
    assert hp == {"hidden_layer_sizes": (50,), "activation": "sigmoid", "dtype": np.float64,
                  "batch_size": None, "n_jobs": os.cpu_count() or 1, "alpha": 1.0,
                  "shuffle": False}
    assert type(hp["alpha"]) is float and type(hp["shuffle"]) is bool
    assert resolve({"hidden_layer_sizes": np.array([8, 4])})["hidden_layer_sizes"] == (8, 4)


REFUSED = [
    # (name, value, error, message)
    ("learning_rate_init", -0.1, ValueError, "learning_rate_init must be > 0, got -0.1"),
    ("learning_rate_init", "fast", TypeError,
     "learning_rate_init must be a finite real number > 0, got 'fast' (str)"),
    ("tol", float("nan"), ValueError, "tol must be a finite real number >= 0, got nan"),
    ("momentum", 1.5, ValueError, "momentum must be in [0, 1], got 1.5"),
    ("beta_1", 1.0, ValueError, "beta_1 must be in [0, 1), got 1.0"),
    ("validation_fraction", 1.0, ValueError, "validation_fraction must be in [0, 1), got 1.0"),
    ("max_iter", True, TypeError, "max_iter must be an integer >= 1, got True (bool)"),
    ("max_iter", 2.0, TypeError, "max_iter must be an integer >= 1, got 2.0 (float)"),
    ("hidden_layer_sizes", (10, 0), ValueError, "hidden_layer_sizes[1] must be >= 1, got 0"),
    ("hidden_layer_sizes", "wide", TypeError, "hidden_layer_sizes must be a positive integer or "
     "a sequence of positive integers, got 'wide' (str)"),
    ("activation", "swish", ValueError,
     "activation must be one of ['identity', 'relu', 'sigmoid', 'tanh', 'logistic'], got 'swish'"),
    ("solver", None, TypeError, "solver must be one of ['sgd', 'adam', 'lbfgs'], got None (NoneType)"),
    ("batch_size", 0, ValueError, "batch_size must be 'auto', None or an integer >= 1, got 0"),
    ("batch_size", 2.5, TypeError,
     "batch_size must be 'auto', None or an integer >= 1, got 2.5 (float)"),
    ("dtype", "int8", ValueError, "dtype must be 'float32' or 'float64', got 'int8'"),
    ("dtype", None, ValueError, "dtype must be 'float32' or 'float64', got None"),
    ("init", "orthogonal", ValueError,
     "init must be one of ['auto', 'glorot', 'he', 'xavier'] or a finite real number > 0, got "
     "'orthogonal'"),
    ("learning_rate", "optimal", ValueError,
     "learning_rate must be one of ['constant', 'invscaling', 'adaptive', 'step', 'cosine', "
     "'onecycle'], got 'optimal'"),
    ("class_weight", {0: -1}, ValueError,
     "class_weight must be None, 'balanced' or a dict {class label: weight >= 0}, got {0: -1}"),
    ("n_jobs", 0, ValueError, "n_jobs must be None, -1 (every core) or an integer >= 1, got 0"),
    ("shuffle", 1, TypeError, "shuffle must be True or False, got 1 (int)"),
    ("verbose", -1, ValueError, "verbose must be True or False or an integer >= 0, got -1"),
    ("random_state", -1, ValueError, "random_state must be None, an integer >= 0 or a NumPy "
     "RandomState or Generator, got -1"),
    ("backend", 3, TypeError, "backend must be None or a string, got 3 (int)"),
]


@pytest.mark.parametrize("name,value,error,message", REFUSED,
                         ids=[f"{r[0]}={r[1]!r}" for r in REFUSED])
def test_refusals_name_the_parameter_the_value_and_what_is_accepted(name, value, error, message):
    with pytest.raises(error) as info:
        resolve({name: value})
    assert str(info.value) == message


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match=r"unknown parameters \['lr'\]; expected names among"):
        resolve({"lr": 0.1})


@pytest.mark.parametrize("name,text,value", [
    ("hidden_layer_sizes", "128, 64", (128, 64)), ("hidden_layer_sizes", "", ()),
    ("batch_size", "full", None), ("batch_size", "auto", "auto"), ("batch_size", "32", 32),
    ("init", "0.01", 0.01), ("init", "he", "he"), ("n_jobs", "-1", -1), ("n_jobs", "4", 4),
    ("learning_rate_init", "1e-3", 0.001), ("random_state", "7", 7), ("backend", "numpy", "numpy"),
])
def test_command_line_text_reads_as_the_parameter(name, text, value):
    assert BY_NAME[name].from_text(text) == value


@pytest.mark.parametrize("name,text,message", [
    ("batch_size", "many", "batch_size must be 'auto', 'full' or an integer >= 1, got 'many'"),
    ("batch_size", "0", "batch_size must be 'auto', 'full' or an integer >= 1, got '0'"),
    ("hidden_layer_sizes", "12,x", "hidden_layer_sizes must be comma-separated positive layer "
     "sizes such as 128,64 (or '' for none), got '12,x'"),
    ("learning_rate_init", "-1", "learning_rate_init must be a finite real number > 0, got '-1'"),
    ("n_jobs", "0", "n_jobs must be -1 (every core) or an integer >= 1, got '0'"),
    ("random_state", "-3", "random_state must be an integer >= 0, got '-3'"),
])
def test_command_line_text_refused_says_what_is_expected(name, text, message):
    with pytest.raises(ValueError) as info:
        BY_NAME[name].from_text(text)
    assert str(info.value) == message


def test_choices_are_the_options_of_string_parameters():
    assert BY_NAME["solver"].choices == ("sgd", "adam", "lbfgs")
    assert BY_NAME["dtype"].choices == ("float32", "float64")
    assert set(BY_NAME["activation"].choices) == {*ACTIVATIONS, "logistic"}
    assert BY_NAME["batch_size"].choices is None and BY_NAME["alpha"].choices is None


def test_every_activation_resolves_to_a_kernel_activation():
    for name in BY_NAME["activation"].choices:
        assert resolve({"activation": name})["activation"] in ACTIVATIONS


@pytest.mark.parametrize("ours,theirs", [(FastFNN, "MLPClassifier"),
                                         (FastFNNRegressor, "MLPRegressor")])
def test_positional_parameters_are_scikit_learns(ours, theirs):
    """MLPRegressor(loss, hidden_layer_sizes, activation, *, ...); MLPClassifier without loss."""
    neural_network = pytest.importorskip("sklearn.neural_network")

    def positional(cls):
        return [name for name, p in inspect.signature(cls).parameters.items()
                if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

    assert positional(ours) == positional(getattr(neural_network, theirs))
    if ours is FastFNNRegressor:
        model = FastFNNRegressor("poisson", (8,), "tanh")
        assert (model.loss, model.hidden_layer_sizes, model.activation) == ("poisson", (8,), "tanh")
        with pytest.raises(TypeError):
            FastFNNRegressor("poisson", (8,), "tanh", "adam")  # solver is keyword-only


def test_the_estimator_signature_is_the_table():
    signature = inspect.signature(FastFNN)
    assert list(signature.parameters) == [p.name for p in PARAMETERS]
    for p in PARAMETERS:
        parameter = signature.parameters[p.name]
        assert parameter.default == p.default
        assert (parameter.kind is inspect.Parameter.KEYWORD_ONLY) is not p.positional
    assert FastFNN().get_params() == defaults()
    assert FastFNN((5,), "tanh").get_params()["activation"] == "tanh"
    with pytest.raises(TypeError):
        FastFNN((5,), "tanh", "adam")  # solver is keyword-only, as in scikit-learn
    for p in PARAMETERS:
        assert f"    {p.name} (default {p.default!r}): " in FastFNN.__doc__


def test_the_trainer_config_takes_the_parameters_by_their_names():
    assert {f.name for f in fields(TrainConfig)} <= set(BY_NAME)


def test_n_iter_no_change_takes_inf_as_scikit_learn_does():
    import math
    assert resolve({"n_iter_no_change": float("inf")})["n_iter_no_change"] == math.inf
    assert BY_NAME["n_iter_no_change"].from_text("inf") == math.inf
    with pytest.raises(ValueError, match="n_iter_no_change must be"):
        resolve({"n_iter_no_change": -math.inf})
