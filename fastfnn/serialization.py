"""Save and load fitted FastFNN models: one ``.npz`` file, numeric arrays and a JSON header, no pickle.

File layout (format ``"fastfnn"``, version 1), an uncompressed zip as ``np.savez`` writes it:

- ``header.json``: a uint8 array holding UTF-8 JSON: format name and version, the fastfnn version that
  wrote it, the estimator's ``get_params()``, the layer sizes, hidden activation, output, multi-label
  flag, weight dtype, the classes (values and NumPy dtype), the optimizer's step count and the
  training history;
- ``coef_<i>`` (sizes[i], sizes[i+1]) and ``intercept_<i>`` (sizes[i+1],) for each layer;
- ``opt_<g>_<i>``: the optimizer state (SGD: velocities; Adam: first and second moments) of group g
  (even g: weights, odd g: biases) of layer i, so that ``partial_fit`` after a load continues exactly.

Loading treats the file as untrusted: the archive, every entry's size and shape, the header and the
parameters are checked before anything is built, nothing is unpickled, and no entry is read before
its declared size has been checked against the archive (a lying header cannot make it allocate more
than the file holds). Every problem is a ValueError naming the file, what was wrong and what was
expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import struct
import zipfile
import zlib

import numpy as np

from fastfnn.kernels import ACTIVATIONS
from fastfnn.trainer import HISTORY_KEYS

FORMAT_NAME = "fastfnn"
FORMAT_VERSION = 1

#: Largest JSON header accepted (bytes); bounds what parsing a hostile file can cost.
MAX_HEADER_BYTES = 4 << 20

#: Most weight layers accepted: far beyond any real network, and it bounds the entries expected.
MAX_LAYERS = 10_000

HEADER_ENTRY = "header.json"
WEIGHT_DTYPES = ("float32", "float64")

#: Optimizer state groups per solver (see fastfnn.trainer.new_opt_state).
OPT_GROUPS = {"sgd": 2, "adam": 4}

#: Parameters that must be booleans (check_hyperparameters only takes their truth value).
_BOOL_PARAMS = ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping")

#: NumPy dtypes classes may have (besides ``object`` holding str/int/float/bool), as ``dtype.str``.
_CLASS_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|U[0-9]{1,7})")

_HEADER_KEYS = {"format", "format_version", "fastfnn_version", "params", "architecture",
                "activation", "output", "multilabel", "dtype", "classes", "optimizer", "history",
                "n_iter", "t", "n_layers", "best_loss", "validation_scores",
                "best_validation_score", "checkpoint"}

_ZIP_MAGIC = b"PK\x03\x04"


class _FormatError(ValueError):
    """A model-file problem whose message already names the file."""


# ------------------------------------------------------------------------------------------ save
def save_model(model, path, checkpoint=None, best_arrays=None):
    """Write the fitted ``model`` (a FastFNN) to ``path`` as one ``.npz`` file; return ``path``.

    The write is atomic: the data goes to a temporary file in the same folder, is flushed and
    fsynced, then renamed over ``path``; on any error neither a partial file nor the temporary file
    is left and an existing file at ``path`` is untouched. The name is used as given (no ``.npz`` is
    appended). A ``random_state`` that is a RandomState/Generator object is stored as None.

    checkpoint / best_arrays: training progress and early stopping's best weights, written by
    :func:`save_checkpoint` (a checkpoint is also a model file that :func:`load_model` reads).

    Raises ValueError when the model is not fitted or holds something the format cannot store
    (e.g. classes that are arbitrary objects), TypeError for a path that is not str/PathLike, and
    OSError when the file cannot be written.
    """
    where = os.fspath(path)
    header, arrays = _encode(model, where)
    header["checkpoint"] = checkpoint
    arrays.update(best_arrays or {})
    try:
        raw = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot save the model's fitted state ({exc}), expected finite "
                         "numbers, strings and lists (is it a FastFNN fitted by this version?)"
                         ) from None
    # Check what is about to be written exactly as load_model will, so no unreadable file is made.
    _check_arrays(where, _check_header(where, _parse_header(where, raw)), arrays)
    arrays = {HEADER_ENTRY: np.frombuffer(raw, dtype=np.uint8), **arrays}
    _atomic_savez(where, arrays)
    return path


def _encode(model, where):
    """The header dict and the arrays of a fitted model; ValueError if it is not fitted."""
    if not (hasattr(model, "coefs_") and hasattr(model, "classes_")):
        raise ValueError(f"{where}: cannot save an unfitted FastFNN, expected a model fitted with "
                         "fit or partial_fit (or loaded)")
    attrs = {}
    for name in ("intercepts_", "_activation", "_output", "_multilabel", "history_", "n_iter_",
                 "t_", "n_layers_", "best_loss_", "validation_scores_", "best_validation_score_"):
        if not hasattr(model, name):
            raise ValueError(f"{where}: cannot save: the model lacks the fitted attribute {name}, "
                             "expected a model fitted with fit or partial_fit")
        attrs[name] = getattr(model, name)
    coefs = [np.asarray(w) for w in model.coefs_]
    intercepts = [np.asarray(b) for b in attrs["intercepts_"]]
    if not coefs or any(w.ndim != 2 for w in coefs) or len(intercepts) != len(coefs):
        raise ValueError(f"{where}: cannot save: coefs_ has {len(coefs)} arrays and intercepts_ "
                         f"{len(intercepts)}, expected one 2-D weight matrix and one bias vector "
                         "per layer")
    params = _encode_params(model.get_params(), where)
    arrays = {}
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        arrays[f"coef_{i}"], arrays[f"intercept_{i}"] = w, b
    opt_state, optimizer = getattr(model, "_opt_state", None), None
    # Optimizer state from a different solver than the current one cannot be continued from.
    if opt_state is not None and len(opt_state) == OPT_GROUPS.get(params["solver"]):
        optimizer = {"groups": len(opt_state), "t": _plain(getattr(model, "_t", 0))}
        for g, group in enumerate(opt_state):
            for i, a in enumerate(group):
                arrays[f"opt_{g}_{i}"] = np.asarray(a)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastfnn_version": _fastfnn_version(),
        "params": params,
        "architecture": [int(coefs[0].shape[0]), *(int(w.shape[1]) for w in coefs)],
        "activation": attrs["_activation"],
        "output": attrs["_output"],
        "multilabel": bool(attrs["_multilabel"]),
        "dtype": coefs[0].dtype.name,
        "classes": _encode_classes(np.asarray(model.classes_), where),
        "optimizer": optimizer,
        "history": {k: [_plain(v) for v in attrs["history_"].get(k, [])] for k in HISTORY_KEYS},
        "n_iter": _plain(attrs["n_iter_"]),
        "t": _plain(attrs["t_"]),
        "n_layers": _plain(attrs["n_layers_"]),
        "best_loss": _plain(attrs["best_loss_"]),
        "validation_scores": None if attrs["validation_scores_"] is None else
        [_plain(v) for v in attrs["validation_scores_"]],
        "best_validation_score": _plain(attrs["best_validation_score_"]),
    }
    return header, arrays


def _fastfnn_version():
    from fastfnn import __version__
    return __version__


def _plain(value):
    """NumPy scalars as the Python scalars JSON knows; everything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _encode_params(params, where):
    out = {}
    for name, value in params.items():
        value = _plain(value)
        if name == "random_state" and isinstance(value, (np.random.RandomState,
                                                         np.random.Generator)):
            value = None  # a generator's state is consumed by fitting; nothing to reproduce
        elif name == "dtype" and not isinstance(value, str):
            try:
                value = np.dtype(value).name
            except TypeError:
                pass  # left as is: rejected below with the parameter's name
        elif isinstance(value, (tuple, list)):
            value = [_plain(v) for v in value]
        if not _json_scalar_or_list(value):
            raise ValueError(f"{where}: cannot save parameter {name}={value!r}, expected None, a "
                             "bool, int, float, str or a list of them")
        out[name] = value
    return out


