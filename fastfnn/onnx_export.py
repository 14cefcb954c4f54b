"""ONNX export of fitted FastFNN estimators: a standalone model (:func:`to_onnx`) and a converter
registered with skl2onnx, so that a scikit-learn Pipeline holding a FastFNN converts as a whole.

Both build the same graph from the estimator's fitted state (``fitted_state_``): the input cast (and
scaled by 1/255 for uint8 intensities, as the backends read them), one MatMul + Add + activation per
layer, and the output layer:

- classifiers: ``label`` (n,) drawn from ``classes_`` (multi-label: (n, k) 0/1 int64) and
  ``probabilities`` (n, n_classes), a plain tensor (no ZipMap), what ``predict_proba`` returns;
- regressors: ``variable``, the prediction (n,) for a model fitted on 1-D targets, else (n, k).

Needs the ``onnx`` extra (onnx; onnxruntime to run the result; skl2onnx for Pipelines).
"""

from __future__ import annotations

import numpy as np

from .io.atomic import atomic_write

#: The ONNX operator set the graph is written for (every operator used exists there unchanged).
OPSET = 17

#: The hidden activations as single ONNX operators (identity: none; sigmoid: see _activation).
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "identity": None}

_INPUT_DTYPES = ("float32", "float64", "uint8")


def to_onnx(model, path=None, *, input_dtype=None):
    """The ONNX graph of a fitted FastFNN classifier or regressor, as an ``onnx.ModelProto``.

    model: a fitted estimator (anything with ``fitted_state_``). path: when given, the model is also
    written there (atomically). input_dtype: the graph input's element type, "float32", "float64" or
    "uint8" (read as 8-bit intensities, x / 255, as ``fit`` and ``predict`` read uint8); default the
    model's own dtype. The input is (n, n_features_in_); the outputs are named in the module's
    docstring. Raises ValueError for an unfitted model, an unknown input dtype or classes that ONNX
    cannot hold; ImportError (naming the extra) without onnx.
    """
    onnx = _import_onnx()
    state = _fitted_state(model)
    input_dtype = _check_input_dtype(input_dtype, state)
    graph = _StandaloneGraph(onnx)
    x = graph.input("X", input_dtype, state.n_features_in)
    for name, (value, dtype, shape) in _emit(graph, state, x, input_dtype).items():
        graph.output(name, value, dtype, shape)
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, "fastfnn", graph.inputs, graph.outputs,
                               graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="fastfnn")
    proto.ir_version = min(proto.ir_version, 10)  # what current onnxruntime releases accept
    onnx.checker.check_model(proto)
    if path is not None:
        data = proto.SerializeToString()  # whole before the file is opened: no partial file
        with atomic_write(path) as f:
            f.write(data)
    return proto


# ----------------------------------------------------------------------------- the graph
def _emit(graph, state, x, input_dtype):
    """Add the network of ``state`` reading ``x`` (n, d) of ``input_dtype`` to ``graph``; return
    {output name: (value name, numpy dtype, shape with None for n)}."""
    dtype = state.coefs[0].dtype
    if input_dtype != dtype:
        x = graph.node("Cast", [x], to=graph.onnx_type(dtype))
    if input_dtype == np.uint8:
        # x * dtype(1/255): the rounding the backends' gather uses
        x = graph.node("Mul", [x, graph.constant(np.array(1 / 255, dtype))])
    last = len(state.coefs) - 1
    for layer, (w, b) in enumerate(zip(state.coefs, state.intercepts)):
        x = graph.node("MatMul", [x, graph.constant(np.asarray(w, dtype))])
        x = graph.node("Add", [x, graph.constant(np.asarray(b, dtype))])
        if layer < last:
            x = _activation(graph, state.activation, x, dtype)
    k = state.layer_sizes[-1]
    if state.output == "squared_error" or state.output == "poisson":
        if state.output == "poisson":
            x = graph.node("Exp", [x])
        if not state.multilabel:  # fitted on 1-D targets: predictions are 1-D too
            x = graph.node("Reshape", [x, graph.constant(np.array([-1], np.int64))])
            return {"variable": (x, dtype, [None])}
        return {"variable": (x, dtype, [None, k])}
    if state.output == "softmax":
        proba = graph.node("Softmax", [x], axis=1)
    else:
        proba = _activation(graph, "sigmoid", x, dtype)
    if state.multilabel:
        label = graph.node("Cast", [graph.node("Greater", [proba, graph.constant(
            np.array(0.5, dtype))])], to=graph.onnx_type(np.int64))
        return {"label": (label, np.int64, [None, k]), "probabilities": (proba, dtype, [None, k])}
    scores = proba
    if state.output == "sigmoid":  # one-vs-rest units normalised per row, as predict_proba does
        total = graph.node("ReduceSum", [proba, graph.constant(np.array([1], np.int64))],
                           keepdims=1)
        total = graph.node("Max", [total, graph.constant(np.array(np.finfo(dtype).tiny, dtype))])
        proba = graph.node("Div", [proba, total])
    index = graph.node("ArgMax", [scores], axis=1, keepdims=0)
    classes = _classes_tensor(state.classes)
    label = graph.node("Gather", [graph.constant(classes), index], axis=0)
    return {"label": (label, classes.dtype, [None]), "probabilities": (proba, dtype, [None, k])}


