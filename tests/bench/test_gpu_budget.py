"""fastfnn.bench.gpu_budget (``fastfnn bench --gpu-budget``): counts from the CUDA emulation."""

import os
import shutil

import pytest

from fastfnn.bench import command, gpu_budget

pytestmark = pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX") or "g++"),
    reason="no C++ compiler (g++, or $CXX): the CUDA emulation compiles kernels for the host")


def test_budget_table_of_a_workload(capsys):
    assert command.main(["--gpu-budget", "--workloads", "784-10,784-10-10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["workload", "path", "launches/step", "allocations/step",
                                "launches/epoch", "(graph)", "syncs/epoch"]
    per_step = lines[2].split()
    assert per_step[:2] == ["784-10", "fused"]
    assert int(per_step[2]) <= 12 and per_step[3] == "0" and int(per_step[5]) <= 2
    # a graph launch plus the copies in and out of weights and biases (SGD without momentum keeps
    # velocities too): the same for every epoch length
    assert int(per_step[4]) < 20
    assert lines[3].startswith("784-10-10") and "(1st epoch)" in lines[3]


def test_counting_outside_the_emulation_says_so(monkeypatch):
    from fastfnn.bench.workloads import WORKLOADS_BY_KEY
    from fastfnn.kernels import cupy_backend

    monkeypatch.setattr(cupy_backend, "EMULATED", False)
    with pytest.raises(RuntimeError, match="needs the CUDA emulation"):
        gpu_budget.count(WORKLOADS_BY_KEY["784-10"])


def test_an_unknown_workload_is_an_error(capsys):
    assert command.main(["--gpu-budget", "--workloads", "1-2-3"]) == 2
    assert "unknown workload '1-2-3'" in capsys.readouterr().err
