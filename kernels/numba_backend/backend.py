"""The Numba backend class: the contract's kernels and the fused epoch, dispatched from Python.

:class:`NumbaBackend` checks arguments, picks serial or parallel kernels (by size) and converts
what compiled code wants (activation codes, typed scalars, uint8 lookup tables, typed lists); the
compiled code is in the other modules of this package. Operands the compiled kernels cannot take
(odd strides, other dtypes) go to the NumPy defaults of the base class.

Assumes: NumPy arrays on the host; float32 or float64 parameters.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
from ..base import Backend
from ..threads import limit_threads, process_share, single_threaded_blas
from . import contract
from .. import noise
from .blas_epoch import MIN_CHUNK_ROWS, blas_epoch, step_chunks
from .callees import (blas_epoch_callees, compile_callees, epoch_callees, has_disk_cache_index,
                      let_go, start_helper)
from .epoch import (EpochData, Extras, Hyperparameters, Tuning, fused_epoch, is_dense_rows,
                    is_lazy_sgd)
from .compile_notice import compile_notice
from .fp_mode import flushing_subnormals
from .jit import ACT_CODES, FLOATS, IDENTITY, IMPORT_ERROR, cache_location, numba
from .cblas import describe_gemm, find_gemm
from .loss import (POISSON, SIGMOID_INDICATORS, SIGMOID_LABELS, SOFTMAX_LABELS,
                   SQUARED_ERROR)
from .optimizer import FlatParams, OptimizerStep, step_range
from .vectors import registers_hold_vectors
from .sparse_input import SparseInputs

#: The compiled epochs: while neither has a disk-cache index, a first fit starts a helper early.
_COMPILED_EPOCHS = (fused_epoch, blas_epoch)
#: Seconds the first fit of a kind waits for the compiler, for the compile notice: (alone, with a
#: helper process compiling the largest callee beside it), measured for a cold first fit on the
#: 2-core development machine (the seed fit: 14.7 s CPU alone, 8.3 s wall with a helper; a dense
#: 100-256-128-5 fit: 8.8 s and 5.5 s). On a slower 2-core VM a cold 1000-256-128-5 fit at batch
#: 32 took 18.8-21.1 s before the first layer by parts, 15.9-20.4 s with it (its function passed
#: by address, callees.blas_epoch_callees).
FUSED_EPOCH_COMPILE_S = (15, 9)
BLAS_EPOCH_COMPILE_S = (9, 6)
COMPOSED_EPOCH_COMPILE_S = (5, 5)


class NumbaBackend(Backend):
    """CPU kernels compiled by Numba (float32/float64), with a fused one-call epoch."""

    name = "numba"
    xp = np

    #: Kernels on fewer elements run on one thread. Mini-batch kernels stay serial on purpose: in
    #: a composed step they alternate with BLAS calls, and two busy-waiting thread pools (OpenMP
    #: here, OpenBLAS there) on few cores slow each other down by whole scheduler time slices.
    parallel_min_elements = 1 << 22
    #: The fused epoch visits only nonzero inputs when X has at most this fraction of nonzeros.
    sparse_max_density = 0.5
    #: Dense inputs (not sparse enough) take the fused epoch for batches of at most this many
    #: rows; larger batches take the BLAS epoch, whose GEMMs are BLAS's (see epoch_path). Measured
    #: on 2 cores (AVX-512): BLAS wins from 8 rows on (100 inputs, 256-128 hidden: 0.12 vs 0.18 s
    #: per epoch at 16 rows, 0.36 vs 0.41 at 8), the fused epoch at 1 row with Adam and at 4
    #: rows with 1000 inputs. Except dense Adam steps that the BLAS epoch splits with the first
    #: layer by parts (wide_adam_chunk_rows): those take it from 2 chunks of 2 rows on.
    dense_fused_max_rows = 4
    #: Sparse inputs take the BLAS epoch when the layers after the first hold at least
    #: sparse_blas_min_later_share times the first's weights and a step does at least
    #: sparse_blas_min_work multiply-adds in them (rows x their weights). The fused epoch's vectors
    #: fill AVX-512 registers (vectors.py); there (2 cores, BLAS vs fused s per epoch) BLAS won on
    #: 784-1024-1024-10 at 32 rows (34M, 0.48 vs 0.67 s) and six hidden 256s at 200 (66M, 0.15 vs
    #: 0.31 s) but not at 32 rows (11M: 0.24 vs 0.21 s); later (Intel Xeon VM, paired medians BLAS /
    #: fused, Adam unless said) on 784-512-512-512-10 at 32 rows (17M: 0.89, SGD 0.81, float64 0.47)
    #: and six 256s at 48 (16M: 0.77), and still mixed on six 256s at 32 (11M: 1.12 and 0.87 in two
    #: runs, SGD 1.06; float64 0.91 and 0.76, SGD 0.62). Without AVX-512 (2-core Zen 3 VM, AVX2;
    #: paired medians BLAS / fused in one process, float32 Adam unless said) BLAS wins from far
    #: less: six hidden 256s at 32 rows (11M) 0.80, float64 0.72, SGD 0.69 and 0.58; at 16 rows
    #: (5.3M) 0.77-0.84, 0.85, 0.58 and 0.39; 784-1024-1024-10 at 8 rows (8.5M) 0.84; but not six
    #: 256s at 8 rows (2.6M: 1.57, float64 1.13) nor 784-512-512-512-10 at 8 rows (4.2M: 1.25 and
    #: 1.27; float64 0.81-0.82), which wins at 16 (8.4M: 0.79). And with later layers of a third of
    #: the first's weights: 784-512-256-10 at 200 rows 0.73-0.78 (float64 SGD 0.68), at 64 0.78;
    #: 784-1024-512-10 (two thirds) at 32 rows 0.59; but not at a sixth: 784-256-128-10 at 200 rows
    #: 1.03, at 32 1.16; 784-128-64-10 at 128 rows 1.17, at 1024 1.09.
    sparse_blas_min_work = 12_000_000 if registers_hold_vectors() else 5_000_000
    sparse_blas_min_later_share = 1.0 if registers_hold_vectors() else 0.25
    #: Sparse steps that the fused epoch runs in one chunk, on one thread (fewer than 2 x
    #: fused_rows_per_chunk rows at the default fused_chunks), take the BLAS epoch where the later layers hold
    #: sparse_blas_one_chunk_min_share of the first's weights and a step does
    #: sparse_blas_one_chunk_min_work multiply-adds in them; None: the rule above. With AVX-512
    #: (Intel Xeon VM, 2 cores, paired medians BLAS / fused of 5-7 epochs, 10,000-60,000 MNIST
    #: rows, float32; later share, multiply-adds) BLAS won on 784-128-64-10 (0.088) at 5, 8, 12
    #: and 16 rows (44K-141K: SGD 0.85, 0.74-0.83, 0.90, 0.66-1.005 in five runs; Adam 0.70-0.83),
    #: 784-64-64-10 at 16 (0.094, 76K: 0.82), 784-64-128-10 at 6 (0.19, 57K: 0.74),
    #: 784-256-128-10 at 16 (Adam 0.81), 784-32-256-256-10 at 8 (Adam 0.67, SGD 0.86), six
    #: hidden 256s at 6-24 rows (Adam 0.55-0.72, SGD 0.45-0.88, float64 0.51-0.57),
    #: 784-1024-1024-10 at 8 and 16 (0.24-0.52); it tied at 784-128-64-10 at 31 rows (0.99) and
    #: lost where the later layers are a sliver: 784-128-10 (0.013) at 24 and 31 rows (1.01,
    #: 1.14), 784-32-10 at 8 (1.07), 784-10-10 and 784-10 at 16 (1.42, 1.57). From 32 rows the
    #: fused epoch splits steps and the rule above holds (six 256s at 32 rows: 1.12, SGD 1.06;
    #: float64 0.91 and 0.62).
    sparse_blas_one_chunk_min_share = 0.05 if registers_hold_vectors() else None
    sparse_blas_one_chunk_min_work = 40_000
    #: Fused epoch: a step of m rows is split into min(fused_chunks, m // fused_rows_per_chunk)
    #: row chunks run in parallel, each summing its own gradient (a sparse first layer's is summed
    #: afterwards by rows of W). The split depends on m only, not on the thread count, so neither
    #: does the result.
    fused_chunks = 4
    fused_rows_per_chunk = 16
    #: BLAS epoch: the most row chunks a step is split into (each at least
    #: blas_epoch.MIN_CHUNK_ROWS rows); None: Numba's thread count, but a step of fewer than
    #: blas_small_step_rows rows splits only where its parts have work of their own to share out
    #: (Adam's update, or the first layer's product: first_parts_*); else it runs in one chunk,
    #: BLAS on one thread too. Measured (2-core Zen 3 VM, paired medians of 7-11 epochs, split /
    #: one chunk): 1000-256-128-5 (by parts) at 8 rows 0.56 (float32 Adam), 0.90 (SGD), 0.74 and
    #: 0.93 (float64); at 12 rows 0.65 and 0.90 (float32); at 16 rows 0.68 and 0.86 (float32),
    #: 0.58 and 0.76 (float64); 100-256-128-5 with Adam at 8 rows 0.88 and 0.93 (float64), at 16
    #: 0.90-0.94 and 0.75-0.77; but with SGD at 8 rows 1.01 and 1.68, at 16 1.16-1.33 and 1.10.
    #: That one chunk's BLAS on one thread / on its threads (2-core Zen 4 VM, estimator epochs
    #: alternating in one process, medians of 5), 100-256-128-5 SGD: MKL float32 at 5, 16, 31
    #: rows 0.22, 0.21, 0.84, float64 at 8 and 16 rows 0.74 and 0.76 (MKL's threads on products of
    #: so few rows cost more than they share out); OpenBLAS, which keeps such products on one
    #: thread itself, float32 at 8 and 16 rows 1.02 and 0.53, float64 at 8 1.04.
    blas_chunks = None
    #: BLAS epoch with MKL's gemm: steps that split into row chunks run whole instead (blas_epoch's
    #: whole_rows: every GEMM on MKL's threads, only the optimizer step in parts on Numba's) where
    #: the net does at least whole_rows_min_macs_per_value multiply-adds a row for each value a
    #: row gathers or passes through an activation (sum of n_in * n_out over d + sum of n_out):
    #: MKL's single-threaded products of chunks of few rows run well below its threaded ones
    #: (float64 100 x 1024 by 1024 x 1024: two in parallel 3.9 ms, 200 rows on two threads 3.1),
    #: while a whole step's elementwise work runs on one thread. Measured (2-core Xeon VM,
    #: AVX-512, medians of 5-7 epochs, one process each, whole / split): 784-1024-1024-10 (655 a
    #: value), Adam, at 200 rows 0.80-0.87 (float64), 0.97-1.12 (float32), at 32 rows 0.84-0.89
    #: and 0.82-0.86, at 1024 rows 0.98-1.03 (float64); 1000-256-128-5 (208) 1.00-1.14 at 200
    #: and 1024 rows, 0.98-1.09 at 32; 100-256-128-5 (121) 1.31-1.41 at 1024 rows (float64 SGD).
    #: OpenBLAS's threaded products lost (784-1024-1024-10 float64 at 200 rows 1.37-1.40): MKL
    #: only. blas_whole_rows: True or False forces it for split steps; None: this rule.
    whole_rows_min_macs_per_value = 400
    blas_whole_rows = None
    #: See blas_chunks: steps of fewer rows split only where their parts share out work.
    blas_small_step_rows = 32
    #: BLAS epoch, Adam steps too small for two chunks of blas_epoch.MIN_CHUNK_ROWS rows on dense
    #: inputs whose first layer the parts form (first_parts_*): a chunk needs this many rows, and
    #: such steps of 2 chunks or more take the BLAS epoch split, not the fused epoch (at
    #: dense_fused_max_rows rows and fewer) nor one chunk: the parts share Adam's update, which
    #: either runs on one thread. Measured (2-core Zen 3 VM, paired medians, 1000-256-128-5):
    #: split / fused at 4 rows 0.69 and 0.77 (float32), 0.76 and 0.74 (float64), 7 epochs;
    #: split / one chunk at 5, 6, 7 rows 0.65, 0.52, 0.54 (float32), 0.71, 0.51, 0.52 (float64),
    #: 11 epochs (one 9-epoch run at 6 rows disagreed: split 1.59 and 1.38 of fused). Not on 100
    #: inputs (split / fused 1.27-1.77 at 4 and 6 rows), nor with SGD (0.80-1.09).
    wide_adam_chunk_rows = 2
    #: BLAS epoch in more than one chunk: the parts form the first layer's product (each its
    #: range of the inputs times its rows of the weights, right after updating those rows; the
    #: chunks sum the parts: blas_epoch.first_layer_part) where a chunk has at most
    #: first_parts_max_chunk_rows rows and a part at least first_parts_min_inputs inputs. A
    #: chunk's own GEMM packs all the weights for few rows. Measured, one thread, a step's two
    #: halves (by chunks vs by parts): 1000-256 at 32 rows 0.72 vs 0.55 ms (float64), 0.31 vs
    #: 0.29 (float32); 784-1024 1.98 vs 1.55 ms, 0.90 vs 0.70; at 64 rows 1000-256 0.64 vs 0.51
    #: (float32); mixed at 128 rows (1000-256 float32 1.03 vs 0.94, 784-1024 2.52 vs 2.54), none
    #: at 200 (1000-256 float32 1.31 vs 1.40) nor for 100 inputs (100-256 at 32 rows).
    first_parts_max_chunk_rows = 32
    first_parts_min_inputs = 384
    #: BLAS epoch: GEMMs by a CBLAS gemm found by address (cblas.find_gemm: MKL's where installed,
    #: float64 on Intel's CPUs only, else NumPy's BLAS), else by numba's np.dot (SciPy's BLAS);
    #: gemm_library: the library, one of cblas.BLAS_CHOICES, None: the environment's
    #: FASTFNN_BLAS (cblas.blas_choice).
    cblas = True
    gemm_library = None
    #: Sparse fused SGD with batches of at most this many rows updates only the first-layer rows
    #: its inputs touch; the zero-gradient steps of the others are applied in closed form later.
    lazy_max_rows = 4
    #: Per-example Adam on dense inputs steps a layer's rows in parts on Numba's threads (the
    #: same values: no row's step reads another's), each part at least this many parameters. A
    #: parallel loop per layer and row costs tens of microseconds: on 2 cores 100-256-128-5 at
    #: batch 1 with its 32K-parameter second layer in two parts took 0.358 s an epoch in float32
    #: against 0.125 serial (0.471 vs 0.408 float64); 1000-256-128-5, whose 256K-parameter first
    #: layer alone splits, 0.724-0.733 s against 1.104-1.107 (float64), 0.261-0.266 against
    #: 0.317 (float32). One thread's Adam: ~1.5 ns a float64 parameter, ~0.4 ns a float32 one.
    adam_rows_min_part = 1 << 16
    #: Blocks of at least this many rows sum a wide (>= 4 vectors) first layer's weight gradient
    #: input by input (one read-modify-write of each touched row of W per block, not per row).
    block_grad_min_rows = 4
    #: On a cold compile cache, the compiled epochs' largest callees compile in this many helper
    #: processes beside the epoch itself (callees.compile_callees); None: one fewer than the CPUs
    #: this process may use (threads.process_share), 0: none.
    compile_helpers = None
    #: matmul (predictions, the composed epoch) by MKL's gemm from this many multiply-adds: per
    #: call, 2 cores, MKL / np.dot, one library a process: 1 x 784 x 128 2.07 (float32), 1.44
    #: (float64), the call from Python costing ~8 us; 32 x 100 x 256 1.19, 0.80; 32-512 rows by
    #: 256 x 128 and 64 x 784 x 128 0.53-0.82; 4096 x 128 x 5 0.58; 4096 x 128 x 64 1.16, 0.93;
    #: 1024 x 100 x 256 1.07, 1.23; 4096 x 1000 x 256 0.99, 0.73.
    matmul_mkl_min_macs = 1 << 17
    #: The fused epoch computes with subnormal results flushed to 0 and subnormal operands read
    #: as 0 (x86's FTZ and DAZ, fp_mode.py), on every thread it runs on; False: in the mode the
    #: calling thread has. Converging per-example epochs took 1.2-4.6x as long without it
    #: (dense1000/b1/f32/adam, 784-128-64-10 at batch 1; benchmarks/RESULTS.md).
    flush_subnormals = True

    def __init__(self):
        self._sparse_inputs = SparseInputs()
        self._started_helpers = []  # see run_epoch

    # ------------------------------------------------------------------ plumbing
    @functools.cached_property
    def cache_path(self) -> str:
        """Where numba keeps this package's compiled kernels (one folder for all), resolved once:
        every epoch's compile notice names it."""
        return cache_location(contract.bias_act_rows)

    @classmethod
    def availability(cls):
        if numba is None:
            return False, IMPORT_ERROR
        return True, ""

    def thread_limit(self, n_threads):
        if self.cblas:  # a bad FASTFNN_BLAS fails here, before training; MKL loads (for each
            for dtype in FLOATS:  # dtype that takes it) before the limit looks for BLAS libraries
                find_gemm(dtype, self.gemm_library)
        return limit_threads(n_threads, numba)

    def describe(self):
        info = {"numba": numba.__version__ if numba is not None else "unavailable",
                "numpy": np.__version__}
        if numba is None:
            return info
        info["threads"] = str(numba.get_num_threads())
        try:
            info["threading_layer"] = numba.threading_layer()
        except ValueError:  # only known once a parallel kernel has run
            layer = numba.config.THREADING_LAYER
            info["threading_layer"] = f"not yet chosen (requested: {layer})"
        info["cache"] = self.cache_path
        info["blas"] = _blas_info()
        info["gemm"] = (describe_gemm(self.gemm_library) if self.cblas
                        else "numba's np.dot (SciPy's BLAS)")
        # the fused epoch's vectors fill AVX-512 registers; the sparse_blas_min_* rules depend on it
        info["avx512"] = "yes" if registers_hold_vectors() else "no"
        return info

    def _chunks(self, rows, elements):
        """Number of parallel chunks for ``rows`` rows of ``elements`` elements in all, or 1
        (at most rows // 16)."""
        if elements < self.parallel_min_elements or rows < 2:
            return 1
        threads = numba.get_num_threads()
        if threads < 2:
            return 1
        return int(max(1, min(rows // 16, 4 * threads)))

    # ------------------------------------------------------------------ kernels
    def matmul(self, a, b, out, trans_a=False, trans_b=False):
        """By MKL's gemm where it is installed (the BLAS epoch's, cblas.find_gemm) and the
        product has at least matmul_mkl_min_macs multiply-adds, else by np.dot in compiled code
        (SciPy's BLAS); odd layouts by NumPy."""
        by_blas = a.dtype == b.dtype == out.dtype and a.dtype in FLOATS and a.size and b.size
        gemm = self._mkl_gemm(out.dtype) if by_blas else None
        if gemm is not None and _all_c_contiguous(a, b, out) and a.ndim == b.ndim == 2 and \
                out.size * (a.shape[0] if trans_a else a.shape[1]) >= self.matmul_mkl_min_macs:
            return gemm.matmul(a, b, out, trans_a, trans_b)
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if by_blas and _blas_ready(a) and _blas_ready(b) and out.flags.c_contiguous:
            contract.matmul(a, b, out)
        else:  # odd layouts or empty operands: NumPy's matmul (no numba copy of 'A' arrays)
            np.matmul(a, b, out=out)
        return out

    def _mkl_gemm(self, dtype):
        """The CblasGemm of :meth:`matmul` for float ``dtype``: find_gemm's where it is MKL's
        (and cblas is on), else None."""
        if not self.cblas:
            return None
        gemm = find_gemm(dtype, self.gemm_library)
        return gemm if gemm is not None and gemm.is_mkl else None

    def _by_rows(self, serial, parallel, rows, elements, *args):
        """``serial(*args, 0, rows)`` for small work, else ``parallel(*args, chunks)``: a contract
        kernel over ``rows`` rows (or columns) of ``elements`` elements in all."""
        nch = self._chunks(rows, elements)
        if nch > 1:
            parallel(*args, nch)
        else:
            serial(*args, 0, rows)

    def bias_act(self, z, b, act):
        self._by_rows(contract.bias_act_rows, contract.bias_act_parallel, z.shape[0], z.size,
                      z, b, _act_code(act))
        return z

    def act_grad(self, da, a, act):
        code = _act_code(act)
        if code != IDENTITY:
            self._by_rows(contract.act_grad_rows, contract.act_grad_parallel, da.shape[0],
                          da.size, da, a, code)
        return da

    def softmax_xent(self, logits, y, dlogits, stats, scale, row_weight=None, label_smoothing=0.0):
        _check_label_range(y, logits.shape[1])
        return self._loss(SOFTMAX_LABELS, logits, y, dlogits, stats, scale, row_weight,
                          label_smoothing)

    def sigmoid_bce(self, logits, targets, dlogits, stats, scale, row_weight=None):
        if targets.ndim == 1:
            _check_label_range(targets, logits.shape[1])
        return self._loss(SIGMOID_LABELS, logits, targets, dlogits, stats, scale, row_weight)

    def squared_error(self, out, targets, dout, stats, scale, row_weight=None):
        return self._loss(SQUARED_ERROR, out, targets, dout, stats, scale, row_weight)

    def poisson(self, raw, targets, dout, stats, scale, row_weight=None):
        return self._loss(POISSON, raw, targets, dout, stats, scale, row_weight)

    def _loss(self, kind, logits, targets, dlogits, stats, scale, row_weight, eps=0.0):
        """The output loss kernel of ``kind`` (a loss.output_loss kind; eps: the softmax's label
        smoothing), serial or parallel."""
        sc = logits.dtype.type(scale)
        if row_weight is not None:  # in the logits' dtype, as the reference scales rows
            row_weight = np.ascontiguousarray(row_weight, dtype=logits.dtype)
        nch = self._chunks(logits.shape[0], logits.size)
        if nch > 1:
            contract.loss_parallel(kind, logits, targets, dlogits, sc, row_weight, float(eps), stats,
                                   nch)
        else:
            contract.loss_serial(kind, logits, targets, dlogits, sc, row_weight, float(eps), stats)
        return dlogits

    def softmax(self, z):
        self._by_rows(contract.softmax_rows, contract.softmax_parallel, z.shape[0], z.size, z)
        return z

    def col_sum(self, dz, out):
        if not (_all_c_contiguous(dz, out) and dz.dtype == out.dtype and dz.dtype in FLOATS):
            return super().col_sum(dz, out)  # the vector loads address C arrays
        self._by_rows(contract.col_sum_cols, contract.col_sum_parallel, dz.shape[1], dz.size,
                      dz, out)
        return out

    def sgd_step(self, param, grad, velocity, lr, momentum, nesterov, weight_decay):
        if not _all_c_contiguous(param, grad, velocity):  # the reference formula
            return super().sgd_step(param, grad, velocity, lr, momentum, nesterov, weight_decay)
        T = param.dtype.type
        unused = T(0)  # Adam's fields: a value of their type (one numba type for every step)
        step = OptimizerStep(
            solver=0, learning_rate=T(lr), momentum=T(momentum), nesterovs_momentum=bool(nesterov),
            use_momentum=momentum != 0, weight_decay=T(weight_decay), adam_learning_rate=unused,
            beta_1=unused, one_minus_beta_1=unused, beta_2=unused, one_minus_beta_2=unused,
            epsilon=unused)
        v = velocity.reshape(-1)
        self._step(step, bool(weight_decay), FlatParams(param.reshape(-1), v, v), grad)
        return param

    def adam_step(self, param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay):
        if not _all_c_contiguous(param, grad, m, v):
            return super().adam_step(param, grad, m, v, lr_t, beta1, beta2, eps, weight_decay)
        T = param.dtype.type
        unused = T(0)  # SGD's fields
        step = OptimizerStep(
            solver=1, learning_rate=unused, momentum=unused, nesterovs_momentum=False,
            use_momentum=False, weight_decay=T(weight_decay), adam_learning_rate=T(lr_t),
            beta_1=T(beta1), one_minus_beta_1=T(1 - beta1), beta_2=T(beta2),
            one_minus_beta_2=T(1 - beta2), epsilon=T(eps))
        self._step(step, bool(weight_decay),
                   FlatParams(param.reshape(-1), m.reshape(-1), v.reshape(-1)), grad)
        return param

    def _step(self, step, decay, params, grad):
        """optimizer.step_range on all of params.w (C-contiguous flat views), serial or not."""
        g = grad.reshape(-1)
        nch = self._chunks(g.shape[0], g.size)
        if nch > 1:
            contract.step_parallel(step, decay, params, g, nch)
        else:
            step_range(step, decay, params, g, np.uint64(0), np.uint64(g.shape[0]))

    def gather(self, X, idx, out, scale):
        if X.ndim != 2 or out.ndim != 2 or out.dtype not in FLOATS:
            return super().gather(X, idx, out, scale)
        bad = contract.first_bad_index(idx, X.shape[0])
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {X.shape[0]}")
        lut, sc = _lut_for(X.dtype, out.dtype, scale)
        self._by_rows(contract.gather_rows, contract.gather_parallel, idx.shape[0], out.size,
                      X, idx, out, lut, sc)
        return out

    def take(self, y, idx, out):
        bad = contract.first_bad_index(idx, y.shape[0])
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {y.shape[0]}")
        if y.ndim == 1 and out.ndim == 1:
            contract.take_rows(y.reshape(-1, 1), idx, out.reshape(-1, 1))
        elif y.ndim == 2 and out.ndim == 2:
            contract.take_rows(y, idx, out)
        else:
            np.take(y, idx, axis=0, out=out)
        return out

    def argmax_rows(self, z, out):
        contract.argmax_rows(z, out)
        return out

    # ------------------------------------------------------------------ fused epoch
    def run_epoch(self, job):
        """The epoch :meth:`epoch_path` picks for ``job``: the fused one, the BLAS one or the
        composed one; returns its name. Says so in one line on stderr when its kernels are about
        to compile."""
        # A cache that holds no compiled epoch at all (a first fit on this machine): a helper
        # process starts importing the kernels now, before the steps below (the CSR copy's
        # kernels compile there), so that it is ready when an epoch's largest callee is known.
        early = (start_helper() if self._compile_helper_count() > 0
                 and not any(map(has_disk_cache_index, _COMPILED_EPOCHS)) else None)
        self._started_helpers = [] if early is None else [early]
        try:
            return self._run_epoch(job)
        finally:
            let_go(self._started_helpers)
            self._started_helpers = []

    def splits_exactly(self, job):
        """Not for the fused epoch's lazy SGD (:func:`.epoch.is_lazy_sgd`) with momentum or
        weight decay: a part brings every first-layer row up to date at its end, rounding
        where one call would carry the row's pending steps on (MNIST at batch 1: weights 6e-8
        apart)."""
        if (job.momentum == 0.0 and job.alpha == 0.0) or self.epoch_path(job) != "fused":
            return True
        sparse = not job.augment_shift and self._sparse_of(job.X) is not None
        return self._lazy_sgd(job, sparse, _step_rows(job)) is None

    def _lazy_sgd(self, job, sparse, rows):
        """fused_epoch's ``lazy_sgd`` argument for ``job`` on sparse (bool) inputs, in steps of
        ``rows`` rows (:func:`.epoch.is_lazy_sgd`)."""
        return is_lazy_sgd(sparse, 0 if job.solver == "sgd" else 1, rows, self.lazy_max_rows,
                           job.sample_weight is not None or job.step_learning_rates is not None)

    def _run_epoch(self, job):
        """run_epoch without its early helper."""
        path = self.epoch_path(job)
        kind = "uint8" if job.X.dtype == np.uint8 else job.X.dtype.name
        what = (f"the {_EPOCH_NAMES[path]} for {job.coefs[0].dtype.name} weights and {kind} "
                "inputs")
        seconds = {"fused": FUSED_EPOCH_COMPILE_S, "blas": BLAS_EPOCH_COMPILE_S}.get(
            path, COMPOSED_EPOCH_COMPILE_S)[self._compile_helper_count() > 0]
        with compile_notice(what, seconds, self.cache_path):
            if path == "fused":
                self.fused_epoch(job)
            elif path == "blas":
                self.blas_epoch(job)
            else:
                return super().run_epoch(job)
        return path

    def epoch_path(self, job):
        """How an epoch of ``job`` runs here: ``"fused"``, ``"blas"`` or ``"composed"``.

        Batches of at most dense_fused_max_rows rows: fused, unless the BLAS epoch splits their
        dense Adam steps with the first layer by parts (wide_adam_chunk_rows). Larger ones: BLAS,
        unless the inputs are sparse (and not shifted, which makes them dense): those stay fused,
        whose first layer visits only the nonzeros, unless the later layers hold
        sparse_blas_min_later_share of the first's weights and a step gives them
        sparse_blas_min_work multiply-adds (there BLAS gains more; sparse_blas_one_chunk_* for
        steps that the fused epoch runs in one chunk). What neither compiled epoch covers:
        composed."""
        if not self._compiled_epoch_covers(job):
            return "composed"
        rows = _step_rows(job)
        sparse = not job.augment_shift and self._sparse_of(job.X) is not None
        if rows <= self.dense_fused_max_rows and (sparse or not self._wide_adam_split(job, rows)):
            return "fused"
        if sparse:
            later = sum(w.size for w in job.coefs[1:])
            share, work = self.sparse_blas_min_later_share, self.sparse_blas_min_work
            if (self.sparse_blas_one_chunk_min_share is not None
                    and step_chunks(self.fused_chunks, rows, self.fused_rows_per_chunk) == 1):
                share = self.sparse_blas_one_chunk_min_share
                work = self.sparse_blas_one_chunk_min_work
            if later < share * job.coefs[0].size or rows * later < work:
                return "fused"
        return "blas"

    def fused_epoch_supported(self, job):
        """Whether :meth:`fused_epoch` runs ``job`` (:meth:`epoch_path` says ``"fused"``)."""
        return self.epoch_path(job) == "fused"

    def _compiled_epoch_covers(self, job):
        """Whether the compiled epochs (fused and BLAS) can run ``job`` at all."""
        try:
            coefs, intercepts = list(job.coefs), list(job.intercepts)
            if not coefs or len(coefs) != len(intercepts):
                return False
            dtype = coefs[0].dtype
            if dtype not in FLOATS:
                return False
            if job.activation not in ACT_CODES or job.output not in _OUTPUT_KINDS:
                return False
            if job.solver not in ("sgd", "adam"):
                return False
            n_state = 2 if job.solver == "sgd" else 4
            if len(job.opt_state) != n_state:
                return False
            arrays = coefs + intercepts + [a for s in job.opt_state for a in s]
            if not all(isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
                       for a in arrays):
                return False
            for k in range(n_state):
                like = coefs if k % 2 == 0 else intercepts
                if len(job.opt_state[k]) != len(like) or any(
                        s.shape != p.shape for s, p in zip(job.opt_state[k], like)):
                    return False
            X, targets, order = job.X, job.targets, job.order
            if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == coefs[0].shape[0]
                    and (X.dtype == np.uint8 or X.dtype in FLOATS)):
                return False
            if order is not None and not (isinstance(order, np.ndarray) and order.ndim == 1
                                          and order.dtype.kind in "iu"):
                return False
            k = coefs[-1].shape[1]
            if not isinstance(targets, np.ndarray) or targets.shape[0] != X.shape[0]:
                return False
            if targets.ndim == 1:
                if targets.dtype.kind not in "iu" or job.output not in ("softmax", "sigmoid"):
                    return False
            elif not (targets.ndim == 2 and job.output != "softmax" and targets.shape[1] == k
                      and targets.dtype.kind == "f"):
                return False
            weights = job.sample_weight
            if weights is not None and not (isinstance(weights, np.ndarray) and weights.ndim == 1
                                            and weights.shape[0] == X.shape[0]
                                            and weights.dtype.kind == "f"):
                return False
            if job.label_smoothing and job.output != "softmax":
                return False  # the composed epoch says why
            if job.dropout is not None and (
                    len(job.dropout) != len(coefs) or job.dropout[0]
                    or (any(job.dropout) and job.activation not in _DROPOUT_ACTIVATIONS)):
                return False  # input dropout, and dropout through tanh/sigmoid: composed
            if job.augment_shift and (job.image_shape is None or
                                      int(np.prod(job.image_shape)) != X.shape[1]):
                return False
            if int(job.batch_size) < 1:
                return False
            return isinstance(job.stats, np.ndarray) and job.stats.dtype == np.float64
        except (AttributeError, TypeError):
            return False

    def fused_epoch(self, job):
        """Run ``job`` by the fused epoch (:func:`.epoch.fused_epoch`), in place."""
        args = self._compiled_epoch_args(job, sparse=None if job.augment_shift else
                                         self._sparse_of(job.X))
        if args is None:
            return
        data, hyper, addresses, shapes, extras = args
        tuning = Tuning(self.fused_chunks, self.fused_rows_per_chunk, self.lazy_max_rows,
                        numba.get_num_threads(), self.block_grad_min_rows,
                        self.adam_rows_min_part)
        lazy_sgd = self._lazy_sgd(job, data.sparse, hyper.batch_size)
        dense_rows = is_dense_rows(data.sparse, hyper.batch_size)
        callees = epoch_callees(data, extras)
        with self._compiling(callees), flushing_subnormals(self.flush_subnormals):
            job.t = int(fused_epoch(data, hyper, tuning, addresses, shapes, int(job.t),
                                    job.stats, lazy_sgd, dense_rows, extras, *callees))

    def blas_epoch(self, job):
        """Run ``job`` by the BLAS epoch
        (:func:`.blas_epoch.blas_epoch`), in place: steps split into row chunks over Numba's
        threads (so its results are bitwise reproducible for a given thread count)."""
        args = self._compiled_epoch_args(job, sparse=None)
        if args is None:
            return
        data, hyper, addresses, shapes, extras = args
        # row chunks on every thread, each calling BLAS on one thread (no pool waits on another);
        # steps that blas_split keeps whole run in one chunk, BLAS's threads doing the parallel
        # work (but for steps of few rows, below), and so do split steps that _whole_rows picks,
        # but for their optimizer step
        chunks, chunk_rows, split, first_by_parts = self.blas_split(job)
        gemm = find_gemm(data.lut.dtype, self.gemm_library) if self.cblas else None  # may load MKL
        whole_rows = split and self._whole_rows(job, gemm)
        split, first_by_parts = split and not whole_rows, first_by_parts and not whole_rows
        few_rows = _step_rows(job) < self.blas_small_step_rows
        one_thread = split or few_rows and not whole_rows  # few rows: see blas_chunks
        limit = single_threaded_blas() if one_thread else contextlib.nullcontext()
        callee, first_part = blas_epoch_callees(data, hyper, extras, gemm)
        with limit, self._compiling((callee, first_part)):
            job.t = int(blas_epoch(data, hyper, addresses, shapes, int(job.t), job.stats, extras,
                                   chunks, chunk_rows, whole_rows, callee, first_part, gemm,
                                   first_by_parts))

    def blas_split(self, job):
        """How :meth:`blas_epoch` splits a step of ``job``: (chunks, chunk_rows, split,
        first_by_parts), the most row chunks a step takes (blas_chunks), the rows a chunk needs
        (wide_adam_chunk_rows or blas_epoch.MIN_CHUNK_ROWS), whether a full step takes more than
        one chunk (BLAS then runs one thread) and whether its parts form the first layer's
        product."""
        rows = _step_rows(job)
        chunks = self.blas_chunks or numba.get_num_threads()
        chunk_rows = (self.wide_adam_chunk_rows if self._wide_adam(job, rows, chunks)
                      else MIN_CHUNK_ROWS)
        nch = step_chunks(chunks, rows, chunk_rows)
        first_by_parts = nch > 1 and self._first_by_parts(job, rows, nch)
        if (nch > 1 and self.blas_chunks is None and rows < self.blas_small_step_rows
                and job.solver != "adam" and not first_by_parts):
            return 1, MIN_CHUNK_ROWS, False, False  # nothing for the parts to share: one chunk
        return chunks, chunk_rows, nch > 1, first_by_parts

    def _whole_rows(self, job, gemm):
        """Whether the BLAS epoch runs ``job``'s split steps whole, GEMMs by ``gemm`` (a
        cblas.CblasGemm or None) on BLAS's threads (blas_whole_rows,
        whole_rows_min_macs_per_value)."""
        if self.blas_whole_rows is not None:
            return self.blas_whole_rows
        if gemm is None or not gemm.is_mkl:
            return False
        macs = sum(w.size for w in job.coefs)
        values = job.coefs[0].shape[0] + sum(w.shape[1] for w in job.coefs)
        return macs >= self.whole_rows_min_macs_per_value * values

    def _first_by_parts(self, job, rows, parts):
        """Whether the BLAS epoch's ``parts`` form the first layer's product of ``job``'s
        steps of ``rows`` rows (first_parts_*): not with shifted images, gathered whole."""
        return (rows // parts <= self.first_parts_max_chunk_rows
                and job.coefs[0].shape[0] // parts >= self.first_parts_min_inputs
                and not job.augment_shift)

    def _wide_adam(self, job, rows, chunks):
        """Whether ``job``'s steps of ``rows`` rows, in at most ``chunks`` chunks, take chunks of
        wide_adam_chunk_rows rows: Adam, too few rows for two chunks of MIN_CHUNK_ROWS, and the
        first layer formed by parts."""
        return (job.solver == "adam" and rows < 2 * MIN_CHUNK_ROWS
                and self._first_by_parts(job, rows, chunks))

    def _wide_adam_split(self, job, rows):
        """Whether the BLAS epoch splits ``job``'s Adam steps of ``rows`` rows into chunks of
        wide_adam_chunk_rows rows (blas_split)."""
        chunks, _, split, _ = self.blas_split(job)
        return split and self._wide_adam(job, rows, chunks)

    def _compile_helper_count(self):
        """How many helper processes a cold compile may start (see compile_helpers)."""
        helpers = self.compile_helpers
        return process_share() - 1 if helpers is None else helpers

    @contextlib.contextmanager
    def _compiling(self, callees):
        """Around a compiled epoch's call: its callees (largest first) compile first, in helper
        processes where the cache is cold (callees.compile_callees); none outlives the call."""
        started, self._started_helpers = self._started_helpers, []
        compile_callees(callees, self._compile_helper_count(), started)
        try:
            yield
        finally:
            for callee in callees:
                callee.wait_for_helper()

    def _compiled_epoch_args(self, job, sparse):
        """(EpochData, Hyperparameters, addresses, shapes, Extras or None):
        what the compiled epochs take for ``job`` (sparse: X's CSR copy, or None to read X
        densely), or None when the epoch has no rows. The job's arrays stay alive in ``job``
        while the epoch reads and writes them through the addresses."""
        coefs, intercepts = list(job.coefs), list(job.intercepts)
        dtype = coefs[0].dtype
        X = job.X if job.X.flags.c_contiguous else np.ascontiguousarray(job.X)
        if job.order is None:  # stored order: batches are slices of X
            order = _arange(X.shape[0])
        else:
            order = np.ascontiguousarray(job.order, dtype=np.int64)
            bad = contract.first_bad_index(order, X.shape[0])
            if bad >= 0:
                raise IndexError(f"order holds {order[bad]}, out of range for {X.shape[0]} rows")
            if order.shape[0] and order.min() < 0:
                order = np.where(order < 0, order + X.shape[0], order)
        n = order.shape[0]
        if n == 0:
            return None
        k = coefs[-1].shape[1]
        kind = _OUTPUT_KINDS[job.output]
        if job.targets.ndim == 1:
            labels = np.ascontiguousarray(job.targets, dtype=np.int64)
            _check_label_range(labels, k)
            indicators = np.zeros((1, 1), dtype)
            kind = SOFTMAX_LABELS if job.output == "softmax" else SIGMOID_LABELS
        else:
            labels = np.zeros(1, np.int64)
            indicators = np.ascontiguousarray(job.targets, dtype=dtype)
        lut, sc = _lut_for(X.dtype, dtype, job.x_scale)
        if sparse is None:
            ptr, ind, val = np.zeros(1, np.int64), np.zeros(1, np.uint16), np.zeros(1, X.dtype)
        else:
            ptr, ind, val = sparse
        # the weights, then each optimizer state's (SGD: velocities; Adam: m, then v)
        mats = coefs + [a for group in job.opt_state[0::2] for a in group]
        vecs = intercepts + [a for group in job.opt_state[1::2] for a in group]
        addresses = np.array([[a.__array_interface__["data"][0] for a in mats],
                              [a.__array_interface__["data"][0] for a in vecs]], np.int64)
        shapes = np.array([w.shape for w in coefs], np.int64)
        data = EpochData(X, sparse is not None, ptr, ind, val, lut, sc, labels, indicators, order)
        hyper = Hyperparameters(
            ACT_CODES[job.activation], kind, 0 if job.solver == "sgd" else 1,
            min(int(job.batch_size), n), float(job.learning_rate), float(job.momentum),
            bool(job.nesterovs_momentum), float(job.beta_1), float(job.beta_2),
            float(job.epsilon), float(job.alpha), float(job.label_smoothing))
        extras = _extras_of(job, kind, X.shape[0], hyper.batch_size, dtype)
        return data, hyper, addresses, shapes, extras

    def _sparse_of(self, X):
        """(indptr, indices, values) of X when it is sparse enough for the fused epoch's sparse
        first layer, else None (see sparse_input.SparseInputs)."""
        return self._sparse_inputs.of(X, self.sparse_max_density)


# ----------------------------------------------------------------------------- module helpers
#: Hidden activations whose derivative the dropped activation still gives (the fused epoch's
#: dropout; the others run composed).
_DROPOUT_ACTIVATIONS = ("relu", "identity")


def _step_rows(job):
    """Rows of ``job``'s full steps: its batch size, at most its rows (int)."""
    return min(int(job.batch_size), job.X.shape[0])


def _extras_of(job, kind, n, batch_size, dtype):
    """The fused epoch's Extras for ``job`` (n rows of X, steps of batch_size rows), or None when
    the job is a classifier's plain epoch (see epoch.train_rows)."""
    weighted = job.sample_weight is not None
    dropout = job.dropout if job.dropout is not None and any(job.dropout) else None
    if not (weighted or dropout or job.augment_shift or job.step_learning_rates is not None
            or job.label_smoothing or kind >= SQUARED_ERROR):
        return None
    n_layers = len(job.coefs)
    steps = -(-job.order.shape[0] // batch_size) if job.order is not None else -(-n // batch_size)
    rates = np.zeros(n_layers) if dropout is None else np.asarray(dropout, np.float64)
    lrs = (np.full(steps, float(job.learning_rate)) if job.step_learning_rates is None
           else np.ascontiguousarray(job.step_learning_rates, dtype=np.float64))
    if lrs.shape != (steps,):
        raise ValueError(f"step_learning_rates has shape {lrs.shape}, expected ({steps},): one "
                         "step size per step of the epoch")
    seed = int(job.noise_seed)
    return Extras(
        np.ascontiguousarray(job.sample_weight, dtype=dtype) if weighted else np.ones(n, dtype),
        rates, np.array([noise.stream_base(seed, noise.DROPOUT_STREAM + l)
                         for l in range(n_layers)], np.uint64),
        lrs, np.int64(job.augment_shift),
        np.array([noise.stream_base(seed, noise.SHIFT_ROWS_STREAM),
                  noise.stream_base(seed, noise.SHIFT_COLS_STREAM)], np.uint64),
        np.int64(job.image_shape[1] if job.image_shape is not None else 1),
        np.int64(job.noise_row0))


#: What the compile notice calls each epoch_path.
_EPOCH_NAMES = {"fused": "fused epoch", "blas": "BLAS epoch", "composed": "epoch kernels"}

#: The fused epoch's loss kind of each EpochJob output (sigmoid with labels: SIGMOID_LABELS).
_OUTPUT_KINDS = {"softmax": SOFTMAX_LABELS, "sigmoid": SIGMOID_INDICATORS,
                 "squared_error": SQUARED_ERROR, "poisson": POISSON}


def _act_code(act):
    try:
        return ACT_CODES[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}") from None


def _check_label_range(y, k):
    bad = contract.first_bad_label(y, k)
    if bad >= 0:
        raise IndexError(f"label {y[bad]} at row {bad} is outside [0, {k})")


def _blas_ready(a):
    return a.ndim == 2 and (a.flags.c_contiguous or a.flags.f_contiguous)


def _all_c_contiguous(*arrays):
    return all(a.flags.c_contiguous for a in arrays)


_ARANGES: dict = {}


def _arange(n):
    """A cached read-only ``np.arange(n)`` (int64), the row order of an unshuffled epoch."""
    a = _ARANGES.get(n)
    if a is None:
        a = np.arange(n, dtype=np.int64)
        a.flags.writeable = False
        _ARANGES.clear()
        _ARANGES[n] = a
    return a


_LUTS: dict = {}


def _lut_for(x_dtype, out_dtype, scale):
    """(lut, sc): uint8 inputs map through a 256-entry table ``T(u) * T(scale)``; others use sc."""
    out_dtype = np.dtype(out_dtype)
    T = out_dtype.type
    sc = T(scale)
    key = (np.dtype(x_dtype).str, out_dtype.str, float(scale))
    lut = _LUTS.get(key)
    if lut is None:
        if np.dtype(x_dtype) == np.uint8:
            lut = np.arange(256).astype(out_dtype)
            if scale != 1:
                lut *= scale
        else:
            lut = np.zeros(1, out_dtype)
        if len(_LUTS) > 64:
            _LUTS.clear()
        _LUTS[key] = lut
    return lut, sc


def _blas_info():
    try:
        import scipy
        cfg = scipy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        return f"scipy {scipy.__version__}: {name}"
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unknown ({type(exc).__name__})"
