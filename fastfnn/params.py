"""The estimator's hyper-parameters, declared once: name, default, what is accepted, one line of doc.

:data:`PARAMETERS` is the one table (as scikit-learn's ``_parameter_constraints``). FastFNN takes its
constructor's signature and defaults from it and checks its parameters with :func:`resolve`; the model
file reader checks a file's parameters with the same :func:`resolve`; the command line derives its
options' conversions, choices and help from the same entries (:meth:`Param.from_text`). A parameter has
one name everywhere: the resolved values are keyed by the estimator's names, which the trainer's
``TrainConfig`` and the kernels' ``EpochJob`` use too.

Every refusal names the parameter, the value given and what is accepted: TypeError for a value of the
wrong kind, ValueError for a value of the right kind that is out of range or not an option.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from fastfnn.kernels import ACTIVATIONS
from fastfnn.network import INITS
from fastfnn.schedules import SCHEDULES


class Constraint:
    """What one parameter accepts.

    ``check(name, value)`` returns the resolved value (the form the trainer uses) or raises;
    ``describe()`` says what is accepted, for messages; ``from_text(text)`` reads a command-line
    token (ValueError when it means nothing here).
    """

    def check(self, name: str, value):
        raise NotImplementedError

    def describe(self, text: bool = False) -> str | None:
        """What is accepted, as a phrase; ``text``: as spelled on the command line (None: it
        cannot be given there)."""
        raise NotImplementedError

    def from_text(self, text: str):
        raise NotImplementedError

    def choices(self) -> tuple[str, ...] | None:
        """The strings accepted, when they are all that is accepted (else None)."""
        return None

    def refuse(self, name, value, error=ValueError, expected=None):
        """Raise ``error``: ``name`` must be ``expected`` (default: this constraint), got ``value``."""
        kind = f" ({type(value).__name__})" if error is TypeError else ""
        raise error(f"{name} must be {expected or self.describe()}, got {value!r}{kind}")


def _is_integer(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Interval(Constraint):
    """An integer or a finite real number within bounds (``None``: unbounded on that side);
    ``low_open`` / ``high_open``: the bound itself is excluded."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def bounds(self) -> str:
        """The bounds as a phrase: ``">= 1"``, ``"> 0"``, ``"in [0, 1)"`` (``""``: none)."""
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low}, "
                    f"{self.high}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high}"
        return ""

    def describe(self, text=False):
        kind = "an integer" if self.integer else "a finite real number"
        return f"{kind} {self.bounds()}".rstrip()

    def check(self, name, value):
        if not (_is_integer(value) if self.integer else _is_real(value)):
            self.refuse(name, value, TypeError)
        if not self.integer and not math.isfinite(value):
            self.refuse(name, value)
        too_low = self.low is not None and (value < self.low or self.low_open and value == self.low)
        too_high = self.high is not None and (value > self.high
                                              or self.high_open and value == self.high)
        if too_low or too_high:
            self.refuse(name, value, expected=self.bounds())
        return int(value) if self.integer else float(value)

    def from_text(self, text):
        return int(text) if self.integer else float(text)


@dataclass(frozen=True)
class Options(Constraint):
    """One of a few strings; ``aliases`` maps an accepted name to the name it resolves to."""

    values: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()

    def describe(self, text=False):
        return repr(self.values[0]) if len(self.values) == 1 else f"one of {list(self.values)}"

    def choices(self):
        return self.values

    def check(self, name, value):
        if not isinstance(value, str):
            self.refuse(name, value, TypeError)
        if value not in self.values:
            self.refuse(name, value)
        return dict(self.aliases).get(value, value)

    def from_text(self, text):
        if text not in self.values:
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class Flag(Constraint):
    """True or False (a Python or NumPy bool; 0 and 1 are refused, so files and calls agree)."""

    def describe(self, text=False):
        return None if text else "True or False"

    def check(self, name, value):
        if not isinstance(value, (bool, np.bool_)):
            self.refuse(name, value, TypeError)
        return bool(value)

    def from_text(self, text):
        raise ValueError(text)  # the command line spells flags as options without a value


