"""Issue 11's goals counted on a run's ``fastfnn[numba]`` rows of the matrix (``--matrix``).

The goals, ratios of one run: every matrix row at most 1.0x FastFNN's NumPy backend and 0.8x
PyTorch, the dense rows at batch 32 at most 0.35x PyTorch, and rows of 200 and more rows a step
within 1.15x their GEMM floor. Each goal is counted twice: by median epochs (the table's ratios,
what the goals name) and by fastest epochs (a variant's quickest epoch over the other's), which
the bursts of a shared machine move less; a row whose two counts differ is one to measure again.
A miss also says what its goal asks in units of the row's bound (the epoch's GEMMs shared out over
the cores with nothing lost, :class:`fastfnn.bench.variants.BoundVariant`): a goal that asks less
than 1.0x the bound is out of reach of any epoch of those products on that machine.
"""

from __future__ import annotations

from collections import namedtuple

from fastfnn.bench.measure import NUMPY
from fastfnn.bench.variants import BOUND, FLOOR, TORCH
from fastfnn.bench.workloads import MATRIX

#: The variant the goals are about.
NUMBA = "fastfnn[numba]"
_MATRIX_KEYS = frozenset(w.key for w in MATRIX)

#: label: how a report names it; over: the variant divided by; limit: the largest ratio that
#: meets it; applies: whether a Numba result record (measure.summarize) falls under it.
Goal = namedtuple("Goal", ["label", "over", "limit", "applies"])


def _dense_batch_32(record):
    return record["inputs"] == "dense" and record["batch_size"] == 32


GOALS = (
    Goal("<= 1.0x fastfnn[numpy]", NUMPY, 1.0, lambda r: True),
    Goal("<= 0.8x PyTorch (dense batch 32 aside)", TORCH, 0.8, lambda r: not _dense_batch_32(r)),
    Goal("dense batch 32: <= 0.35x PyTorch", TORCH, 0.35, _dense_batch_32),
    Goal("batch >= 200: <= 1.15x the floor", FLOOR, 1.15,
         lambda r: r["batch_size"] is not None and r["batch_size"] >= 200),
)


def tally(results):
    """Each goal's count over ``results`` (records of measure.summarize): a list of dicts with
    goal (its label), limit, rows (the matrix rows it applies to whose comparison variant was
    timed), met_median, met_fastest (how many meet it by median and by fastest epochs) and misses
    (workload, median ratio, fastest ratio: float, for each row that misses by either). Goals
    that no timed row falls under are left out; so is everything when no matrix row ran. A miss
    also has asks_bound: the goal's time (limit x the other variant's median) over the row's
    bound's median, None where the bound was not timed."""
    by_key = {(r["workload"], r["variant"]): r for r in results}
    numba = [r for r in results if r["variant"] == NUMBA and r["workload"] in _MATRIX_KEYS]
    counts = []
    for goal in GOALS:
        rows = []
        for r in numba:
            other = by_key.get((r["workload"], goal.over))
            if goal.applies(r) and other is not None:
                bound = by_key.get((r["workload"], BOUND))
                rows.append({"workload": r["workload"],
                             "median_ratio": r["median_s"] / other["median_s"],
                             "fastest_ratio": r["min_s"] / other["min_s"],
                             "asks_bound": (goal.limit * other["median_s"] / bound["median_s"]
                                            if bound else None)})
        if not rows:
            continue
        counts.append({
            "goal": goal.label, "limit": goal.limit, "rows": len(rows),
            "met_median": sum(row["median_ratio"] <= goal.limit for row in rows),
            "met_fastest": sum(row["fastest_ratio"] <= goal.limit for row in rows),
            "misses": [row for row in rows
                       if max(row["median_ratio"], row["fastest_ratio"]) > goal.limit],
        })
    return counts


def goal_lines(counts):
    """The lines a report prints for :func:`tally`'s ``counts``: a line per goal, its misses."""
    lines = []
    for c in counts:
        misses = ", ".join(f"{m['workload']} {m['median_ratio']:.3f}x ({m['fastest_ratio']:.3f}x"
                           + (f"; asks {m['asks_bound']:.2f}x the bound"
                              if m["asks_bound"] is not None else "") + ")"
                           for m in c["misses"])
        lines.append(f"goal {c['goal']}, {NUMBA} on the matrix rows: {c['met_median']} of "
                     f"{c['rows']} by median epochs, {c['met_fastest']} by fastest epochs"
                     + (f"; misses, median (fastest): {misses}" if misses else ""))
    return lines
