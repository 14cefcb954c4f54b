"""The fused epoch (numba_backend.epoch) computes what the composed epoch computes: every
activation, output (regression ones too), solver, depth and batch size; sparse and dense inputs;
sample weights; parallel row chunks; bitwise reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastfnn.kernels import ACTIVATIONS

from .helpers import (DTYPES, FUSED_DENSE_ROWS, HIDDEN, N_ROWS, NB, OUTPUTS, PAR, REF,
                      REGRESSION_OUTPUTS, SOLVERS, assert_same_epoch, clone, make_job,
                      numba_backend, requires_numba, rng_for, run_both)

pytestmark = requires_numba


def _grid():
    """Every activation x output x solver, and every batch size x depth x dtype, with the other
    factors cycling through their values."""
    acts, outs, solvers = list(ACTIVATIONS), list(OUTPUTS), list(SOLVERS)
    batches, depths = [1, 7, 32, N_ROWS], list(HIDDEN)
    cases = []
    for i, (act, out, solver) in enumerate(itertools.product(acts, outs, solvers)):
        cases.append((DTYPES[i % 2], batches[i % 4], depths[(i // 2) % 4], act, out, solver))
    for i, (batch, depth, dtype) in enumerate(itertools.product(batches, depths, DTYPES)):
        cases.append((dtype, batch, depth, acts[i % 4], outs[(i // 4) % 3], solvers[(i + 1) % 4]))
    return cases


@pytest.mark.parametrize("dtype,batch,depth,act,output,solver", _grid(),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_fused_epoch_matches_composed(dtype, batch, depth, act, output, solver):
    job = make_job(dtype=dtype, batch=batch, depth=depth, act=act, output=output, solver=solver)
    assert NB._sparse_of(job.X) is not None  # the sparse first-layer path
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", REGRESSION_OUTPUTS)
@pytest.mark.parametrize("batch,solver,inputs", [(1, "sgd", "sparse"), (7, "adam", "float"),
                                                 (N_ROWS, "nesterov", "dense")])
def test_regression_outputs(dtype, output, batch, solver, inputs):
    job = make_job(dtype=dtype, batch=batch, output=output, solver=solver, inputs=inputs,
                   act="tanh", k=3)
    fused, composed = run_both(job)
    assert_same_epoch(fused, composed, dtype)
    assert fused.stats[1] == 2.0  # regression rows never count as correct


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "multilabel", "squared_error"])
@pytest.mark.parametrize("batch,solver,inputs", [(1, "sgd", "sparse"), (3, "sgd", "sparse"),
                                                 (7, "adam", "dense"), (N_ROWS, "momentum", "float"),
                                                 (N_ROWS * 3, "nesterov", "sparse")])
def test_sample_weights(dtype, output, batch, solver, inputs):
    """Weighted rows (scikit-learn's steps: gradients and decay over the step's weight sum) on
    every path: per-example and small sparse SGD steps (never lazy with weights), dense and float
    inputs, and parallel chunks (N_ROWS * 3 rows in one step)."""
    job = make_job(dtype=dtype, batch=batch, output=output, solver=solver, inputs=inputs,
                   weighted=True, alpha=1e-2, n=N_ROWS * 3 if batch > N_ROWS else N_ROWS)
    fused, composed = run_both(job, PAR if batch > N_ROWS else NB)
    assert_same_epoch(fused, composed, dtype)
    _assert_it_mattered(job, fused, sample_weight=None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "identity"])
@pytest.mark.parametrize("batch,solver,inputs", [(1, "sgd", "sparse"), (5, "nesterov", "sparse"),
                                                 (7, "adam", "dense"), (N_ROWS, "momentum", "float"),
                                                 (N_ROWS * 3, "adam", "sparse")])
def test_noise_and_schedules(dtype, act, batch, solver, inputs):
    """Dropout on hidden layers, label smoothing and a step size per step, on every path
    (per-example, sparse small steps, dense, float, parallel chunks)."""
    n = N_ROWS * 3 if batch > N_ROWS else N_ROWS
    # 40 inputs: the first layer outweighs the others, so a large sparse batch stays fused
    job = make_job(dtype=dtype, batch=batch, solver=solver, inputs=inputs, act=act, depth=2,
                   n=n, alpha=1e-3, d=40)
    job.dropout, job.noise_seed, job.label_smoothing = (0.0, 0.4, 0.2), 17, 0.1
    job.step_learning_rates = np.linspace(0.08, 0.01, -(-n // batch))
    backend = PAR if batch > N_ROWS else NB
    assert backend.fused_epoch_supported(job)
    fused, composed = run_both(job, backend)
    assert_same_epoch(fused, composed, dtype)
    _assert_it_mattered(job, fused, dropout=None)


def test_an_epoch_in_parts_draws_the_whole_epochs_noise():
    """The fused epoch in parts numbered by noise_row0 ends bitwise where the whole one does."""
    job = make_job(batch=5, inputs="dense", act="relu", depth=2, n=N_ROWS, d=20, solver="adam")
    job.dropout, job.noise_seed = (0.0, 0.4, 0.2), 8
    job.augment_shift, job.image_shape = 1, (5, 4)
    whole = clone(job)
    NB.fused_epoch(whole)
    part_job = clone(job)
    for start in range(0, N_ROWS, 10):
        part = clone(part_job)
        part.order, part.noise_row0 = job.order[start:start + 10], start
        NB.fused_epoch(part)
        part_job.coefs, part_job.intercepts, part_job.opt_state, part_job.t = \
            part.coefs, part.intercepts, part.opt_state, part.t
    for a, b in zip(whole.coefs + whole.intercepts, part_job.coefs + part_job.intercepts):
        np.testing.assert_array_equal(a, b)


def _assert_it_mattered(job, fused, **without):
    """The fused epoch of ``job`` with the fields ``without`` reset ends elsewhere than ``fused``:
    what they asked for did something."""
    plain = clone(job)
    for name, value in without.items():
        setattr(plain, name, value)
    NB.fused_epoch(plain)
    assert not np.allclose(plain.coefs[0], fused.coefs[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 7, N_ROWS])
def test_shifted_images(dtype, batch):
    """Shifted image rows (uint8, 5 x 4 pixels, made dense by the gather): the fused epoch moves
    them as the composed one does."""
    job = make_job(dtype=dtype, batch=batch, inputs="sparse", d=20, solver="adam")
    job.augment_shift, job.image_shape, job.noise_seed = 1, (5, 4), 3
    assert NB.fused_epoch_supported(job)
    assert_same_epoch(*run_both(job), dtype)


def test_what_the_fused_epoch_leaves_to_the_composed_one():
    job = make_job(act="tanh", depth=2)
    job.dropout = (0.0, 0.3, 0.0)
    assert not NB.fused_epoch_supported(job)  # tanh's derivative needs the undropped activation
    job = make_job(act="relu", depth=2)
    job.dropout = (0.2, 0.0, 0.0)
    assert not NB.fused_epoch_supported(job)  # input dropout
    job = make_job(output="multilabel")
    job.label_smoothing = 0.1
    assert not NB.fused_epoch_supported(job)
    job = make_job(d=20)
    job.augment_shift, job.image_shape = 1, (4, 4)
    assert not NB.fused_epoch_supported(job)  # 16 pixels are not 20 features


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 16])
def test_wide_hidden_layers(dtype, act, batch):
    """Hidden layers wider than 16 and than a vector: the backward pass takes their inputs 16
    at a time (two groups and a rest of 8 for 40 inputs) over rows of several vectors."""
    job = make_job(dtype=dtype, batch=batch, act=act, hidden=(40, 33), solver="momentum")
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 4, 5])
@pytest.mark.parametrize("solver,alpha", [("sgd", 0.0), ("sgd", 1e-2), ("momentum", 0.0),
                                          ("nesterov", 1e-2), ("adam", 1e-2)])
def test_sparse_first_layer_small_batches(dtype, batch, solver, alpha):
    """Sparse inputs: only nonzero inputs are visited; with SGD and batches up to
    lazy_max_rows only the touched first-layer rows are updated per step (the others catch up
    in closed form), including a shorter last step (40 rows in steps of 3)."""
    job = make_job(dtype=dtype, batch=batch, depth=2, solver=solver, alpha=alpha, d=50, n=41)
    assert NB._sparse_of(job.X) is not None
    assert (job.X == 0).mean() > 0.7
    assert_same_epoch(*run_both(job), dtype)


def test_lazy_sgd_argument():
    """fused_epoch compiles its lazy per-row code only when the caller passes lazy_sgd=True:
    plain SGD (solver 0) on sparse inputs with steps of at most lazy_max_rows rows."""
    from fastfnn.kernels.numba_backend.epoch import is_lazy_sgd

    assert is_lazy_sgd(True, 0, 4, 4) is True
    assert is_lazy_sgd(True, 0, 1, 4) is True
    assert is_lazy_sgd(True, 0, 5, 4) is None
    assert is_lazy_sgd(True, 1, 1, 4) is None  # Adam
    assert is_lazy_sgd(False, 0, 1, 4) is None  # dense inputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inputs,batch", [("float", 1), ("float", 16), ("dense", 5),
                                          ("float", 64)])
def test_dense_inputs(dtype, inputs, batch):
    job = make_job(dtype=dtype, batch=batch, depth=2, inputs=inputs, solver="momentum")
    assert NB._sparse_of(job.X) is None
    assert_same_epoch(*run_both(job), dtype)
    big = make_job(dtype=dtype, batch=NB.dense_fused_max_rows + 1, inputs=inputs, n=100)
    assert not NB.fused_epoch_supported(big)  # large dense batches: the BLAS epoch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["adam", "sgd", "nesterov"])
@pytest.mark.parametrize("inputs,depth,extras", [("float", 2, False), ("dense", 1, True),
                                                  ("float", 3, True)])
def test_per_example_steps_on_dense_inputs(dtype, solver, inputs, depth, extras):
    """One row per step on dense inputs: each layer steps from its inputs and deltas (no stored
    gradient), as the composed epoch steps; with weights, dropout and step sizes too."""
    from fastfnn.kernels.numba_backend.epoch import is_dense_rows

    assert is_dense_rows(False, 1) is True
    assert is_dense_rows(True, 1) is None and is_dense_rows(False, 2) is None
    job = make_job(dtype=dtype, batch=1, depth=depth, inputs=inputs, solver=solver, n=30,
                   weighted=extras, act="relu")
    if extras:
        job.dropout, job.noise_seed = (0.0,) + (0.3,) * depth, 5
        job.step_learning_rates = np.linspace(0.05, 0.01, 30)
    assert_same_epoch(*run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_example_adam_steps_wide_layers_in_parallel_parts(dtype):
    """A layer of at least 2 x adam_rows_min_part parameters steps its rows in parts on Numba's
    threads: the same bits as one thread's rows, and the composed epoch's values."""
    job = make_job(dtype=dtype, batch=1, depth=2, inputs="float", solver="adam", n=30,
                   weighted=True)
    job.dropout, job.noise_seed = (0.0, 0.3, 0.3), 5
    in_parts, serial, composed = clone(job), clone(job), clone(job)
    numba_backend(adam_rows_min_part=64).fused_epoch(in_parts)  # 20 x 9 and 9 x 17: 2 parts
    NB.fused_epoch(serial)
    REF.run_epoch(composed)
    for a, b in zip(in_parts.coefs + in_parts.intercepts + in_parts.opt_state[2],
                    serial.coefs + serial.intercepts + serial.opt_state[2]):
        np.testing.assert_array_equal(a, b)
    assert_same_epoch(in_parts, composed, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inputs", ["sparse", "float"])
def test_unshuffled_full_batch(dtype, inputs):
    """order None: batches are slices of X (already in the parameters' dtype, scale 1)."""
    job = make_job(dtype=dtype, batch=N_ROWS, inputs=inputs, shuffle=False, depth=2)
    if job.X.dtype != dtype:
        job.X = REF.gather(job.X, np.arange(N_ROWS), np.empty(job.X.shape, dtype), job.x_scale)
        job.x_scale = 1.0
    assert_same_epoch(*run_both(job), dtype)


def _chunky():
    """A backend whose fused steps split into parallel row chunks already at 8 rows (dense
    batches fused as by the helpers' NB)."""
    return numba_backend(fused_rows_per_chunk=8, dense_fused_max_rows=FUSED_DENSE_ROWS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,solver,inputs,d", [(N_ROWS * 3, "nesterov", "sparse", 20),
                                                   (50, "adam", "sparse", 20),
                                                   (24, "sgd", "float", 20),
                                                   # a wide sparse first layer: its gradient is
                                                   # summed by rows of W0, in column-sorted runs
                                                   # of up to 128 rows (2 runs for 150 rows)
                                                   (150, "sgd", "sparse", 200),
                                                   (60, "momentum", "sparse", 200)])
