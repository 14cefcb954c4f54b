"""The model file: a FittedState as one ``.npz``, numeric arrays and a JSON header, no pickle.

File layout (format ``"fastfnn"``, version 2; version 1 files are read too, see READ_VERSIONS), an
uncompressed zip as ``np.savez`` writes it:

- ``header.json``: a uint8 array holding UTF-8 JSON: format name and version, the fastfnn version that
  wrote it, the estimator's parameters, the layer sizes, hidden activation, output (a classifier's
  softmax or sigmoid, a regressor's squared_error or poisson), multi-label flag (a regressor: 2-D
  targets), weight dtype, the classes (values and NumPy dtype, bytes as Latin-1 text; null for a
  regressor), the optimizer's step count and sgd's step size, the training history, the feature
  names (a list of strings, or null) and the stopping rule's count of epochs without improvement
  (both optional: files written before them lack them, read as null and 0), and a
  ``checkpoint`` section (null in a plain model file; see fastfnn.io.checkpoint);
- ``coef_<i>`` (sizes[i], sizes[i+1]) and ``intercept_<i>`` (sizes[i+1],) for each layer;
- ``opt_<g>_<i>``: the optimizer state (SGD: velocities; Adam: first and second moments) of group g
  (even g: weights, odd g: biases) of layer i, so that training after a load continues exactly;
- ``best_coef_<i>`` / ``best_intercept_<i>``: early stopping's best weights, in checkpoints whose
  section says ``has_best``.

Reading treats the file as untrusted: the archive, every entry's size and shape, the header and the
parameters (by fastfnn.params, as the estimator checks them) are checked before anything is built,
nothing is unpickled, and no entry is read before its declared size has been checked against the
archive (a lying header cannot make it allocate more than the file holds). Every problem is a
ValueError naming the file, what was wrong and what was expected. Writing checks what it is about to
write exactly as reading will, so no unreadable file is made, and replaces the file atomically.

This module knows the FittedState, never the estimator.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
import warnings
import zlib
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from fastfnn._version import __version__
from fastfnn.backends import resolve_backend_name
from fastfnn.io.atomic import atomic_write
from fastfnn.kernels import ACTIVATIONS
from fastfnn.params import PARAMETERS, REGRESSOR_PARAMETERS, defaults, resolve
from fastfnn.state import REGRESSION_OUTPUTS, FittedState, OptimizerState
from fastfnn.trainer import HISTORY_KEYS

FORMAT_NAME = "fastfnn"
FORMAT_VERSION = 3

#: Versions read. Version 1 (fastfnn 0.1.0) meant He for ReLU and Xavier otherwise by
#: ``init="auto"``, which is scikit-learn's Glorot since version 2: its files are read with the
#: init their weights came from. Version 3 adds the header keys ``feature_names`` and
#: ``no_improvement`` (so that a reader of version 2, which refuses unknown keys, says the file is
#: newer instead). Every other difference is a parameter or field an older version lacks, which
#: takes its default.
READ_VERSIONS = (1, 2, 3)

#: Largest JSON header accepted (bytes); bounds what parsing a hostile file can cost.
MAX_HEADER_BYTES = 4 << 20

#: Most weight layers accepted: far beyond any real network, and it bounds the entries expected.
MAX_LAYERS = 10_000

HEADER_ENTRY = "header.json"
WEIGHT_DTYPES = ("float32", "float64")
OUTPUTS = ("softmax", "sigmoid", *REGRESSION_OUTPUTS)

#: NumPy dtypes classes may have (besides ``object`` holding str/int/float/bool), as ``dtype.str``.
_CLASS_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|[US][0-9]{1,7})")

_HEADER_KEYS = {"format", "format_version", "fastfnn_version", "params", "architecture",
                "activation", "output", "multilabel", "dtype", "classes", "optimizer", "history",
                "n_iter", "t", "n_layers", "best_loss", "validation_scores",
                "best_validation_score", "checkpoint"}
#: Header keys files of versions 1 and 2 lack, with the value they stand for.
_OPTIONAL_HEADER_KEYS = {"feature_names": None, "no_improvement": 0}

_ZIP_MAGIC = b"PK\x03\x04"


class FormatError(ValueError):
    """A model-file problem whose message already names the file."""


class BackendFallbackWarning(UserWarning):
    """A loaded model's saved backend cannot run here; it was loaded with ``backend="auto"``."""


