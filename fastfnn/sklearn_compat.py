"""The exceptions and warnings FastFNN shares with scikit-learn, which stays an optional dependency,
and scikit-learn's metadata routing for estimators that do not derive from its BaseEstimator.

scikit-learn takes most of a second to import (0.9 s here), so it is never imported for these: once a
program has imported it, an error raised or a warning warned is also an instance of scikit-learn's
class (``except NotFittedError`` catches it whichever of the two a caller imported); before that,
no code can name scikit-learn's class, and FastFNN's own stands alone, with the same bases.

Metadata routing (:func:`metadata_request`, :func:`set_request`) is built on scikit-learn's public
``sklearn.utils.metadata_routing.MetadataRequest``, imported when a request is read or set; without
scikit-learn those raise ImportError, as no meta-estimator could route anything.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import warnings


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before fit, partial_fit or load (as scikit-learn's NotFittedError)."""

    def __reduce__(self):
        # rebuilt through not_fitted: the class raised may be the one made with scikit-learn's,
        # which pickle cannot find by name (a worker process raising it must still send it back)
        return not_fitted, (str(self),)


class DataConversionWarning(UserWarning):
    """The data was converted to what the estimator expects (as scikit-learn's warning)."""


def _shared(ours: type, module: str, name: str) -> type:
    """``ours``, also deriving from scikit-learn's class ``module.name`` once the program has
    imported scikit-learn (a fit that warned imported it, 0.9 s, until this checked)."""
    if module.partition(".")[0] not in sys.modules:
        return ours
    return _derived(ours, module, name)


@functools.cache
def _derived(ours: type, module: str, name: str) -> type:
    """A class deriving from ``ours`` and scikit-learn's ``module.name`` (``ours`` if that cannot
    be imported)."""
    try:
        theirs = getattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return ours
    return type(ours.__name__, (ours, theirs), {"__module__": __name__, "__doc__": ours.__doc__})


def not_fitted(message: str) -> NotFittedError:
    """A NotFittedError carrying ``message`` (scikit-learn's too, when it is imported)."""
    return _shared(NotFittedError, "sklearn.exceptions", "NotFittedError")(message)


def warn_data_conversion(message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` as a DataConversionWarning (scikit-learn's too, when it is imported)."""
    warnings.warn(message, _shared(DataConversionWarning, "sklearn.exceptions",
                                   "DataConversionWarning"), stacklevel=stacklevel)


class ConvergenceWarning(UserWarning):
    """The optimizer stopped before converging (as scikit-learn's warning)."""


def warn_convergence(message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` as a ConvergenceWarning (scikit-learn's too, when it is imported)."""
    warnings.warn(message, _shared(ConvergenceWarning, "sklearn.exceptions", "ConvergenceWarning"),
                  stacklevel=stacklevel)


#: The default of every ``set_{method}_request`` parameter: leave that request as it is. The value
#: of scikit-learn's ``sklearn.utils.metadata_routing.UNCHANGED``, copied because a default must
#: not import scikit-learn.
UNCHANGED = "$UNCHANGED$"


def _metadata_routing():
    """scikit-learn's ``sklearn.utils.metadata_routing``; ImportError naming scikit-learn without
    it."""
    try:
        from sklearn.utils import metadata_routing
    except ImportError as exc:
        raise ImportError("metadata routing (get_metadata_routing, set_fit_request, ...) is "
                          "scikit-learn's and needs scikit-learn installed: "
                          "pip install scikit-learn") from exc
    return metadata_routing


@functools.cache
def _requestable(cls: type) -> dict[str, tuple[str, ...]]:
    """Method -> the metadata it takes: the keyword parameters of ``cls.set_{method}_request``."""
    found = {}
    for name in dir(cls):
        method = re.fullmatch(r"set_(\w+)_request", name)
        if method:
            found[method[1]] = tuple(inspect.signature(getattr(cls, name)).parameters)[1:]
    return found


def metadata_request(estimator):
    """scikit-learn's ``MetadataRequest`` for ``estimator``, as BaseEstimator's
    ``get_metadata_routing`` returns it: a copy of what its ``set_{method}_request`` calls asked
    for, else every metadata of each method unrequested (None). A method's metadata are the keyword
    parameters of the estimator's ``set_{method}_request``. ImportError without scikit-learn."""
    routing = _metadata_routing()
    if hasattr(estimator, "_metadata_request"):
        return routing.get_routing_for_object(estimator._metadata_request)
    request = routing.MetadataRequest(owner=estimator)
    for method, names in _requestable(type(estimator)).items():
        for name in names:
            getattr(request, method).add_request(param=name, alias=None)
    return request


def set_request(estimator, method: str, **requests):
    """Change ``estimator``'s requests for ``method`` as scikit-learn's ``set_{method}_request``
    does: each of ``requests`` (metadata name -> True, False, None or an alias) replaces that
    request, UNCHANGED keeps it. Returns ``estimator``.

    RuntimeError while scikit-learn's metadata routing is disabled and ValueError for a value that
    is none of those, with scikit-learn's messages, before anything changes; ImportError without
    scikit-learn.
    """
    routing = _metadata_routing()
    from sklearn import get_config
    if not get_config()["enable_metadata_routing"]:
        raise RuntimeError("This method is only available when metadata routing is enabled. You "
                           "can enable it using sklearn.set_config(enable_metadata_routing=True).")
    request = metadata_request(estimator)
    for name, alias in requests.items():
        # compared as a string only: an alias may be any object, which add_request then refuses
        if not (isinstance(alias, str) and alias == UNCHANGED):
            getattr(request, method).add_request(param=name, alias=alias)
    # kept where scikit-learn's estimators keep theirs: sklearn.base.clone copies this attribute
    estimator._metadata_request = request
    return estimator
