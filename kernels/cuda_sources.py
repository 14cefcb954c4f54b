"""The CUDA C sources of the CuPy backend: which files, which template instantiations, what options.

One module of device code: every ``cuda/*.cu`` file in :data:`SOURCE_FILES` order, each
including ``cuda/common.cuh`` (so each also compiles on its own, as nvcc would), with the local
includes written out once, compiled once per process (CuPy also caches it on disk). The names in
:func:`instantiations` are the templates the backend launches, instantiated by name (CuPy's
``name_expressions``) for float and double; the CI compile check and the host emulation build the
same list, so a kernel the backend uses is a kernel that is checked.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

CUDA_DIR = Path(__file__).with_name("cuda")

#: The .cu files, in the order they are concatenated.
SOURCE_FILES = ("layers.cu", "losses.cu", "optimizers.cu", "epoch.cu")

#: A local include, ``#include "name"``, on a line of its own.
_LOCAL_INCLUDE = re.compile(r'^#include "([^"]+)"[ \t]*$', re.MULTILINE)

#: Options for NVRTC (and nvcc, in the compile check), each for a reason:
#: - ``--std=c++17``: the language level the host emulation compiles the same sources at.
#: - ``--fmad=false``: no contraction of a * b + c into one fused multiply-add. The kernels are
#:   memory-bound, so FMA buys no speed here, while contraction would round differently from the
#:   NumPy and Numba backends (whose element-wise code does not contract); with it off, every
#:   operation rounds as the reference's does and only exp/log/tanh differ, by an ulp or two. The
#:   host emulation compiles with ``-ffp-contract=off`` for the same reason.
#: No ``--use_fast_math``: it would flush denormals and approximate exp/log/division.
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false")

FLOAT_TYPES = ("float", "double")
#: Outputs per thread and dimension of the fused epoch's GEMM tiles (its PER template argument).
GEMM_PER = (1, 2, 4)
LABEL_TYPES = ("int", "long long")


def instantiations() -> tuple[str, ...]:
    """Every template instantiation the backend launches, as C++ name expressions."""
    names = ["add_epoch_stats"]
    for t in FLOAT_TYPES:
        names += [f"bias_act<{t}>", f"act_grad<{t}>", f"col_sum<{t}>", f"softmax_rows<{t}>",
                  f"argmax_rows<{t}>", f"sigmoid_bce_indicators<{t}>", f"squared_error<{t}>",
                  f"poisson<{t}>", f"sgd_step<{t}>", f"adam_step<{t}>",
                  f"sigmoid_bce_indicator_rows<{t}>"]
        # the fused epoch's GEMMs: forward (bias + activation), backward to the previous layer
        # (times the activation's slope), weight and bias gradients (A transposed); each with
        # 1 x 1, 2 x 2 or 4 x 4 outputs per thread
        for per in GEMM_PER:
            names += [f"gemm<{t}, false, false, 1, {per}>", f"gemm<{t}, false, true, 2, {per}>",
                      f"gemm<{t}, true, false, 0, {per}>"]
        for label in LABEL_TYPES:
            names += [f"softmax_xent<{t}, {label}>", f"sigmoid_bce_labels<{t}, {label}>",
                      f"softmax_xent_rows<{t}, {label}>", f"sigmoid_bce_label_rows<{t}, {label}>"]
            for source in ("unsigned char", t):
                names.append(f"gather_rows<{t}, {source}, {label}>")
    return tuple(names)


@functools.lru_cache(maxsize=None)
def source() -> str:
    """The whole device source, one text without includes: the .cu files in order, each local
    include replaced by the file's text the first time and by nothing after. One text, because
    CuPy's and the emulation's caches key on the source text (an included file's edits would not
    reach them)."""
    seen: set[str] = set()
    return "\n".join(_inlined(name, seen) for name in SOURCE_FILES)


def _inlined(name: str, seen: set[str]) -> str:
    """cuda/``name`` with its local includes inlined, each file once (``seen``: already in)."""
    if name in seen:
        return ""
    seen.add(name)
    text = (CUDA_DIR / name).read_text()
    return _LOCAL_INCLUDE.sub(lambda match: _inlined(match.group(1), seen), text)


def host_shim() -> str:
    """The header that lets :func:`source` compile as host C++ (see ``cuda/host_shim.cuh``)."""
    return (CUDA_DIR / "host_shim.cuh").read_text()