def fail(where, what, expected):
    """Raise FormatError ``"<where>: <what>, expected <expected>"``."""
    raise FormatError(f"{where}: {what}, expected {expected}")


def is_int(value) -> bool:
    """A JSON integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite JSON number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shorten(value, limit=80) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class ModelFile(NamedTuple):
    """What a model file holds: the state, its checkpoint section and early stopping's best weights.

    checkpoint: the header's section as read (None in a plain model file); this module checks only
    its ``has_best`` flag, fastfnn.io.checkpoint the rest. best: (coefs, intercepts) lists or None.
    """

    state: FittedState
    checkpoint: dict | None
    best: tuple[list[np.ndarray], list[np.ndarray]] | None


# ------------------------------------------------------------------------------------------ save
def save_model(state: FittedState, path, checkpoint: dict | None = None, best=None):
    """Write ``state`` to ``path`` as one ``.npz`` file; return ``path``.

    The write is atomic (fastfnn.io.atomic): on any error neither a partial file nor a temporary file
    is left and an existing file at ``path`` is untouched. The name is used as given (no ``.npz`` is
    appended). A ``random_state`` parameter that is a RandomState/Generator object is stored as None.
    The optimizer state is stored when it belongs to the ``solver`` of ``state.params``.

    checkpoint / best: a checkpoint's section (a JSON object; ``has_best`` is set here) and early
    stopping's best (coefs, intercepts), written by fastfnn.io.checkpoint.

    Raises ValueError when the state holds something the format cannot store (e.g. classes that are
    arbitrary objects, non-finite weights), TypeError for a path that is not str/bytes/PathLike, and
    OSError when the file cannot be written.
    """
    where = os.fsdecode(path)
    header, arrays = _encode(state, where)
    if checkpoint is not None:
        header["checkpoint"] = {**checkpoint, "has_best": best is not None}
    if best is not None:
        for i, (w, b) in enumerate(zip(*best)):
            arrays[f"best_coef_{i}"], arrays[f"best_intercept_{i}"] = np.asarray(w), np.asarray(b)
    try:
        raw = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot save the fitted state ({exc}), expected finite numbers, "
                         "strings and lists") from None
    _check_arrays(where, _check_header(where, _parse_header(where, raw)), arrays)
    with atomic_write(where) as f:
        np.savez(f, **{HEADER_ENTRY: np.frombuffer(raw, dtype=np.uint8), **arrays})
    return path


def _encode(state: FittedState, where):
    """The header dict (checkpoint section None) and the arrays of ``state``."""
    coefs = [np.asarray(w) for w in state.coefs]
    intercepts = [np.asarray(b) for b in state.intercepts]
    if not coefs or any(w.ndim != 2 for w in coefs) or len(intercepts) != len(coefs):
        raise ValueError(f"{where}: cannot save {len(coefs)} weight arrays and {len(intercepts)} "
                         "bias arrays, expected one 2-D weight matrix and one bias vector per layer")
    params = _encode_params(state.params, where)
    arrays = {}
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        arrays[f"coef_{i}"], arrays[f"intercept_{i}"] = w, b
    optimizer = None
    # Optimizer state from a different solver than the parameters' cannot be continued from.
    if state.optimizer is not None and state.optimizer.solver == params.get("solver"):
        optimizer = {"groups": len(state.optimizer.groups), "t": _plain(state.optimizer.steps),
                     "learning_rate": _plain(state.optimizer.learning_rate)}
        for g, group in enumerate(state.optimizer.groups):
            for i, a in enumerate(group):
                arrays[f"opt_{g}_{i}"] = np.asarray(a)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastfnn_version": __version__,
        "params": params,
        "architecture": [int(coefs[0].shape[0]), *(int(w.shape[1]) for w in coefs)],
        "activation": state.activation,
        "output": state.output,
        "multilabel": bool(state.multilabel),
        "dtype": coefs[0].dtype.name,
        "classes": None if state.classes is None else _encode_classes(np.asarray(state.classes),
                                                                      where),
        "optimizer": optimizer,
        "history": {k: [_plain(v) for v in state.history.get(k, [])] for k in HISTORY_KEYS},
        "n_iter": state.n_iter,
        "t": _plain(state.t),
        "n_layers": state.n_layers,
        "best_loss": _plain(state.best_loss),
        "validation_scores": None if state.validation_scores is None else
        [_plain(v) for v in state.validation_scores],
        "best_validation_score": _plain(state.best_validation_score),
        "checkpoint": None,
        "feature_names": None if state.feature_names is None else
        [_plain(v) for v in state.feature_names],
        "no_improvement": _plain(state.no_improvement),
    }
    return header, arrays


def _plain(value):
    """NumPy scalars as the Python scalars JSON knows; everything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _encode_params(params, where):
    out = {}
    for name, value in params.items():
        value = _plain(value)
        if isinstance(value, np.ndarray):
            # array-likes the estimator takes (hidden_layer_sizes, dropout, image_shape): a 1-D
            # array is stored as the list it holds (a 0-d one as its number)
            value = value.tolist()
        if name == "random_state" and isinstance(value, (np.random.RandomState,
                                                         np.random.Generator)):
            value = None  # a generator's state is consumed by fitting; nothing to reproduce
        elif name == "dtype" and not isinstance(value, str):
            try:
                value = np.dtype(value).name
            except TypeError:
                pass  # left as is: refused below with the parameter's name
        elif isinstance(value, (tuple, list, range)):
            value = [_plain(v) for v in value]
        elif isinstance(value, float) and value == math.inf:
            value = "inf"  # JSON has no infinity (n_iter_no_change=inf: never stop early)
        elif name == "class_weight" and isinstance(value, dict):
            # JSON objects key by strings only: a list of [label, weight] pairs keeps the labels
            value = [[_plain(k), _plain(v)] for k, v in value.items()]
        if not _json_scalar_or_list(value):
            raise ValueError(f"{where}: cannot save parameter {name}={value!r}, expected None, a "
                             "bool, int, float, str or a list of them")
        out[name] = value
    return out


