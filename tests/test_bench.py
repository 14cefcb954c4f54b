"""fastfnn.bench: flop counting, the table, the JSON, option errors, and that the variants it compares
train the same network the same way."""

import json

import numpy as np
import pytest

from fastfnn import bench


def test_batch_sizes_cover_every_row_once():
    assert bench.batch_sizes(10, 4) == [4, 4, 2]
    assert bench.batch_sizes(8, 4) == [4, 4]
    assert bench.batch_sizes(10, None) == [10]
    assert bench.batch_sizes(3, 128) == [3]
    assert bench.batch_sizes(5, 1) == [1] * 5


def test_step_gemms_forward_then_backward_without_first_input_grad():
    assert bench.step_gemms((784, 128, 64, 10), 32) == [
        (32, 784, 128), (32, 128, 64), (32, 64, 10),  # forward
        (64, 32, 10), (32, 10, 64),                   # last layer: weight grad, input grad
        (128, 32, 64), (32, 64, 128),
        (784, 32, 128),                               # first layer: weight grad only
    ]
    assert bench.step_gemms((784, 10), 1) == [(1, 784, 10), (784, 1, 10)]


def test_epoch_flops_counts_forward_once_backward_twice_except_first_layer():
    n = 1000
    f = [2 * n * 784 * 128, 2 * n * 128 * 64, 2 * n * 64 * 10]
    expected = f[0] * 2 + f[1] * 3 + f[2] * 3
    assert bench.epoch_flops((784, 128, 64, 10), n, 128) == expected
    # Independent of the batching: the GEMMs' rows add up to n whatever the batch size.
    assert bench.epoch_flops((784, 128, 64, 10), n, 1) == expected
    assert bench.epoch_flops((784, 128, 64, 10), n, None) == expected
    assert bench.epoch_flops((784, 10), 60000, 1) == 2 * 2 * 60000 * 784 * 10


def _records():
    return [{"name": n, "kind": k, "path": p, "first_epoch_s": first, "times_s": times}
            for n, k, p, first, times in [
                ("fastfnn[numpy]", "fastfnn", "composed", 0.5, [0.2, 0.1, 0.3]),
                ("pytorch", "pytorch", "", 0.6, [0.4, 0.4, 0.4]),
                ("floor", "floor", "GEMMs only", 0.1, [0.05, 0.05, 0.06]),
            ]]


def test_summarize_medians_ratios_and_gflops():
    wl = bench.WORKLOADS_BY_KEY["784-128-10"]
    out = {r["variant"]: r for r in bench.summarize(wl, 1000, _records())}
    flops = bench.epoch_flops(wl.sizes, 1000, wl.batch_size)
    mine = out["fastfnn[numpy]"]
    assert mine["median_s"] == 0.2 and mine["min_s"] == 0.1
    assert mine["ratio_to_torch"] == pytest.approx(0.5)
    assert mine["ratio_to_floor"] == pytest.approx(4.0)
    assert mine["gflops"] == pytest.approx(flops / 0.2 / 1e9)
    assert mine["steps"] == 8 and mine["gemm_flops"] == flops
    assert out["pytorch"]["ratio_to_torch"] == pytest.approx(1.0)


def test_summarize_without_torch_has_no_ratio():
    records = [r for r in _records() if r["name"] != "pytorch"]
    out = bench.summarize(bench.WORKLOADS[0], 500, records)
    assert all(r["ratio_to_torch"] is None for r in out)


def test_format_table_text_and_markdown():
    wl1, wl2 = bench.WORKLOADS[0], bench.WORKLOADS[2]
    no_torch = [r for r in _records() if r["name"] != "pytorch"]
    results = bench.summarize(wl1, 1000, _records()) + bench.summarize(wl2, 1000, no_torch)
    text = bench.format_table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["workload", "variant", "path"]
    assert "GFLOP/s" in lines[0] and "/ torch" in lines[0]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "" in lines  # a blank line between workloads
    row = next(line for line in lines if line.startswith(wl1.key) and "fastfnn[numpy]" in line)
    assert "0.2000" in row and "0.50x" in row and "4.00x" in row
    row = next(line for line in lines if line.startswith(wl2.key) and "fastfnn[numpy]" in line)
    assert " - " in row  # no PyTorch timing for this workload
    md = bench.format_table(results, markdown=True).splitlines()
    assert md[0].startswith("| workload | variant |") and md[1].startswith("|---|---|")
    assert len(md) == 2 + len(results)


