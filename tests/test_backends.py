"""Backend selection: names, "auto", the FASTFNN_BACKEND override, clear errors."""

from __future__ import annotations

import pytest

from fastfnn import backends
from fastfnn.backends import available_backends, get_backend, resolve_backend_name
from fastfnn.kernels import REGISTRY


def test_every_registered_backend_reports_availability():
    report = available_backends()
    assert set(report) == set(REGISTRY)
    assert report["numpy"] == ""
    for name, reason in report.items():
        assert isinstance(reason, str)


def test_auto_picks_the_first_available_in_order(monkeypatch):
    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    report = available_backends()
    expected = next(name for name in backends.AUTO_ORDER if report[name] == "")
    assert resolve_backend_name("auto") == expected
    assert resolve_backend_name(None) == expected


def test_auto_falls_back_to_numpy_when_nothing_else_runs(monkeypatch):
    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    monkeypatch.setattr(backends, "available_backends",
                        lambda: {"cupy": "no GPU", "numba": "broken", "numpy": ""})
    assert resolve_backend_name("auto") == "numpy"


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("FASTFNN_BACKEND", "numpy")
    assert get_backend("auto").name == "numpy"
    monkeypatch.setenv("FASTFNN_BACKEND", "nonsense")
    with pytest.raises(ValueError, match=r"unknown backend 'nonsense' \(from \$FASTFNN_BACKEND"):
        get_backend()


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*numpy"):
        get_backend("tpu")
    with pytest.raises(TypeError, match="backend must be a string"):
        get_backend(3)


def test_unavailable_backend_says_why():
    report = available_backends()
    missing = [name for name, reason in report.items() if reason]
    if not missing:
        pytest.skip("every backend is available on this machine")
    name = missing[0]
    with pytest.raises(ValueError, match=f"backend '{name}' is not available: .+"):
        get_backend(name)


def test_instances_are_shared():
    assert get_backend("numpy") is get_backend("NumPy")


def test_auto_passes_over_the_cuda_emulation(monkeypatch):
    monkeypatch.delenv("FASTFNN_BACKEND", raising=False)
    monkeypatch.setenv("FASTFNN_CUDA_EMULATE", "1")
    monkeypatch.setattr(backends, "available_backends",
                        lambda: {"cupy": "", "numba": "", "numpy": ""})
    assert resolve_backend_name("auto") == "numba"