def _json_scalar_or_list(value):
    """None, a bool, number or string, or a list of them or of [label, weight] pairs."""
    scalar = (type(None), bool, int, float, str)
    if isinstance(value, list):
        return all(isinstance(v, scalar) or (isinstance(v, list) and len(v) == 2
                                             and all(isinstance(p, scalar) for p in v))
                   for v in value)
    return isinstance(value, scalar)


def _encode_classes(classes, where):
    if classes.ndim != 1:
        raise ValueError(f"{where}: cannot save classes of shape {classes.shape}, expected 1-D")
    if classes.dtype.kind in "biufU":
        return {"dtype": classes.dtype.str, "values": classes.tolist()}
    if classes.dtype.kind == "S":
        # JSON has no bytes: Latin-1 maps each byte to one character and back, in the same order
        return {"dtype": classes.dtype.str, "values": [v.decode("latin-1") for v in classes]}
    if classes.dtype.kind == "O":
        values = [_plain(v) for v in classes]
        bad = next((v for v in values if not isinstance(v, (str, bool, int, float))), None)
        if bad is None:
            return {"dtype": "object", "values": values}
        what = f"a label of type {type(bad).__name__} ({bad!r})"
    else:
        what = f"labels of dtype {classes.dtype}"
    raise ValueError(f"{where}: cannot save classes holding {what}, expected labels that are ints, "
                     "floats, strings, bytes or bools")


