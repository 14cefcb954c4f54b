"""fastfnn.bench.command (``fastfnn bench``): a tiny run and its JSON, and option errors."""

import argparse
import json

import pytest

from fastfnn.bench import command, workloads


def test_tiny_run_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    status = command.main(["--rows", "200", "--reps", "1", "--backends", "numpy", "--compare", "loop",
                         "--synthetic", "--settle", "0", "--json", str(path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "784-128-64-10" in printed and "fastfnn[numpy]" in printed and "floor" in printed
    payload = json.loads(path.read_text())
    assert payload["rows"] == 200 and payload["reps"] == 1 and payload["settle_s"] == 0
    assert payload["backends"] == ["numpy"] and payload["comparisons"] == ["loop"]
    assert payload["isolated"] is False and payload["dtype"] == "float32"  # the seed's defaults
    assert "cpu" in payload["machine"] and "OPENBLAS_CORETYPE" in payload["machine"]
    results = payload["results"]
    assert {r["workload"] for r in results} == {w.key for w in workloads.WORKLOADS}
    assert {r["variant"] for r in results} == {"fastfnn[numpy]", "numpy loop", "floor", "bound"}
    for r in results:
        assert len(r["times_s"]) == 1 and r["median_s"] > 0 and r["gflops"] > 0
        assert r["ratio_to_torch"] is None and r["ratio_to_floor"] > 0 and r["ratio_to_bound"] > 0
    full = next(r for r in results if r["workload"] == "784-10-10" and r["kind"] == "fastfnn")
    assert full["steps"] == 1 and full["path"] in ("fused", "composed")


@pytest.mark.parametrize("argv, message", [
    (["--backends", "nosuch"], "unknown backend"),
    (["--compare", "jax"], "unknown comparison"),
    (["--workloads", "1-2-3"], "unknown workload"),
    (["--workloads", "dense7/*"], "unknown workload 'dense7/*'"),
    (["--matrix", "--workloads", "784-10"], "--matrix and --workloads"),
    (["--rows", "0"], "--rows"),
    (["--reps", "0"], "--reps"),
    (["--settle", "-1"], "--settle"),
])
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    assert command.main([*argv, "--synthetic"]) == 2
    assert message in capsys.readouterr().err


def test_matrix_rows_in_worker_processes_as_markdown(tmp_path, capsys):
    path = tmp_path / "bench.json"
    status = command.main(["--workloads", "dense100/b200/f64/adam,784-10", "--rows", "64", "--reps",
                           "1", "--backends", "numpy", "--compare", "loop", "--synthetic",
                           "--settle", "0", "--markdown", "--json", str(path)])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("- fastfnn bench: 64 rows") and "dtype and solver per workload" in lines[0]
    assert "each variant in its own worker process" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| workload | variant | path |") and "/ numpy" in table[0]
    assert any(line.startswith("| dense100/b200/f64/adam | fastfnn[numpy] |") for line in table)
    assert any("not run: numpy loop on dense100/b200/f64/adam: the hand-written NumPy loop is "
               "float32 SGD only" in line for line in lines)
    payload = json.loads(path.read_text())
    assert payload["isolated"] is True and payload["dtype"] == "per workload"
    by = {(r["workload"], r["variant"]): r for r in payload["results"]}
    timed = ("fastfnn[numpy]", "floor", "bound")
    assert set(by) == {(key, name) for key in ("dense100/b200/f64/adam", "784-10")
                       for name in timed} | {("784-10", "numpy loop")}
    assert "/ bound" in table[0] and by[("784-10", "bound")]["ratio_to_bound"] == 1.0
    dense = by[("dense100/b200/f64/adam", "fastfnn[numpy]")]
    assert (dense["dtype"], dense["solver"], dense["rows"], dense["ratio_to_numpy"]) == (
        "float64", "adam", 64, 1.0)
    assert by[("784-10", "floor")]["ratio_to_floor"] == 1.0 and dense["loss"] > 0


def test_matrix_option_selects_the_matrix_in_worker_processes():
    args = command.add_arguments(argparse.ArgumentParser())
    plan = command._resolve_options(args.parse_args(["--matrix", "--backends", "numpy",
                                                     "--compare", "torch"]))
    assert plan.workloads == list(workloads.MATRIX) and plan.isolate is True
    assert plan.names == ["fastfnn[numpy]", "pytorch", "floor", "bound"]
    assert plan.source.rows_for(workloads.WORKLOADS_BY_KEY["dense100/b1/f32/sgd"]) == 4000
    assert command._resolve_options(args.parse_args(["--matrix", "--no-isolate"])).isolate is False
    assert command._resolve_options(args.parse_args(["--workloads", "784-10", "--isolate"])).isolate
    assert not command._resolve_options(args.parse_args(["--workloads", "784-10"])).isolate
    plan = command._resolve_options(args.parse_args(["--workloads", "wide/*/f32/*", "--rows", "9"]))
    assert [w.key for w in plan.workloads] == ["wide/b32/f32/adam", "wide/b200/f32/adam"]
    assert plan.isolate and plan.source.rows_for(plan.workloads[0]) == 9


@pytest.mark.parametrize("threads", ["0", "-3"])
def test_torch_threads_below_one_is_a_usage_error(threads, capsys):
    assert command.main(["--torch-threads", threads, "--synthetic", "--rows", "10", "--reps", "1",
                         "--backends", "numpy", "--compare", "none", "--settle", "0"]) == 2
    assert f"--torch-threads must be at least 1, got {threads}" in capsys.readouterr().err


def test_an_unknown_backend_exits_2_and_an_unavailable_one_1_in_train_s_words(capsys,
                                                                             monkeypatch):
    from fastfnn.kernels import backend_class

    monkeypatch.setattr(backend_class("numba"), "availability",
                        classmethod(lambda cls: (False, "numba is not installed")))
    assert command.main(["--backends", "bogus", "--synthetic"]) == 2
    assert ("argument --backends: unknown backend 'bogus'; expected one of ["
            in capsys.readouterr().err)
    assert command.main(["--backends", "numba", "--synthetic"]) == 1
    assert capsys.readouterr().err == ("fastfnn bench: error: backend 'numba' is not available: "
                                       "numba is not installed\n")


def test_json_path_is_checked_before_any_timing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(command, "measure_workload", lambda *a, **k: pytest.fail("timed"))
    status = command.main(["--json", str(tmp_path / "no" / "bench.json"), "--backends", "numpy",
                           "--synthetic", "--settle", "0"])
    assert status == 1
    target = tmp_path / "no" / "bench.json"
    assert capsys.readouterr().err == (f"fastfnn bench: error: --json {target}: "
                                       f"folder {tmp_path / 'no'} does not exist, expected an "
                                       "existing folder\n")


def test_matrix_rows_print_and_save_the_goals(tmp_path, capsys, monkeypatch):
    """The goals' counts (fastfnn.bench.goals) follow the table and go into the JSON."""
    def timed(workload, variants, reps, *args):
        return [{"name": name, "kind": "", "path": "", "first_epoch_s": 1.0, "times_s": [t]}
                for name, t in (("fastfnn[numba]", 0.3), ("fastfnn[numpy]", 0.2), ("floor", 0.3),
                                ("bound", 0.1))]

    monkeypatch.setattr(command, "measure_workload", timed)
    path = tmp_path / "bench.json"
    status = command.main(["--workloads", "dense100/b200/f32/sgd", "--backends", "numpy",
                           "--compare", "none", "--synthetic", "--rows", "64", "--reps", "1",
                           "--no-isolate", "--json", str(path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert ("goal <= 1.0x fastfnn[numpy], fastfnn[numba] on the matrix rows: 0 of 1 by median "
            "epochs, 0 by fastest epochs; misses, median (fastest): dense100/b200/f32/sgd 1.500x "
            "(1.500x; asks 2.00x the bound)") in printed
    assert "goal batch >= 200: <= 1.15x the floor, fastfnn[numba] on the matrix rows: 1 of 1" in printed
    saved = json.loads(path.read_text())["goals"]
    assert [(c["goal"], c["met_median"]) for c in saved] == [
        ("<= 1.0x fastfnn[numpy]", 0), ("batch >= 200: <= 1.15x the floor", 1)]
