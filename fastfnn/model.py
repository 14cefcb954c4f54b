"""The estimators: FastFNN and FastFNNRegressor, drop-ins for scikit-learn's MLPClassifier and
MLPRegressor that run on any backend.

Both share everything but the output layer (:class:`MultilayerPerceptron`: parameters, fitting with
the trainer or L-BFGS, sample weights, checkpoints, progress, the fitted state, save and load); a
subclass says what its targets are, which output layer and loss they take, and how predictions are
read and scored. Their hyper-parameters are the tables in :mod:`fastfnn.params` (each constructor's
signature, defaults and checks come from one). What a fit leaves behind is one
:class:`fastfnn.state.FittedState`: fit and partial_fit produce it from the trainer's state,
:meth:`MultilayerPerceptron._publish` exposes it as scikit-learn's fitted attributes, and
:mod:`fastfnn.io.modelfile` and :mod:`fastfnn.io.checkpoint` write and read it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import math
import os
import sys
import types
import warnings
from dataclasses import dataclass, fields, replace

import numpy as np

from fastfnn.backends import get_backend
from fastfnn.io.atomic import check_target
from fastfnn.io.checkpoint import (Checkpoint, CheckpointMismatchError, TrainingProgress,
                                   load_checkpoint, save_checkpoint)
from fastfnn.io.modelfile import load_model, save_model
from fastfnn.lbfgs import fit_lbfgs
from fastfnn.metrics import confusion_matrix
from fastfnn.network import init_params
from fastfnn.params import BY_NAME, PARAMETERS, REGRESSOR_PARAMETERS, docstring, resolve
from fastfnn.progress import EpochProgress
from fastfnn.recipes import recipe_params
from fastfnn.schedules import SCHEDULES, SPANNING_MAX_ITER
from fastfnn.sklearn_compat import (UNCHANGED, NotFittedError, metadata_request, not_fitted,
                                    set_request, warn_convergence)
from fastfnn.state import FittedState, OptimizerState
from fastfnn.streaming import fit_chunks, streams
from fastfnn.trainer import (HISTORY_KEYS, TrainConfig, TrainState, copy_params,
                             loss_and_correct, new_opt_state, output_scores, train)
from fastfnn.validation import (check_feature_names, check_labels, check_regression_targets,
                                check_sample_weight, check_weight_range, check_X, check_y,
                                feature_names, fit_feature_names, label_array,
                                require_some_weight)

__all__ = ["FastFNN", "FastFNNRegressor", "MultilayerPerceptron", "NotFittedError"]

#: uint8 features are 8-bit intensities: the backend reads them as value / 255.
UINT8_SCALE = 1.0 / 255.0
#: What to do when early stopping's split leaves rows that all weigh zero on one side.
_SPLIT_ADVICE = ". Change random_state or validation_fraction, or weigh more rows"

#: Parameters added after fastfnn 0.1.0: left out of a checkpoint's configuration hash while at
#: their defaults, so that a checkpoint written before they existed still resumes.
_NEWER_THAN_CHECKPOINTS = frozenset({
    "learning_rate", "power_t", "max_fun", "class_weight", "lr_warmup", "lr_step_size",
    "lr_gamma", "lr_interval", "dropout", "input_dropout", "augment_shift", "image_shape",
    "label_smoothing"})


@dataclass
class FitTargets:
    """What a subclass makes of y for one fit: the targets as the kernels take them ((n,) int64
    class indices, or (n, k) float indicators or regression targets), the output layer, the
    classes (None for a regressor), whether y was 2-D, and per-row class weights (or None)."""

    targets: np.ndarray
    output: str
    classes: np.ndarray | None
    multilabel: bool
    class_weight: np.ndarray | None = None

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else self.targets.shape[1]


def _constructor(table, owner):
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
    __init__.__qualname__ = f"{owner}.__init__"
    return __init__


class _stochastic_only:  # noqa: N801 - used as a method decorator
    """A method that exists only while the estimator's solver is stochastic (sgd or adam), as
    scikit-learn's ``available_if`` makes MLP's partial_fit: with lbfgs, reading it raises
    AttributeError (so ``hasattr(model, "partial_fit")`` is False)."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self.method
        if instance.solver == "lbfgs":
            raise AttributeError(f"{type(instance).__name__}.{self.method.__name__} is only "
                                 "available for the stochastic solvers sgd and adam; "
                                 "solver='lbfgs' is not stochastic")
        return types.MethodType(self.method, instance)