def _json_scalar_or_list(value):
    scalar = (type(None), bool, int, float, str)
    if isinstance(value, list):
        return all(isinstance(v, scalar) for v in value)
    return isinstance(value, scalar)


def _encode_classes(classes, where):
    if classes.ndim != 1:
        raise ValueError(f"{where}: cannot save: classes_ has shape {classes.shape}, expected 1-D")
    if classes.dtype.kind in "biufU":
        return {"dtype": classes.dtype.str, "values": classes.tolist()}
    if classes.dtype.kind == "O":
        values = [_plain(v) for v in classes]
        bad = next((v for v in values if not isinstance(v, (str, bool, int, float))), None)
        if bad is None:
            return {"dtype": "object", "values": values}
        what = f"a label of type {type(bad).__name__} ({bad!r})"
    else:
        what = f"labels of dtype {classes.dtype}"
    raise ValueError(f"{where}: cannot save classes_ holding {what}, expected labels that are ints, "
                     "floats, strings or bools")


def _atomic_savez(where, arrays):
    """np.savez ``arrays`` into ``where`` through a fsynced temporary file in the same folder."""
    folder = os.path.dirname(os.path.abspath(where))
    base = os.path.basename(where)
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 and O_EXCL: the umask gives the usual permissions; never clobber another file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{where}: could not create a temporary file in {folder}")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, where)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename durable where the platform allows it (POSIX); a no-op elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ load
def load_model(path):
    """Read a model written by :func:`save_model` (or a checkpoint) as a fitted FastFNN.

    The loaded model predicts exactly as the saved one did (same weights, bit for bit) and continues
    training with ``partial_fit`` / ``warm_start`` from the saved optimizer state.

    Raises FileNotFoundError when ``path`` does not exist, and ValueError ("<path>: <what was
    wrong>, expected <what>") for any malformed, truncated or tampered-with file. Never unpickles.
    """
    return _build(*_load(path))


