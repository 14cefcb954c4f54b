"""FastFNN: the estimator, a drop-in for scikit-learn's MLPClassifier that runs on any backend.

Its hyper-parameters are the table in :mod:`fastfnn.params` (the constructor's signature, defaults and
checks come from it). What a fit leaves behind is one :class:`fastfnn.state.FittedState`: fit and
partial_fit produce it from the trainer's state, :meth:`FastFNN._publish` exposes it as scikit-learn's
fitted attributes, and :mod:`fastfnn.io.modelfile` and :mod:`fastfnn.io.checkpoint` write and read it.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import os
import sys
from dataclasses import fields, replace

import numpy as np

from fastfnn.backends import get_backend
from fastfnn.io.checkpoint import Checkpoint, TrainingProgress, load_checkpoint, save_checkpoint
from fastfnn.io.modelfile import load_model, save_model
from fastfnn.metrics import confusion_matrix
from fastfnn.network import init_params
from fastfnn.params import BY_NAME, PARAMETERS, docstring, resolve
from fastfnn.progress import EpochProgress
from fastfnn.state import FittedState, OptimizerState
from fastfnn.trainer import (TrainConfig, TrainState, loss_and_correct,
                             new_opt_state, output_scores, train)
from fastfnn.validation import check_X, check_y

#: uint8 features are 8-bit intensities: the backend reads them as value / 255.
UINT8_SCALE = 1.0 / 255.0


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before fit, partial_fit or load (as scikit-learn's NotFittedError)."""


def _constructor(table):
    """An ``__init__`` whose signature is ``table``'s (fastfnn.params.PARAMETERS): the positional
    parameters first, the rest keyword-only, each with its default. It stores every argument
    unchanged, as scikit-learn's estimators do; checks happen when fitting."""
    kind = inspect.Parameter
    signature = inspect.Signature([
        kind("self", kind.POSITIONAL_OR_KEYWORD),
        *(kind(p.name, kind.POSITIONAL_OR_KEYWORD if p.positional else kind.KEYWORD_ONLY,
               default=p.default) for p in table)])

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__qualname__ = "FastFNN.__init__"
    return __init__