@dataclass(frozen=True)
class Nothing(Constraint):
    """``None``; ``word`` is how the command line spells it (none: it cannot be given there)."""

    word: str | None = None

    def describe(self, text=False):
        if text:
            return None if self.word is None else repr(self.word)
        return "None"

    def check(self, name, value):
        if value is not None:
            self.refuse(name, value, TypeError)
        return None

    def from_text(self, text):
        if self.word is None or text.strip().lower() != self.word:
            raise ValueError(text)
        return None


@dataclass(frozen=True)
class Infinity(Constraint):
    """``inf`` (a float or NumPy float), scikit-learn's "never": resolves to ``math.inf``."""

    def describe(self, text=False):
        return "'inf'" if text else "inf"

    def check(self, name, value):
        if not _is_real(value):
            self.refuse(name, value, TypeError)
        if value != math.inf:
            self.refuse(name, value)
        return math.inf

    def from_text(self, text):
        if text.strip().lower() != "inf":
            raise ValueError(text)
        return math.inf


@dataclass(frozen=True)
class EveryCore(Constraint):
    """-1, scikit-learn's "every core": resolves to this machine's CPU count."""

    def describe(self, text=False):
        return "-1 (every core)"

    def check(self, name, value):
        if not _is_integer(value):
            self.refuse(name, value, TypeError)
        if value != -1:
            self.refuse(name, value)
        return os.cpu_count() or 1

    def from_text(self, text):
        if int(text) != -1:
            raise ValueError(text)
        return -1


@dataclass(frozen=True)
class Instances(Constraint):
    """An instance of one of ``types``, described as ``what`` (not readable from text or a file)."""

    types: tuple[type, ...]
    what: str

    def describe(self, text=False):
        return None if text else self.what

    def check(self, name, value):
        if not isinstance(value, self.types):
            self.refuse(name, value, TypeError)
        return value

    def from_text(self, text):
        raise ValueError(text)


@dataclass(frozen=True)
class Text(Constraint):
    """Any string (checked further by whoever uses it, e.g. a backend name by fastfnn.backends)."""

    def describe(self, text=False):
        return "a string"

    def check(self, name, value):
        if not isinstance(value, str):
            self.refuse(name, value, TypeError)
        return value

    def from_text(self, text):
        return text


@dataclass(frozen=True)
class WeightsByClass(Constraint):
    """A dict {class label: weight >= 0} (labels are checked against the classes when fitting)."""

    def describe(self, text=False):
        return None if text else "a dict {class label: weight >= 0}"

    def check(self, name, value):
        if not isinstance(value, Mapping):
            self.refuse(name, value, TypeError)
        weight = Interval(integer=False, low=0)
        return {label: weight.check(f"{name}[{label!r}]", w) for label, w in value.items()}

    def from_text(self, text):
        raise ValueError(text)


@dataclass(frozen=True)
class LayerSizes(Constraint):
    """Hidden layer sizes: a positive integer or a sequence of them; resolves to a tuple of ints."""

    def describe(self, text=False):
        if text:
            return "comma-separated positive layer sizes such as 128,64 (or '' for none)"
        return "a positive integer or a sequence of positive integers"

    def check(self, name, value):
        if _is_integer(value):
            value = (value,)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            self.refuse(name, value, TypeError)
        sizes = tuple(value)
        element = Interval(integer=True, low=1)
        return tuple(element.check(f"{name}[{i}]", size) for i, size in enumerate(sizes))

    def from_text(self, text):
        return tuple(int(part) for part in text.split(",")) if text.strip() else ()


@dataclass(frozen=True)
class Rates(Constraint):
    """A rate in [0, 1) or a sequence of them (one per hidden layer); resolves to a float or a tuple
    of floats (the number of layers is checked when fitting)."""

    def describe(self, text=False):
        if text:
            return "a rate in [0, 1) or comma-separated rates, one per hidden layer, e.g. 0.2,0.1"
        return "a rate in [0, 1) or a sequence of them, one per hidden layer"

    def check(self, name, value):
        rate = _real(0, 1, high_open=True)
        if _is_real(value):
            return rate.check(name, value)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            self.refuse(name, value, TypeError)
        return tuple(rate.check(f"{name}[{i}]", r) for i, r in enumerate(value))

    def from_text(self, text):
        parts = [float(part) for part in text.split(",")]
        return parts[0] if len(parts) == 1 else tuple(parts)


