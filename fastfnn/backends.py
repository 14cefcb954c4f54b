"""Backend selection: names, ``"auto"``, the ``FASTFNN_BACKEND`` override, clear errors.

``auto`` takes the CuPy backend only when its availability check has compiled and run a probe
kernel (a counted device is not enough: CuPy without CUDA headers cannot compile), and never its
host emulation (``FASTFNN_CUDA_EMULATE=1`` is for tests, not speed); ``fastfnn info`` prints the
reason beside every backend it passes over.
"""

from __future__ import annotations

import os

from fastfnn.kernels import REGISTRY, Backend, backend_class

#: Order in which ``"auto"`` tries backends: the GPU first, then compiled CPU, then the reference.
AUTO_ORDER = ("cupy", "numba", "numpy")

#: Why ``auto`` passes over a CuPy backend that runs on the host emulation.
EMULATED_REASON = "runs on the CUDA host emulation (FASTFNN_CUDA_EMULATE=1): for tests, not speed"

_instances: dict[str, Backend] = {}


def available_backends() -> dict[str, str]:
    """Map every registered backend name to ``""`` when it can run here, else to the reason why not."""
    report = {}
    for name in REGISTRY:
        try:
            ok, reason = backend_class(name).availability()
        except ImportError as exc:
            ok, reason = False, f"not installed ({exc})"
        report[name] = "" if ok else reason
    return report


def resolve_backend_name(name: str | None = "auto") -> str:
    """Turn ``name`` (a registered name, ``"auto"`` or None) into a concrete, available backend name.

    ``None`` and ``"auto"`` honour the ``FASTFNN_BACKEND`` environment variable first, then pick the
    first available of :data:`AUTO_ORDER`. Raises ValueError for an unknown or unavailable backend.
    """
    source = ""
    if name is None or name == "auto":
        name = os.environ.get("FASTFNN_BACKEND", "auto") or "auto"
        source = " (from $FASTFNN_BACKEND, which 'auto' honours)" if name != "auto" else ""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    name = name.lower()
    if name == "auto":
        report = available_backends()
        if os.environ.get("FASTFNN_CUDA_EMULATE") == "1":
            report["cupy"] = report["cupy"] or EMULATED_REASON
        return next(b for b in AUTO_ORDER if report.get(b) == "")
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}{source}; expected one of "
                         f"{sorted(REGISTRY) + ['auto']}")
    try:
        ok, reason = backend_class(name).availability()
    except ImportError as exc:
        ok, reason = False, f"not installed ({exc})"
    if not ok:
        raise ValueError(f"backend {name!r}{source} is not available: {reason}")
    return name


def get_backend(name: str | None = "auto") -> Backend:
    """Return the (shared, stateless) Backend instance for ``name``; see :func:`resolve_backend_name`."""
    resolved = resolve_backend_name(name)
    if resolved not in _instances:
        _instances[resolved] = backend_class(resolved)()
    return _instances[resolved]
