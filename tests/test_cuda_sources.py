"""CI compile check of the CUDA sources: every instantiation the CuPy backend launches compiles,
without a warning, for sm_80, sm_90 and sm_100, and float kernels do no double arithmetic beyond
accumulating into the float64 stats. Runs wherever nvcc is (no GPU needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fastfnn.kernels import cuda_sources

NVCC = shutil.which("nvcc") or next(
    (p for p in ("/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc") if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found (the compile check needs it)")

ARCHS = ("sm_80", "sm_90", "sm_100")
#: Double-precision instructions a float kernel may hold: moving, converting, selecting and adding
#: the per-row losses into the float64 stats. Anything else (mul, fma, div, sqrt, setp, ...) on
#: .f64 in a float kernel is a stray double, e.g. an unsuffixed literal such as 0.1.
ALLOWED_F64 = {"add", "cvt", "ld", "st", "mov", "selp"}


def _unit(code, names):
    """``code`` plus one array taking the address of every instantiation (nvcc has no
    name_expressions; taking an address instantiates the template for the device)."""
    refs = ",\n".join(f"    (void*)&{name}" for name in names)
    return f"{code}\nvoid* fastfnn_instances[] = {{\n{refs}\n}};\n"


def _nvcc(tmp_path, code, names, arch, kind):
    src = tmp_path / "unit.cu"
    src.write_text(_unit(code, names))
    out = tmp_path / f"unit-{arch}.{kind}"
    result = subprocess.run(
        [NVCC, f"-arch={arch}", f"-{kind}", *cuda_sources.COMPILE_OPTIONS,
         "-Werror", "all-warnings", "-Xptxas", "-Werror", "-o", str(out), str(src)],
        capture_output=True, text=True)
    assert result.returncode == 0, f"nvcc for {arch} failed:\n{result.stderr}"
    assert not result.stderr.strip(), f"nvcc for {arch} said:\n{result.stderr}"
    return out


def stray_doubles(ptx: str) -> dict[str, list[str]]:
    """{kernel: forbidden f64 opcodes} for the float instantiations (first template argument
    float) in ``ptx``."""
    found = {}
    for body in re.split(r"(?m)^(?:\.\w+ )*\.entry ", ptx)[1:]:
        mangled = body.split("(", 1)[0]
        name = subprocess.run(["c++filt", mangled], capture_output=True, text=True).stdout.strip()
        first_type = re.search(r"<([^,>]+)", name)
        if not first_type or first_type.group(1) != "float":
            continue
        ops = set(re.findall(r"\b([a-z]+)(?:\.[a-z0-9]+)*\.f64\b", body)) - ALLOWED_F64
        if ops:
            found[name.split("(")[0]] = sorted(ops)
    return found


@pytest.mark.parametrize("arch", ARCHS)
def test_every_instantiation_compiles_without_a_warning(tmp_path, arch):
    cubin = _nvcc(tmp_path, cuda_sources.source(), cuda_sources.instantiations(), arch, "cubin")
    assert cubin.stat().st_size > 0


def test_float_kernels_do_no_double_arithmetic(tmp_path):
    names = cuda_sources.instantiations()
    ptx = _nvcc(tmp_path, cuda_sources.source(), names, "sm_80", "ptx").read_text()
    assert len(re.findall(r"(?m)^(?:\.\w+ )*\.entry ", ptx)) == len(names)
    assert stray_doubles(ptx) == {}


def test_the_double_check_sees_a_stray_literal(tmp_path):
    code = "template <typename T> __global__ void half(T* x) { x[0] = x[0] * 0.1; }"
    ptx = _nvcc(tmp_path, code, ["half<float>"], "sm_80", "ptx").read_text()
    assert stray_doubles(ptx) == {"void half<float>": ["mul"]}


def test_a_warning_fails_the_compile(tmp_path):
    code = "__global__ void k(float* x) { int unused; x[0] = 1; }"
    with pytest.raises(AssertionError, match="nvcc for sm_80 failed"):
        _nvcc(tmp_path, code, ["k"], "sm_80", "ptx")