def test_parallel_chunks(dtype, batch, solver, inputs, d):
    job = make_job(dtype=dtype, batch=batch, n=max(N_ROWS * 3, 2 * batch + 7), solver=solver,
                   inputs=inputs, depth=1, d=d)
    assert_same_epoch(*run_both(job, _chunky()), dtype)


@pytest.mark.parametrize("batch,solver", [(1, "nesterov"), (7, "adam"), (N_ROWS * 3, "momentum")])
def test_fused_epoch_is_bitwise_reproducible(batch, solver):
    backend = _chunky()
    job = make_job(dtype=np.float32, batch=batch, solver=solver, n=N_ROWS * 3, depth=2)
    first, second = clone(job), clone(job)
    backend.fused_epoch(first)
    backend.fused_epoch(second)
    for a, b in zip(first.coefs + first.intercepts + [first.stats],
                    second.coefs + second.intercepts + [second.stats]):
        np.testing.assert_array_equal(a, b)


def test_fused_epoch_advances_adam_and_keeps_x():
    job = make_job(batch=7, solver="adam")
    x_before = job.X.copy()
    fused = clone(job)
    NB.fused_epoch(fused)
    assert fused.t == job.t + 6  # ceil(40 / 7) steps
    np.testing.assert_array_equal(job.X, x_before)


