"""The exceptions and warnings FastFNN shares with scikit-learn, which stays an optional dependency.

scikit-learn takes most of a second to import, so it is imported only when one of these is raised or
warned: the instance is then also an instance of scikit-learn's class (``except NotFittedError``
catches it whichever of the two a caller imported). Without scikit-learn, FastFNN's own classes
stand alone, with the same bases as scikit-learn's.
"""

from __future__ import annotations

import functools
import warnings


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before fit, partial_fit or load (as scikit-learn's NotFittedError)."""

    def __reduce__(self):
        # rebuilt through not_fitted: the class raised may be the one made with scikit-learn's,
        # which pickle cannot find by name (a worker process raising it must still send it back)
        return not_fitted, (str(self),)


class DataConversionWarning(UserWarning):
    """The data was converted to what the estimator expects (as scikit-learn's warning)."""


@functools.cache
def _shared(ours: type, module: str, name: str) -> type:
    """``ours``, also deriving from scikit-learn's class ``module.name`` when it can be imported."""
    try:
        theirs = getattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return ours
    return type(ours.__name__, (ours, theirs), {"__module__": __name__, "__doc__": ours.__doc__})


def not_fitted(message: str) -> NotFittedError:
    """A NotFittedError carrying ``message`` (scikit-learn's too, when it is installed)."""
    return _shared(NotFittedError, "sklearn.exceptions", "NotFittedError")(message)


def warn_data_conversion(message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` as a DataConversionWarning (scikit-learn's too, when it is installed)."""
    warnings.warn(message, _shared(DataConversionWarning, "sklearn.exceptions",
                                   "DataConversionWarning"), stacklevel=stacklevel)


class ConvergenceWarning(UserWarning):
    """The optimizer stopped before converging (as scikit-learn's warning)."""


def warn_convergence(message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` as a ConvergenceWarning (scikit-learn's too, when it is installed)."""
    warnings.warn(message, _shared(ConvergenceWarning, "sklearn.exceptions", "ConvergenceWarning"),
                  stacklevel=stacklevel)
