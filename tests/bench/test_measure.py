"""fastfnn.bench.measure: medians, ratios and GFLOP/s of timing records; a failing variant is dropped
with its reason and the others are timed."""

import pytest

from fastfnn.bench import measure, variants, workloads


def test_summarize_medians_ratios_and_gflops(records):
    wl = workloads.WORKLOADS_BY_KEY["784-128-10"]
    out = {r["variant"]: r for r in measure.summarize(wl, 1000, records)}
    flops = workloads.epoch_flops(wl.sizes, 1000, wl.batch_size)
    mine = out["fastfnn[numpy]"]
    assert mine["median_s"] == 0.2 and mine["min_s"] == 0.1
    assert mine["ratio_to_torch"] == pytest.approx(0.5)
    assert mine["ratio_to_floor"] == pytest.approx(4.0)
    assert mine["ratio_to_bound"] == pytest.approx(8.0)
    assert mine["gflops"] == pytest.approx(flops / 0.2 / 1e9)
    assert mine["steps"] == 8 and mine["gemm_flops"] == flops
    assert out["pytorch"]["ratio_to_torch"] == pytest.approx(1.0)
    no_bound = [r for r in records if r["name"] != "bound"]
    assert all(r["ratio_to_bound"] is None for r in measure.summarize(wl, 1000, no_bound))


def test_summarize_without_torch_has_no_ratio(records):
    no_torch = [r for r in records if r["name"] != "pytorch"]
    out = measure.summarize(workloads.WORKLOADS[0], 500, no_torch)
    assert all(r["ratio_to_torch"] is None for r in out)


def test_a_failing_variant_is_reported_and_the_others_timed():
    class Broken(variants.Variant):
        name = "broken"

        def epoch(self):
            raise RuntimeError("boom")

    class Fine(variants.Variant):
        name = "fine"

        def epoch(self):
            return 0.0

    skipped = {}
    records = measure.measure_workload(workloads.WORKLOADS[0], [Broken(), Fine()], 2, settle=0,
                                     skipped=skipped)
    assert [r["name"] for r in records] == ["fine"] and len(records[0]["times_s"]) == 2
    assert "boom" in skipped["broken on 784-128-64-10"]


def test_summarize_ratio_to_fastfnn_numpy_and_workload_fields(records):
    wl = workloads.WORKLOADS_BY_KEY["dense100/b32/f64/adam"]
    out = {r["variant"]: r for r in measure.summarize(wl, 400, records)}
    assert out["pytorch"]["ratio_to_numpy"] == pytest.approx(2.0)
    assert out["floor"]["ratio_to_numpy"] == pytest.approx(0.25)
    assert (out["floor"]["dtype"], out["floor"]["solver"], out["floor"]["inputs"]) == (
        "float64", "adam", "dense")
    no_numpy = [r for r in records if r["name"] != "fastfnn[numpy]"]
    assert all(r["ratio_to_numpy"] is None for r in measure.summarize(wl, 400, no_numpy))


def test_a_variant_failing_in_a_timed_epoch_is_dropped_and_the_rounds_go_on():
    class FailsSecond(variants.Variant):
        name = "flaky"
        calls = 0

        def epoch(self):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("second")
            return 1.0

    class Fine(variants.Variant):
        name = "fine"

        def epoch(self):
            return 0.5

    skipped = {}
    records = measure.measure_workload(workloads.WORKLOADS[0], [FailsSecond(), Fine()], 3, settle=0,
                                     skipped=skipped)
    assert [(r["name"], len(r["times_s"]), r["loss"]) for r in records] == [("fine", 3, 0.5)]
    assert skipped == {"flaky on 784-128-64-10": "timed epoch 1 failed: RuntimeError('second')"}