def _activation(graph, name, x, dtype):
    """``name``(x) as ONNX nodes. The logistic function is 1 / (1 + exp(-x)) written out:
    onnxruntime's Sigmoid kernel is an approximation about 3e-6 off in float32 (exp(-x) may overflow
    to inf for x very negative, giving exactly 0, as it should)."""
    if name == "sigmoid":
        one = graph.constant(np.array(1, dtype))
        return graph.node("Div", [one, graph.node("Add", [one, graph.node("Exp", [
            graph.node("Neg", [x])])])])
    op = _ACTIVATION_OPS[name]
    return x if op is None else graph.node(op, [x])


def _classes_tensor(classes):
    """``classes_`` as an array ONNX can hold: int64 (uint64 when a label is past int64's range),
    float, bool or str. Integers held in an object array (e.g. a pandas object column) count as
    integers."""
    classes = np.asarray(classes)
    if classes.dtype == object and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
            for c in classes):
        classes = _integer_labels([int(c) for c in classes])
    if classes.dtype.kind in "iu":
        return _integer_labels(classes)
    if classes.dtype.kind in "fb":
        return classes
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        return classes.astype(object)
    raise ValueError(f"classes_ of dtype {classes.dtype} cannot be an ONNX tensor; expected "
                     "integers, floats, booleans or strings")


def _integer_labels(labels):
    """Integer labels as int64 where they all fit, else uint64 (never wrapped: a uint64 label
    of 2**63 or more would turn negative in int64); ValueError when neither holds them all."""
    lowest, highest = (int(min(labels)), int(max(labels))) if len(labels) else (0, 0)
    for dtype in (np.int64, np.uint64):
        limits = np.iinfo(dtype)
        if limits.min <= lowest and highest <= limits.max:
            return np.asarray(labels).astype(dtype)
    raise ValueError(f"classes_ holds integers from {lowest} to {highest}, which no ONNX integer "
                     "tensor holds; expected labels within int64 or within uint64")


class _StandaloneGraph:
    """Nodes, initializers, inputs and outputs of a graph built with onnx.helper."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def _name(self, base):
        self._count += 1
        return f"{base}_{self._count}"

    def onnx_type(self, dtype):
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def input(self, name, dtype, n_features):
        self.inputs.append(self.onnx.helper.make_tensor_value_info(
            name, self.onnx_type(dtype), [None, n_features]))
        return name

    def output(self, name, value, dtype, shape):
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        elem = self.onnx.TensorProto.STRING if np.dtype(dtype) == object else self.onnx_type(dtype)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))

    def constant(self, array):
        name = self._name("c")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type, inputs, **attrs):
        out = self._name(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out


# ----------------------------------------------------------------------------- skl2onnx
class _ConverterGraph:
    """The same graph interface on skl2onnx's scope and container (a converter's arguments)."""

    def __init__(self, scope, container):
        import onnx

        self.onnx, self.scope, self.container = onnx, scope, container

    def onnx_type(self, dtype):
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def constant(self, array):
        array = np.asarray(array)
        name = self.scope.get_unique_variable_name("c")
        tensor = self.onnx.numpy_helper.from_array(array, name)
        self.container.initializers.append(tensor)
        return name

    def node(self, op_type, inputs, **attrs):
        out = self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(op_type, inputs, [out],
                                name=self.scope.get_unique_operator_name(op_type), **attrs)
        return out


def _skl2onnx_shape(operator):
    """skl2onnx shape calculator: the outputs' types and shapes (see the module docstring)."""
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType, Int64TensorType,
                                            StringTensorType, UInt64TensorType)

    state = _fitted_state(operator.raw_operator)
    n = operator.inputs[0].get_first_dimension()
    k = state.layer_sizes[-1]
    floats = DoubleTensorType if state.coefs[0].dtype == np.float64 else FloatTensorType
    if state.classes is None:
        operator.outputs[0].type = floats([n, k] if state.multilabel else [n])
        return
    if state.multilabel:
        label = Int64TensorType([n, k])
    else:
        kind = _classes_tensor(state.classes).dtype
        label = {np.dtype(object): StringTensorType, np.dtype(np.int64): Int64TensorType,
                 np.dtype(np.uint64): UInt64TensorType}.get(kind, floats)([n])
    operator.outputs[0].type = label
    operator.outputs[1].type = floats([n, k])


