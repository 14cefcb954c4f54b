"""fastfnn.bench.command (``fastfnn bench``): a tiny run and its JSON, and option errors."""

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
    assert "cpu" in payload["machine"] and "OPENBLAS_CORETYPE" in payload["machine"]
    results = payload["results"]
    assert {r["workload"] for r in results} == {w.key for w in workloads.WORKLOADS}
    assert {r["variant"] for r in results} == {"fastfnn[numpy]", "numpy loop", "floor"}
    for r in results:
        assert len(r["times_s"]) == 1 and r["median_s"] > 0 and r["gflops"] > 0
        assert r["ratio_to_torch"] is None and r["ratio_to_floor"] > 0
    full = next(r for r in results if r["workload"] == "784-10-10" and r["kind"] == "fastfnn")
    assert full["steps"] == 1 and full["path"] in ("fused", "composed")


@pytest.mark.parametrize("argv, message", [
    (["--backends", "nosuch"], "unknown backend"),
    (["--compare", "jax"], "unknown comparison"),
    (["--workloads", "1-2-3"], "unknown workload"),
    (["--rows", "0"], "--rows"),
    (["--reps", "0"], "--reps"),
    (["--settle", "-1"], "--settle"),
])
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    assert command.main([*argv, "--synthetic"]) == 2
    assert message in capsys.readouterr().err