def test_warmup_overhead_sums_first_minus_median():
    results = bench.summarize(bench.WORKLOADS[0], 100, _records())
    extra = bench.warmup_overhead(results)
    assert extra["fastfnn[numpy]"] == pytest.approx(0.3)
    assert extra["floor"] == pytest.approx(0.05)


def test_synthetic_data_is_mnist_shaped():
    data = bench.synthetic_mnist(500)
    assert data.X.shape == (500, 784) and data.X.dtype == np.uint8
    assert data.y.dtype == np.int64 and set(np.unique(data.y)) <= set(range(10))
    assert 0.75 < np.mean(data.X == 0) < 0.85
    floats = data.floats()
    assert floats.dtype == np.float32 and floats.max() <= 1.0


def test_tiny_run_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    status = bench.main(["--rows", "200", "--reps", "1", "--backends", "numpy", "--compare", "loop",
                         "--synthetic", "--settle", "0", "--json", str(path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "784-128-64-10" in printed and "fastfnn[numpy]" in printed and "floor" in printed
    payload = json.loads(path.read_text())
    assert payload["rows"] == 200 and payload["reps"] == 1 and payload["settle_s"] == 0
    assert payload["backends"] == ["numpy"] and payload["comparisons"] == ["loop"]
    assert "cpu" in payload["machine"] and "OPENBLAS_CORETYPE" in payload["machine"]
    results = payload["results"]
    assert {r["workload"] for r in results} == set(bench.WORKLOADS_BY_KEY)
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
    assert bench.main([*argv, "--synthetic"]) == 2
    assert message in capsys.readouterr().err


def _first_epoch_losses(workload, rows, names):
    data = bench.synthetic_mnist(rows, seed=3)
    made = {"fastfnn[numpy]": lambda: bench.FastFNNVariant("numpy", workload, data),
            "numpy loop": lambda: bench.NumpyLoopVariant(workload, data),
            "pytorch": lambda: bench.TorchVariant(workload, data, 1)}
    return {name: [v.epoch() for _ in range(2)] for name, v in
            ((name, made[name]()) for name in names)}


@pytest.mark.parametrize("key", list(bench.WORKLOADS_BY_KEY))
def test_compared_variants_train_the_same_network(key):
    """Same weights, same row order, same SGD: the same mean losses, epoch after epoch."""
    wl = bench.WORKLOADS_BY_KEY[key]
    rows = 40 if wl.batch_size == 1 else 300
    losses = _first_epoch_losses(wl, rows, ["fastfnn[numpy]", "numpy loop"])
    np.testing.assert_allclose(losses["numpy loop"], losses["fastfnn[numpy]"], rtol=1e-4)


def test_pytorch_variant_trains_the_same_network():
    pytest.importorskip("torch")
    wl = bench.WORKLOADS_BY_KEY["784-128-64-10"]
    losses = _first_epoch_losses(wl, 300, ["fastfnn[numpy]", "pytorch"])
    np.testing.assert_allclose(losses["pytorch"], losses["fastfnn[numpy]"], rtol=1e-4)


def test_a_failing_variant_is_reported_and_the_others_timed():
    class Broken(bench.Variant):
        name = "broken"

        def epoch(self):
            raise RuntimeError("boom")

    class Fine(bench.Variant):
        name = "fine"

        def epoch(self):
            return 0.0

    skipped = {}
    records = bench.measure_workload(bench.WORKLOADS[0], [Broken(), Fine()], 2, settle=0,
                                     skipped=skipped)
    assert [r["name"] for r in records] == ["fine"] and len(records[0]["times_s"]) == 2
    assert "boom" in skipped["broken on 784-128-64-10"]


def test_first_fit_overhead_runs_two_fresh_processes():
    record = bench.first_fit_overhead("numpy", 300, synthetic=True)
    assert record["backend"] == "numpy" and record["rows"] == 300
    for run in ("cold", "warm"):
        times = record[run]
        assert set(times) == {"import_and_load_s", "first_fit_s", "second_fit_s"}
        assert all(t > 0 for t in times.values())
        assert record[f"{run}_extra_s"] == pytest.approx(
            max(0.0, times["first_fit_s"] - times["second_fit_s"]))


def test_first_fit_overhead_reports_a_failing_child():
    with pytest.raises(RuntimeError, match="first-fit process failed"):
        bench.first_fit_times("no-such-backend", ".", 10, synthetic=True)