@dataclass(frozen=True)
class ImageShape(Constraint):
    """An image's (height, width) in pixels, two positive integers; resolves to a tuple."""

    def describe(self, text=False):
        if text:
            return "height,width such as 28,28"
        return "a pair (height, width) of positive integers"

    def check(self, name, value):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            self.refuse(name, value, TypeError)
        shape = tuple(value)
        if len(shape) != 2:
            self.refuse(name, value)
        side = Interval(integer=True, low=1)
        return tuple(side.check(f"{name}[{i}]", size) for i, size in enumerate(shape))

    def from_text(self, text):
        return tuple(int(part) for part in text.split(","))


@dataclass(frozen=True)
class AnyOf(Constraint):
    """Whatever one of ``alternatives`` accepts (resolved by the first that accepts it)."""

    alternatives: tuple[Constraint, ...]

    def describe(self, text=False):
        phrases = [p for p in (c.describe(text) for c in self.alternatives) if p is not None]
        return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"

    def check(self, name, value):
        wrong_type = True
        for alternative in self.alternatives:
            try:
                return alternative.check(name, value)
            except TypeError:
                pass
            except ValueError:
                wrong_type = False  # the right kind of value, out of range for that alternative
        self.refuse(name, value, TypeError if wrong_type else ValueError)

    def from_text(self, text):
        for alternative in self.alternatives:
            try:
                return alternative.from_text(text)
            except ValueError:
                pass
        raise ValueError(text)


@dataclass(frozen=True)
class FloatDType(Constraint):
    """A floating-point dtype among ``names``, given as anything ``np.dtype`` reads; resolves to the
    NumPy scalar type (``np.float32``)."""

    names: tuple[str, ...]

    def describe(self, text=False):
        return " or ".join(repr(n) for n in self.names)

    def check(self, name, value):
        try:  # (np.dtype(None) is float64: None is no dtype here)
            dtype = None if value is None else np.dtype(value)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in self.names:
            self.refuse(name, value)
        return dtype.type

    def choices(self):
        return self.names

    def from_text(self, text):
        if text not in self.names:
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its name, default, what it accepts, and one line saying what it does.

    positional: the constructor also takes it by position, as scikit-learn's: the classifier's
    first two (hidden_layer_sizes, activation), the regressor's first three (loss first).
    """

    name: str
    default: Any
    constraint: Constraint
    doc: str
    positional: bool = False

    def check(self, value):
        """``value`` resolved (see the module docstring); TypeError/ValueError naming the parameter."""
        return self.constraint.check(self.name, value)

    def from_text(self, text: str):
        """The value a command-line token stands for, checked; ValueError saying what is expected."""
        try:
            value = self.constraint.from_text(text)
            self.check(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be {self.constraint.describe(text=True)}, "
                             f"got {text!r}") from None
        return value

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The strings accepted when they are all that is accepted (a command line's choices)."""
        return self.constraint.choices()


def _real(low=None, high=None, low_open=False, high_open=False):
    return Interval(integer=False, low=low, high=high, low_open=low_open, high_open=high_open)


def _int(low=None, high=None):
    return Interval(integer=True, low=low, high=high)


_HIDDEN = (
    Param("hidden_layer_sizes", (100,), LayerSizes(),
          "neurons per hidden layer; none is a linear model (softmax regression for a classifier)",
          positional=True),
    Param("activation", "relu",
          Options((*ACTIVATIONS, "logistic"), aliases=(("logistic", "sigmoid"),)),
          "hidden-layer activation ('logistic' is 'sigmoid')", positional=True),
)

