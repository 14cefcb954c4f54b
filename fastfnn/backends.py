"""Backend selection: names, ``"auto"``, the ``FASTFNN_BACKEND`` override, clear errors."""

from __future__ import annotations

import os

from fastfnn.kernels import REGISTRY, Backend, backend_class

#: Order in which ``"auto"`` tries backends: the GPU first, then compiled CPU, then the reference.
AUTO_ORDER = ("cupy", "numba", "numpy")

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
    if name is None or name == "auto":
        name = os.environ.get("FASTFNN_BACKEND", "auto") or "auto"
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    name = name.lower()
    if name == "auto":
        report = available_backends()
        return next(b for b in AUTO_ORDER if report.get(b) == "")
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(REGISTRY) + ['auto']}")
    try:
        ok, reason = backend_class(name).availability()
    except ImportError as exc:
        ok, reason = False, f"not installed ({exc})"
    if not ok:
        raise ValueError(f"backend {name!r} is not available: {reason}")
    return name


def get_backend(name: str | None = "auto") -> Backend:
    """Return the (shared, stateless) Backend instance for ``name``; see :func:`resolve_backend_name`."""
    resolved = resolve_backend_name(name)
    if resolved not in _instances:
        _instances[resolved] = backend_class(resolved)()
    return _instances[resolved]
