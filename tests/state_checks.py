"""Equality of fitted states and fitted estimators, bit for bit, for the tests of the model and files."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from fastfnn.state import FittedState


def assert_same_arrays(a, b):
    """Two lists of arrays: same length, and each pair the same dtype and values."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def assert_same_state(a: FittedState, b: FittedState, timings=True):
    """Every field of two FittedStates equal (arrays bitwise, values of the same type).

    timings=False: the epochs' durations (history["seconds"]) may differ (separate training runs).
    """
    for field in fields(FittedState):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("coefs", "intercepts"):
            assert_same_arrays(x, y)
        elif field.name == "classes" and (x is None or y is None):
            assert x is None and y is None  # a regressor's
        elif field.name == "classes":
            assert x.dtype == y.dtype and list(x) == list(y)
            assert [type(c) for c in x] == [type(c) for c in y]
        elif field.name == "optimizer":
            assert (x is None) == (y is None)
            if x is not None:
                assert (x.solver, x.steps, x.learning_rate) == (y.solver, y.steps, y.learning_rate)
                assert len(x.groups) == len(y.groups)
                for gx, gy in zip(x.groups, y.groups):
                    assert_same_arrays(gx, gy)
        elif field.name == "history" and not timings:
            assert _without_seconds(x) == _without_seconds(y)
        else:
            assert x == y and type(x) is type(y), field.name


def assert_same_model(a, b, timings=True):
    """Two estimators with the same attributes: parameters, fitted attributes and FittedState."""
    assert vars(a).keys() == vars(b).keys()
    for key, x in vars(a).items():
        y = vars(b)[key]
        if isinstance(x, FittedState):
            assert_same_state(x, y, timings)
        elif key == "history_" and not timings:
            assert _without_seconds(x) == _without_seconds(y)
        elif isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert_same_arrays(x, y)
            assert all(w.flags.writeable for w in y)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y and type(x) is type(y), key
