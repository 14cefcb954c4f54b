"""CI compile check of the CUDA sources: every instantiation the CuPy backend launches compiles,
without a warning, for sm_80, sm_90 and sm_100, and float kernels do no double arithmetic beyond
accumulating into the float64 stats. Runs with nvcc and with NVRTC (what CuPy compiles with, from
the nvidia-cuda-nvrtc wheel), whichever are here; no GPU needed."""

from __future__ import annotations

import ctypes
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fastfnn.kernels import cuda_sources

NVCC = shutil.which("nvcc") or next(
    (p for p in ("/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc") if Path(p).exists()), None)


def _nvrtc_library():
    """libnvrtc from the nvidia-cuda-nvrtc wheel, or None."""
    try:
        import nvidia
    except ImportError:
        return None
    found = [path for root in nvidia.__path__
             for path in glob.glob(os.path.join(root, "**", "libnvrtc.so*"), recursive=True)]
    return ctypes.CDLL(sorted(found)[0]) if found else None


NVRTC = _nvrtc_library()
COMPILERS = [name for name, tool in (("nvcc", NVCC), ("nvrtc", NVRTC)) if tool]
pytestmark = pytest.mark.skipif(not COMPILERS, reason="neither nvcc nor NVRTC is here "
                                "(pip install nvidia-cuda-nvrtc gives NVRTC)")

ARCHS = ("sm_80", "sm_90", "sm_100")
#: Double-precision instructions a float kernel may hold: moving, converting, selecting and adding
#: the per-row losses into the float64 stats. Anything else (mul, fma, div, sqrt, setp, ...) on
#: .f64 in a float kernel is a stray double, e.g. an unsuffixed literal such as 0.1.
ALLOWED_F64 = {"add", "cvt", "ld", "st", "mov", "selp"}


def _nvcc(tmp_path, code, names, arch, kind):
    """nvcc has no name expressions: taking each instantiation's address instantiates it."""
    refs = ",\n".join(f"    (void*)&{name}" for name in names)
    src = tmp_path / "unit.cu"
    src.write_text(f"{code}\nvoid* fastfnn_instances[] = {{\n{refs}\n}};\n")
    out = tmp_path / f"unit-{arch}.{kind}"
    result = subprocess.run(
        [NVCC, f"-arch={arch}", f"-{kind}", *cuda_sources.COMPILE_OPTIONS,
         "-Werror", "all-warnings", "-Xptxas", "-Werror", "-o", str(out), str(src)],
        capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), \
        f"nvcc for {arch} failed:\n{result.stderr}"
    return out.read_bytes()


def _nvrtc(tmp_path, code, names, arch, kind):  # noqa: ARG001 - one signature for both compilers
    """NVRTC as CuPy calls it: name expressions, the backend's options; any log line fails."""
    program = ctypes.c_void_p()
    assert NVRTC.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"fastfnn.cu", 0, None,
                                    None) == 0
    try:
        for name in names:
            assert NVRTC.nvrtcAddNameExpression(program, name.encode()) == 0
        target = arch if kind == "cubin" else arch.replace("sm_", "compute_")
        options = [f"--gpu-architecture={target}", *cuda_sources.COMPILE_OPTIONS,
                   "-Werror=all-warnings"]
        status = NVRTC.nvrtcCompileProgram(program, len(options),
                                           (ctypes.c_char_p * len(options))(
                                               *[o.encode() for o in options]))
        size = ctypes.c_size_t()
        NVRTC.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        NVRTC.nvrtcGetProgramLog(program, log)
        assert status == 0 and not log.value.strip(), \
            f"nvrtc for {arch} failed:\n{log.value.decode()}"
        get_size, get = ((NVRTC.nvrtcGetCUBINSize, NVRTC.nvrtcGetCUBIN) if kind == "cubin"
                         else (NVRTC.nvrtcGetPTXSize, NVRTC.nvrtcGetPTX))
        get_size(program, ctypes.byref(size))
        out = ctypes.create_string_buffer(size.value)
        get(program, out)
        return out.raw
    finally:
        NVRTC.nvrtcDestroyProgram(ctypes.byref(program))


COMPILE = {"nvcc": _nvcc, "nvrtc": _nvrtc}


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


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_instantiation_compiles_without_a_warning(tmp_path, compiler, arch):
    cubin = COMPILE[compiler](tmp_path, cuda_sources.source(), cuda_sources.instantiations(),
                              arch, "cubin")
    assert len(cubin) > 0


@pytest.mark.parametrize("compiler", COMPILERS)
def test_float_kernels_do_no_double_arithmetic(tmp_path, compiler):
    names = cuda_sources.instantiations()
    ptx = COMPILE[compiler](tmp_path, cuda_sources.source(), names, "sm_80", "ptx")
    ptx = ptx.decode().rstrip("\0")
    assert len(re.findall(r"(?m)^(?:\.\w+ )*\.entry ", ptx)) == len(names)
    assert stray_doubles(ptx) == {}


@pytest.mark.parametrize("compiler", COMPILERS)
def test_the_double_check_sees_a_stray_literal(tmp_path, compiler):
    code = "template <typename T> __global__ void half(T* x) { x[0] = x[0] * 0.1; }"
    ptx = COMPILE[compiler](tmp_path, code, ["half<float>"], "sm_80", "ptx").decode()
    assert stray_doubles(ptx.rstrip("\0")) == {"void half<float>": ["mul"]}


@pytest.mark.parametrize("compiler", COMPILERS)
def test_a_warning_fails_the_compile(tmp_path, compiler):
    code = "__global__ void k(float* x) { int unused; x[0] = 1; }"
    with pytest.raises(AssertionError, match=f"{compiler} for sm_80 failed"):
        COMPILE[compiler](tmp_path, code, ["k"], "sm_80", "ptx")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed here (the module check above "
                                         "runs with NVRTC)")
@pytest.mark.parametrize("name", cuda_sources.SOURCE_FILES)
@pytest.mark.parametrize("arch", ARCHS)
def test_each_source_file_compiles_on_its_own(tmp_path, name, arch):
    """Each .cu file includes what it uses: nvcc compiles it alone, from its folder."""
    result = subprocess.run(
        [NVCC, f"-arch={arch}", "-c", *cuda_sources.COMPILE_OPTIONS, "-Werror", "all-warnings",
         "-o", str(tmp_path / f"{name}.o"), str(cuda_sources.CUDA_DIR / name)],
        capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), \
        f"nvcc {name} for {arch} failed:\n{result.stderr}"


def test_the_module_is_one_text_with_each_header_once():
    code = cuda_sources.source()
    assert "#include" not in code
    assert code.count((cuda_sources.CUDA_DIR / "common.cuh").read_text()) == 1
