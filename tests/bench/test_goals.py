"""fastfnn.bench.goals: issue 11's goals counted on the Numba rows of the matrix."""

from fastfnn.bench import goals, measure, workloads


def _results(key, **times):
    """measure.summarize's records of matrix workload ``key``: variant name -> epoch times."""
    names = {"numba": "fastfnn[numba]", "numpy": "fastfnn[numpy]", "torch": "pytorch",
             "floor": "floor", "bound": "bound"}
    records = [{"name": names[name], "kind": name, "path": "", "first_epoch_s": 1.0,
                "times_s": list(t)} for name, t in times.items()]
    return measure.summarize(workloads.WORKLOADS_BY_KEY[key], 1000, records)


def _by_goal(counts):
    return {c["goal"]: c for c in counts}


def test_counts_each_goal_by_median_and_by_fastest_epochs():
    results = (
        # dense batch 32: 0.3 / 1.0 by medians, 0.1 / 0.5 by fastest epochs
        _results("dense100/b32/f32/sgd", numba=[0.1, 0.3, 0.3], numpy=[0.4] * 3,
                 torch=[1.0, 1.0, 0.5], floor=[0.2] * 3)
        # twice NumPy's time, 2/3 of PyTorch's, 4/3 of the floor's
        + _results("dense100/b200/f32/adam", numba=[0.2] * 3, numpy=[0.1] * 3,
                   torch=[0.3] * 3, floor=[0.15] * 3)
        # meets 0.8x PyTorch by median (0.24 / 0.4) but not by fastest epochs (0.24 / 0.2); that
        # goal's 0.8 * 0.4 s is 0.8x the bound's 0.4 s
        + _results("wide/b200/f64/adam", numba=[0.24] * 3, numpy=[1.0] * 3,
                   torch=[0.4, 0.4, 0.2], floor=[0.3] * 3, bound=[0.4] * 3)
        # a seed workload: outside the matrix, whatever its ratios
        + _results("784-128-64-10", numba=[9.0] * 3, numpy=[0.1] * 3, torch=[0.1] * 3,
                   floor=[0.1] * 3))
    counts = _by_goal(goals.tally(results))
    assert list(counts) == [g.label for g in goals.GOALS]

    numpy = counts["<= 1.0x fastfnn[numpy]"]
    assert (numpy["rows"], numpy["met_median"], numpy["met_fastest"]) == (3, 2, 2)
    assert [m["workload"] for m in numpy["misses"]] == ["dense100/b200/f32/adam"]
    assert numpy["misses"][0]["median_ratio"] == 2.0
    assert numpy["misses"][0]["asks_bound"] is None  # no bound timed on that row

    torch = counts["<= 0.8x PyTorch (dense batch 32 aside)"]
    assert (torch["rows"], torch["met_median"], torch["met_fastest"]) == (2, 2, 1)
    (miss,) = torch["misses"]
    assert miss["workload"] == "wide/b200/f64/adam"
    assert (round(miss["median_ratio"], 6), round(miss["fastest_ratio"], 6)) == (0.6, 1.2)
    assert round(miss["asks_bound"], 6) == 0.8

    batch_32 = counts["dense batch 32: <= 0.35x PyTorch"]
    assert (batch_32["rows"], batch_32["met_median"], batch_32["met_fastest"]) == (1, 1, 1)
    assert batch_32["misses"] == []

    floor = counts["batch >= 200: <= 1.15x the floor"]
    assert (floor["rows"], floor["met_median"], floor["met_fastest"]) == (2, 1, 1)
    assert [m["workload"] for m in floor["misses"]] == ["dense100/b200/f32/adam"]

    lines = goals.goal_lines(goals.tally(results))
    assert len(lines) == 4
    assert lines[1].startswith("goal <= 0.8x PyTorch (dense batch 32 aside), fastfnn[numba] on "
                               "the matrix rows: 2 of 2 by median epochs, 1 by fastest epochs; "
                               "misses, median (fastest): wide/b200/f64/adam 0.600x (1.200x; "
                               "asks 0.80x the bound)")
    assert "misses" not in lines[2]


def test_goals_without_their_comparison_or_without_matrix_rows_are_left_out():
    no_torch = _results("dense1000/b1024/f64/sgd", numba=[0.1] * 3, numpy=[0.2] * 3,
                        floor=[0.1] * 3)
    assert [c["goal"] for c in goals.tally(no_torch)] == [
        "<= 1.0x fastfnn[numpy]", "batch >= 200: <= 1.15x the floor"]
    seed_only = _results("784-10", numba=[0.1] * 3, numpy=[0.2] * 3, floor=[0.1] * 3)
    assert goals.tally(seed_only) == [] and goals.goal_lines([]) == []
    no_numba = _results("dense100/b200/f32/sgd", numpy=[0.2] * 3, floor=[0.1] * 3)
    assert goals.tally(no_numba) == []