#: scikit-learn's MLP parameters after the loss, shared by both estimators, in its order.
_TRAINING = (
    Param("solver", "adam", Options(("sgd", "adam", "lbfgs")),
          "optimizer: SGD with momentum, Adam, or full-batch L-BFGS (scipy's L-BFGS-B)"),
    Param("alpha", 0.0001, _real(0), "L2 penalty"),
    Param("batch_size", "auto", AnyOf((Options(("auto",)), Nothing("full"), _int(1))),
          "rows per step: auto is min(200, n_samples), None (on the command line: full) is "
          "full-batch descent, 1 is per-example SGD (lbfgs always uses every row)"),
    Param("learning_rate", "constant",
          Options(("constant", "invscaling", "adaptive", *SCHEDULES)),
          "step-size schedule. scikit-learn's, for sgd only (adam keeps learning_rate_init): "
          "constant; invscaling, learning_rate_init / (t + 1)^power_t after each epoch, t the "
          "samples seen; adaptive, divided by 5 whenever n_iter_no_change epochs fail to improve "
          "by tol. Over the fit's max_iter epochs, for sgd and adam, from learning_rate_init (see "
          "fastfnn.schedules): step, times lr_gamma every lr_step_size epochs; cosine, annealed "
          "to 0; onecycle, PyTorch's OneCycleLR (from learning_rate_init / 25 up to "
          "learning_rate_init over the first 0.3 of the fit, then down to "
          "learning_rate_init / 2.5e5)"),
    Param("learning_rate_init", 0.001, _real(0, low_open=True), "learning rate"),
    Param("power_t", 0.5, _real(0), "exponent of the invscaling schedule (sgd)"),
    Param("lr_warmup", 0.0, _real(0),
          "epochs of linear warm-up to learning_rate_init before the step or cosine schedule "
          "(fractions allowed; onecycle has its own)"),
    Param("lr_step_size", 10, _int(1), "epochs between decays of the step schedule"),
    Param("lr_gamma", 0.1, _real(0, low_open=True), "factor of each decay of the step schedule"),
    Param("lr_interval", "step", Options(("step", "epoch")),
          "whether the step, cosine and onecycle schedules move after every step or every epoch"),
    Param("max_iter", 200, _int(1),
          "epochs to train at most (lbfgs: iterations at most)"),
    Param("shuffle", True, Flag(), "shuffle the rows before every epoch"),
    Param("random_state", None,
          AnyOf((Nothing(), _int(0), Instances((np.random.RandomState, np.random.Generator),
                                                "a NumPy RandomState or Generator"))),
          "seed of initialisation, shuffling and the validation split (None: a fresh one each fit)"),
    Param("tol", 1e-4, _real(0),
          "least improvement that counts (training loss, or the validation score with "
          "early_stopping; lbfgs: its gradient tolerance)"),
    Param("verbose", False, AnyOf((Flag(), _int(0))),
          "a progress bar per epoch (on a terminal) and one line per epoch"),
    Param("warm_start", False, Flag(),
          "fit continues from the current weights and appends to loss_curve_"),
    Param("momentum", 0.9, _real(0, 1), "SGD momentum"),
    Param("nesterovs_momentum", True, Flag(), "Nesterov's momentum rather than plain momentum"),
    Param("early_stopping", False, Flag(),
          "hold out validation_fraction of the training data and stop when its score (accuracy, "
          "or R^2 for a regressor) stops improving; keep the best weights"),
    Param("validation_fraction", 0.1, _real(0, 1, high_open=True),
          "share of the training data held out by early stopping"),
    Param("beta_1", 0.9, _real(0, 1, high_open=True), "Adam's decay of the first moment"),
    Param("beta_2", 0.999, _real(0, 1, high_open=True), "Adam's decay of the second moment"),
    Param("epsilon", 1e-8, _real(0, low_open=True), "Adam's term against division by zero"),
    Param("n_iter_no_change", 10, AnyOf((_int(1), Infinity())),
          "stop after this many epochs without an improvement of more than tol (inf: never)"),
    Param("max_fun", 15000, _int(1), "lbfgs: loss and gradient evaluations at most"),
    Param("dropout", 0.0, Rates(),
          "inverted dropout on the output of each hidden layer while training (sgd, adam): one "
          "rate for every hidden layer or one per hidden layer; nothing is dropped when predicting"),
    Param("input_dropout", 0.0, _real(0, 1, high_open=True),
          "inverted dropout on the input features while training (sgd, adam)"),
    Param("augment_shift", 0, _int(0),
          "training rows are images shifted by up to this many pixels per axis, at random per "
          "row and epoch, the pixels shifted in being 0 (sgd, adam)"),
    Param("image_shape", None, AnyOf((Nothing("square"), ImageShape())),
          "(height, width) of the images augment_shift shifts; None: square images of "
          "n_features pixels"),
)

