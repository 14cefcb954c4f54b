"""FastFNN: the estimator, a drop-in for scikit-learn's MLPClassifier that runs on any backend."""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
import os
import sys

import numpy as np

from fastfnn.backends import get_backend
from fastfnn.metrics import confusion_matrix
from fastfnn.network import init_params
from fastfnn.progress import EpochProgress
from fastfnn.trainer import (TrainConfig, TrainState, loss_and_correct,
                             new_opt_state, output_scores, train)
from fastfnn.validation import check_hyperparameters, check_X, check_y

#: uint8 features are 8-bit intensities: the backend reads them as value / 255.
UINT8_SCALE = 1.0 / 255.0


class FastFNN:
    """Feedforward neural network classifier (dense layers) trained by mini-batch gradient descent.

    Parameters share scikit-learn's MLPClassifier names and meanings (hidden_layer_sizes,
    activation, solver, alpha, batch_size, learning_rate_init, max_iter, shuffle, random_state, tol,
    verbose, warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1,
    beta_2, epsilon, n_iter_no_change); FastFNN adds:

    backend: ``"auto"`` (CUDA GPU, else Numba, else NumPy; ``$FASTFNN_BACKEND`` overrides),
        ``"numpy"``, ``"numba"`` or ``"cupy"``.
    dtype: ``"float32"`` (default) or ``"float64"``: the parameters' and the arithmetic's precision.
    init: ``"auto"`` (He for ReLU, Xavier otherwise), ``"he"``, ``"xavier"`` or a normal std.
    output: ``"auto"`` (softmax + cross-entropy for 1-D labels, sigmoid + binary cross-entropy for
        a 2-D 0/1 indicator matrix), ``"softmax"`` or ``"sigmoid"`` (one-vs-rest sigmoid units with
        one-hot targets, as the classic MNIST networks have it).
    batch_size: rows per step; ``"auto"`` = min(200, n_samples); ``None`` = full-batch gradient
        descent; 1 = per-example SGD.
    n_jobs: CPU threads for the kernels (Numba's threads and BLAS); None = the backend's default
        (all cores, or ``NUMBA_NUM_THREADS``), -1 = all cores. With a fixed thread count a fixed
        seed gives bitwise the same model.

    verbose: a progress bar per epoch (when stdout is a terminal) and one line per epoch.

    ``hidden_layer_sizes=()`` is softmax regression. uint8 features are read as 8-bit intensities
    and scaled by 1/255 on the backend, so MNIST can stay uint8 (a quarter of the memory) on the device.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, backend="auto", dtype="float32", init="auto",
                 output="auto", n_jobs=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype
        self.init = init
        self.output = output
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ scikit-learn protocol
    @classmethod
    def _get_param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

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
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not _same(v, defaults.get(k))]
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
        hp = check_hyperparameters(self)
        X = check_X(X, hp["dtype"], self.n_features_in_ if incremental and self._fitted else None)
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
        sizes = (X.shape[1], *hp["hidden"], len(classes_))
        if continuing:
            self._check_continuation(sizes, classes_, output, hp["activation"])
        if continuing:
            coefs = [np.ascontiguousarray(w, dtype=hp["dtype"]) for w in self.coefs_]
            intercepts = [np.ascontiguousarray(b, dtype=hp["dtype"]) for b in self.intercepts_]
        config_hash = None if checkpoint is None else self._config_hash(
            backend.name, X, targets, coefs if continuing else None)
        saved = None
        if resume and os.path.exists(checkpoint):
            from fastfnn.serialization import load_checkpoint
            saved = load_checkpoint(checkpoint)
            if saved.progress["config_hash"] != config_hash:
                raise ValueError(f"{checkpoint}: the checkpoint was written by a fit with other "
                                 "parameters or data; resume it with the same ones, or start "
                                 "afresh with resume=False")
        seed = saved.progress["seed"] if saved else _seed_of(self.random_state)
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
        config = TrainConfig(
            activation=hp["activation"], output=output, solver=hp["solver"], learning_rate_init=hp["lr"],
            batch_size=batch_size, alpha=hp["alpha"], momentum=hp["momentum"],
            nesterovs_momentum=hp["nesterov"], beta_1=hp["beta1"], beta_2=hp["beta2"],
            epsilon=hp["eps"],
            shuffle=hp["shuffle"], max_iter=hp["max_iter"], tol=hp["tol"],
            n_iter_no_change=hp["n_iter_no_change"],
            early_stopping=hp["early_stopping"] and not incremental)
        x_scale = UINT8_SCALE if X.dtype == np.uint8 else 1.0
        if saved:
            state = saved.train_state(backend)
            rng.bit_generator.state = saved.progress["rng_state"]
        else:
            dev_coefs = [backend.asarray(w) for w in coefs]
            dev_intercepts = [backend.asarray(b) for b in intercepts]
            if incremental and continuing and getattr(self, "_opt_state", None) is not None:
                opt_state = [[backend.asarray(a) for a in group] for group in self._opt_state]
                t = self._t
            else:
                opt_state = new_opt_state(backend, hp["solver"], dev_coefs, dev_intercepts)
                t = 0
            state = TrainState(coefs=dev_coefs, intercepts=dev_intercepts, opt_state=opt_state,
                               t=t)
            if incremental and continuing and hasattr(self, "history_"):
                state.history = copy.deepcopy(self.history_)
                state.best_loss = self.best_loss_ if self.best_loss_ is not None else math.inf
        # fit starts a new history (resumed: the one of the fit it continues); partial_fit adds
        # one epoch to the model's.
        epochs = 1 if incremental else (
            0 if state.finished else config.max_iter - len(state.history["loss"]))
        t_before = getattr(self, "t_", 0) if continuing else 0
        progress = EpochProgress(None if incremental else config.max_iter, sys.stdout) \
            if self.verbose else None

        def after_epoch(epoch, record):
            if checkpoint is not None:
                from fastfnn.serialization import save_checkpoint
                snapshot = FastFNN(**self.get_params())
                snapshot._set_fitted(backend, state, config, classes_, sizes, multilabel,
                                     X_train.shape[0], incremental, t_before)
                save_checkpoint(snapshot, checkpoint, state, rng, seed, config_hash, backend)
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
        self._set_fitted(backend, state, config, classes_, sizes, multilabel, X_train.shape[0],
                         incremental, t_before)
        return self

    def _set_fitted(self, backend, state, config, classes_, sizes, multilabel, n_train,
                    incremental, t_before):
        """Copy a training state to the host as scikit-learn's fitted attributes."""
        self.coefs_ = [backend.to_numpy(w).copy() for w in state.coefs]
        self.intercepts_ = [backend.to_numpy(b).copy() for b in state.intercepts]
        self._opt_state = [[backend.to_numpy(a).copy() for a in group]
                           for group in state.opt_state]
        self._t = state.t
        self.classes_ = classes_
        self.n_features_in_ = sizes[0]
        self.n_layers_ = len(sizes)
        self.n_outputs_ = len(classes_)
        self.out_activation_ = "softmax" if config.output == "softmax" else "logistic"
        self._output = config.output
        self._multilabel = multilabel
        self._activation = config.activation
        self.history_ = copy.deepcopy(state.history)
        self.loss_curve_ = list(state.history["loss"])
        self.loss_ = self.loss_curve_[-1]
        self.best_loss_ = None if config.early_stopping else state.best_loss
        if config.early_stopping:
            self.validation_scores_ = list(state.history["val_accuracy"])
            self.best_validation_score_ = state.best_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = t_before + n_train * (1 if incremental else self.n_iter_)

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
        return hasattr(self, "coefs_") and hasattr(self, "classes_")

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

    def _check_continuation(self, sizes, classes_, output, activation):
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
        if getattr(self, "_output", output) != output:
            raise ValueError(f"cannot continue training: the model has a {self._output} output, "
                             f"output={output!r} was asked for")

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if not self._fitted:
            raise ValueError("this FastFNN is not fitted yet: call fit or partial_fit first "
                             "(or FastFNN.load a saved model)")

    def _scores(self, X):
        self._check_fitted()
        dtype = self.coefs_[0].dtype
        X = check_X(X, dtype, self.n_features_in_)
        backend = get_backend(self.backend)
        with backend.thread_limit(check_hyperparameters(self)["n_jobs"]):
            return output_scores(backend, [backend.asarray(w) for w in self.coefs_],
                                 [backend.asarray(b) for b in self.intercepts_],
                                 backend.asarray(X), self._activation, self._output,
                                 UINT8_SCALE if X.dtype == np.uint8 else 1.0)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) as float (the model's dtype).

        Softmax output: the softmax. Sigmoid output with single labels: the sigmoid units normalised
        to sum to 1 per row; with multi-label targets: each label's own sigmoid probability.
        """
        scores = self._scores(X)
        if self._output == "sigmoid" and not self._multilabel:
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), np.finfo(scores.dtype).tiny)
        return scores

    def predict(self, X):
        """Predicted labels (n_samples,) drawn from ``classes_``; multi-label: (n, k) 0/1 ints."""
        scores = self._scores(X)
        if self._multilabel:
            return (scores > 0.5).astype(np.int64)
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y):
        """Mean accuracy on (X, y) (multi-label: exact-match ratio), as in scikit-learn."""
        pred = self.predict(X)
        y = check_y(y, len(pred))
        if self._multilabel:
            return float(np.mean(np.all(pred == y, axis=1)))
        return float(np.mean(pred == y))

    def evaluate(self, X, y):
        """Loss, accuracy and confusion matrix on (X, y), labels among ``classes_``.

        Returns a dict: ``loss`` (mean cross-entropy, no L2 term), ``accuracy`` (float) and, for
        single-label models, ``confusion_matrix`` (n_classes, n_classes) int64 with true classes in
        rows and predictions in columns, in ``classes_`` order.
        """
        self._check_fitted()
        dtype = self.coefs_[0].dtype
        X = check_X(X, dtype, self.n_features_in_)
        y = check_y(y, X.shape[0])
        if self._multilabel != (y.ndim == 2):
            raise ValueError("y must be a 0/1 indicator matrix for a multi-label model and 1-D "
                             "labels otherwise")
        if not self._multilabel:
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
            backend.asarray(targets), self._activation, self._output,
            UINT8_SCALE if X.dtype == np.uint8 else 1.0))
        result = {"loss": float(loss_sum) / X.shape[0], "accuracy": float(correct) / X.shape[0]}
        if not self._multilabel:
            pred = np.searchsorted(self.classes_, self.predict(X))
            result["confusion_matrix"] = confusion_matrix(targets, pred, len(self.classes_))
        return result

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to ``path`` (.npz, no pickle) atomically. Returns the path."""
        from fastfnn.serialization import save_model
        return save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; a malformed file raises ValueError."""
        from fastfnn.serialization import load_model
        return load_model(path)


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