def _load(path):
    """Read and check a file written by :func:`save_model`: (spec, arrays), nothing built yet.

    The loaded model predicts exactly as the saved one did (same weights, bit for bit) and continues
    training with ``partial_fit`` / ``warm_start`` from the saved optimizer state.

    Raises FileNotFoundError when ``path`` does not exist, and ValueError ("<path>: <what was
    wrong>, expected <what>") for any malformed, truncated or tampered-with file. Never unpickles.
    """
    where = os.fspath(path)
    if not os.path.exists(where):
        raise FileNotFoundError(f"{where}: no such model file")
    with open(where, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
        if magic != _ZIP_MAGIC:
            _fail(where, f"not a FastFNN model file (it starts with {magic!r})",
                  "a .npz (zip) archive written by FastFNN.save")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                spec, arrays = _read(where, npz.zip, os.fstat(f.fileno()).st_size)
        except _FormatError:
            raise
        except (ValueError, zipfile.BadZipFile, EOFError, struct.error, zlib.error, OverflowError,
                NotImplementedError, RecursionError, KeyError, IndexError, SyntaxError,
                OSError) as exc:
            # Damage that zipfile or NumPy's .npy header parser noticed before our checks did.
            raise _FormatError(f"{where}: corrupt model file ({type(exc).__name__}: {exc}), "
                               "expected an intact .npz archive written by FastFNN.save") from None
    return spec, arrays


def _fail(where, what, expected):
    raise _FormatError(f"{where}: {what}, expected {expected}")


def _read(where, zf, file_size):
    infos = zf.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        _fail(where, "the archive holds duplicate entry names", "each entry once")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            _fail(where, f"entry {info.filename} is compressed or encrypted",
                  "uncompressed entries as np.savez writes them")
        if info.file_size != info.compress_size or info.header_offset + info.file_size > file_size:
            _fail(where, f"entry {info.filename} declares {info.file_size} bytes",
                  f"a size that fits the {file_size}-byte file")
        total += info.file_size
    if total > file_size:
        _fail(where, f"the entries declare {total} bytes in all", f"at most the file's {file_size}")
    header_name = f"{HEADER_ENTRY}.npy"
    if header_name not in names:
        _fail(where, f"no {HEADER_ENTRY} entry", "a FastFNN model file with a JSON header")
    raw = _read_entry(where, zf, zf.getinfo(header_name), None, np.dtype(np.uint8),
                      MAX_HEADER_BYTES)
    spec = _check_header(where, _parse_header(where, raw.tobytes()))
    expected = {f"{name}.npy" for name in spec["entries"]} | {header_name}
    if set(names) != expected:
        extra, missing = sorted(set(names) - expected), sorted(expected - set(names))
        _fail(where, f"the archive's entries differ from the header's layers (unexpected: "
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
            _fail(where, f"entry {name} has .npy format version {version}", "1.0 or 2.0")
        if got_dtype.kind != dtype.kind or got_dtype.itemsize != dtype.itemsize \
                or got_dtype.fields is not None or got_dtype.subdtype is not None:
            _fail(where, f"entry {name} holds {got_dtype}", f"{dtype.name}")
        if fortran:
            _fail(where, f"entry {name} is stored in Fortran order", "C order")
        if shape is None:
            if len(got_shape) != 1:
                _fail(where, f"entry {name} has shape {got_shape}", "a 1-D array")
        elif tuple(got_shape) != tuple(shape):
            _fail(where, f"entry {name} has shape {tuple(got_shape)}",
                  f"{tuple(shape)} from the header's layer sizes")
        nbytes = math.prod(got_shape) * dtype.itemsize  # Python ints: exact, cannot overflow
        if max_bytes is not None and nbytes > max_bytes:
            _fail(where, f"entry {name} is {nbytes} bytes", f"at most {max_bytes}")
        if fp.tell() + nbytes != info.file_size:
            _fail(where, f"entry {name} is {info.file_size} bytes but its .npy header "
                         f"promises {fp.tell() + nbytes}", "the two to agree")
        buf = bytearray(nbytes)
        if fp.readinto(buf) != nbytes or fp.read(1):  # reading to the end checks the CRC
            _fail(where, f"entry {name} ends early", f"{nbytes} bytes of data")
    array = np.frombuffer(buf, dtype=got_dtype).reshape(got_shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _parse_header(where, raw):
    if len(raw) > MAX_HEADER_BYTES:
        _fail(where, f"the header is {len(raw)} bytes", f"at most {MAX_HEADER_BYTES}")

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
        _fail(where, f"the header is not valid JSON ({exc})", "UTF-8 JSON")
    if not isinstance(header, dict):
        _fail(where, f"the header is a JSON {type(header).__name__}", "a JSON object")
    return header


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_header(where, h):
    """Validate the parsed header; return what building the model needs (the "spec")."""
    if h.get("format") != FORMAT_NAME:
        _fail(where, f"format is {h.get('format')!r}", f"{FORMAT_NAME!r}")
    if h.get("format_version") != FORMAT_VERSION or not _is_int(h.get("format_version")):
        _fail(where, f"format_version is {h.get('format_version')!r}",
              f"{FORMAT_VERSION} (this fastfnn reads version {FORMAT_VERSION} only)")
    if set(h) != _HEADER_KEYS:
        _fail(where, f"header keys differ (unexpected: {sorted(set(h) - _HEADER_KEYS)}, missing: "
                     f"{sorted(_HEADER_KEYS - set(h))})", f"exactly {sorted(_HEADER_KEYS)}")
    if not isinstance(h["fastfnn_version"], str):
        _fail(where, f"fastfnn_version is {h['fastfnn_version']!r}", "a string")
    sizes = h["architecture"]
    if not (isinstance(sizes, list) and 2 <= len(sizes) <= MAX_LAYERS + 1
            and all(_is_int(s) and s >= 1 for s in sizes)):
        _fail(where, f"architecture is {_short(sizes)}",
              f"a list of 2 to {MAX_LAYERS + 1} positive integer layer sizes")
    if h["activation"] not in ACTIVATIONS:
        _fail(where, f"activation is {_short(h['activation'])}", f"one of {list(ACTIVATIONS)}")
    if h["output"] not in ("softmax", "sigmoid"):
        _fail(where, f"output is {_short(h['output'])}", "'softmax' or 'sigmoid'")
    if not isinstance(h["multilabel"], bool):
        _fail(where, f"multilabel is {_short(h['multilabel'])}", "true or false")
    if h["multilabel"] and h["output"] != "sigmoid":
        _fail(where, "a multi-label model with a softmax output", "a sigmoid output")
    if h["dtype"] not in WEIGHT_DTYPES:
        _fail(where, f"dtype is {_short(h['dtype'])}", f"one of {list(WEIGHT_DTYPES)}")
    classes = _check_classes(where, h["classes"], h["multilabel"])
    if len(classes) != sizes[-1]:
        _fail(where, f"{len(classes)} classes for {sizes[-1]} output units",
              "one class per output unit")
    params = _check_params(where, h["params"])
    optimizer = h["optimizer"]
    if optimizer is not None:
        if not (isinstance(optimizer, dict) and set(optimizer) == {"groups", "t"}
                and optimizer["groups"] == OPT_GROUPS[params["solver"]]
                and _is_int(optimizer["groups"]) and _is_int(optimizer["t"])
                and optimizer["t"] >= 0):
            _fail(where, f"optimizer is {_short(optimizer)}",
                  "null or {\"groups\": 2 for sgd or 4 for adam, \"t\": step count >= 0}")
    history = h["history"]
    if not (isinstance(history, dict) and set(history) == set(HISTORY_KEYS)
            and all(isinstance(history[k], list) for k in HISTORY_KEYS)
            and len({len(history[k]) for k in HISTORY_KEYS}) == 1 and history["loss"]):
        _fail(where, "history is malformed",
              f"an object with equally long, non-empty lists {list(HISTORY_KEYS)}")
    for key in HISTORY_KEYS:
        nullable = key.startswith("val_")
        if not all(_is_number(v) or (nullable and v is None) for v in history[key]):
            _fail(where, f"history {key} holds a non-number",
                  "finite numbers" + (" or null" if nullable else ""))
    for key in ("n_iter", "t", "n_layers"):
        if not (_is_int(h[key]) and h[key] >= 0):
            _fail(where, f"{key} is {_short(h[key])}", "an integer >= 0")
    for key in ("best_loss", "best_validation_score"):
        if not (h[key] is None or _is_number(h[key])):
            _fail(where, f"{key} is {_short(h[key])}", "null or a finite number")
    scores = h["validation_scores"]
    if not (scores is None or (isinstance(scores, list) and all(_is_number(v) for v in scores))):
        _fail(where, f"validation_scores is {_short(scores)}", "null or a list of finite numbers")
    entries = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        entries[f"coef_{i}"], entries[f"intercept_{i}"] = (n_in, n_out), (n_out,)
    for g in range(0 if optimizer is None else optimizer["groups"]):
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            entries[f"opt_{g}_{i}"] = (n_in, n_out) if g % 2 == 0 else (n_out,)
    if h["checkpoint"] is not None:
        _check_progress(where, h["checkpoint"])
        if h["checkpoint"]["has_best"]:
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                entries[f"best_coef_{i}"], entries[f"best_intercept_{i}"] = (n_in, n_out), (n_out,)
    return {**h, "params": params, "classes": classes, "entries": entries,
            "n_layers_weights": len(sizes) - 1, "dtype": np.dtype(h["dtype"])}


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_classes(where, spec, multilabel):
    if not (isinstance(spec, dict) and set(spec) == {"dtype", "values"}
            and isinstance(spec["dtype"], str) and isinstance(spec["values"], list)):
        _fail(where, f"classes is {_short(spec)}", '{"dtype": a NumPy dtype, "values": [labels]}')
    kind, values = spec["dtype"], spec["values"]
    if kind == "object":
        if not all(isinstance(v, (str, bool, int, float)) for v in values):
            _fail(where, "classes holds a value that is not a string, number or bool",
                  "labels that are ints, floats, strings or bools")
        classes = np.empty(len(values), dtype=object)
        classes[:] = values
    elif _CLASS_DTYPE.fullmatch(kind):
        dtype = np.dtype(kind)
        ok = {"b": lambda v: isinstance(v, bool),
              "i": lambda v: _is_int(v) and np.iinfo(dtype).min <= v <= np.iinfo(dtype).max,
              "u": lambda v: _is_int(v) and np.iinfo(dtype).min <= v <= np.iinfo(dtype).max,
              "f": _is_number,
              "U": lambda v: isinstance(v, str) and len(v) <= dtype.itemsize // 4}[dtype.kind]
        if not all(ok(v) for v in values):
            _fail(where, f"classes holds a value that does not fit dtype {kind}",
                  f"values of dtype {kind}")
        classes = np.array(values, dtype=dtype).reshape(len(values))
    else:
        _fail(where, f"classes dtype is {_short(kind)}",
              "bool, int, uint, float, unicode string or object (of str/int/float/bool)")
    try:
        ordered = all(a < b for a, b in zip(classes[:-1], classes[1:]))
    except TypeError:
        ordered = False
    if not ordered:
        _fail(where, "classes are not sorted and unique", "the sorted unique labels seen at fit")
    if multilabel and not (classes.dtype == np.int64 and
                           np.array_equal(classes, np.arange(len(classes)))):
        _fail(where, f"multi-label classes {_short(values)}", "0, 1, ..., n_labels - 1 (int64)")
    return classes


def _check_params(where, params):
    from fastfnn.model import FastFNN
    from fastfnn.validation import check_hyperparameters

    names = FastFNN._get_param_names()
    if not isinstance(params, dict):
        _fail(where, f"params is {_short(params)}", "an object of FastFNN parameters")
    if set(params) - set(names):
        _fail(where, f"params has unknown entries {sorted(set(params) - set(names))}",
              f"FastFNN parameters among {names}")
    for name, value in params.items():
        if not _json_scalar_or_list(value):
            _fail(where, f"parameter {name} is {_short(value)}", "a JSON scalar or list of them")
    for name in _BOOL_PARAMS:
        if name in params and not isinstance(params[name], bool):
            _fail(where, f"parameter {name} is {_short(params[name])}", "true or false")
    if "verbose" in params and not (isinstance(params["verbose"], bool) or
                                    (_is_int(params["verbose"]) and params["verbose"] >= 0)):
        _fail(where, f"parameter verbose is {_short(params['verbose'])}", "a bool or an int >= 0")
    if "random_state" in params and not (params["random_state"] is None or
                                         _is_int(params["random_state"])):
        _fail(where, f"parameter random_state is {_short(params['random_state'])}",
              "null or an integer")
    params = dict(params)
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    try:
        model = FastFNN(**params)
        check_hyperparameters(model)
    except (TypeError, ValueError) as exc:
        _fail(where, f"invalid parameters ({exc})", "parameters FastFNN accepts")
    return model.get_params()  # parameters a file predating them lacks take their defaults


def _check_arrays(where, spec, arrays):
    """Every entry the header promises, with its shape and dtype, and finite values."""
    if set(arrays) != set(spec["entries"]):
        _fail(where, f"arrays {sorted(arrays)}", f"{sorted(spec['entries'])}")
    for name, shape in spec["entries"].items():
        a = arrays[name]
        if a.dtype != spec["dtype"] or a.shape != shape:
            _fail(where, f"{name} is {a.dtype} of shape {a.shape}",
                  f"{spec['dtype'].name} of shape {shape}")
        if not np.isfinite(a).all():
            _fail(where, f"{name} holds NaN or infinite values", "finite weights")


def _build(spec, arrays):
    from fastfnn.model import FastFNN

    model = FastFNN(**spec["params"])
    layers = range(spec["n_layers_weights"])
    sizes = spec["architecture"]
    history = {k: list(v) for k, v in spec["history"].items()}
    model.coefs_ = [arrays[f"coef_{i}"] for i in layers]
    model.intercepts_ = [arrays[f"intercept_{i}"] for i in layers]
    optimizer = spec["optimizer"]
    if optimizer is None:
        model._opt_state, model._t = None, 0
    else:
        model._opt_state = [[arrays[f"opt_{g}_{i}"] for i in layers]
                            for g in range(optimizer["groups"])]
        model._t = optimizer["t"]
    model.classes_ = spec["classes"]
    model.n_features_in_ = sizes[0]
    model.n_layers_ = spec["n_layers"]
    model.n_outputs_ = sizes[-1]
    model.out_activation_ = "softmax" if spec["output"] == "softmax" else "logistic"
    model._output = spec["output"]
    model._multilabel = spec["multilabel"]
    model._activation = spec["activation"]
    model.history_ = history
    model.loss_curve_ = list(history["loss"])
    model.loss_ = model.loss_curve_[-1]
    model.best_loss_ = spec["best_loss"]
    model.validation_scores_ = spec["validation_scores"]
    model.best_validation_score_ = spec["best_validation_score"]
    model.n_iter_ = spec["n_iter"]
    model.t_ = spec["t"]
    return model


# ------------------------------------------------------------------------------------ checkpoints
_PROGRESS_KEYS = {"config_hash", "seed", "rng_state", "best_loss", "best_score",
                  "no_improvement", "finished", "has_best"}


def save_checkpoint(snapshot, path, state, rng, seed, config_hash, backend):
    """Write a training checkpoint atomically: ``snapshot`` (a FastFNN holding the state's weights,
    optimizer state and history) plus what resuming needs: the generator's state, the fit's seed,
    the configuration hash, the stopping rule's counters and early stopping's best weights.
    """
    best_arrays = {}
    if state.best_params is not None:
        for i, (w, b) in enumerate(zip(*state.best_params)):
            best_arrays[f"best_coef_{i}"] = backend.to_numpy(w)
            best_arrays[f"best_intercept_{i}"] = backend.to_numpy(b)
    progress = {
        "config_hash": config_hash,
        "seed": int(seed),
        "rng_state": rng.bit_generator.state,
        # JSON has no infinities: the "nothing seen yet" values are stored as null.
        "best_loss": None if math.isinf(state.best_loss) else float(state.best_loss),
        "best_score": None if math.isinf(state.best_score) else float(state.best_score),
        "no_improvement": int(state.no_improvement),
        "finished": bool(state.finished),
        "has_best": state.best_params is not None,
    }
    return save_model(snapshot, path, progress, best_arrays)


class Checkpoint:
    """A loaded checkpoint: ``model`` (fitted FastFNN), ``progress`` (dict), ``best`` arrays."""

    def __init__(self, model, progress, best):
        self.model, self.progress, self.best = model, progress, best

    def train_state(self, backend):
        """The trainer's state to continue from, on ``backend``."""
        from fastfnn.trainer import TrainState

        model, progress = self.model, self.progress
        state = TrainState(
            coefs=[backend.asarray(w) for w in model.coefs_],
            intercepts=[backend.asarray(b) for b in model.intercepts_],
            opt_state=[[backend.asarray(a) for a in group] for group in model._opt_state],
            t=model._t, history={k: list(v) for k, v in model.history_.items()},
            best_loss=math.inf if progress["best_loss"] is None else progress["best_loss"],
            best_score=-math.inf if progress["best_score"] is None else progress["best_score"],
            no_improvement=progress["no_improvement"], finished=progress["finished"])
        if self.best is not None:
            state.best_params = tuple([backend.asarray(a) for a in group] for group in self.best)
        return state


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; ValueError for anything else."""
    spec, arrays = _load(path)
    where = os.fspath(path)
    progress = spec["checkpoint"]
    if progress is None:
        _fail(where, "a model file without training progress", "a checkpoint written by fit")
    if spec["optimizer"] is None:
        _fail(where, "a checkpoint without optimizer state", "the optimizer state to resume")
    layers = range(spec["n_layers_weights"])
    best = None
    if progress["has_best"]:
        best = ([arrays[f"best_coef_{i}"] for i in layers],
                [arrays[f"best_intercept_{i}"] for i in layers])
    return Checkpoint(_build(spec, arrays), progress, best)


def _check_progress(where, progress):
    if not (isinstance(progress, dict) and set(progress) == _PROGRESS_KEYS):
        _fail(where, f"checkpoint is {_short(progress)}",
              f"an object with exactly the keys {sorted(_PROGRESS_KEYS)}")
    if not (isinstance(progress["config_hash"], str)
            and re.fullmatch(r"[0-9a-f]{64}", progress["config_hash"])):
        _fail(where, "checkpoint config_hash is malformed", "64 hexadecimal digits")
    if not (_is_int(progress["seed"]) and 0 <= progress["seed"] < 2**64):
        _fail(where, f"checkpoint seed is {_short(progress['seed'])}", "an integer in [0, 2**64)")
    rng_state = progress["rng_state"]
    inner = rng_state.get("state") if isinstance(rng_state, dict) else None
    if not (isinstance(rng_state, dict)
            and set(rng_state) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and rng_state["bit_generator"] == "PCG64" and isinstance(inner, dict)
            and set(inner) == {"state", "inc"}
            and all(_is_int(v) and 0 <= v < 2**128 for v in inner.values())
            and rng_state["has_uint32"] in (0, 1) and _is_int(rng_state["has_uint32"])
            and _is_int(rng_state["uinteger"]) and 0 <= rng_state["uinteger"] < 2**32):
        _fail(where, "checkpoint rng_state is malformed", "a PCG64 generator state")
    for key in ("best_loss", "best_score"):
        if not (progress[key] is None or _is_number(progress[key])):
            _fail(where, f"checkpoint {key} is {_short(progress[key])}", "null or a finite number")
    if not (_is_int(progress["no_improvement"]) and progress["no_improvement"] >= 0):
        _fail(where, "checkpoint no_improvement is malformed", "an integer >= 0")
    for key in ("finished", "has_best"):
        if not isinstance(progress[key], bool):
            _fail(where, f"checkpoint {key} is {_short(progress[key])}", "true or false")
