"""The Numba backend: every kernel compiled for the CPU with ``@njit(cache=True)``, and two compiled
epochs (fused, BLAS).

One concern per module, from the bottom up:

=================  ===============================================================================
``jit``            compile options, the on-disk cache (one stamp for the package), typed scalars
``vectors``        64-byte SIMD vectors as values of compiled code (assumes AVX-512 registers)
``fp_mode``        the fused epoch's floating-point mode: subnormals flushed to 0 (x86's MXCSR)
``loss``           the output layer's math (logistic, softmax and sigmoid cross-entropies), once
``optimizer``      SGD/Adam steps on flat ranges and rows; lazy SGD's closed-form catch-up
``contract``       the contract kernels of ``fastfnn.kernels.base.Backend`` as compiled loops
``sparse_input``   the CSR copy of a sparse training set, cached while the data stays the same
``layout``         the fused epoch's padded flat parameters and per-chunk buffers
``blocks``         register-blocked forward, backward and weight-gradient loops of the fused epoch
``noise``          dropout factors and image shifts, compiled (the same numbers as the host's)
``epoch``          the fused epoch: a whole epoch of training in one compiled call
``callees``        the compiled epochs' large callees, passed by address so each compiles once
``steps``          what a step of either compiled epoch computes alike (weights, losses, scalars)
``cblas``          a CBLAS gemm (MKL's, NumPy's) as a function for compiled code (else ``np.dot``)
``blas_epoch``     the BLAS epoch: larger dense batches, GEMMs by BLAS, in parallel row chunks
``compile_notice`` one line on stderr when an epoch's kernels are about to compile
``backend``        :class:`NumbaBackend`, which dispatches to the above from Python
=================  ===============================================================================

Compilation is lazy (the first call of each signature; each compiled epoch takes seconds per dtype
and input kind the first time) and cached on disk (``$NUMBA_CACHE_DIR``, else ``__pycache__`` next to
these modules); without any writable cache location kernels compile in every process.
"""

from .backend import NumbaBackend

__all__ = ["NumbaBackend"]
