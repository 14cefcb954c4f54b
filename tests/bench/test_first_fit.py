"""fastfnn.bench.first_fit: the cold and warm first-fit overhead from two fresh processes."""

import pytest

from fastfnn.bench import first_fit


def test_first_fit_overhead_runs_two_fresh_processes():
    record = first_fit.first_fit_overhead("numpy", 300, synthetic=True)
    assert record["backend"] == "numpy" and record["rows"] == 300
    for run in ("cold", "warm"):
        times = record[run]
        assert set(times) == {"import_and_load_s", "first_fit_s", "second_fit_s"}
        assert all(t > 0 for t in times.values())
        assert record[f"{run}_extra_s"] == pytest.approx(
            max(0.0, times["first_fit_s"] - times["second_fit_s"]))


def test_first_fit_overhead_reports_a_failing_child():
    with pytest.raises(RuntimeError, match="first-fit process failed"):
        first_fit.first_fit_times("no-such-backend", ".", 10, synthetic=True)