_COMPUTE = (
    Param("backend", "auto", AnyOf((Nothing(), Text())),
          "compute backend: auto (CUDA GPU, else Numba, else NumPy; $FASTFNN_BACKEND overrides), "
          "numpy, numba or cupy"),
    Param("dtype", "float32", FloatDType(("float32", "float64")),
          "precision of the weights and the arithmetic"),
    Param("init", "auto", AnyOf((Options(("auto", *INITS)), _real(0, low_open=True))),
          "weight initialisation: auto and glorot are scikit-learn's (weights and biases uniform "
          "in +-sqrt(6 / (n_in + n_out)), 2 instead of 6 for logistic), he (normal weights, std "
          "sqrt(2 / n_in), zero biases), xavier (Glorot-uniform weights, zero biases), or a "
          "normal standard deviation"),
)

_THREADS = Param("n_jobs", None, AnyOf((Nothing(), EveryCore(), _int(1))),
                 "CPU threads for the kernels (Numba and BLAS), -1 for every core; None (unset): "
                 "this process's share: the least of its CPU affinity, $NUMBA_NUM_THREADS, "
                 "$OMP_NUM_THREADS and joblib's inner_max_num_threads")

#: The classifier's hyper-parameters (FastFNN), in the constructor's order. Names and meanings are
#: scikit-learn's MLPClassifier's where it has them.
PARAMETERS: tuple[Param, ...] = (
    *_HIDDEN, *_TRAINING,
    Param("class_weight", None,
          AnyOf((Nothing(), Options(("balanced",)), WeightsByClass())),
          "weights of the classes, multiplying sample_weight: a dict {label: weight}, or "
          "balanced (n_samples / (n_classes * count of the class)); None: all 1"),
    *_COMPUTE,
    Param("output", "auto", Options(("auto", "softmax", "sigmoid")),
          "output layer: softmax + cross-entropy, or one-vs-rest sigmoid units + binary "
          "cross-entropy (auto: sigmoid for a 0/1 indicator matrix, else softmax)"),
    Param("label_smoothing", 0.0, _real(0, 1, high_open=True),
          "softmax output: train against (1 - label_smoothing) one-hot + label_smoothing / "
          "n_classes"),
    _THREADS,
)

#: The regressor's hyper-parameters (FastFNNRegressor), in the constructor's order (as
#: MLPRegressor's).
REGRESSOR_PARAMETERS: tuple[Param, ...] = (
    Param("loss", "squared_error", Options(("squared_error", "poisson")),
          "squared_error (identity output, half the mean squared error) or poisson (exponential "
          "output, half the Poisson deviance; targets >= 0)", positional=True),
    *_HIDDEN, *_TRAINING, *_COMPUTE, _THREADS,
)

#: Every parameter of either table by name (a name means the same in both).
BY_NAME: dict[str, Param] = {p.name: p for p in (*PARAMETERS, *REGRESSOR_PARAMETERS)}


def defaults(table: tuple[Param, ...] = PARAMETERS) -> dict[str, Any]:
    """Every parameter's default, by name (``table``: PARAMETERS or REGRESSOR_PARAMETERS)."""
    return {p.name: p.default for p in table}


def resolve(values: Mapping[str, Any], table: tuple[Param, ...] = PARAMETERS) -> dict[str, Any]:
    """Check ``values`` (parameter name -> value, e.g. ``get_params()``); return them resolved.

    Resolved: hidden_layer_sizes a tuple of ints, activation the kernel's name ('logistic' ->
    'sigmoid'), dtype a NumPy scalar type, n_jobs a thread count or None, numbers as int/float,
    flags as bool; the rest as given. Raises ValueError for an unknown name, and TypeError or
    ValueError naming the first parameter that is refused.
    """
    names = [p.name for p in table]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; expected names among {names}")
    return {name: BY_NAME[name].check(value) for name, value in values.items()}


def docstring(indent: str = "    ", table: tuple[Param, ...] = PARAMETERS) -> str:
    """The table as docstring lines: ``name (default ...): doc.``, one per parameter."""
    return "\n".join(f"{indent}{p.name} (default {p.default!r}): {p.doc}." for p in table)
