"""fastfnn.bench.workloads: the steps of an epoch, the GEMMs of a step and their FLOPs."""

import numpy as np
import pytest

from fastfnn.bench import workloads


def test_batch_sizes_cover_every_row_once():
    assert workloads.batch_sizes(10, 4) == [4, 4, 2]
    assert workloads.batch_sizes(8, 4) == [4, 4]
    assert workloads.batch_sizes(10, None) == [10]
    assert workloads.batch_sizes(3, 128) == [3]
    assert workloads.batch_sizes(5, 1) == [1] * 5


def test_step_gemms_forward_then_backward_without_first_input_grad():
    assert workloads.step_gemms((784, 128, 64, 10), 32) == [
        (32, 784, 128), (32, 128, 64), (32, 64, 10),  # forward
        (64, 32, 10), (32, 10, 64),                   # last layer: weight grad, input grad
        (128, 32, 64), (32, 64, 128),
        (784, 32, 128),                               # first layer: weight grad only
    ]
    assert workloads.step_gemms((784, 10), 1) == [(1, 784, 10), (784, 1, 10)]


def test_epoch_flops_counts_forward_once_backward_twice_except_first_layer():
    n = 1000
    f = [2 * n * 784 * 128, 2 * n * 128 * 64, 2 * n * 64 * 10]
    expected = f[0] * 2 + f[1] * 3 + f[2] * 3
    assert workloads.epoch_flops((784, 128, 64, 10), n, 128) == expected
    # Independent of the batching: the GEMMs' rows add up to n whatever the batch size.
    assert workloads.epoch_flops((784, 128, 64, 10), n, 1) == expected
    assert workloads.epoch_flops((784, 128, 64, 10), n, None) == expected
    assert workloads.epoch_flops((784, 10), 60000, 1) == 2 * 2 * 60000 * 784 * 10


def test_seed_workloads_keep_their_defaults():
    for wl in workloads.WORKLOADS + workloads.EXTRA_WORKLOADS:
        assert (wl.dtype, wl.solver, wl.inputs, wl.rows) == ("float32", "sgd", "mnist", None)


def test_matrix_keys_sizes_rows_and_hyper_parameters():
    by_key = {w.key: w for w in workloads.MATRIX}
    assert len(by_key) == len(workloads.MATRIX) == 2 * 4 * 2 * 2 + 2 * 2 * 2
    assert all(by_key[k] is workloads.WORKLOADS_BY_KEY[k] for k in by_key)
    d = by_key["dense100/b200/f64/adam"]
    assert (d.sizes, d.batch_size, d.dtype, d.solver, d.inputs, d.rows, d.lr) == (
        (100, 256, 128, 5), 200, "float64", "adam", "dense", 40000, 1e-3)
    s = by_key["dense1000/b1/f32/sgd"]
    assert (s.sizes, s.batch_size, s.rows, s.lr) == ((1000, 256, 128, 5), 1, 2000, 0.01)
    assert by_key["dense100/b1/f32/sgd"].rows == 4000 and by_key["dense1000/b1024/f64/sgd"].rows == 10000
    assert by_key["wide/b32/f64/adam"].sizes == (784, 1024, 1024, 10)
    assert by_key["deep/b200/f32/adam"].sizes == (784, 256, 256, 256, 256, 256, 256, 10)
    assert {w.rows for w in workloads.MATRIX if w.key.startswith("wide")} == {6000}
    assert {w.rows for w in workloads.MATRIX if w.key.startswith("deep")} == {10000}
    assert all(w.inputs == "mnist" and w.solver == "adam" for w in workloads.MATRIX
               if w.key.startswith(("wide", "deep")))
    # <net>/b<batch>/<f32|f64>/<sgd|adam>, readable from the fields
    for w in workloads.MATRIX:
        net, batch, dtype, solver = w.key.split("/")
        assert batch == f"b{w.batch_size}" and dtype == {"float32": "f32", "float64": "f64"}[w.dtype]
        assert solver == w.solver


def test_matrix_flops():
    d = workloads.WORKLOADS_BY_KEY["dense100/b32/f32/sgd"]
    n = d.rows
    per_row = [2 * 100 * 256, 2 * 256 * 128, 2 * 128 * 5]
    assert workloads.epoch_flops(d.sizes, n, d.batch_size) == n * (
        per_row[0] * 2 + per_row[1] * 3 + per_row[2] * 3)
    deep = workloads.WORKLOADS_BY_KEY["deep/b32/f64/adam"]
    layers = [784 * 256] + [256 * 256] * 5 + [256 * 10]
    assert workloads.epoch_flops(deep.sizes, 10000, 32) == 10000 * 2 * (
        layers[0] * 2 + 3 * sum(layers[1:]))


def test_a_workload_with_an_unknown_dtype_solver_or_inputs_is_refused():
    for field, value in (("dtype", "float16"), ("solver", "lbfgs"), ("inputs", "csv")):
        with pytest.raises(ValueError, match=f"{field} must be one of"):
            workloads.Workload("x", (4, 2), 1, 0.1, "x", **{field: value})


def test_initial_params_are_the_same_draws_in_either_dtype():
    f32 = workloads.initial_params(workloads.WORKLOADS_BY_KEY["wide/b32/f32/adam"])
    f64 = workloads.initial_params(workloads.WORKLOADS_BY_KEY["wide/b32/f64/adam"])
    assert f32[0][0].dtype == np.float32 and f64[0][0].dtype == np.float64
    np.testing.assert_array_equal(f64[0][1].astype(np.float32), f32[0][1])


def test_activation_workloads_are_the_dense_net_with_other_hidden_layers():
    by_key = {w.key: w for w in workloads.ACTIVATION_WORKLOADS}
    assert set(by_key) == {"dense100-tanh/b32/f32/adam", "dense100-tanh/b200/f32/adam",
                           "dense100-tanh/b200/f64/adam", "dense100-sigmoid/b200/f32/adam"}
    assert all(by_key[k] is workloads.WORKLOADS_BY_KEY[k] for k in by_key)
    t = by_key["dense100-tanh/b200/f64/adam"]
    assert (t.sizes, t.batch_size, t.dtype, t.solver, t.inputs, t.rows, t.activation) == (
        (100, 256, 128, 5), 200, "float64", "adam", "dense", 40000, "tanh")
    assert all(w.activation == "relu" for w in workloads.MATRIX + workloads.WORKLOADS)
    with pytest.raises(ValueError, match="activation must be one of"):
        workloads.Workload("x", (4, 2), 1, 0.1, "x", activation="logistic")
