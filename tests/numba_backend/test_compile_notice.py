"""The compile notice: one line when Numba really compiles inside the block, none otherwise."""

from __future__ import annotations

import io

import numba

from fastfnn.kernels.numba_backend.compile_notice import compile_notice


def _fresh_kernel():
    @numba.njit(cache=False)
    def add_one(x):
        return x + 1
    return add_one


def test_one_line_at_the_first_compile_and_a_count_of_all():
    kernel, out = _fresh_kernel(), io.StringIO()
    with compile_notice("the test kernel", 3, "/some/cache", stream=out) as heard:
        kernel(1)
        kernel(2.5)  # a second signature: a second compile, no second line
        kernel(3)  # compiled already: nothing
    assert heard.compiles == 2
    assert out.getvalue().splitlines() == [
        "fastfnn: compiling the test kernel with Numba (about 3 s, once; cached in /some/cache; "
        "`fastfnn warmup` compiles ahead of time)"]


def test_nothing_when_nothing_compiles_or_outside_the_block():
    kernel, out = _fresh_kernel(), io.StringIO()
    kernel(1)
    with compile_notice("the test kernel", 3, "/c", stream=out) as heard:
        kernel(2)
    kernel(2.5)
    assert heard.compiles == 0 and out.getvalue() == ""


def test_silenced_by_the_environment(monkeypatch):
    monkeypatch.setenv("FASTFNN_COMPILE_NOTICE", "0")
    kernel, out = _fresh_kernel(), io.StringIO()
    with compile_notice("the test kernel", 3, "/c", stream=out) as heard:
        kernel(1)
    assert heard.compiles == 1 and out.getvalue() == ""