class MultilayerPerceptron:
    """What FastFNN and FastFNNRegressor share: everything but the output layer.

    A subclass sets ``_parameters`` (its table in fastfnn.params) and ``_estimator_type``, and
    implements :meth:`_fit_targets` (y -> FitTargets) and :meth:`_held_out_score` (early stopping's
    score of predictions).
    """

    _parameters: tuple = ()
    _estimator_type: str = ""

    # ------------------------------------------------------------------ scikit-learn protocol
    @classmethod
    def _get_param_names(cls):
        return [p.name for p in cls._parameters]

    def get_params(self, deep=True):  # noqa: ARG002 - scikit-learn signature
        """The constructor arguments as a dict (scikit-learn's estimator protocol)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; unknown names raise ValueError. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: "
                                 f"{valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not _same(v, BY_NAME[k].default)]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self):
        return self._fitted

    # ------------------------------------------------------------------ metadata routing
    # scikit-learn's metadata routing, which BaseEstimator gives MLPClassifier and MLPRegressor:
    # which metadata a meta-estimator (Pipeline, cross_validate, GridSearchCV, ...) passes on. Each
    # set_{method}_request's keyword parameters are the metadata that method takes.
    def get_metadata_routing(self):
        """scikit-learn's ``MetadataRequest``: the metadata that fit, partial_fit and score ask a
        meta-estimator for (see :meth:`set_fit_request`). Needs scikit-learn (ImportError
        without it)."""
        return metadata_request(self)

    def set_fit_request(self, *, sample_weight=UNCHANGED):
        """Whether a meta-estimator passes ``sample_weight`` to fit, with scikit-learn's metadata
        routing enabled (``sklearn.set_config(enable_metadata_routing=True)``; RuntimeError
        otherwise): True passes it when given, False never does, None (the default request) raises
        if it is given, a str passes the metadata of that name instead; UNCHANGED keeps the
        request. Returns self. Clones and pickles keep the request; it is no parameter. Needs
        scikit-learn (ImportError without it)."""
        return set_request(self, "fit", sample_weight=sample_weight)

    def set_partial_fit_request(self, *, sample_weight=UNCHANGED):
        """As :meth:`set_fit_request`, for partial_fit's ``sample_weight``. Returns self."""
        return set_request(self, "partial_fit", sample_weight=sample_weight)

    def set_score_request(self, *, sample_weight=UNCHANGED):
        """As :meth:`set_fit_request`, for score's ``sample_weight``. Returns self."""
        return set_request(self, "score", sample_weight=sample_weight)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None, *, on_epoch=None, checkpoint=None, resume=False):
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_outputs).

        Starts from fresh weights unless ``warm_start`` is set and the model is fitted (or
        ``coefs_``/``intercepts_`` were assigned); a warm start appends to ``loss_curve_`` and
        ``history_``, as scikit-learn does. On any error the model is left exactly as it was.

        sample_weight: None, a number, or (n_samples,) weights >= 0: each step's loss and gradient
            weigh its rows as scikit-learn does (w_i / sum of the step's weights).
        on_epoch: called as ``on_epoch(epoch_index, record)`` after every epoch (lbfgs: every
            iteration), ``record`` being that epoch's entries of ``history_`` (loss, accuracy,
            val_loss, val_accuracy, seconds).
        checkpoint: a file path; after every epoch the whole training state (weights, optimizer
            state, epoch, random generator, a hash of the configuration and data) is written there
            atomically, so killing the process at any moment leaves the previous checkpoint intact
            (sgd and adam only). A path that cannot be written (empty, a folder, a missing or
            unwritable folder) is refused before training (fastfnn.io.atomic.check_target).
        resume: continue from ``checkpoint`` when that file exists. It must come from the same
            parameters (``max_iter`` and ``verbose`` aside, but max_iter counts under the cosine
            and onecycle schedules, which span it) and data, else ValueError. A resumed fit
            ends with bitwise the same weights as an uninterrupted one (same backend and threads).
        X may also be a dask array, or a memory-mapped array of more than 1 GiB: fit then streams
        it chunk by chunk in bounded memory (fastfnn.streaming.fit_chunks: max_iter epochs, chunks
        and rows shuffled from random_state, one history_ entry per chunk); sample_weight,
        on_epoch, checkpoint and early_stopping are refused for such inputs.
        Returns self.
        """
        if streams(X):
            return self._fit_streaming(X, y, sample_weight, on_epoch, checkpoint)
        return self._fit(X, y, sample_weight, None, False, on_epoch, checkpoint, resume)

    def _fit_streaming(self, X, y, sample_weight, on_epoch, checkpoint):
        """fit over a streamed X: fit_chunks on a fresh estimator (on this one for a warm start:
        fit_chunks trains a copy), published only once it succeeded, so an error leaves this
        model as it was."""
        refused = [name for name, given in (
            ("sample_weight", sample_weight is not None), ("on_epoch", on_epoch is not None),
            ("checkpoint", checkpoint is not None), ("early_stopping", self.early_stopping))
            if given]
        if refused:
            raise ValueError(f"fit streams a {type(X).__name__} chunk by chunk, which does not "
                             f"support {', '.join(refused)}; pass an in-memory array "
                             "(np.asarray(X)) to use them")
        model = self if self.warm_start and self._fitted else type(self)(**self.get_params())
        fit_chunks(model, X, y)
        if model is not self:
            self._publish(model.fitted_state_)  # a fresh fit on a stream has no feature names
        return self

    def _fit(self, X, y, sample_weight, classes, incremental, on_epoch=None, checkpoint=None,
             resume=False):
        """fit (``incremental`` False) or partial_fit (True) over (X, y): check the input, train,
        and change the model only once training succeeded. A fit that starts afresh sets
        ``feature_names_in_`` from X (or removes it); one that continues checks X's names against
        it, as scikit-learn's MLPs do."""
        name = type(self).__name__
        continuing = hasattr(self, "coefs_") and (incremental or self.warm_start)
        # before check_X makes X an array
        names = fit_feature_names(X, continuing, getattr(self, "feature_names_in_", None), name)
        hp = resolve(self.get_params(), self._parameters)
        prior = self._state if self._fitted else None
        X = check_X(X, hp["dtype"], prior.n_features_in if incremental and prior else None,
                    estimator=name)
        y = check_y(y, X.shape[0], estimator=name)
        weights = check_sample_weight(sample_weight, X.shape[0])
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"on_epoch must be callable, got {type(on_epoch).__name__}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH: the file to resume from")
        if checkpoint is not None and hp["solver"] == "lbfgs":
            raise ValueError("checkpoint is for the stochastic solvers (sgd, adam); an lbfgs fit "
                             "is one optimizer run")
        if checkpoint is not None:
            check_target(checkpoint)  # an unwritable path fails now, not after the first epoch
        backend = get_backend(self.backend)
        fit_targets = self._fit_targets(y, classes, incremental, continuing, hp)
        targets, output = fit_targets.targets, fit_targets.output
        if fit_targets.class_weight is not None:
            weights = fit_targets.class_weight * (1.0 if weights is None else weights)
        check_weight_range(weights, hp["dtype"], "sample_weight" if fit_targets.class_weight is None
                           else "sample_weight times class_weight")
        sizes = (X.shape[1], *hp["hidden_layer_sizes"], fit_targets.n_outputs)
        if continuing:
            self._check_continuation(sizes, output)
            coefs = [np.ascontiguousarray(w, dtype=hp["dtype"]) for w in self.coefs_]
            intercepts = [np.ascontiguousarray(b, dtype=hp["dtype"]) for b in self.intercepts_]
        config_hash = None if checkpoint is None else self._config_hash(
            backend.name, X, targets, weights, coefs if continuing else None)
        saved = None
        if resume and os.path.exists(checkpoint):
            saved = load_checkpoint(checkpoint)
            if saved.progress.config_hash != config_hash:
                span = (f" (max_iter too: the {self.learning_rate} schedule spans it)"
                        if self.learning_rate in SPANNING_MAX_ITER else "")
                raise CheckpointMismatchError(
                    f"{checkpoint}: the checkpoint was written by a fit with other parameters or "
                    f"data; resume it with the same ones{span}, or start afresh with "
                    "resume=False")
        seed = saved.progress.seed if saved else _seed_of(self.random_state)
        rng = np.random.default_rng(seed)
        if not continuing:
            coefs, intercepts = init_params(sizes, hp["init"], hp["activation"], hp["dtype"], rng)

        lbfgs = hp["solver"] == "lbfgs"
        early_stopping = hp["early_stopping"] and not lbfgs  # (partial_fit refuses it)
        X_train, t_train, w_train, held_out = X, targets, weights, None
        if early_stopping:
            train_rows, val_rows = _validation_split(
                targets, hp["validation_fraction"], rng,
                None if fit_targets.multilabel else fit_targets.classes)
            X_train, t_train = X[train_rows], targets[train_rows]
            w_train = None if weights is None else weights[train_rows]
            require_some_weight(w_train, f"the {len(train_rows)} rows early stopping trains on",
                                _SPLIT_ADVICE)
            held_out = (X[val_rows], targets[val_rows],
                        None if weights is None else weights[val_rows])
        batch_size = hp["batch_size"]
        if batch_size == "auto":
            batch_size = min(200, X_train.shape[0])
        # TrainConfig's fields are parameters by the same names; these are resolved per fit.
        resolved_per_fit = {"output": output, "batch_size": batch_size,
                            "early_stopping": early_stopping,
                            **_regularisation(hp, X.shape[1], output, incremental)}
        config = TrainConfig(**{f.name: resolved_per_fit[f.name] if f.name in resolved_per_fit
                                else hp[f.name] for f in fields(TrainConfig)})
        x_scale = UINT8_SCALE if X.dtype == np.uint8 else 1.0
        if lbfgs:
            self._fit_full_batch(
                backend, config, hp, X=X, weights=weights, start=(coefs, intercepts),
                prior=prior if continuing else None, fit_targets=fit_targets, x_scale=x_scale,
                on_epoch=on_epoch, names=names)
            return self
        if saved:
            state = _resumed_train_state(backend, saved)
            rng.bit_generator.state = saved.progress.rng_state
        else:
            dev_coefs = [backend.asarray(w) for w in coefs]
            dev_intercepts = [backend.asarray(b) for b in intercepts]
            # partial_fit continues the optimizer it left, if the solver is still the same.
            optimizer = prior.optimizer if incremental and continuing and prior else None
            learning_rate = None
            # (coefs_ assigned with other layer sizes leave it nothing to step: a fresh one)
            if (optimizer is not None and optimizer.solver == config.solver
                    and optimizer.fits(coefs, intercepts)):
                # in the fit's dtype, as the weights: set_params(dtype=...) may have changed it
                opt_state = [[backend.asarray(a, hp["dtype"]) for a in group]
                             for group in optimizer.groups]
                t, learning_rate = optimizer.steps, optimizer.learning_rate
            else:
                opt_state = new_opt_state(backend, config.solver, dev_coefs, dev_intercepts)
                t = 0
            state = TrainState(coefs=dev_coefs, intercepts=dev_intercepts, opt_state=opt_state,
                               t=t, learning_rate=learning_rate)
            if continuing and prior:
                # partial_fit and a warm start continue the model's history (scikit-learn's
                # loss_curve_, t_ and best_loss_); each fit call trains max_iter epochs of its own
                state.history = _copy_history(prior.history)
                state.fit_start = len(prior.history["loss"])
                state.samples_seen = prior.t
                state.validation_scores = list(prior.validation_scores or [])
                if prior.best_loss is not None:
                    state.best_loss = prior.best_loss
                # as scikit-learn's counter, set only on a first fit: a refit after a stop on
                # tol stops after its first epoch that does not improve
                state.no_improvement = prior.no_improvement
                if early_stopping and prior.best_validation_score is not None:
                    # the best so far is the previous fit's, whose weights this one starts from
                    state.best_score = prior.best_validation_score
                    state.best_params = (copy_params(backend, dev_coefs),
                                         copy_params(backend, dev_intercepts))
        epochs = 1 if incremental else (
            0 if state.finished else config.max_iter - (len(state.history["loss"])
                                                        - state.fit_start))
        progress = EpochProgress(None if incremental else config.max_iter, sys.stdout) \
            if self.verbose else None

        def fitted_state():
            return _fitted_state(self.get_params(), backend, state, config, fit_targets, names)

        def after_epoch(epoch, record):
            if checkpoint is not None:
                save_checkpoint(Checkpoint(fitted_state(), _progress(
                    backend, state, rng, seed, config_hash)), checkpoint)
            if progress is not None:
                progress.on_epoch(epoch, record)
            if on_epoch is not None:
                on_epoch(epoch, record)

        validate = None
        if held_out is not None:
            validate = self._validator(backend, config, held_out, x_scale, fit_targets,
                                       hp["dtype"])
        if config.batch_size is not None and config.batch_size > X_train.shape[0]:
            # scikit-learn's words (the trainer takes min(batch_size, rows))
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          f"to be clipped: batch_size={config.batch_size}, "
                          f"{X_train.shape[0]} training samples", UserWarning, stacklevel=3)
        with backend.thread_limit(hp["n_jobs"]):
            train(backend, config, backend.asarray(X_train), backend.asarray(t_train), state, rng,
                  x_scale=x_scale, validate=validate, epochs=epochs, on_epoch=after_epoch,
                  on_progress=progress.on_progress if progress and progress.bar_enabled else None,
                  sample_weight=w_train)
        # Training succeeded: only now does the model change.
        self._publish(fitted_state())
        if not incremental and not state.finished and (
                len(state.history["loss"]) - state.fit_start == config.max_iter):
            # scikit-learn's words; like it, partial_fit (one epoch by design) does not warn
            warn_convergence(f"Stochastic Optimizer: Maximum iterations ({config.max_iter}) "
                             "reached and the optimization hasn't converged yet.", stacklevel=4)
        return self

    def _fit_full_batch(self, backend, config, hp, *, X, weights, start, prior, fit_targets,
                        x_scale, on_epoch, names):
        """The lbfgs solver (fastfnn.lbfgs) over (X, fit_targets.targets) with row ``weights``
        from ``start`` = (coefs, intercepts), continuing ``prior``'s history when given (a warm
        start); publishes the result, with feature names ``names``."""
        coefs, intercepts = start
        targets = fit_targets.targets
        progress = EpochProgress(config.max_iter, sys.stdout) if self.verbose else None

        def after_iteration(index, record):
            if progress is not None:
                progress.on_epoch(index, record)
            if on_epoch is not None:
                on_epoch(index, record)

        with backend.thread_limit(hp["n_jobs"]):
            X_dev = backend.asarray(X)
            if X.dtype != coefs[0].dtype or x_scale != 1:
                X_dev = backend.gather(X_dev, backend.asarray(np.arange(X.shape[0])),
                                       backend.empty(X.shape, coefs[0].dtype), x_scale)
            new_coefs, new_intercepts, history, converged = fit_lbfgs(
                backend, config, X_dev, backend.asarray(targets), coefs, intercepts,
                hp["max_fun"], weights, after_iteration)
        n_iter = len(history["loss"])
        if not converged:
            warn_convergence(f"lbfgs failed to converge after {n_iter} iteration(s): increase "
                             "max_iter (or max_fun), or scale the data")
        if prior is not None:
            history = {k: [*prior.history[k], *history[k]] for k in HISTORY_KEYS}
        state = TrainState(coefs=new_coefs, intercepts=new_intercepts, opt_state=[],
                           history=history, best_loss=min(history["loss"]),
                           samples_seen=(prior.t if prior else 0) + X.shape[0] * n_iter)
        self._publish(_fitted_state(self.get_params(), backend, state, config, fit_targets,
                                    names))

    def _validator(self, backend, config, held_out, x_scale, fit_targets, dtype):
        """Early stopping's ``validate(coefs, intercepts)`` on the held-out (X, targets, weights):
        the (weighted) mean loss (None when the held-out weights are all zero: there is no such
        mean), the accuracy (classifiers) and :meth:`_held_out_score`."""
        X_val, t_val, w_val = held_out
        X_dev, t_dev = backend.asarray(X_val), backend.asarray(t_val)
        w_dev = None if w_val is None else backend.asarray(w_val, dtype)
        total = X_val.shape[0] if w_val is None else float(np.sum(w_val))

        def validate(coefs, intercepts):
            loss_sum, _ = backend.to_numpy(loss_and_correct(
                backend, coefs, intercepts, X_dev, t_dev, config.activation, config.output,
                x_scale, sample_weight=w_dev))
            predicted = output_scores(backend, coefs, intercepts, X_dev, config.activation,
                                      config.output, x_scale)
            score = self._held_out_score(predicted, t_val, w_val, fit_targets)
            accuracy = score if fit_targets.classes is not None else None
            return float(loss_sum) / total if total else None, accuracy, score

        return validate

    # ------------------------------------------------------------------ fitted state
    def _publish(self, state: FittedState) -> None:
        """Keep ``state`` and set scikit-learn's fitted attributes from it (the one list of them;
        ``feature_names_in_`` is removed when the state has no feature names, as scikit-learn's
        fit on X without column names does).

        coefs_, intercepts_ and (classifiers) classes_ may be reassigned by users (warm start from
        given weights, as with scikit-learn's MLPs); :attr:`fitted_state_` reads them back.
        """
        self._state = state
        if state.feature_names is not None:
            self.feature_names_in_ = state.feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.coefs_ = state.coefs
        self.intercepts_ = state.intercepts
        if state.classes is not None:
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

        Its params are the current ``get_params()``, its weights (and classes, feature names)
        those now in coefs_, intercepts_ (and classes_, feature_names_in_). NotFittedError (a
        ValueError and an AttributeError) before fit, partial_fit or load.
        """
        self._check_fitted()
        optimizer = self._state.optimizer
        if optimizer is not None:  # coefs_ assigned since: of other sizes, or another dtype
            optimizer = (optimizer.as_dtype(self.coefs_[0].dtype)
                         if optimizer.fits(self.coefs_, self.intercepts_) else None)
        return replace(self._state, params=self.get_params(), coefs=self.coefs_,
                       intercepts=self.intercepts_, classes=getattr(self, "classes_", None),
                       feature_names=getattr(self, "feature_names_in_", None),
                       optimizer=optimizer)

    def _config_hash(self, backend_name, X, targets, weights, start_coefs):
        """SHA-256 of what makes a fit what it is: parameters, backend, data, row weights and
        starting weights."""
        aside = resumable_changes(self.learning_rate)
        params = {k: v for k, v in self.get_params().items() if k not in aside
                  and not (k in _NEWER_THAN_CHECKPOINTS and _same(v, BY_NAME[k].default))}
        digest = hashlib.sha256(repr(sorted(params.items())).encode())
        digest.update(backend_name.encode())
        for array in (X, targets, *(() if weights is None else (weights,)),
                      *(start_coefs or ())):
            digest.update(repr((array.dtype.str, array.shape)).encode())
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return digest.hexdigest()

    @property
    def _fitted(self):
        return getattr(self, "_state", None) is not None

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
                             f"output, {output!r} was asked for")

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if not self._fitted:
            name = type(self).__name__
            raise not_fitted(f"This {name} instance is not fitted yet: call fit or partial_fit "
                             f"first (or {name}.load a saved model)")

    def _input(self, X) -> np.ndarray:
        """X checked for prediction or evaluation (fitted model; feature names as at fit, then
        shape and values) as an array of the model's dtype (uint8 kept)."""
        self._check_fitted()
        name = type(self).__name__
        check_feature_names(getattr(self, "feature_names_in_", None), feature_names(X), name)
        return check_X(X, self.coefs_[0].dtype, self.n_features_in_, estimator=name)

    def _outputs(self, X):
        """The output layer's predictions (n_samples, n_outputs) for X, in the model's dtype."""
        return self._scores(self._input(X))

    def _scores(self, X):
        """:meth:`_outputs` of an X already checked by :meth:`_input`."""
        backend = get_backend(self.backend)
        with backend.thread_limit(BY_NAME["n_jobs"].check(self.n_jobs)):
            return output_scores(backend, [backend.asarray(w) for w in self.coefs_],
                                 [backend.asarray(b) for b in self.intercepts_],
                                 backend.readonly_array(X), self._state.activation,
                                 self._state.output,
                                 UINT8_SCALE if X.dtype == np.uint8 else 1.0)

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to ``path`` (.npz, no pickle; fastfnn.io.modelfile) atomically.

        Returns the path. ValueError for an unfitted model or one holding what the format cannot
        store (e.g. classes that are arbitrary objects).
        """
        if not self._fitted:
            raise not_fitted(f"{os.fspath(path)}: cannot save an unfitted {type(self).__name__}, "
                             "expected a model fitted with fit or partial_fit (or loaded)")
        return save_model(self.fitted_state_, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (or a checkpoint of ``fit``); the loaded model
        predicts bitwise as the saved one and continues training from its optimizer state.

        FileNotFoundError for a missing file; ValueError for a malformed one, or one holding the
        other kind of estimator (a regressor for FastFNN.load, a classifier for
        FastFNNRegressor.load).
        """
        state = load_model(path)
        kind = FastFNNRegressor if state.is_regressor else FastFNN
        if not issubclass(kind, cls):  # the message that names the file
            raise ValueError(f"{os.fspath(path)}: the file holds a {kind.__name__}, expected a "
                             f"{cls.__name__}; read it with {kind.__name__}.load")
        return kind.from_fitted_state(state)

    @classmethod
    def from_fitted_state(cls, state: FittedState):
        """An estimator holding ``state`` whole, as a fit would have left it: it predicts with
        the state's weights, and partial_fit / warm_start continue its optimizer (velocities,
        Adam's moments and step count). With :attr:`fitted_state_` (the read side) this is the
        public API for optimizer state, e.g. averaged over workers (fastfnn.distributed).
        ValueError when ``state`` belongs to the other kind of estimator.
        """
        kind = FastFNNRegressor if state.is_regressor else FastFNN
        if not issubclass(kind, cls):
            raise ValueError(f"the state is a {kind.__name__}'s, expected a {cls.__name__}'s; "
                             f"build it with {kind.__name__}.from_fitted_state")
        model = kind(**state.params)
        # its own weights: assigning or writing them must not change the model state came from
        model._publish(replace(state, coefs=[np.array(w) for w in state.coefs],
                               intercepts=[np.array(b) for b in state.intercepts]))
        return model


