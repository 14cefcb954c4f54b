"""What a fit leaves behind: the FittedState that the estimator produces and consumes, and that the
model file stores.

Host (NumPy) arrays and plain Python values only; nothing here knows the estimator, the trainer or
the file format. scikit-learn's fitted attributes (``coefs_``, ``classes_``, ``n_iter_``, ...) are
views of one FittedState (see ``FastFNN._publish``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np


#: Output layers of a regressor (the rest, "softmax" and "sigmoid", are a classifier's).
REGRESSION_OUTPUTS = ("squared_error", "poisson")

#: scikit-learn's ``out_activation_`` of each output.
OUT_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "logistic", "squared_error": "identity",
                   "poisson": "exp"}


@dataclass(eq=False)
class OptimizerState:
    """The optimizer's moments and step count, so that training continues exactly where it stopped.

    solver: the optimizer they belong to, "sgd" or "adam".
    groups: sgd [velocity of the weights, of the biases]; adam [first moment of the weights, of the
        biases, second moment of the weights, of the biases]; each a list with one array per layer,
        shaped like that layer's weights (n_in, n_out) or biases (n_out,), of the weights' dtype.
    steps: Adam's step count (its bias correction); 0 for sgd.
    learning_rate: sgd's step size as its schedule left it (partial_fit continues with it), or
        None: learning_rate_init (Adam, and files written before schedules existed).
    """

    #: Groups of arrays per solver.
    GROUPS: ClassVar[dict[str, int]] = {"sgd": 2, "adam": 4}

    solver: str
    groups: list[list[np.ndarray]]
    steps: int = 0
    learning_rate: float | None = None

    def fits(self, coefs, intercepts) -> bool:
        """Whether these arrays are shaped as the weights ``coefs`` and biases ``intercepts``
        (per layer) they would step: not after coefs_ of other layer sizes were assigned."""
        params = (coefs, intercepts)
        return all([a.shape for a in group] == [p.shape for p in params[i % 2]]
                   for i, group in enumerate(self.groups))

    def as_dtype(self, dtype) -> OptimizerState:
        """This state with its arrays in ``dtype`` (itself when they are)."""
        if all(a.dtype == dtype for group in self.groups for a in group):
            return self
        return replace(self, groups=[[np.asarray(a, dtype) for a in group]
                                     for group in self.groups])


@dataclass(eq=False)
class FittedState:
    """Everything a fitted estimator knows beyond its parameters, and the parameters it goes with.

    params: the estimator's parameters (``get_params()``) that go with this state: a model file stores
        them so that the loaded estimator is the saved one.
    coefs / intercepts: per layer, the weights (n_in, n_out) and biases (n_out,), float32 or float64.
    classes: a classifier's sorted labels seen at fit, (n_outputs,); multi-label: 0..n_labels - 1
        (int64); None for a regressor.
    activation: the hidden layers' activation, as the kernels name it ("relu", "sigmoid", ...).
    output: "softmax" (cross-entropy) or "sigmoid" (one-vs-rest binary cross-entropy) for a
        classifier; "squared_error" (identity output) or "poisson" (exponential output) for a
        regressor.
    multilabel: a classifier fitted on a 0/1 indicator matrix (predictions are indicator rows too);
        a regressor: fitted on 2-D targets (predictions are 2-D too).
    history: per epoch of every fit that continued the model (warm start, partial_fit), lists under
        fastfnn.trainer.HISTORY_KEYS: loss, accuracy (None for a regressor), val_loss,
        val_accuracy (None without a validation set or for a regressor), seconds.
    t: training samples seen, counting every epoch (scikit-learn's ``t_``).
    best_loss: the least training loss (None when the fit stopped early on validation scores).
    validation_scores / best_validation_score: the validation score (accuracy, or R^2 for a
        regressor) per epoch and the best of them, when fit with early stopping (else None).
    optimizer: the optimizer's state, or None when there is none to continue from.
    feature_names: the string column names of the data frame the model was fitted on
        (scikit-learn's ``feature_names_in_``), an object array (n_features,); None when X had
        none.
    no_improvement: the stopping rule's count of epochs in a row without improvement when the fit
        ended (scikit-learn's ``_no_improvement_count``), which a warm start or partial_fit
        continues.
    """

    params: dict[str, Any]
    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    classes: np.ndarray | None
    activation: str
    output: str
    multilabel: bool
    history: dict[str, list]
    t: int
    best_loss: float | None
    validation_scores: list[float] | None
    best_validation_score: float | None
    optimizer: OptimizerState | None
    feature_names: np.ndarray | None = None
    no_improvement: int = 0

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """(n_features, hidden sizes..., n_outputs)."""
        return (int(self.coefs[0].shape[0]), *(int(w.shape[1]) for w in self.coefs))

    @property
    def n_features_in(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_layers(self) -> int:
        """Layers counting the input and the output layer (scikit-learn's ``n_layers_``)."""
        return len(self.coefs) + 1

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def is_regressor(self) -> bool:
        return self.output in REGRESSION_OUTPUTS

    @property
    def n_iter(self) -> int:
        """Epochs in the history."""
        return len(self.history["loss"])

    @property
    def out_activation(self) -> str:
        """scikit-learn's name of the output activation: "softmax", "logistic", "identity" or
        "exp"."""
        return OUT_ACTIVATIONS[self.output]
