"""Out-of-core training: fit a FastFNN on data that does not fit in memory, chunk by chunk.

:func:`fit_chunks` streams X and y through the estimator's ``partial_fit``, so only one chunk (and
its copies on the backend) is in memory at once. X may be anything that slices by rows into
something NumPy can read: a NumPy memory-mapped array (``np.memmap``, ``np.load(mmap_mode="r")``), a
dask array (each slice computed when read), an h5py or zarr dataset. Each epoch visits the chunks in
a seeded random order and shuffles the rows within each chunk, as one ``partial_fit`` call; rows
never meet rows of other chunks within a step. :func:`streams` says which inputs ``fit`` should
stream.

Assumes rows are samples along the first axis. Pages of a memory-mapped X that a chunk touched are
handed back to the operating system's file cache once the chunk is copied (madvise where the
platform has it), so the process's resident memory stays bounded by a chunk, not by the file.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import mmap

import numpy as np

from fastfnn.validation import fit_feature_names

#: Solvers whose training goes step by step, so partial_fit can continue it chunk after chunk.
STOCHASTIC_SOLVERS = ("sgd", "adam")
#: Memory-mapped inputs of more bytes than this are streamed by :func:`streams` rather than read
#: whole: a fit's shuffled batches would touch every page, every epoch.
STREAM_MEMMAP_BYTES = 1 << 30


def streams(X) -> bool:
    """Whether ``fit`` should stream X chunk by chunk (:func:`fit_chunks`) instead of holding it:
    X is a dask array, or a NumPy memory-mapped array of more than :data:`STREAM_MEMMAP_BYTES`."""
    if type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks"):
        return True
    return isinstance(X, np.memmap) and X.nbytes > STREAM_MEMMAP_BYTES


def fit_chunks(model, X, y, *, chunk_rows=65536, epochs=None, classes=None, random_state=None,
               on_chunk=None):
    """Train ``model`` (a FastFNN or FastFNNRegressor) over (X, y) for ``epochs`` epochs,
    ``chunk_rows`` rows at a time.

    X: (n, n_features) array-like that slices by rows (memmap, dask array, h5py/zarr dataset);
        uint8 rows stay uint8 (read as intensities, as ``fit`` does). y: (n,) labels or (n, k)
        indicators (a regressor: targets), in memory or sliceable the same way.
    chunk_rows: rows per chunk (> 0); memory grows with it (a uint8 MNIST chunk of 65,536 rows is
        51 MB, plus about twice that for the Numba backend's sparse copy).
    epochs: passes over the data; None: the model's ``max_iter``.
    classes: a classifier's every label; None: those of y (see :func:`label_options`).
    random_state: seed (int, None or a numpy Generator) of the chunk order and the row shuffles;
        None: the model's ``random_state`` when it is an int, else unseeded.
    on_chunk: called as ``on_chunk(epoch, chunk_index, trained)`` after each chunk's partial_fit,
        ``trained`` being the copy of ``model`` that is training (see below).

    Each chunk is one ``partial_fit`` call: the model continues from its current weights and
    optimizer state (a fitted model keeps training), and its ``history_``/``n_iter_`` gain one
    entry per chunk. Feature names are X's own, as partial_fit treats them: a model that is not
    fitted yet takes X's (a data frame's column names; none for other inputs), a fitted one
    checks X's against its ``feature_names_in_`` once, before training (ValueError when they
    differ, a UserWarning when only one of the two has names), and keeps its own. Training runs
    on a copy of ``model`` that replaces its fitted state only once every chunk has trained, so
    an error on any chunk (NaN rows, unseen labels, ...) leaves ``model`` exactly as it was, as
    ``fit`` does. Returns ``model``. ValueError (before any training) for a solver without
    partial_fit (lbfgs), mismatched lengths, a non-positive ``chunk_rows`` or ``epochs``, or
    feature names other than the fitted model's.
    """
    if model.solver not in STOCHASTIC_SOLVERS:
        raise ValueError(f"streaming trains with partial_fit, which needs a stochastic solver "
                         f"{STOCHASTIC_SOLVERS}; the model has solver={model.solver!r}")
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; expected one label row per sample")
    chunk_rows = positive_int("chunk_rows", chunk_rows)
    epochs = positive_int("epochs", model.max_iter if epochs is None else epochs)
    if n == 0:
        raise ValueError("X has no rows; expected at least one sample")
    names = fit_feature_names(X, hasattr(model, "coefs_"),  # partial_fit continues a fitted one
                              getattr(model, "feature_names_in_", None), type(model).__name__)
    labelled = label_options(model, y, classes)
    if random_state is None and isinstance(model.random_state, (int, np.integer)):
        random_state = int(model.random_state)
    rng = np.random.default_rng(random_state)
    starts = np.arange(0, n, chunk_rows)
    # A chunk's bad rows are only seen when it is read, after earlier chunks trained: train a copy
    # and publish its state at the end, as fit does for streamed inputs.
    trained = copy.deepcopy(model)
    if hasattr(trained, "feature_names_in_"):
        del trained.feature_names_in_  # checked above: the chunks, arrays, have no names
    for epoch in range(epochs):
        for index, start in enumerate(rng.permutation(starts)):
            stop = min(start + chunk_rows, n)
            rows = rng.permutation(stop - start)
            trained.partial_fit(_read(X, start, stop)[rows], _read(y, start, stop)[rows],
                                **labelled)
            if on_chunk is not None:
                on_chunk(epoch, index, trained)
    model._publish(dataclasses.replace(trained.fitted_state_, feature_names=names))
    return model


def positive_int(name, value) -> int:
    """``value`` as an int when it is a Python or NumPy integer >= 1 (not a bool); else ValueError
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def label_options(model, y, classes=None) -> dict:
    """What ``model.partial_fit`` needs to be told besides X and y: ``{"classes": every label}``
    for a classifier (``classes``, else those of y: an indicator matrix's columns or
    ``np.unique(y)``, which reads all of y), nothing for a regressor."""
    if "classes" not in inspect.signature(model.partial_fit).parameters:
        return {}
    if classes is None:
        labels = np.asarray(y)
        classes = np.arange(labels.shape[1]) if labels.ndim == 2 else np.unique(labels)
    return {"classes": np.asarray(classes)}


def _read(array, start, stop) -> np.ndarray:
    """Rows [start, stop) of ``array`` as an in-memory NumPy array; a memory-mapped array's pages
    that held them are released (see the module docstring)."""
    part = array[start:stop]
    rows = np.array(part)  # a copy: for dask, computed; for a memmap, read from the file
    if isinstance(part, np.memmap) and part.mode != "c":  # "c": private pages, dropping loses edits
        _release_pages(part)
    return rows


def _release_pages(part: np.memmap) -> None:
    """Tell the OS this process no longer needs the mapped pages under ``part`` (they stay in the
    file cache), where the platform's mmap can madvise; else do nothing."""
    owner = part.base
    while owner is not None and not isinstance(owner, mmap.mmap):
        owner = getattr(owner, "base", None)
    if owner is None or not hasattr(mmap, "MADV_DONTNEED") or owner.closed:
        return
    mapped_at = np.frombuffer(owner, np.uint8).__array_interface__["data"][0]
    low, high = np.lib.array_utils.byte_bounds(part)
    first = (low - mapped_at) // mmap.PAGESIZE * mmap.PAGESIZE
    owner.madvise(mmap.MADV_DONTNEED, first, high - mapped_at - first)