class FastFNN:
    """Feedforward neural network classifier (dense layers) trained by mini-batch gradient descent.

    Parameters share scikit-learn's MLPClassifier names and meanings; FastFNN adds backend, dtype,
    init, output and n_jobs. They are declared in :data:`fastfnn.params.PARAMETERS` and listed below.
    ``hidden_layer_sizes=()`` is softmax regression. uint8 features are read as 8-bit intensities
    and scaled by 1/255 on the backend, so MNIST can stay uint8 (a quarter of the memory) on the
    device. With a fixed thread count (n_jobs) a fixed seed gives bitwise the same model.

    fit, partial_fit and load set scikit-learn's fitted attributes (coefs_, intercepts_, classes_,
    loss_curve_, n_iter_, ...; :meth:`_publish` lists them) from one
    :class:`fastfnn.state.FittedState`, which :attr:`fitted_state_` returns whole; ``history_``
    holds per epoch the loss, accuracy, val_loss, val_accuracy and seconds.

    Parameters:
    """

    __init__ = _constructor(PARAMETERS)

    # ------------------------------------------------------------------ scikit-learn protocol
    @classmethod
    def _get_param_names(cls):
        return [p.name for p in PARAMETERS]

    def get_params(self, deep=True):  # noqa: ARG002 - scikit-learn signature
        """The constructor arguments as a dict (scikit-learn's estimator protocol)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; unknown names raise ValueError. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for FastFNN; valid: {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not _same(v, BY_NAME[k].default)]
        return f"FastFNN({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags  # only asked for by sklearn
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_label=True))

    _estimator_type = "classifier"

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, *, on_epoch=None, checkpoint=None, resume=False):
        """Train on X (n_samples, n_features) and y ((n,) labels or (n, k) 0/1 indicators).

        Starts from fresh weights unless ``warm_start`` is set and the model is fitted (or
        ``coefs_``/``intercepts_`` were assigned). On any error the model is left exactly as it was.

        on_epoch: called as ``on_epoch(epoch_index, record)`` after every epoch, ``record`` being
            that epoch's entries of ``history_`` (loss, accuracy, val_loss, val_accuracy, seconds).
        checkpoint: a file path; after every epoch the whole training state (weights, optimizer
            state, epoch, random generator, a hash of the configuration and data) is written there
            atomically, so killing the process at any moment leaves the previous checkpoint intact.
        resume: continue from ``checkpoint`` when that file exists. It must come from the same
            parameters (``max_iter`` and ``verbose`` aside) and data, else ValueError. A resumed fit
            ends with bitwise the same weights as an uninterrupted one (same backend and threads).
        Returns self.
        """
        return self._fit(X, y, None, False, on_epoch, checkpoint, resume)

    def partial_fit(self, X, y, classes=None, *, on_epoch=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        classes: every label that will ever be seen; required on the first call (as in
        scikit-learn), optional later. on_epoch: as in :meth:`fit`. Returns self.
        """
        return self._fit(X, y, classes, True, on_epoch)

    def _fit(self, X, y, classes, incremental, on_epoch=None, checkpoint=None, resume=False):
        hp = resolve(self.get_params())
        prior = self._state if self._fitted else None
        X = check_X(X, hp["dtype"], prior.n_features_in if incremental and prior else None)
        continuing = hasattr(self, "coefs_") and (incremental or self.warm_start)
        y = check_y(y, X.shape[0])
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"on_epoch must be callable, got {type(on_epoch).__name__}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH: the file to resume from")
        backend = get_backend(self.backend)
        multilabel = y.ndim == 2
        output = hp["output"]
        if output == "auto":
            output = "sigmoid" if multilabel else "softmax"
        if multilabel and output == "softmax":
            raise ValueError("softmax output needs 1-D class labels; use output='sigmoid' for a "
                             "multi-label indicator matrix")
        classes_ = self._resolve_classes(y, classes, incremental, continuing)
        targets = self._encode(y, classes_, hp["dtype"])
        sizes = (X.shape[1], *hp["hidden_layer_sizes"], len(classes_))
        if continuing:
            self._check_continuation(sizes, output)
            coefs = [np.ascontiguousarray(w, dtype=hp["dtype"]) for w in self.coefs_]
            intercepts = [np.ascontiguousarray(b, dtype=hp["dtype"]) for b in self.intercepts_]
        config_hash = None if checkpoint is None else self._config_hash(
            backend.name, X, targets, coefs if continuing else None)
        saved = None
        if resume and os.path.exists(checkpoint):
            saved = load_checkpoint(checkpoint)
            if saved.progress.config_hash != config_hash:
                raise ValueError(f"{checkpoint}: the checkpoint was written by a fit with other "
                                 "parameters or data; resume it with the same ones, or start "
                                 "afresh with resume=False")
        seed = saved.progress.seed if saved else _seed_of(self.random_state)
        rng = np.random.default_rng(seed)
        if not continuing:
            coefs, intercepts = init_params(sizes, hp["init"], hp["activation"], hp["dtype"], rng)

        X_train, t_train, X_val, t_val = X, targets, None, None
        if hp["early_stopping"] and not incremental:
            X_train, t_train, X_val, t_val = _validation_split(
                X, targets, hp["validation_fraction"], rng, stratify=not multilabel)
        batch_size = hp["batch_size"]
        if batch_size == "auto":
            batch_size = min(200, X_train.shape[0])
        # TrainConfig's fields are parameters by the same names; these three are resolved per fit.
        config = TrainConfig(**{**{f.name: hp[f.name] for f in fields(TrainConfig)},
                                "output": output, "batch_size": batch_size,
                                "early_stopping": hp["early_stopping"] and not incremental})
        x_scale = UINT8_SCALE if X.dtype == np.uint8 else 1.0
        if saved:
            state = _resumed_train_state(backend, saved)
            rng.bit_generator.state = saved.progress.rng_state
        else:
            dev_coefs = [backend.asarray(w) for w in coefs]
            dev_intercepts = [backend.asarray(b) for b in intercepts]
            # partial_fit continues the optimizer it left, if the solver is still the same.
            optimizer = prior.optimizer if incremental and continuing and prior else None
            if optimizer is not None and optimizer.solver == config.solver:
                opt_state = [[backend.asarray(a) for a in group] for group in optimizer.groups]
                t = optimizer.steps
            else:
                opt_state = new_opt_state(backend, config.solver, dev_coefs, dev_intercepts)
                t = 0
            state = TrainState(coefs=dev_coefs, intercepts=dev_intercepts, opt_state=opt_state,
                               t=t)
            if incremental and continuing and prior:
                state.history = copy.deepcopy(prior.history)
                state.best_loss = prior.best_loss if prior.best_loss is not None else math.inf
        # fit starts a new history (resumed: the one of the fit it continues); partial_fit adds
        # one epoch to the model's.
        epochs = 1 if incremental else (
            0 if state.finished else config.max_iter - len(state.history["loss"]))
        t_before = prior.t if continuing and prior else 0
        progress = EpochProgress(None if incremental else config.max_iter, sys.stdout) \
            if self.verbose else None

        def fitted_state():
            epochs_seen = 1 if incremental else len(state.history["loss"])
            return _fitted_state(self.get_params(), backend, state, config, classes_, multilabel,
                                 t_before + X_train.shape[0] * epochs_seen)

        def after_epoch(epoch, record):
            if checkpoint is not None:
                save_checkpoint(Checkpoint(fitted_state(), _progress(
                    backend, state, rng, seed, config_hash)), checkpoint)
            if progress is not None:
                progress.on_epoch(epoch, record)
            if on_epoch is not None:
                on_epoch(epoch, record)

        with backend.thread_limit(hp["n_jobs"]):
            train(backend, config, backend.asarray(X_train), backend.asarray(t_train), state, rng,
                  x_scale=x_scale,
                  X_val=None if X_val is None else backend.asarray(X_val),
                  targets_val=None if t_val is None else backend.asarray(t_val),
                  epochs=epochs, on_epoch=after_epoch,
                  on_progress=progress.on_progress if progress and progress.bar_enabled else None)
        # Training succeeded: only now does the model change.
        self._publish(fitted_state())
        return self

    # ------------------------------------------------------------------ fitted state
    def _publish(self, state: FittedState) -> None:
        """Keep ``state`` and set scikit-learn's fitted attributes from it (the one list of them).

        coefs_, intercepts_ and classes_ may be reassigned by users (warm start from given weights,
        as with MLPClassifier); :attr:`fitted_state_` reads them back.
        """
        self._state = state
        self.coefs_ = state.coefs
        self.intercepts_ = state.intercepts
        self.classes_ = state.classes
        self.n_features_in_ = state.n_features_in
        self.n_layers_ = state.n_layers
        self.n_outputs_ = state.n_outputs
        self.out_activation_ = state.out_activation
        self.history_ = state.history
        self.loss_curve_ = list(state.history["loss"])
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = state.best_loss
        self.validation_scores_ = state.validation_scores
        self.best_validation_score_ = state.best_validation_score
        self.n_iter_ = state.n_iter
        self.t_ = state.t

    @property
    def fitted_state_(self) -> FittedState:
        """Everything the fit left, as one FittedState: what :meth:`save` writes.

        Its params are the current ``get_params()``, its weights and classes those now in coefs_,
        intercepts_ and classes_. NotFittedError (a ValueError) before fit, partial_fit or load.
        """
        self._check_fitted()
        return replace(self._state, params=self.get_params(), coefs=self.coefs_,
                       intercepts=self.intercepts_, classes=self.classes_)

    def _config_hash(self, backend_name, X, targets, start_coefs):
        """SHA-256 of what makes a fit what it is: parameters, backend, data, starting weights."""
        params = {k: v for k, v in self.get_params().items() if k not in ("max_iter", "verbose")}
        digest = hashlib.sha256(repr(sorted(params.items())).encode())
        digest.update(backend_name.encode())
        for array in (X, targets, *(start_coefs or ())):
            digest.update(repr((array.dtype.str, array.shape)).encode())
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return digest.hexdigest()

    @property
    def _fitted(self):
        return getattr(self, "_state", None) is not None

    def _resolve_classes(self, y, classes, incremental, continuing):
        known = continuing and hasattr(self, "classes_")
        if y.ndim == 2:
            found = np.arange(y.shape[1])
            if known and len(self.classes_) != len(found):
                raise ValueError(f"y has {len(found)} label columns; the model was fitted with "
                                 f"{len(self.classes_)}")
            return found
        if incremental and not known:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit "
                                 "(every label that will be seen)")
            classes_ = np.unique(np.asarray(classes))
        elif known:
            classes_ = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), classes_):
                raise ValueError(f"classes {np.unique(classes)} differ from the fitted classes "
                                 f"{classes_}")
        else:
            classes_ = np.unique(y)
            if len(classes_) < 2:
                raise ValueError(f"y has a single class ({classes_[0]!r}); a classifier needs "
                                 "at least two classes")
        unknown = np.setdiff1d(np.unique(y), classes_)
        if len(unknown):
            raise ValueError(f"y contains labels not among the classes {list(classes_)}: "
                             f"{list(unknown[:10])}")
        return classes_

    def _encode(self, y, classes_, dtype):
        if y.ndim == 2:
            return np.ascontiguousarray(y, dtype=dtype)
        return np.searchsorted(classes_, y).astype(np.int64)

    def _check_continuation(self, sizes, output):
        have = (self.coefs_[0].shape[0], *(w.shape[1] for w in self.coefs_))
        chain_ok = len(self.intercepts_) == len(self.coefs_) and all(
            a.shape[1] == b.shape[0] for a, b in zip(self.coefs_[:-1], self.coefs_[1:])) and all(
            w.shape[1:] == b.shape for w, b in zip(self.coefs_, self.intercepts_))
        if not chain_ok or have != tuple(sizes):
            raise ValueError(f"cannot continue training: the model's layers are {have} but the data "
                             f"and hidden_layer_sizes need {tuple(sizes)}")
        for w in (*self.coefs_, *self.intercepts_):
            if not np.isfinite(w).all():
                raise ValueError("cannot continue training: coefs_/intercepts_ contain NaN or inf")
        if self._fitted and self._state.output != output:
            raise ValueError(f"cannot continue training: the model has a {self._state.output} "
                             f"output, output={output!r} was asked for")

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if not self._fitted:
            raise NotFittedError("this FastFNN is not fitted yet: call fit or partial_fit first "
                                 "(or FastFNN.load a saved model)")

    def _scores(self, X):
        self._check_fitted()
        dtype = self.coefs_[0].dtype
        X = check_X(X, dtype, self.n_features_in_)
        backend = get_backend(self.backend)
        with backend.thread_limit(BY_NAME["n_jobs"].check(self.n_jobs)):
            return output_scores(backend, [backend.asarray(w) for w in self.coefs_],
                                 [backend.asarray(b) for b in self.intercepts_],
                                 backend.asarray(X), self._state.activation, self._state.output,
                                 UINT8_SCALE if X.dtype == np.uint8 else 1.0)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) as float (the model's dtype).

        Softmax output: the softmax. Sigmoid output with single labels: the sigmoid units normalised
        to sum to 1 per row; with multi-label targets: each label's own sigmoid probability.
        """
        scores = self._scores(X)
        if self._state.output == "sigmoid" and not self._state.multilabel:
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), np.finfo(scores.dtype).tiny)
        return scores

    def predict(self, X):
        """Predicted labels (n_samples,) drawn from ``classes_``; multi-label: (n, k) 0/1 ints."""
        scores = self._scores(X)
        if self._state.multilabel:
            return (scores > 0.5).astype(np.int64)
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y):
        """Mean accuracy on (X, y) (multi-label: exact-match ratio), as in scikit-learn."""
        pred = self.predict(X)
        y = check_y(y, len(pred))
        if self._state.multilabel:
            return float(np.mean(np.all(pred == y, axis=1)))
        return float(np.mean(pred == y))

    def evaluate(self, X, y):
        """Loss, accuracy and confusion matrix on (X, y), labels among ``classes_``.

        Returns a dict: ``loss`` (mean cross-entropy, no L2 term), ``accuracy`` (float) and, for
        single-label models, ``confusion_matrix`` (n_classes, n_classes) int64 with true classes in
        rows and predictions in columns, in ``classes_`` order.
        """
        self._check_fitted()
        multilabel = self._state.multilabel
        dtype = self.coefs_[0].dtype
        X = check_X(X, dtype, self.n_features_in_)
        y = check_y(y, X.shape[0])
        if multilabel != (y.ndim == 2):
            raise ValueError("y must be a 0/1 indicator matrix for a multi-label model and 1-D "
                             "labels otherwise")
        if not multilabel:
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(f"y contains labels unseen at fit: {list(unknown[:10])}; the "
                                 f"model knows {list(self.classes_)}")
        elif y.shape[1] != len(self.classes_):
            raise ValueError(f"y has {y.shape[1]} label columns, the model {len(self.classes_)}")
        backend = get_backend(self.backend)
        targets = self._encode(y, self.classes_, dtype)
        loss_sum, correct = backend.to_numpy(loss_and_correct(
            backend, [backend.asarray(w) for w in self.coefs_],
            [backend.asarray(b) for b in self.intercepts_], backend.asarray(X),
            backend.asarray(targets), self._state.activation, self._state.output,
            UINT8_SCALE if X.dtype == np.uint8 else 1.0))
        result = {"loss": float(loss_sum) / X.shape[0], "accuracy": float(correct) / X.shape[0]}
        if not multilabel:
            pred = np.searchsorted(self.classes_, self.predict(X))
            result["confusion_matrix"] = confusion_matrix(targets, pred, len(self.classes_))
        return result

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to ``path`` (.npz, no pickle; fastfnn.io.modelfile) atomically.

        Returns the path. ValueError for an unfitted model or one holding what the format cannot
        store (e.g. classes that are arbitrary objects).
        """
        if not self._fitted:
            raise NotFittedError(f"{os.fspath(path)}: cannot save an unfitted FastFNN, expected a "
                                 "model fitted with fit or partial_fit (or loaded)")
        return save_model(self.fitted_state_, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (or a checkpoint of ``fit``); the loaded model
        predicts bitwise as the saved one and continues training from its optimizer state.

        FileNotFoundError for a missing file; ValueError for a malformed one.
        """
        state = load_model(path)
        model = cls(**state.params)
        model._publish(state)
        return model


FastFNN.__doc__ = f"{FastFNN.__doc__.rstrip()}\n{docstring(indent=' ' * 8)}\n"


def _same(a, b):
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def _seed_of(random_state) -> int:
    """The int seed of a fit: random_state itself, drawn from a RandomState/Generator, or fresh."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max))
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return int(random_state)


def _validation_split(X, targets, fraction, rng, stratify):
    """Hold out ``fraction`` of the rows (stratified by class for 1-D targets), seeded by ``rng``."""
    n = X.shape[0]
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training samples out of {n}")
    if stratify:
        # Take the same share of each class, in a seeded random order within the class.
        order = rng.permutation(n)
        by_class = order[np.argsort(targets[order], kind="stable")]
        val_mask = np.zeros(n, dtype=bool)
        val_mask[by_class[np.round(np.linspace(0, n - 1, n_val)).astype(np.int64)]] = True
        val_idx, train_idx = np.flatnonzero(val_mask), np.flatnonzero(~val_mask)
    else:
        order = rng.permutation(n)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return X[train_idx], targets[train_idx], X[val_idx], targets[val_idx]


def _fitted_state(params, backend, train_state: TrainState, config: TrainConfig, classes,
                  multilabel, samples_seen) -> FittedState:
    """Copy a training state to the host as the FittedState of a fit with ``config``."""
    def host(arrays):
        return [backend.to_numpy(a).copy() for a in arrays]

    early = config.early_stopping
    return FittedState(
        params=params, coefs=host(train_state.coefs), intercepts=host(train_state.intercepts),
        classes=classes, activation=config.activation, output=config.output,
        multilabel=multilabel, history=copy.deepcopy(train_state.history), t=samples_seen,
        best_loss=None if early else train_state.best_loss,
        validation_scores=list(train_state.history["val_accuracy"]) if early else None,
        best_validation_score=train_state.best_score if early else None,
        optimizer=OptimizerState(config.solver, [host(g) for g in train_state.opt_state],
                                 train_state.t))


def _progress(backend, train_state: TrainState, rng, seed, config_hash) -> TrainingProgress:
    """What resuming needs beyond the FittedState, after the epoch ``train_state`` ends with."""
    best = train_state.best_params
    return TrainingProgress(
        config_hash=config_hash, seed=seed, rng_state=rng.bit_generator.state,
        best_loss=train_state.best_loss, best_score=train_state.best_score,
        no_improvement=train_state.no_improvement, finished=train_state.finished,
        best=None if best is None else tuple([backend.to_numpy(a) for a in group]
                                             for group in best))


def _resumed_train_state(backend, saved: Checkpoint) -> TrainState:
    """The trainer's state to continue a checkpointed fit from, on ``backend``."""
    fitted, progress = saved.state, saved.progress
    state = TrainState(
        coefs=[backend.asarray(w) for w in fitted.coefs],
        intercepts=[backend.asarray(b) for b in fitted.intercepts],
        opt_state=[[backend.asarray(a) for a in group] for group in fitted.optimizer.groups],
        t=fitted.optimizer.steps, history={k: list(v) for k, v in fitted.history.items()},
        best_loss=progress.best_loss, best_score=progress.best_score,
        no_improvement=progress.no_improvement, finished=progress.finished)
    if progress.best is not None:
        state.best_params = tuple([backend.asarray(a) for a in group] for group in progress.best)
    return state