# ------------------------------------------------------------------------------------------ load
def load_model(path) -> FittedState:
    """The FittedState in a file written by :func:`save_model` (a checkpoint is one too).

    Same weights, bit for bit, and the optimizer state to continue training from.

    A model saved with a backend that cannot run here (trained on a GPU, loaded on a machine
    without one) is loaded with ``backend="auto"`` and a :class:`BackendFallbackWarning` naming
    the saved backend, why it cannot run and what ``auto`` picks, so it predicts here.

    Raises FileNotFoundError when ``path`` does not exist, and ValueError ("<path>: <what was
    wrong>, expected <what>") for any malformed, truncated or tampered-with file. Never unpickles.
    """
    state = read_model_file(path).state
    saved = state.params["backend"]
    try:
        resolve_backend_name(saved)
    except ValueError as exc:
        warnings.warn(f"{os.fsdecode(path)}: {exc}; loaded with backend='auto' "
                      f"({resolve_backend_name('auto')} here) instead of {saved!r}; choose another "
                      "with set_params(backend=...) (on the command line: --backend)",
                      BackendFallbackWarning, stacklevel=2)
        state = replace(state, params={**state.params, "backend": "auto"})
    return state


def read_model_file(path) -> ModelFile:
    """Everything in a file written by :func:`save_model`; errors as :func:`load_model`'s."""
    where = os.fsdecode(path)
    if not os.path.exists(where):
        raise FileNotFoundError(f"{where}: no such model file")
    with open(where, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
        if magic != _ZIP_MAGIC:
            fail(where, f"not a FastFNN model file (it starts with {magic!r})",
                 "a .npz (zip) archive written by FastFNN.save")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                spec, arrays = _read(where, npz.zip, os.fstat(f.fileno()).st_size)
        except FormatError:
            raise
        except (ValueError, zipfile.BadZipFile, EOFError, struct.error, zlib.error, OverflowError,
                NotImplementedError, RecursionError, KeyError, IndexError, SyntaxError,
                OSError) as exc:
            # Damage that zipfile or NumPy's .npy header parser noticed before our checks did.
            raise FormatError(f"{where}: corrupt model file ({type(exc).__name__}: {exc}), "
                              "expected an intact .npz archive written by FastFNN.save") from None
    return _build(spec, arrays)


def _read(where, zf, file_size):
    infos = zf.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        fail(where, "the archive holds duplicate entry names", "each entry once")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            fail(where, f"entry {info.filename} is compressed or encrypted",
                 "uncompressed entries as np.savez writes them")
        if info.file_size != info.compress_size or info.header_offset + info.file_size > file_size:
            fail(where, f"entry {info.filename} declares {info.file_size} bytes",
                 f"a size that fits the {file_size}-byte file")
        total += info.file_size
    if total > file_size:
        fail(where, f"the entries declare {total} bytes in all", f"at most the file's {file_size}")
    header_name = f"{HEADER_ENTRY}.npy"
    if header_name not in names:
        fail(where, f"no {HEADER_ENTRY} entry", "a FastFNN model file with a JSON header")
    raw = _read_entry(where, zf, zf.getinfo(header_name), None, np.dtype(np.uint8),
                      MAX_HEADER_BYTES)
    spec = _check_header(where, _parse_header(where, raw.tobytes()))
    expected = {f"{name}.npy" for name in spec["entries"]} | {header_name}
    if set(names) != expected:
        extra, missing = sorted(set(names) - expected), sorted(expected - set(names))
        fail(where, f"the archive's entries differ from the header's layers (unexpected: "
                    f"{extra}, missing: {missing})",
             f"exactly {sorted(expected)}")
    arrays = {name: _read_entry(where, zf, zf.getinfo(f"{name}.npy"), shape, spec["dtype"])
              for name, shape in spec["entries"].items()}
    _check_arrays(where, spec, arrays)
    return spec, arrays


def _read_entry(where, zf, info, shape, dtype, max_bytes=None):
    """Read one .npy entry after checking its header against ``shape``/``dtype`` and its zip size.

    shape None: any 1-D shape of at most ``max_bytes`` bytes.
    """
    name = info.filename
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            fail(where, f"entry {name} has .npy format version {version}", "1.0 or 2.0")
        if got_dtype.kind != dtype.kind or got_dtype.itemsize != dtype.itemsize \
                or got_dtype.fields is not None or got_dtype.subdtype is not None:
            fail(where, f"entry {name} holds {got_dtype}", f"{dtype.name}")
        if fortran:
            fail(where, f"entry {name} is stored in Fortran order", "C order")
        if shape is None:
            if len(got_shape) != 1:
                fail(where, f"entry {name} has shape {got_shape}", "a 1-D array")
        elif tuple(got_shape) != tuple(shape):
            fail(where, f"entry {name} has shape {tuple(got_shape)}",
                 f"{tuple(shape)} from the header's layer sizes")
        nbytes = math.prod(got_shape) * dtype.itemsize  # Python ints: exact, cannot overflow
        if max_bytes is not None and nbytes > max_bytes:
            fail(where, f"entry {name} is {nbytes} bytes", f"at most {max_bytes}")
        if fp.tell() + nbytes != info.file_size:
            fail(where, f"entry {name} is {info.file_size} bytes but its .npy header "
                        f"promises {fp.tell() + nbytes}", "the two to agree")
        buf = bytearray(nbytes)
        if fp.readinto(buf) != nbytes or fp.read(1):  # reading to the end checks the CRC
            fail(where, f"entry {name} ends early", f"{nbytes} bytes of data")
    array = np.frombuffer(buf, dtype=got_dtype).reshape(got_shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _parse_header(where, raw):
    if len(raw) > MAX_HEADER_BYTES:
        fail(where, f"the header is {len(raw)} bytes", f"at most {MAX_HEADER_BYTES}")

    def no_constants(token):
        raise ValueError(f"{token} is not JSON")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate keys {sorted(k for k in set(keys) if keys.count(k) > 1)}")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=no_constants,
                            object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:
        fail(where, f"the header is not valid JSON ({exc})", "UTF-8 JSON")
    if not isinstance(header, dict):
        fail(where, f"the header is a JSON {type(header).__name__}", "a JSON object")
    return header


def _check_header(where, h):
    """Validate the parsed header; return what building the state needs (the "spec")."""
    if h.get("format") != FORMAT_NAME:
        fail(where, f"format is {h.get('format')!r}", f"{FORMAT_NAME!r}")
    if h.get("format_version") not in READ_VERSIONS or not is_int(h.get("format_version")):
        fail(where, f"format_version is {h.get('format_version')!r}",
             f"one of {list(READ_VERSIONS)} (the versions this fastfnn reads)")
    known = _HEADER_KEYS | set(_OPTIONAL_HEADER_KEYS)
    if not _HEADER_KEYS <= set(h) <= known:
        fail(where, f"header keys differ (unexpected: {sorted(set(h) - known)}, missing: "
                    f"{sorted(_HEADER_KEYS - set(h))})",
             f"{sorted(_HEADER_KEYS)}, optionally {sorted(_OPTIONAL_HEADER_KEYS)}")
    h = {**_OPTIONAL_HEADER_KEYS, **h}
    if not isinstance(h["fastfnn_version"], str):
        fail(where, f"fastfnn_version is {h['fastfnn_version']!r}", "a string")
    sizes = h["architecture"]
    if not (isinstance(sizes, list) and 2 <= len(sizes) <= MAX_LAYERS + 1
            and all(is_int(s) and s >= 1 for s in sizes)):
        fail(where, f"architecture is {shorten(sizes)}",
             f"a list of 2 to {MAX_LAYERS + 1} positive integer layer sizes")
    if h["activation"] not in ACTIVATIONS:
        fail(where, f"activation is {shorten(h['activation'])}", f"one of {list(ACTIVATIONS)}")
    if h["output"] not in OUTPUTS:
        fail(where, f"output is {shorten(h['output'])}", f"one of {list(OUTPUTS)}")
    if not isinstance(h["multilabel"], bool):
        fail(where, f"multilabel is {shorten(h['multilabel'])}", "true or false")
    if h["multilabel"] and h["output"] == "softmax":
        fail(where, "a multi-label model with a softmax output", "a sigmoid output")
    if h["dtype"] not in WEIGHT_DTYPES:
        fail(where, f"dtype is {shorten(h['dtype'])}", f"one of {list(WEIGHT_DTYPES)}")
    regressor = h["output"] in REGRESSION_OUTPUTS
    classes = None
    if regressor:
        if h["classes"] is not None:
            fail(where, f"classes is {shorten(h['classes'])} for a regressor", "null")
    else:
        classes = _check_classes(where, h["classes"], h["multilabel"])
        if len(classes) != sizes[-1]:
            fail(where, f"{len(classes)} classes for {sizes[-1]} output units",
                 "one class per output unit")
    params = _check_params(where, h["params"],
                           REGRESSOR_PARAMETERS if regressor else PARAMETERS)
    if h["format_version"] == 1 and params["init"] == "auto":
        params["init"] = "he" if params["activation"] == "relu" else "xavier"
    if regressor and params["loss"] != h["output"]:
        fail(where, f"output {h['output']!r} with loss {params['loss']!r}", "the two to agree")
    optimizer = h["optimizer"]
    groups = OptimizerState.GROUPS.get(params["solver"])
    if optimizer is not None:
        # files written before sgd's schedules lack learning_rate: the step size is then the
        # initial one
        rate = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
        if not (isinstance(optimizer, dict) and groups is not None
                and set(optimizer) - {"learning_rate"} == {"groups", "t"}
                and optimizer["groups"] == groups
                and is_int(optimizer["groups"]) and is_int(optimizer["t"])
                and optimizer["t"] >= 0 and (rate is None or is_number(rate) and rate > 0)):
            fail(where, f"optimizer is {shorten(optimizer)}",
                 "null, or for solver sgd or adam "
                 f'{{"groups": {groups}, "t": step count >= 0, "learning_rate": null or > 0}}')
    history = h["history"]
    if not (isinstance(history, dict) and set(history) == set(HISTORY_KEYS)
            and all(isinstance(history[k], list) for k in HISTORY_KEYS)
            and len({len(history[k]) for k in HISTORY_KEYS}) == 1 and history["loss"]):
        fail(where, "history is malformed",
             f"an object with equally long, non-empty lists {list(HISTORY_KEYS)}")
    for key in HISTORY_KEYS:
        # accuracy: none for a regressor, nor for an lbfgs fit
        nullable = key.startswith("val_") or key == "accuracy"
        if not all(is_number(v) or (nullable and v is None) for v in history[key]):
            fail(where, f"history {key} holds a non-number",
                 "finite numbers" + (" or null" if nullable else ""))
    # n_iter and n_layers follow from the history and the architecture; they are stored for
    # readers of the header alone.
    for key in ("n_iter", "t", "n_layers"):
        if not (is_int(h[key]) and h[key] >= 0):
            fail(where, f"{key} is {shorten(h[key])}", "an integer >= 0")
    for key in ("best_loss", "best_validation_score"):
        if not (h[key] is None or is_number(h[key])):
            fail(where, f"{key} is {shorten(h[key])}", "null or a finite number")
    names = h["feature_names"]
    if not (names is None or isinstance(names, list) and len(names) == sizes[0]
            and all(isinstance(v, str) for v in names)):
        fail(where, f"feature_names is {shorten(names)}",
             f"null or a list of {sizes[0]} strings, one per input feature")
    if not (is_int(h["no_improvement"]) and h["no_improvement"] >= 0):
        fail(where, f"no_improvement is {shorten(h['no_improvement'])}", "an integer >= 0")
    scores = h["validation_scores"]
    if not (scores is None or (isinstance(scores, list) and all(is_number(v) for v in scores))):
        fail(where, f"validation_scores is {shorten(scores)}", "null or a list of finite numbers")
    section = h["checkpoint"]
    if not (section is None or isinstance(section, dict)
            and isinstance(section.get("has_best"), bool)):
        fail(where, f"checkpoint is {shorten(section)}",
             'null or an object with "has_best": true or false')
    layers = list(zip(sizes[:-1], sizes[1:]))
    entries = {}
    for i, (n_in, n_out) in enumerate(layers):
        entries[f"coef_{i}"], entries[f"intercept_{i}"] = (n_in, n_out), (n_out,)
    for g in range(0 if optimizer is None else groups):
        for i, (n_in, n_out) in enumerate(layers):
            entries[f"opt_{g}_{i}"] = (n_in, n_out) if g % 2 == 0 else (n_out,)
    if section is not None and section["has_best"]:
        for i, (n_in, n_out) in enumerate(layers):
            entries[f"best_coef_{i}"], entries[f"best_intercept_{i}"] = (n_in, n_out), (n_out,)
    if names is not None:
        names = np.array(names, dtype=object)  # feature_names_in_ is an object array
    return {**h, "params": params, "classes": classes, "feature_names": names, "entries": entries,
            "n_layers_weights": len(layers), "dtype": np.dtype(h["dtype"])}


def _check_classes(where, spec, multilabel):
    if not (isinstance(spec, dict) and set(spec) == {"dtype", "values"}
            and isinstance(spec["dtype"], str) and isinstance(spec["values"], list)):
        fail(where, f"classes is {shorten(spec)}", '{"dtype": a NumPy dtype, "values": [labels]}')
    kind, values = spec["dtype"], spec["values"]
    if kind == "object":
        if not all(isinstance(v, (str, bool, int, float)) for v in values):
            fail(where, "classes holds a value that is not a string, number or bool",
                 "labels that are ints, floats, strings or bools")
        classes = np.empty(len(values), dtype=object)
        classes[:] = values
    elif _CLASS_DTYPE.fullmatch(kind):
        dtype = np.dtype(kind)
        ok = {"b": lambda v: isinstance(v, bool),
              "i": lambda v: is_int(v) and np.iinfo(dtype).min <= v <= np.iinfo(dtype).max,
              "u": lambda v: is_int(v) and np.iinfo(dtype).min <= v <= np.iinfo(dtype).max,
              "f": is_number,
              "U": lambda v: isinstance(v, str) and len(v) <= dtype.itemsize // 4,
              "S": lambda v: isinstance(v, str) and len(v) <= dtype.itemsize
              and all(ord(c) < 256 for c in v)}[dtype.kind]
        if not all(ok(v) for v in values):
            fail(where, f"classes holds a value that does not fit dtype {kind}",
                 f"values of dtype {kind}")
        if dtype.kind == "S":  # bytes are stored as Latin-1 text (see _encode_classes)
            values = [v.encode("latin-1") for v in values]
        classes = np.array(values, dtype=dtype).reshape(len(values))
    else:
        fail(where, f"classes dtype is {shorten(kind)}",
             "bool, int, uint, float, unicode or bytes string, or object (of str/int/float/bool)")
    try:
        ordered = all(a < b for a, b in zip(classes[:-1], classes[1:]))
    except TypeError:
        ordered = False
    if not ordered:
        fail(where, "classes are not sorted and unique", "the sorted unique labels seen at fit")
    if multilabel and not (classes.dtype == np.int64 and
                           np.array_equal(classes, np.arange(len(classes)))):
        fail(where, f"multi-label classes {shorten(values)}", "0, 1, ..., n_labels - 1 (int64)")
    return classes


def _check_params(where, params, table):
    """The file's parameters, checked by fastfnn.params against ``table`` (the estimator's); a
    parameter the file lacks (written before it existed) takes its default."""
    names = list(defaults(table))
    if not isinstance(params, dict):
        fail(where, f"params is {shorten(params)}", "an object of the estimator's parameters")
    if set(params) - set(names):
        fail(where, f"params has unknown entries {sorted(set(params) - set(names))}",
             f"parameters among {names}")
    for name, value in params.items():
        if not _json_scalar_or_list(value):
            fail(where, f"parameter {name} is {shorten(value)}", "a JSON scalar or list of them")
    try:
        # JSON has no tuples, non-string keys nor infinity: hidden_layer_sizes comes back as the
        # tuple it was, class_weight's [label, weight] pairs as the dict they were, a numeric
        # parameter's "inf" as math.inf.
        values = {**defaults(table), **{
            k: dict(v) if k == "class_weight" and isinstance(v, list) else
            tuple(v) if isinstance(v, list) else
            math.inf if v == "inf" and isinstance(defaults(table)[k], (int, float)) else v
            for k, v in params.items()}}
        resolve(values, table)
    except (TypeError, ValueError) as exc:
        fail(where, f"invalid parameters ({exc})", "parameters the estimator accepts")
    return values


def _check_arrays(where, spec, arrays):
    """Every entry the header promises, with its shape and dtype, and finite values."""
    if set(arrays) != set(spec["entries"]):
        fail(where, f"arrays {sorted(arrays)}", f"{sorted(spec['entries'])}")
    for name, shape in spec["entries"].items():
        a = arrays[name]
        if a.dtype != spec["dtype"] or a.shape != shape:
            fail(where, f"{name} is {a.dtype} of shape {a.shape}",
                 f"{spec['dtype'].name} of shape {shape}")
        if not np.isfinite(a).all():
            fail(where, f"{name} holds NaN or infinite values", "finite weights")


def _build(spec, arrays) -> ModelFile:
    layers = range(spec["n_layers_weights"])
    optimizer = spec["optimizer"]
    params = spec["params"]
    state = FittedState(
        params=params,
        coefs=[arrays[f"coef_{i}"] for i in layers],
        intercepts=[arrays[f"intercept_{i}"] for i in layers],
        classes=spec["classes"],
        activation=spec["activation"],
        output=spec["output"],
        multilabel=spec["multilabel"],
        history={k: list(v) for k, v in spec["history"].items()},
        t=spec["t"],
        best_loss=spec["best_loss"],
        validation_scores=spec["validation_scores"],
        best_validation_score=spec["best_validation_score"],
        optimizer=None if optimizer is None else OptimizerState(
            solver=params["solver"],
            groups=[[arrays[f"opt_{g}_{i}"] for i in layers] for g in range(optimizer["groups"])],
            steps=optimizer["t"], learning_rate=_step_size(optimizer, params)),
        feature_names=spec["feature_names"], no_improvement=spec["no_improvement"])
    section = spec["checkpoint"]
    best = None
    if section is not None and section["has_best"]:
        best = ([arrays[f"best_coef_{i}"] for i in layers],
                [arrays[f"best_intercept_{i}"] for i in layers])
    return ModelFile(state, section, best)


def _step_size(optimizer, params):
    """sgd's step size as stored; files written before schedules existed (no entry) stopped at
    learning_rate_init. None for adam."""
    rate = optimizer.get("learning_rate")
    if rate is None and params["solver"] == "sgd":
        return float(params["learning_rate_init"])
    return rate