class FastFNN(MultilayerPerceptron):
    """Feedforward neural network classifier (dense layers), a drop-in for MLPClassifier.

    Parameters share scikit-learn's MLPClassifier names and meanings; FastFNN adds class_weight,
    backend, dtype, init, output and n_jobs. They are declared in
    :data:`fastfnn.params.PARAMETERS` and listed below. ``hidden_layer_sizes=()`` is softmax
    regression. uint8 features are read as 8-bit intensities and scaled by 1/255 on the backend, so
    MNIST can stay uint8 (a quarter of the memory) on the device. With a fixed thread count
    (n_jobs) a fixed seed gives bitwise the same model. Binary problems get two softmax units (one
    logistic unit in scikit-learn); the probabilities are the same function.

    fit, partial_fit and load set scikit-learn's fitted attributes (coefs_, intercepts_, classes_,
    loss_curve_, n_iter_, ...; :meth:`_publish` lists them) from one
    :class:`fastfnn.state.FittedState`, which :attr:`fitted_state_` returns whole; ``history_``
    holds per epoch the loss, accuracy, val_loss, val_accuracy and seconds.

    Parameters:
    """

    _parameters = PARAMETERS
    _estimator_type = "classifier"
    __init__ = _constructor(PARAMETERS, "FastFNN")

    def __sklearn_tags__(self):
        # imported here: only scikit-learn asks for tags
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    input_tags=InputTags(sparse=True),
                    classifier_tags=ClassifierTags(multi_label=True))

    @classmethod
    def from_recipe(cls, name: str, **overrides):
        """An unfitted FastFNN with the parameters of recipe ``name`` (see :mod:`fastfnn.recipes`,
        e.g. ``"mnist"``), any of them replaced by ``overrides`` (e.g. ``backend="numpy"``).

        ValueError for an unknown recipe (naming those known); TypeError for an override that is
        not a parameter. Values are checked when fitting, as for any FastFNN.
        """
        return cls(**recipe_params(name, overrides))

    def set_partial_fit_request(self, *, sample_weight=UNCHANGED, classes=UNCHANGED):
        """As :meth:`set_fit_request`, for partial_fit's ``sample_weight`` and ``classes``.
        Returns self."""
        return set_request(self, "partial_fit", sample_weight=sample_weight, classes=classes)

    @_stochastic_only
    def partial_fit(self, X, y, sample_weight=None, classes=None, *, on_epoch=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        classes: every label that will ever be seen; required on the first call (as in
        scikit-learn), optional later. sample_weight and on_epoch: as in :meth:`fit`. Only with the
        sgd and adam solvers (with lbfgs the method does not exist). Returns self.
        """
        return self._fit(X, y, sample_weight, classes, True, on_epoch)

    def _fit_targets(self, y, classes, incremental, continuing, hp) -> FitTargets:
        y = check_labels(y)
        multilabel = y.ndim == 2
        output = hp["output"]
        if output == "auto":
            output = "sigmoid" if multilabel else "softmax"
        if multilabel and output == "softmax":
            raise ValueError("softmax output needs 1-D class labels; use output='sigmoid' for a "
                             "multi-label indicator matrix")
        classes_ = self._resolve_classes(y, classes, incremental, continuing)
        targets = self._encode(y, classes_, hp["dtype"])
        return FitTargets(targets, output, classes_, multilabel,
                          self._class_row_weights(targets, classes_, hp["class_weight"],
                                                  incremental, multilabel))

    @staticmethod
    def _class_row_weights(targets, classes_, class_weight, incremental, multilabel):
        """Each row's class weight (n,) float64, or None without class_weight."""
        if class_weight is None:
            return None
        if multilabel:
            raise ValueError("class_weight needs 1-D class labels; weigh the rows of a multi-label "
                             "indicator matrix with sample_weight")
        if class_weight == "balanced":
            if incremental:
                raise ValueError("class_weight='balanced' needs every label at once, so "
                                 "partial_fit cannot use it; pass a dict {label: weight} computed "
                                 "from the whole data")
            counts = np.bincount(targets, minlength=len(classes_)).astype(np.float64)
            per_class = np.divide(len(targets), len(classes_) * counts,
                                  out=np.ones_like(counts), where=counts > 0)
        else:
            per_class = np.ones(len(classes_))
            known = classes_.tolist()
            for label, weight in class_weight.items():
                # equal as Python values, as scikit-learn looks classes up in the dict: 1.0 is
                # class 1, while 1.5 or "1" is no class (a cast to the classes' dtype made them one)
                where = [i for i, c in enumerate(known) if _equal(c, label)]
                if len(where) != 1:
                    raise ValueError(f"class_weight has label {label!r}, which is not among the "
                                     f"classes {known}")
                per_class[where[0]] = weight
        return per_class[targets]

    def _held_out_score(self, predicted, targets, weights, fit_targets):
        """Accuracy (multi-label: exact match), weighted by ``weights`` when given; 0.0 when they
        are all zero, as scikit-learn's MLPClassifier scores its held-out rows then."""
        if weights is not None and not weights.any():
            return 0.0
        if fit_targets.multilabel:
            correct = np.all((predicted > 0.5) == (targets > 0.5), axis=1)
        else:
            correct = np.argmax(predicted, axis=1) == targets
        return float(np.average(correct, weights=weights))

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
            classes_ = np.unique(label_array(classes))
        elif known:
            classes_ = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), classes_):
                raise ValueError(f"classes {np.unique(classes).tolist()} differ from the fitted "
                                 f"classes {classes_.tolist()}")
        else:
            classes_ = np.unique(y)
            if len(classes_) < 2:
                raise ValueError(f"y has one class only ({classes_[:1].tolist()[0]!r} in {len(y)} "
                                 f"sample(s)); a classifier needs at least two classes")
        unknown = np.setdiff1d(np.unique(y), classes_)
        if len(unknown):
            raise ValueError(f"y contains labels not among the classes {classes_.tolist()}: "
                             f"{unknown[:10].tolist()}")
        return classes_

    def _encode(self, y, classes_, dtype):
        if y.ndim == 2:
            return np.ascontiguousarray(y, dtype=dtype)
        return np.searchsorted(classes_, y).astype(np.int64)

    # ------------------------------------------------------------------ inference
    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) as float (the model's dtype).

        Softmax output: the softmax. Sigmoid output with single labels: the sigmoid units normalised
        to sum to 1 per row; with multi-label targets: each label's own sigmoid probability.
        """
        scores = self._outputs(X)
        if self._state.output == "sigmoid" and not self._state.multilabel:
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), np.finfo(scores.dtype).tiny)
        return scores

    def predict_log_proba(self, X):
        """The natural logarithm of :meth:`predict_proba` (n_samples, n_classes), as
        scikit-learn's ``predict_log_proba``: a probability that rounded to 0 gives -inf."""
        probabilities = self.predict_proba(X)
        return np.log(probabilities, out=probabilities)

    def predict(self, X):
        """Predicted labels (n_samples,) drawn from ``classes_``; multi-label: (n, k) 0/1 ints."""
        scores = self._outputs(X)
        if self._state.multilabel:
            return (scores > 0.5).astype(np.int64)
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on (X, y) (multi-label: exact-match ratio), weighted by
        ``sample_weight`` when given, as in scikit-learn."""
        pred = self.predict(X)
        y = self._labels_like_classes(y, len(pred))
        weights = check_sample_weight(sample_weight, len(pred))
        if self._state.multilabel:
            return float(np.average(np.all(pred == y, axis=1), weights=weights))
        return float(np.average(pred == y, weights=weights))

    def _labels_like_classes(self, y, n):
        """y of n rows (check_y, check_labels) in the fitted model's form: 1-D labels of the kind
        of ``classes_`` (text or numbers) for a single-label model, a 0/1 matrix of one column a
        label for a multi-label one; ValueError saying which it is not."""
        y = check_labels(check_y(y, n, estimator=type(self).__name__))
        multilabel = self._state.multilabel
        if multilabel != (y.ndim == 2):
            raise ValueError("y must be a 0/1 indicator matrix for a multi-label model and 1-D "
                             f"labels otherwise, got shape {y.shape}")
        if multilabel and y.shape[1] != len(self.classes_):
            raise ValueError(f"y has {y.shape[1]} label columns, the model {len(self.classes_)}")
        if not multilabel and _is_text(y) != _is_text(self.classes_):
            raise ValueError(f"Mix of label input types (string and number): y holds {y.dtype} "
                             f"labels, the model's classes_ are {self.classes_.dtype}")
        return y

    def evaluate(self, X, y):
        """Loss, accuracy and confusion matrix on (X, y), labels among ``classes_``.

        Returns a dict: ``loss`` (mean cross-entropy, no L2 term), ``accuracy`` (float) and, for
        single-label models, ``confusion_matrix`` (n_classes, n_classes) int64 with true classes in
        rows and predictions in columns, in ``classes_`` order.
        """
        X = self._input(X)
        multilabel = self._state.multilabel
        dtype = self.coefs_[0].dtype
        y = self._labels_like_classes(y, X.shape[0])
        if not multilabel:
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if len(unknown):
                raise ValueError(f"y contains labels unseen at fit: {unknown[:10].tolist()}; the "
                                 f"model knows {self.classes_.tolist()}")
        backend = get_backend(self.backend)
        targets = self._encode(y, self.classes_, dtype)
        loss_sum, correct = backend.to_numpy(loss_and_correct(
            backend, [backend.asarray(w) for w in self.coefs_],
            [backend.asarray(b) for b in self.intercepts_], backend.readonly_array(X),
            backend.asarray(targets), self._state.activation, self._state.output,
            UINT8_SCALE if X.dtype == np.uint8 else 1.0))
        result = {"loss": float(loss_sum) / X.shape[0], "accuracy": float(correct) / X.shape[0]}
        if not multilabel:
            pred = np.argmax(self._scores(X), axis=1)
            result["confusion_matrix"] = confusion_matrix(targets, pred, len(self.classes_))
        return result


class FastFNNRegressor(MultilayerPerceptron):
    """Feedforward neural network regressor (dense layers), a drop-in for MLPRegressor.

    The same network, training, backends, files and checkpoints as FastFNN; the output layer is
    linear with half the squared error (``loss='squared_error'``) or exponential with half the
    Poisson deviance (``loss='poisson'``, targets >= 0). Targets are (n,) or (n, n_outputs) real
    numbers; predict returns the same shape. ``score`` is R^2 (averaged over outputs). Parameters
    are declared in :data:`fastfnn.params.REGRESSOR_PARAMETERS` and listed below.

    Parameters:
    """

    _parameters = REGRESSOR_PARAMETERS
    _estimator_type = "regressor"
    __init__ = _constructor(REGRESSOR_PARAMETERS, "FastFNNRegressor")

    def __sklearn_tags__(self):
        # imported here: only scikit-learn asks for tags
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags
        return Tags(estimator_type="regressor",
                    target_tags=TargetTags(required=True, multi_output=True,
                                           positive_only=self.loss == "poisson"),
                    input_tags=InputTags(sparse=True), regressor_tags=RegressorTags())

    @_stochastic_only
    def partial_fit(self, X, y, sample_weight=None, *, on_epoch=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        sample_weight and on_epoch: as in :meth:`fit`. Only with the sgd and adam solvers (with
        lbfgs the method does not exist). Returns self.
        """
        return self._fit(X, y, sample_weight, None, True, on_epoch)

    def _fit_targets(self, y, classes, incremental, continuing, hp) -> FitTargets:
        targets = check_regression_targets(y, hp["dtype"])
        if hp["loss"] == "poisson" and (targets < 0).any():
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression (loss='poisson' needs targets >= 0)")
        if continuing and self._fitted and self._state.multilabel != (targets.ndim == 2):
            raise ValueError(f"y is {targets.ndim}-D; the model was fitted with "
                             f"{2 if self._state.multilabel else 1}-D targets")
        return FitTargets(targets.reshape(len(targets), -1), hp["loss"], None, targets.ndim == 2)

    def _validator(self, backend, config, held_out, *args):
        """As MultilayerPerceptron's, but held-out rows that all weigh zero have no R^2: ValueError
        before training (scikit-learn's MLPRegressor raises one at the first epoch's score)."""
        weights = held_out[2]
        require_some_weight(weights, f"the {len(held_out[1])} rows early stopping holds out",
                            ", so their R^2 is undefined" + _SPLIT_ADVICE)
        return super()._validator(backend, config, held_out, *args)

    def _held_out_score(self, predicted, targets, weights, fit_targets):
        return r2_score(targets, predicted, weights)

    def predict(self, X):
        """Predictions (n_samples,) for a model fitted on 1-D y, else (n_samples, n_outputs),
        float64 whatever the model's dtype and X's (scikit-learn's MLPRegressor returns X's float
        dtype: float32 for float32 X)."""
        outputs = self._outputs(X).astype(np.float64)
        return outputs if self._state.multilabel else outputs[:, 0]

    def score(self, X, y, sample_weight=None):
        """R^2 of the predictions on (X, y), averaged over outputs and weighted by
        ``sample_weight`` when given, as scikit-learn's regressors' score."""
        pred = self.predict(X)
        y = check_regression_targets(check_y(y, len(pred), estimator=type(self).__name__),
                                     np.float64)
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if outputs != self.n_outputs_:  # (a column each would be scored against the one output)
            raise ValueError(f"y_true and y_pred have different number of output "
                             f"({outputs}!={self.n_outputs_}): y has {outputs} target columns, "
                             f"the model predicts {self.n_outputs_}")
        return r2_score(y.reshape(len(y), -1), pred.reshape(len(pred), -1),
                        check_sample_weight(sample_weight, len(pred)))


for _estimator in (FastFNN, FastFNNRegressor):
    _estimator.__doc__ = (f"{_estimator.__doc__.rstrip()}\n"
                          f"{docstring(indent=' ' * 8, table=_estimator._parameters)}\n")


def r2_score(y_true, y_pred, sample_weight=None) -> float:
    """scikit-learn's ``r2_score`` (uniform average over outputs, ``force_finite``).

    y_true, y_pred: (n, k) arrays; sample_weight: (n,) or None. An output whose targets are
    constant scores 1.0 when predicted exactly, else 0.0.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    weights = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight)
    weights = weights[:, None]
    residual = np.sum(weights * (y_true - y_pred) ** 2, axis=0)
    mean = np.sum(weights * y_true, axis=0) / np.sum(weights)
    total = np.sum(weights * (y_true - mean) ** 2, axis=0)
    scores = np.ones(y_true.shape[1])
    nonzero = total != 0
    scores[nonzero] = 1 - residual[nonzero] / total[nonzero]
    scores[(residual != 0) & ~nonzero] = 0.0
    return float(np.mean(scores))


def resumable_changes(learning_rate) -> tuple[str, ...]:
    """The parameters a fit resuming a checkpoint may set otherwise than the fit that wrote it:
    verbose, and max_iter (so that it may go on longer) unless the ``learning_rate`` schedule
    spans max_iter epochs (cosine, onecycle)."""
    return ("verbose",) if learning_rate in SPANNING_MAX_ITER else ("max_iter", "verbose")


def _copy_history(history: dict) -> dict:
    """A copy of a history (lists of numbers and None under HISTORY_KEYS) that shares no list:
    list copies, not copy.deepcopy, which visited every entry (a loop of partial_fit calls, one
    entry each, spent more there than in its epochs, and more at each call)."""
    return {key: list(values) for key, values in history.items()}


def _is_text(labels) -> bool:
    """Whether a label array holds text (or other objects) rather than numbers."""
    return labels.dtype.kind in "USO"


def _equal(a, b) -> bool:
    """a == b as one bool; False where they cannot be compared."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _same(a, b):
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def _regularisation(hp, n_features, output, incremental) -> dict:
    """The training noise, label smoothing and schedule settings of one fit, checked against its
    data and network: TrainConfig's ``dropout`` (one rate per layer input, or None),
    ``image_shape`` ((h, w) of the shifted images, or None) and ``label_smoothing``.
    Raises ValueError when they do not fit the network, the data, the output or the solver."""
    hidden = len(hp["hidden_layer_sizes"])
    rates = hp["dropout"]
    if isinstance(rates, tuple) and len(rates) != hidden:
        raise ValueError(f"dropout has {len(rates)} rates for {hidden} hidden layers; give one "
                         "rate per hidden layer, or one rate for all")
    rates = (hp["input_dropout"], *(rates if isinstance(rates, tuple) else (rates,) * hidden))
    label_smoothing = hp.get("label_smoothing", 0.0)
    if label_smoothing and output != "softmax":
        raise ValueError(f"label_smoothing is for the softmax output; this fit's output is "
                         f"{output!r}")
    shift, shape = hp["augment_shift"], hp["image_shape"]
    if shift and shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"augment_shift needs image_shape=(height, width): {n_features} "
                             "features are not a square image")
        shape = (side, side)
    if shift and shape[0] * shape[1] != n_features:
        raise ValueError(f"image_shape {shape} has {shape[0] * shape[1]} pixels; X has "
                         f"{n_features} features")
    noisy = any(rates) or shift
    if noisy and hp["solver"] == "lbfgs":
        raise ValueError("dropout, input_dropout and augment_shift are for the stochastic "
                         "solvers (sgd, adam); lbfgs needs the same loss at every evaluation")
    if hp["early_stopping"] and incremental:  # scikit-learn's words
        raise ValueError("partial_fit does not support early_stopping=True: early stopping holds "
                         "out rows of one fit's data; set early_stopping=False to continue with "
                         "partial_fit")
    schedule = hp["learning_rate"] in SCHEDULES
    if schedule and incremental:
        raise ValueError(f"learning_rate={hp['learning_rate']!r} is a schedule over a fit's "
                         "max_iter epochs; partial_fit has none (use constant, invscaling or "
                         "adaptive)")
    if hp["lr_warmup"] and hp["learning_rate"] not in ("step", "cosine"):
        raise ValueError(f"lr_warmup is for the step and cosine schedules; learning_rate is "
                         f"{hp['learning_rate']!r} (onecycle warms up by itself)")
    return {"dropout": rates if any(rates) else None, "image_shape": shape if shift else None,
            "label_smoothing": label_smoothing}


