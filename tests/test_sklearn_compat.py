"""The exceptions and warnings shared with scikit-learn, with it installed and without it."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from fastfnn import FastFNN, sklearn_compat


def test_without_scikit_learn_the_classes_are_our_own():
    made = sklearn_compat._shared.__wrapped__(sklearn_compat.NotFittedError,
                                              "no_such_module_here", "NotFittedError")
    assert made is sklearn_compat.NotFittedError
    assert issubclass(made, ValueError) and issubclass(made, AttributeError)


def test_with_scikit_learn_they_are_also_its_classes():
    exceptions = pytest.importorskip("sklearn.exceptions")
    error = sklearn_compat.not_fitted("not fitted")
    assert isinstance(error, (exceptions.NotFittedError, sklearn_compat.NotFittedError))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sklearn_compat.warn_data_conversion("converted")
        sklearn_compat.warn_convergence("not converged")
    assert issubclass(caught[0].category, exceptions.DataConversionWarning)
    assert issubclass(caught[1].category, exceptions.ConvergenceWarning)


def test_not_fitted_error_survives_pickling():
    """joblib workers send exceptions back pickled; the class made with scikit-learn's pickles."""
    with pytest.raises(sklearn_compat.NotFittedError) as info:
        FastFNN().predict(np.zeros((1, 3)))
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and str(again) == str(info.value)
