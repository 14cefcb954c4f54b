"""The BLAS epoch (numba_backend.blas_epoch) computes what the composed epoch computes: every
activation, output, solver and depth; float and uint8 dense inputs; sample weights, label
smoothing and step sizes per step; short last steps and unshuffled epochs; bitwise reproducible.
And the backend sends it the jobs it should (epoch_path)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastfnn.kernels import ACTIVATIONS
from fastfnn.kernels.composed import composed_epoch
from fastfnn.kernels.numba_backend.blas_epoch import MIN_CHUNK_ROWS
from fastfnn.kernels.numba_backend.vectors import registers_hold_vectors

from .helpers import (DTYPES, HIDDEN, N_ROWS, NB, OUTPUTS, REF, REGRESSION_OUTPUTS, SOLVERS,
                      assert_same_epoch, clone, make_job, numba_backend, requires_numba,
                      skip_without_mkl)

pytestmark = requires_numba

#: A Numba backend that runs every batch of more than 4 rows by the BLAS epoch (sparse inputs too
#: when the later layers outweigh the first), so that small jobs reach it.
BL = (numba_backend(dense_fused_max_rows=4, sparse_blas_min_work=0,
                    sparse_blas_one_chunk_min_share=None) if NB is not None else None)


#: Where a test's GEMMs come from: MKL's gemm (where its wheel is installed), the loaded BLAS's
#: (NumPy's), numba's np.dot.
GEMM_SOURCES = ["mkl", "loaded", "np.dot"]


def _gemm_knobs(source):
    """The backend knobs for GEMMs from ``source`` (see GEMM_SOURCES); skips MKL where its wheel
    is missing."""
    if source == "mkl":
        skip_without_mkl()
    return {"cblas": False} if source == "np.dot" else {"gemm_library": source}


def _run_both(job):
    """(blas, composed): ``job`` by the BLAS epoch and by the composed epoch on NumPy."""
    assert BL.epoch_path(job) == "blas"
    blas, composed = clone(job), clone(job)
    assert BL.run_epoch(blas) == "blas"
    composed_epoch(REF, composed)
    return blas, composed


def _grid():
    """Every activation x output x solver, with dtype, depth, batch and inputs cycling."""
    cases = []
    outputs = list(OUTPUTS) + list(REGRESSION_OUTPUTS)
    for i, (act, out, solver) in enumerate(itertools.product(ACTIVATIONS, outputs, SOLVERS)):
        cases.append((DTYPES[i % 2], [7, 16, N_ROWS][i % 3], list(HIDDEN)[i % 4], act, out,
                      solver, ["float", "dense"][(i // 2) % 2]))
    return cases


@pytest.mark.parametrize("dtype,batch,depth,act,output,solver,inputs", _grid(),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_blas_epoch_matches_composed(dtype, batch, depth, act, output, solver, inputs):
    job = make_job(dtype=dtype, batch=batch, depth=depth, act=act, output=output, solver=solver,
                   inputs=inputs, k=3 if output in REGRESSION_OUTPUTS else 4)
    assert_same_epoch(*_run_both(job), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunks", [1, 2])
def test_np_dot_where_numpy_has_no_cblas_gemm(dtype, chunks):
    """Without a CBLAS gemm (cblas False, as where no 64-bit CBLAS gemm is found) the GEMMs
    go through numba's np.dot: the same epoch as the composed one, in one chunk and in two, with
    a first layer wider than the step (its gradient formed by parts: np.dot on a copy of a range
    of the input's columns) and later layers formed by chunks."""
    job = make_job(dtype=dtype, batch=64, depth=2, inputs="float", solver="adam", n=150, d=100)
    backend = numba_backend(cblas=False, blas_chunks=chunks)
    run, composed = clone(job), clone(job)
    assert backend.run_epoch(run) == "blas"
    composed_epoch(REF, composed)
    assert_same_epoch(run, composed, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "multilabel", "poisson"])
