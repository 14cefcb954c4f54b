"""Equality of fitted states and fitted estimators, bit for bit (or within a tolerance, for runs on
different CPUs), for the tests of the model and files."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from fastfnn.state import FittedState


def assert_same_arrays(a, b, rtol=0.0):
    """Two lists of arrays: same length, and each pair the same dtype and values (bitwise, or
    within ``rtol`` of the largest magnitude when rtol > 0)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        if rtol:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * float(np.abs(y).max()))
        else:
            np.testing.assert_array_equal(x, y)


def _without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def _assert_same_value(x, y, rtol, key):
    """Two plain values equal and of one type; with rtol > 0 floats (also inside lists, tuples
    and dicts) within rtol of the larger magnitude."""
    assert type(x) is type(y), key
    if rtol and isinstance(x, float):
        assert abs(x - y) <= rtol * max(abs(x), abs(y)), (key, x, y)
    elif rtol and isinstance(x, (list, tuple)):
        assert len(x) == len(y), key
        for u, v in zip(x, y):
            _assert_same_value(u, v, rtol, key)
    elif rtol and isinstance(x, dict):
        assert x.keys() == y.keys(), key
        for name in x:
            _assert_same_value(x[name], y[name], rtol, f"{key}[{name!r}]")
    else:
        assert x == y, key


def _assert_same_history(x, y, rtol):
    """Two histories without their timings: equal, the numbers within ``rtol`` when rtol > 0."""
    _assert_same_value(_without_seconds(x), _without_seconds(y), rtol, "history")


def assert_same_state(a: FittedState, b: FittedState, timings=True, rtol=0.0):
    """Every field of two FittedStates equal (arrays bitwise, values of the same type).

    timings=False: the epochs' durations (history["seconds"]) may differ (separate training runs).
    rtol > 0: the weights, optimizer state and history's numbers may differ by that much (training
    runs on different CPUs, whose BLAS kernels may round the last bit differently).
    """
    for field in fields(FittedState):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("coefs", "intercepts"):
            assert_same_arrays(x, y, rtol)
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
                    assert_same_arrays(gx, gy, rtol)
        elif field.name == "feature_names" and (x is not None or y is not None):
            assert x is not None and y is not None, field.name
            assert x.dtype == y.dtype and list(x) == list(y), field.name
        elif field.name == "history" and not timings:
            _assert_same_history(x, y, rtol)
        else:
            assert x == y and type(x) is type(y), field.name


def assert_same_model(a, b, timings=True, rtol=0.0):
    """Two estimators with the same attributes: parameters, fitted attributes and FittedState
    (timings and rtol as for assert_same_state)."""
    assert vars(a).keys() == vars(b).keys()
    for key, x in vars(a).items():
        y = vars(b)[key]
        if isinstance(x, FittedState):
            assert_same_state(x, y, timings, rtol)
        elif key == "history_" and not timings:
            _assert_same_history(x, y, rtol)
        elif isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert_same_arrays(x, y, rtol)
            assert all(w.flags.writeable for w in y)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        else:
            _assert_same_value(x, y, rtol, key)