def _skl2onnx_convert(scope, operator, container):
    """skl2onnx converter: the graph of :func:`_emit` between the operator's input and outputs."""
    state = _fitted_state(operator.raw_operator)
    graph = _ConverterGraph(scope, container)
    source = operator.inputs[0]
    input_dtype = _input_dtype_of(source.type)
    values = _emit(graph, state, source.full_name, input_dtype)
    for variable, (value, _dtype, _shape) in zip(operator.outputs, values.values()):
        container.add_node("Identity", [value], [variable.full_name],
                           name=scope.get_unique_operator_name("Identity"))


def _input_dtype_of(tensor_type):
    """The numpy dtype of a skl2onnx input type (float, double or uint8 tensors)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, UInt8TensorType

    for cls, dtype in ((FloatTensorType, np.float32), (DoubleTensorType, np.float64),
                       (UInt8TensorType, np.uint8)):
        if isinstance(tensor_type, cls):
            return np.dtype(dtype)
    raise ValueError(f"FastFNN's ONNX converter takes float, double or uint8 inputs, not "
                     f"{type(tensor_type).__name__}")


def _skl2onnx_parser(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: one operator with the outputs of :func:`_emit` (a classifier's label and
    probabilities, no ZipMap; a regressor's prediction)."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    operator = scope.declare_local_operator(_alias(type(model)), model)
    operator.inputs = inputs
    names = ("variable",) if _fitted_state(model).classes is None else ("label", "probabilities")
    for name in names:
        kind = Int64TensorType() if name == "label" else FloatTensorType()
        operator.outputs.append(scope.declare_local_variable(name, kind))
    return list(operator.outputs)


def _alias(cls):
    return f"FastFNN_{cls.__module__}.{cls.__name__}"


def register_skl2onnx(*estimator_classes):
    """Register the converter with skl2onnx for ``estimator_classes`` (default: FastFNN and
    FastFNNRegressor), so ``skl2onnx.to_onnx(pipeline, X[:1])`` converts Pipelines
    holding them. A classifier's outputs are ``label`` and ``probabilities`` as plain tensors (no
    ZipMap). Returns the classes registered. ImportError (naming the extra) without skl2onnx."""
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:
        raise ImportError("registering FastFNN with skl2onnx needs it: pip install "
                          "'fastfnn[onnx]'") from exc
    if not estimator_classes:
        from fastfnn.model import FastFNN, FastFNNRegressor

        estimator_classes = (FastFNN, FastFNNRegressor)
    for cls in estimator_classes:
        update_registered_converter(cls, _alias(cls), _skl2onnx_shape, _skl2onnx_convert,
                                    parser=_skl2onnx_parser)
    return estimator_classes


# ----------------------------------------------------------------------------- helpers
def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: pip install 'fastfnn[onnx]'") \
            from exc
    return onnx


def _fitted_state(model):
    """model.fitted_state_, with the estimator's own NotFittedError when it has none."""
    return model.fitted_state_


def _check_input_dtype(input_dtype, state):
    if input_dtype is None:
        return np.dtype(state.coefs[0].dtype)
    name = np.dtype(input_dtype).name if not isinstance(input_dtype, str) else input_dtype
    if name not in _INPUT_DTYPES:
        raise ValueError(f"input_dtype {input_dtype!r} is not supported; expected one of "
                         f"{list(_INPUT_DTYPES)}")
    return np.dtype(name)