def test_weights_smoothing_and_step_sizes(dtype, output):
    """Sample weights (scikit-learn's steps), label smoothing (softmax) and a step size per step."""
    job = make_job(dtype=dtype, batch=9, depth=2, output=output, solver="adam", inputs="float",
                   weighted=True, alpha=1e-2)
    job.step_learning_rates = np.linspace(0.08, 0.01, -(-N_ROWS // 9))
    if output == "softmax":
        job.label_smoothing = 0.1
    blas, composed = _run_both(job)
    assert_same_epoch(blas, composed, dtype)
    plain = clone(job)
    plain.sample_weight = None
    BL.run_epoch(plain)
    assert not np.allclose(plain.coefs[0], blas.coefs[0])  # the weights did something


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "identity"])
@pytest.mark.parametrize("batch", [9, 100])
def test_dropout_and_shifts(dtype, act, batch):
    """Dropout of hidden layers and shifted images (uint8, 5 x 4 pixels): the composed epoch's
    noise, position by position, serial and in parallel chunks."""
    job = make_job(dtype=dtype, batch=batch, depth=2, inputs="sparse", d=20, act=act,
                   solver="adam", n=230, alpha=1e-3)
    job.dropout, job.noise_seed, job.noise_row0 = (0.0, 0.4, 0.2), 17, 3
    job.augment_shift, job.image_shape = 1, (5, 4)
    chunked = numba_backend(blas_chunks=3, dense_fused_max_rows=4)
    assert chunked.epoch_path(job) == "blas"
    blas, composed = clone(job), clone(job)
    chunked.run_epoch(blas)
    composed_epoch(REF, composed)
    assert_same_epoch(blas, composed, dtype)
    plain = clone(job)
    plain.dropout = None
    chunked.run_epoch(plain)
    assert not np.allclose(plain.coefs[0], blas.coefs[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_unshuffled_epoch_with_a_short_last_step(dtype):
    """order None (batches are slices of X), 40 rows in steps of 12: the last step has 4."""
    job = make_job(dtype=dtype, batch=12, depth=2, inputs="float", solver="momentum",
                   shuffle=False)
    assert_same_epoch(*_run_both(job), dtype)


@pytest.mark.parametrize("n", [192 + MIN_CHUNK_ROWS, 192 + 2 * MIN_CHUNK_ROWS - 1])
def test_a_short_last_step_in_fewer_chunks(n):
    """Steps of 64 rows in 2 chunks of 32, the last one (too few rows for 2 chunks of
    MIN_CHUNK_ROWS) in one: its rows fit the buffers (they were once sized for 32 and
    overflowed)."""
    job = make_job(dtype=np.float32, batch=64, depth=2, inputs="float", solver="adam", n=n)
    chunked = numba_backend(blas_chunks=2)
    blas, composed = clone(job), clone(job)
    assert chunked.run_epoch(blas) == "blas"
    composed_epoch(REF, composed)
    assert_same_epoch(blas, composed, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver,output", [("adam", "softmax"), ("nesterov", "multilabel"),
                                           ("sgd", "squared_error")])
@pytest.mark.parametrize("d,hidden", [(20, (9, 17)), (150, (121, 9))], ids=["by-chunks", "mixed"])
def test_parallel_row_chunks(dtype, solver, output, d, hidden):
    """Steps of 100 rows in 3 chunks (the last step, 30 rows, in one), then the parameters in 3
    parts: weight gradients of layers with at most 100 inputs summed over the chunks, those of
    wider layers (150 and 121 inputs, "mixed") formed by each part over all the step's rows; the
    same epoch as the composed one, and bitwise the same whatever the thread count (the split is
    blas_chunks')."""
    job = make_job(dtype=dtype, batch=100, depth=2, inputs="float", solver=solver, n=230,
                   output=output, k=3 if output == "squared_error" else 4, weighted=True, d=d,
                   hidden=hidden)
    chunked = numba_backend(blas_chunks=3)
    _assert_chunked_epoch(chunked, job, dtype, lambda run: chunked.run_epoch(run) == "blas")


def _assert_chunked_epoch(backend, job, dtype, run_blas):
    """``run_blas(run)`` (true when ``backend``'s BLAS epoch ran) on a clone of ``job`` with one
    thread and with two: the same epoch as the composed one, and bitwise alike at both thread
    counts."""
    runs = []
    for threads in (1, 2):
        run = clone(job)
        with backend.thread_limit(threads):
            assert run_blas(run)
        runs.append(run)
    composed = clone(job)
    composed_epoch(REF, composed)
    assert_same_epoch(runs[0], composed, dtype)
    for a, b in zip(runs[0].coefs + runs[0].opt_state[1], runs[1].coefs + runs[1].opt_state[1]):
        np.testing.assert_array_equal(a, b)


def _blas_epoch_args(monkeypatch, backend, job):
    """Run ``job`` by ``backend``'s BLAS epoch; return the arguments blas_epoch was called with
    (whole_rows the tenth, first_by_parts the last)."""
    from fastfnn.kernels.numba_backend import backend as backend_module
    seen = []
    real = backend_module.blas_epoch

    def spy(*args):
        seen.append(args)
        return real(*args)

    monkeypatch.setattr(backend_module, "blas_epoch", spy)
    assert backend.run_epoch(job) == "blas"
    monkeypatch.undo()
    return seen[0]


def _first_by_parts(monkeypatch, backend, job):
    """Run ``job`` by ``backend``'s BLAS epoch; return whether the parts formed the first
    layer's products."""
    return _blas_epoch_args(monkeypatch, backend, job)[-1]


def _whole_rows(monkeypatch, backend, job):
    """Run ``job`` by ``backend``'s BLAS epoch; return whether its steps ran whole."""
    return _blas_epoch_args(monkeypatch, backend, job)[9]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("source", GEMM_SOURCES)
def test_first_layer_formed_by_parts(monkeypatch, dtype, solver, source):
    """Parts forming the first layer's product (any chunk and part size allowed here): steps of
    48 rows in 3 chunks, a short last step of 14 in one, sample weights and dropout of a hidden
    layer; the same epoch as the composed one, and bitwise the same whatever the thread count;
    by MKL's gemm, the loaded BLAS's and np.dot."""
    gemm = _gemm_knobs(source)
    job = make_job(dtype=dtype, batch=48, depth=2, inputs="dense", solver=solver, n=158,
                   weighted=True, d=31, hidden=(23, 9))
    job.dropout, job.noise_seed = (0.0, 0.3, 0.0), 5
    chunked = numba_backend(blas_chunks=3, **gemm, first_parts_max_chunk_rows=64,
                            first_parts_min_inputs=1)
    _assert_chunked_epoch(chunked, job, dtype,
                          lambda run: _first_by_parts(monkeypatch, chunked, run))


def test_when_the_parts_form_the_first_layer(monkeypatch):
    """By default: where a chunk has at most 32 rows and a part at least 384 inputs, unless the
    rows are shifted images (gathered whole) or a step runs in one chunk."""
    backend = numba_backend(blas_chunks=2)

    def uses_parts(batch, d, shift=False, chunks=2):
        job = make_job(batch=batch, n=2 * batch, inputs="float", d=d, solver="sgd")
        if shift:
            job.augment_shift, job.image_shape = 1, (d // 32, 32)
        backend.blas_chunks = chunks
        return _first_by_parts(monkeypatch, backend, job)

    assert uses_parts(32, 1000) and uses_parts(64, 768)
    assert not uses_parts(200, 1000)  # 100 rows a chunk
    assert not uses_parts(32, 700)  # 350 inputs a part
    assert not uses_parts(32, 1024, shift=True)
    assert not uses_parts(32, 1000, chunks=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("source", GEMM_SOURCES)
def test_steps_run_whole(monkeypatch, dtype, solver, source):
    """Steps run whole (blas_whole_rows): steps of 40 rows in one chunk, GEMMs on BLAS's
    threads, the optimizer step in 3 parts; the first two layers' weight gradients formed in one
    GEMM (60 and 50 inputs; plain SGD steps them in it), the last's by the chunk (9 inputs); a
    short last step of 18 rows, sample weights and dropout of a hidden layer. The same epoch as
    the composed one, and bitwise the same run again; by MKL's gemm, the loaded BLAS's and
    np.dot."""
    gemm = _gemm_knobs(source)
    job = make_job(dtype=dtype, batch=40, depth=2, inputs="dense", solver=solver, n=138,
                   weighted=True, d=60, hidden=(50, 9))
    job.dropout, job.noise_seed = (0.0, 0.3, 0.0), 5
    whole = numba_backend(blas_chunks=3, blas_whole_rows=True, **gemm)
    _assert_whole_epoch(whole, job, dtype, lambda run: _whole_rows(monkeypatch, whole, run))


def _assert_whole_epoch(backend, job, dtype, run_whole):
    """``run_whole(run)`` (true when ``backend``'s BLAS epoch ran its steps whole) on two clones
    of ``job``: the same epoch as the composed one, and bitwise alike (BLAS's threaded GEMMs
    need not give the same bits at another thread count)."""
    runs = [clone(job), clone(job)]
    assert all(run_whole(run) for run in runs)
    composed = clone(job)
    composed_epoch(REF, composed)
    assert_same_epoch(runs[0], composed, dtype)
    for a, b in zip(runs[0].coefs + runs[0].intercepts + runs[0].opt_state[1],
                    runs[1].coefs + runs[1].intercepts + runs[1].opt_state[1]):
        np.testing.assert_array_equal(a, b)


def test_when_steps_run_whole(monkeypatch):
    """By default steps that would split run whole with MKL's gemm on nets of at least 400
    multiply-adds a row per value a row gathers or activates (784-1024-1024-10: 655), not on
    others (1000-256-128-5: 208), nor with the loaded BLAS, nor where they would not split;
    blas_whole_rows forces it either way."""
    skip_without_mkl()

    def whole(hidden, d, k, gemm_library="mkl", **knobs):
        backend = numba_backend(**{"blas_chunks": 2, "gemm_library": gemm_library, **knobs})
        job = make_job(batch=16, n=32, inputs="dense", d=d, hidden=hidden, k=k, solver="adam")
        return _whole_rows(monkeypatch, backend, job)

    assert whole((1024, 1024), 784, 10)
    assert not whole((256, 128), 1000, 5)
    assert not whole((1024, 1024), 784, 10, gemm_library="loaded")
    assert not whole((1024, 1024), 784, 10, blas_chunks=1)
    assert not whole((1024, 1024), 784, 10, blas_whole_rows=False)
    assert whole((256, 128), 1000, 5, gemm_library="loaded", blas_whole_rows=True)


#: Input columns zeroed in every row (of 60): a leading run, a run, every fourth, the last; the
#: 13 others in 5 runs. 47 skipped columns of 96 units save 347 multiply-adds a copied value:
#: enough for COMPACT_MACS_PER_COPY in float32 and float64.
ZERO_COLUMNS = np.r_[0:30, 32:44, 46:59:4, 59]
#: Backend knobs of the ways a first layer wider than a step forms its weight gradient by parts:
#: steps run whole (one GEMM), in 3 chunks (a GEMM a part), and in 3 chunks with the parts also
#: forming the next step's first-layer product (which overwrites the gathered rows they read).
PARTS_MODES = {"whole": dict(blas_whole_rows=True),
               "chunks": dict(blas_whole_rows=False),
               "first-by-parts": dict(blas_whole_rows=False, first_parts_max_chunk_rows=64,
                                      first_parts_min_inputs=1)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("mode", list(PARTS_MODES))
def test_zero_input_columns_skipped(monkeypatch, dtype, solver, mode):
    """A first layer formed by parts skips the input columns that are zero in every row of a
    step (ZERO_COLUMNS), its gradient rows of the others compacted: the same epoch as the
    composed one, the zero columns' weights still stepped (momentum, Adam, weight decay),
    bitwise reproducible; steps of 40 rows, 60 inputs, 96 units (kept on the dense path)."""
    job = make_job(dtype=dtype, batch=40, depth=2, inputs="dense", solver=solver, n=138,
                   d=60, hidden=(96, 9), alpha=1e-2)
    job.X[:, ZERO_COLUMNS] = 0
    job.X[:, 30:32] = 7  # not zero in any row
    backend = numba_backend(blas_chunks=3, sparse_max_density=0.0, **PARTS_MODES[mode])
    check = _assert_whole_epoch if mode == "whole" else _assert_chunked_epoch
    whole = mode == "whole"
    check(backend, job, dtype, lambda run: _whole_rows(monkeypatch, backend, run) == whole)
    if solver != "sgd":
        stepped = clone(job)
        backend.run_epoch(stepped)
        assert not np.allclose(stepped.coefs[0][ZERO_COLUMNS], job.coefs[0][ZERO_COLUMNS])


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_columns_compacted_where_it_pays(dtype):
    """_nonzero_inputs on columns 10..50 of 8 rows, 14 of them zero in every row: with 400
    outputs (215 multiply-adds saved a copied value: enough in float64, not in float32) the
    other 26 columns copied in order, each weight row mapped to its gradient row (-1 for a zero
    column); with 20 outputs, or in float32, the range itself, rows mapped to themselves."""
    from numba import njit

    from fastfnn.kernels.numba_backend import blas_epoch

    @njit
    def nonzero_inputs(work, x, r0, r1, n_out):
        a, k = blas_epoch._nonzero_inputs(work, x, r0, r1, n_out)
        return np.ascontiguousarray(a), k

    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 60)).astype(dtype)
    zero = np.r_[10:15, 20:40:3, 49]
    x[:, zero] = 0
    x[:, 41] = -0.0  # zero too
    x[1:, 42] = 0  # not zero in row 0
    zero = np.r_[zero, 41]
    kept = np.setdiff1d(np.arange(10, 50), zero)
    for n_out in (400, 20):
        work = blas_epoch.BlasWork(*(np.empty(1, dtype),) * 5, np.empty((0, 1), dtype),
                                   np.empty(8 * 60, dtype), np.full((2, 60), 99),
                                   np.zeros(1, dtype))
        a, k = nonzero_inputs(work, x, 10, 50, n_out)
        rows = work.first_rows[0, 10:50]
        if n_out == 400 and dtype == np.float64:
            assert k == len(kept) == 26
            np.testing.assert_array_equal(a, x[:, kept])
            assert list(rows[kept - 10]) == list(range(10, 36))
            assert (rows[zero - 10] == -1).all()
        else:
            assert k == 40
            np.testing.assert_array_equal(a, x[:, 10:50])
            assert list(rows) == list(range(10, 50))
        assert (work.first_rows[0, :10] == 99).all() and (work.first_rows[0, 50:] == 99).all()


@pytest.mark.parametrize("source", GEMM_SOURCES)
def test_zero_input_columns_skipped_by_any_gemm(monkeypatch, source):
    """As test_zero_input_columns_skipped, steps run whole, float64 Adam, by MKL's gemm, the
    loaded BLAS's and np.dot."""
    job = make_job(batch=40, depth=2, inputs="dense", solver="adam", n=138, d=60,
                   hidden=(96, 9))
    job.X[:, ZERO_COLUMNS] = 0
    backend = numba_backend(blas_chunks=3, blas_whole_rows=True, sparse_max_density=0.0,
                            **_gemm_knobs(source))
    _assert_whole_epoch(backend, job, np.float64,
                        lambda run: _whole_rows(monkeypatch, backend, run))


def test_bitwise_reproducible_and_in_place():
    """Two runs end bit for bit alike, in the caller's arrays (no copies left behind)."""
    job = make_job(dtype=np.float32, batch=8, depth=3, inputs="float", solver="adam")
    first, second = clone(job), clone(job)
    arrays = [id(a) for a in first.coefs + first.intercepts]
    BL.blas_epoch(first)
    BL.blas_epoch(second)
    assert [id(a) for a in first.coefs + first.intercepts] == arrays
    for a, b in zip(first.coefs + first.intercepts + first.opt_state[3],
                    second.coefs + second.intercepts + second.opt_state[3]):
        np.testing.assert_array_equal(a, b)
    assert first.t == second.t == job.t + 5
    assert not np.array_equal(first.coefs[0], job.coefs[0])


def test_epoch_path():
    """Dense batches above dense_fused_max_rows rows: BLAS; smaller ones: fused; sparse inputs:
    fused unless the later layers hold enough of the weights and get enough work per step (less
    of both where the fused epoch would run a step in one chunk, with AVX-512), or shifts make
    them dense; input dropout: composed."""
    NB = numba_backend()  # the default routing (the helpers' NB is set for the fused tests)
    big = NB.dense_fused_max_rows + 1
    assert NB.epoch_path(make_job(batch=big, n=2 * big, inputs="float")) == "blas"
    assert NB.epoch_path(make_job(batch=big, n=2 * big, inputs="dense")) == "blas"
    assert NB.epoch_path(make_job(batch=NB.dense_fused_max_rows, n=2 * big,
                                  inputs="float")) == "fused"
    # sparse inputs: fused while the first layer holds most weights (20 x 9 here, 9 x 4 after)
    assert NB.epoch_path(make_job(batch=big, n=2 * big, inputs="sparse")) == "fused"
    deep = make_job(batch=big, n=2 * big, inputs="sparse", hidden=(8, 64))  # 160; 512 + 256
    assert NB.epoch_path(deep) == "fused"  # too little work per step for BLAS to gain
    busy = numba_backend(sparse_blas_min_work=big * 768, sparse_blas_one_chunk_min_work=big * 768)
    assert busy.epoch_path(deep) == "blas"
    # six hidden 256s at 32 rows (10.5M multiply-adds a step after the first layer): the fused
    # epoch's 64-byte vectors win with AVX-512 registers, BLAS without them
    six = make_job(batch=32, n=64, inputs="sparse", d=784, hidden=(256,) * 6)
    assert NB.epoch_path(six) == ("fused" if registers_hold_vectors() else "blas")
    wider = make_job(batch=32, n=64, inputs="sparse", d=784, hidden=(512,) * 3)  # 17M: BLAS
    assert NB.epoch_path(wider) == "blas"
    # steps the fused epoch runs in one chunk (fewer than 32 rows): with AVX-512, BLAS where
    # the later layers hold a twentieth of the first's weights and get 40K multiply-adds
    avx512 = registers_hold_vectors()
    three = make_job(batch=8, n=16, inputs="sparse", d=784, hidden=(512,) * 3)  # 4.2M
    assert NB.epoch_path(three) == ("blas" if avx512 else "fused")
    small = make_job(batch=16, n=64, inputs="sparse", d=784, hidden=(128, 64))  # 0.084, 135K
    assert NB.epoch_path(small) == ("blas" if avx512 else "fused")
    assert NB.epoch_path(make_job(batch=32, n=64, inputs="sparse", d=784,
                                  hidden=(128, 64))) == "fused"  # the fused epoch splits it
    sliver = make_job(batch=24, n=48, inputs="sparse", d=784, hidden=(128,))  # 0.005 of W0
    assert NB.epoch_path(sliver) == "fused"
    # later layers of a third of the first's weights: BLAS without AVX-512; of a sixth: fused
    third = make_job(batch=200, n=400, inputs="sparse", d=784, hidden=(512, 256))
    assert NB.epoch_path(third) == ("fused" if registers_hold_vectors() else "blas")
    sixth = make_job(batch=200, n=400, inputs="sparse", d=784, hidden=(256, 128))
    assert NB.epoch_path(sixth) == "fused"
    assert_same_epoch(*_run_both(deep), np.float64)
    dropped = make_job(batch=big, n=2 * big, inputs="float", depth=2)
    dropped.dropout = (0.3, 0.0, 0.0)  # input dropout: no compiled epoch has it
    assert NB.epoch_path(dropped) == "composed"
    shifted = make_job(batch=big, n=2 * big, inputs="sparse", d=20)
    shifted.augment_shift, shifted.image_shape = 1, (5, 4)  # shifted rows are dense
    assert NB.epoch_path(shifted) == "blas"
    tanh = make_job(batch=big, n=2 * big, inputs="float", act="tanh")
    assert NB.epoch_path(tanh) == "blas"


@pytest.mark.parametrize("solver, batch, d, split, by_parts", [
    ("adam", 8, 20, True, False),  # Adam's update shared out by the parts
    ("sgd", 8, 20, False, False),  # nothing to share out: one chunk, BLAS threaded
    ("momentum", 16, 20, False, False),
    ("sgd", 8, 800, True, True),  # the parts form the first layer's product (400 inputs each)
    ("sgd", 32, 20, True, False),  # steps of blas_small_step_rows rows and more always split
    ("adam", 2 * MIN_CHUNK_ROWS - 1, 20, False, False),  # too few rows for two chunks
    ("adam", 4, 800, True, True),  # wide Adam: chunks of wide_adam_chunk_rows, BLAS not fused
    ("adam", 3, 800, False, False),  # too few rows for two such chunks: fused
    ("adam", 7, 800, True, True),  # chunks of wide_adam_chunk_rows, not one chunk
    ("adam", 2 * MIN_CHUNK_ROWS, 800, True, True),  # enough rows for chunks of MIN_CHUNK_ROWS
    ("sgd", 4, 800, False, False)])  # not Adam: fused
def test_which_steps_split(monkeypatch, solver, batch, d, split, by_parts):
    """On 2 threads, steps of fewer than 32 rows split into row chunks only where the parts have
    work of their own (blas_chunks); with blas_chunks set, as it says. Adam steps of fewer than
    2 x MIN_CHUNK_ROWS rows whose parts form the first layer's product split into chunks of
    wide_adam_chunk_rows rows, and take the BLAS epoch, not the fused one, from two such chunks
    on."""
    from fastfnn.kernels.numba_backend import backend as backend_module
    monkeypatch.setattr(backend_module.numba, "get_num_threads", lambda: 2)
    backend = numba_backend()
    job = make_job(batch=batch, n=4 * batch, inputs="float", solver=solver, d=d)
    chunks, chunk_rows, did_split, first_by_parts = backend.blas_split(job)
    assert (did_split, first_by_parts) == (split, by_parts)
    wide_adam = solver == "adam" and d == 800 and batch < 2 * MIN_CHUNK_ROWS
    assert chunk_rows == (backend.wide_adam_chunk_rows if wide_adam else MIN_CHUNK_ROWS)
    assert chunks == (1 if not split and batch >= 2 * chunk_rows else 2)
    forced = numba_backend(blas_chunks=2)
    assert forced.blas_split(job)[::2] == (2, batch >= 2 * chunk_rows)
    epoch, composed = clone(job), clone(job)
    fused = batch <= backend.dense_fused_max_rows and not split
    assert backend.run_epoch(epoch) == ("fused" if fused else "blas")
    composed_epoch(REF, composed)
    assert_same_epoch(epoch, composed, job.coefs[0].dtype)


def test_wide_adam_on_sparse_inputs_stays_fused(monkeypatch):
    """The fused epoch visits only a sparse first layer's nonzeros: sparse Adam steps of few
    rows stay fused however wide the first layer (wide_adam_chunk_rows is for dense inputs)."""
    from fastfnn.kernels.numba_backend import backend as backend_module
    monkeypatch.setattr(backend_module.numba, "get_num_threads", lambda: 2)
    backend = numba_backend()
    sparse = make_job(batch=4, n=16, inputs="sparse", solver="adam", d=800)
    assert backend.epoch_path(sparse) == "fused"
    dense = make_job(batch=4, n=16, inputs="float", solver="adam", d=800)
    assert backend.epoch_path(dense) == "blas"


@pytest.mark.parametrize("chunks, batch, whole, one_thread", [
    (2, 64, False, True),  # row chunks
    (1, 64, False, False),  # one chunk allowed, of many rows
    (2, 2 * MIN_CHUNK_ROWS - 1, False, True),  # too few rows to split: one chunk of few rows
    (None, 8, False, True),  # SGD steps of few rows that blas_split keeps in one chunk
    (2, 64, True, False)])  # steps run whole
def test_one_blas_pool_at_a_time(monkeypatch, chunks, batch, whole, one_thread):
    """With row chunks on Numba's threads, every BLAS library (NumPy's and SciPy's, which
    Numba's np.dot calls) runs one thread during the epoch, so no BLAS pool spins beside Numba's
    threads; their limits come back afterwards. So it does for one chunk of fewer than
    blas_small_step_rows rows (MKL's threads cost more than they share out on so few rows).
    BLAS keeps its threads for one chunk of more rows and for steps run whole
    (blas_whole_rows)."""
    from threadpoolctl import threadpool_info

    from fastfnn.kernels.numba_backend import backend as backend_module
    seen = []
    real = backend_module.blas_epoch

    def spy(*args):
        seen.append({lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                     if lib["user_api"] == "blas"})
        return real(*args)

    monkeypatch.setattr(backend_module, "blas_epoch", spy)
    backend = numba_backend(blas_chunks=chunks, blas_whole_rows=whole)
    job = make_job(batch=batch, n=128, inputs="float")
    with backend_module.limit_threads(2):  # as a fit sets them: BLAS may take two threads
        before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                  if lib["user_api"] == "blas"}
        if max(before.values()) < 2:
            pytest.skip("BLAS runs one thread at most on this machine: nothing to limit")
        assert backend.run_epoch(job) == "blas"
        after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                 if lib["user_api"] == "blas"}
    assert len(seen) == 1 and len(seen[0]) >= 1
    assert after == before
    if one_thread:
        assert set(seen[0].values()) == {1}
    else:
        assert seen[0] == before