@pytest.mark.parametrize("batch,inputs,d", [(N_ROWS * 3, "sparse", 200), (48, "float", 20)])
def test_thread_count_does_not_change_the_result(batch, inputs, d):
    """Parallel steps split by rows, not by threads: one thread gives the same bits."""
    backend = _chunky()
    job = make_job(dtype=np.float32, batch=batch, n=N_ROWS * 3, inputs=inputs, d=d,
                   solver="momentum")
    many, one = clone(job), clone(job)
    backend.fused_epoch(many)
    with backend.thread_limit(1):
        backend.fused_epoch(one)
    for a, b in zip(many.coefs + many.intercepts + [many.stats],
                    one.coefs + one.intercepts + [one.stats]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 48])
def test_subnormals_flush_to_zero_on_every_thread(dtype, batch):
    """Inputs below the smallest normal number read as 0 in the fused epoch (fp_mode.py), in
    per-example steps and in parallel chunks and updates alike: the weights they feed, 0 before
    the epoch, stay exactly 0 (plain SGD, no decay). The reference, and the Numba epoch with
    flush_subnormals off, move them by subnormal amounts. Sparse inputs, 200 of them: a parallel
    step's update steps the first layer's rows in two parts, the second (its inputs 100-199)
    on a thread of the parallel loop, not on the caller's."""
    job = make_job(dtype=dtype, batch=batch, n=N_ROWS * 3, inputs="float", d=200, solver="sgd",
                   alpha=0.0)
    rng = rng_for("subnormals", batch)
    job.X[rng.random(job.X.shape) < 0.8] = 0
    tiny = np.finfo(dtype).tiny
    job.X[:, 150:] = tiny * rng.uniform(0.1, 0.9, (job.X.shape[0], 50)).astype(dtype)
    job.coefs[0][150:] = 0
    flushed, kept, reference = clone(job), clone(job), clone(job)
    _chunky().fused_epoch(flushed)
    numba_backend(fused_rows_per_chunk=8, dense_fused_max_rows=FUSED_DENSE_ROWS,
                  flush_subnormals=False).fused_epoch(kept)
    REF.run_epoch(reference)
    assert not flushed.coefs[0][150:].any()
    assert kept.coefs[0][150:].any() and reference.coefs[0][150:].any()
    assert_same_epoch(flushed, reference, dtype)  # the rest as before