def _seed_of(random_state) -> int:
    """The int seed of a fit: random_state itself, drawn from a RandomState/Generator, or fresh."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max))
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return int(random_state)


def _validation_split(targets, fraction, rng, classes=None):
    """(train rows, held-out rows): ceil(``fraction`` * n) rows held out, as scikit-learn's
    train_test_split counts them, seeded by ``rng``; each an int64 index array in ascending order.
    classes: the labels of class-index ``targets``, to stratify by class; None: no strata.
    ValueError, in scikit-learn's words, where its split or MLP refuses: no training rows, a class
    of one row, fewer training or held-out rows than classes, fewer than 2 held-out rows."""
    n = targets.shape[0]
    n_val = math.ceil(fraction * n)
    if n_val >= n:
        raise ValueError(f"With n_samples={n}, validation_fraction={fraction}, the resulting "
                         "train set will be empty. Lower validation_fraction or add samples.")
    if classes is not None:
        counts = np.bincount(targets, minlength=len(classes))
        present = counts > 0
        if (counts[present] < 2).any():
            raise ValueError("The least populated classes in y have only 1 member, which is too "
                             "few for early stopping's stratified split. Classes with too few "
                             f"members are: {classes[counts == 1].tolist()}")
        for part, size in (("train_size", n - n_val), ("test_size", n_val)):
            if size < present.sum():
                raise ValueError(f"The {part} = {size} should be greater or equal to the number "
                                 f"of classes = {present.sum()} (early stopping holds out "
                                 f"validation_fraction={fraction} of {n} samples)")
    if n_val < 2:
        raise ValueError(f"The validation set is too small ({n_val} of {n} samples). Increase "
                         "'validation_fraction' or the size of your dataset.")
    order = rng.permutation(n)
    if classes is not None:
        # Take the same share of each class, in a seeded random order within the class.
        by_class = order[np.argsort(targets[order], kind="stable")]
        val_mask = np.zeros(n, dtype=bool)
        val_mask[by_class[np.round(np.linspace(0, n - 1, n_val)).astype(np.int64)]] = True
        return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _fitted_state(params, backend, train_state: TrainState, config: TrainConfig,
                  fit_targets: FitTargets, names) -> FittedState:
    """Copy a training state to the host as the FittedState of a fit with ``config`` on data
    whose feature names are ``names`` (or None)."""
    def host(arrays):
        return [backend.to_numpy(a).copy() for a in arrays]

    early = config.early_stopping
    optimizer = None
    if config.solver in OptimizerState.GROUPS:
        optimizer = OptimizerState(
            config.solver, [host(g) for g in train_state.opt_state], train_state.t,
            train_state.learning_rate if config.solver == "sgd" else None)
    return FittedState(
        params=params, coefs=host(train_state.coefs), intercepts=host(train_state.intercepts),
        classes=fit_targets.classes, activation=config.activation, output=config.output,
        multilabel=fit_targets.multilabel, history=_copy_history(train_state.history),
        t=train_state.samples_seen, best_loss=None if early else train_state.best_loss,
        validation_scores=list(train_state.validation_scores) if early else None,
        best_validation_score=train_state.best_score if early else None, optimizer=optimizer,
        feature_names=names, no_improvement=train_state.no_improvement)


def _progress(backend, train_state: TrainState, rng, seed, config_hash) -> TrainingProgress:
    """What resuming needs beyond the FittedState, after the epoch ``train_state`` ends with."""
    best = train_state.best_params
    return TrainingProgress(
        config_hash=config_hash, seed=seed, rng_state=rng.bit_generator.state,
        best_loss=train_state.best_loss, best_score=train_state.best_score,
        no_improvement=train_state.no_improvement, finished=train_state.finished,
        best=None if best is None else tuple([backend.to_numpy(a) for a in group]
                                             for group in best),
        fit_start=train_state.fit_start)


def _resumed_train_state(backend, saved: Checkpoint) -> TrainState:
    """The trainer's state to continue a checkpointed fit from, on ``backend``."""
    fitted, progress = saved.state, saved.progress
    state = TrainState(
        coefs=[backend.asarray(w) for w in fitted.coefs],
        intercepts=[backend.asarray(b) for b in fitted.intercepts],
        opt_state=[[backend.asarray(a) for a in group] for group in fitted.optimizer.groups],
        t=fitted.optimizer.steps, history={k: list(v) for k, v in fitted.history.items()},
        best_loss=progress.best_loss, best_score=progress.best_score,
        no_improvement=progress.no_improvement, finished=progress.finished,
        learning_rate=fitted.optimizer.learning_rate, samples_seen=fitted.t,
        validation_scores=list(fitted.validation_scores or []), fit_start=progress.fit_start)
    if progress.best is not None:
        state.best_params = tuple([backend.asarray(a) for a in group] for group in progress.best)
    return state
