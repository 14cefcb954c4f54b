"""fastfnn.bench.isolation: variants in worker processes of their own time epochs there, a failing
variant is reported and the others go on, and no worker outlives its pool."""

import dataclasses
import os
import signal

import pytest

from fastfnn.bench import isolation, measure, workloads
from fastfnn.bench.data import DataSource

TINY = dataclasses.replace(workloads.WORKLOADS_BY_KEY["784-128-10"], rows=64)
DENSE = dataclasses.replace(workloads.WORKLOADS_BY_KEY["dense100/b32/f64/adam"], rows=64)
#: Its setup succeeds, its epoch raises (labels 0..9, five outputs).
BAD_LABELS = workloads.Workload("784-5", (784, 5), 32, 0.1, "labels beyond the outputs", rows=64)


def _gone(pool_workers):
    return all(not w.process.is_alive() and w.process.exitcode is not None for w in pool_workers)


def test_workers_time_epochs_like_this_process_and_are_gone_afterwards():
    source = DataSource(64, synthetic=True)
    names = ["fastfnn[numpy]", "floor"]
    skipped = {}
    with isolation.WorkerPool(names, source, 1) as pool:
        records = {}
        for wl in (TINY, DENSE):  # the same workers, workload after workload
            variants = pool.variants_for(wl, skipped)
            records[wl.key] = measure.measure_workload(wl, variants, 2, settle=0, skipped=skipped)
        pids = {name: w.process.pid for name, w in pool.workers.items()}
        started = list(pool.workers.values())
        assert set(pool.worker_info()) <= set(isolation.WORKER_INFO_KEYS)
    assert skipped == {} and set(pids) == set(names) and os.getpid() not in pids.values()
    assert _gone(started)
    with isolation.LocalVariants(names, source, 1) as local:
        here = measure.measure_workload(DENSE, local.variants_for(DENSE, {}), 2, settle=0)
    for there, mine in zip(records[DENSE.key], here):
        assert there["name"] == mine["name"] and len(there["times_s"]) == 2
        assert all(t > 0 for t in there["times_s"]) and there["first_epoch_s"] > 0
        assert there["loss"] == mine["loss"]  # the same training, bitwise
    assert records[DENSE.key][0]["path"] in ("fused", "composed")


def test_failing_variants_are_reported_and_the_others_timed():
    source = DataSource(64, synthetic=True)
    skipped = {}
    with isolation.WorkerPool(["fastfnn[nosuch]", "fastfnn[numpy]", "floor"], source, 1) as pool:
        variants = pool.variants_for(BAD_LABELS, skipped)
        assert [v.name for v in variants] == ["fastfnn[numpy]", "floor"]
        records = measure.measure_workload(BAD_LABELS, variants, 1, settle=0, skipped=skipped)
        assert [r["name"] for r in records] == ["floor"]
        # the worker whose epoch raised serves the next workload
        records = measure.measure_workload(TINY, pool.variants_for(TINY, skipped), 1, settle=0)
        assert [r["name"] for r in records] == ["fastfnn[numpy]", "floor"]
        started = list(pool.workers.values())
    assert "failed to set up" in skipped["fastfnn[nosuch] on 784-5"]
    assert "IndexError" in skipped["fastfnn[numpy] on 784-5"]
    assert skipped["fastfnn[numpy] on 784-5"].startswith("first epoch failed")
    assert _gone(started)


def test_a_worker_that_dies_is_reported_and_started_afresh():
    source = DataSource(64, synthetic=True)
    skipped = {}
    with isolation.WorkerPool(["fastfnn[numpy]", "floor"], source, 1) as pool:
        variants = pool.variants_for(TINY, skipped)
        first = pool.workers["fastfnn[numpy]"].process
        os.kill(first.pid, signal.SIGKILL)
        records = measure.measure_workload(TINY, variants, 1, settle=0, skipped=skipped)
        assert [r["name"] for r in records] == ["floor"]
        assert "died" in skipped["fastfnn[numpy] on 784-128-10"]
        records = measure.measure_workload(DENSE, pool.variants_for(DENSE, skipped), 1, settle=0)
        assert [r["name"] for r in records] == ["fastfnn[numpy]", "floor"]
        assert pool.workers["fastfnn[numpy]"].process is not first
        started = list(pool.workers.values())
    assert _gone(started)


def test_ctrl_c_in_the_parent_leaves_no_worker():
    source = DataSource(64, synthetic=True)
    with pytest.raises(KeyboardInterrupt):
        with isolation.WorkerPool(["floor"], source, 1) as pool:
            pool.variants_for(TINY, {})
            worker = pool.workers["floor"]
            worker.busy = True  # interrupted in the middle of a command: terminated, not asked
            raise KeyboardInterrupt
    assert not worker.process.is_alive() and worker.process.exitcode == -signal.SIGTERM


def test_workers_ignore_ctrl_c_so_the_parent_decides():
    """Ctrl-C reaches the whole process group: a worker goes on until its pool closes it."""
    with isolation.WorkerPool(["floor"], DataSource(64, synthetic=True), 1) as pool:
        variants = pool.variants_for(TINY, {})
        os.kill(pool.workers["floor"].process.pid, signal.SIGINT)
        seconds, loss = variants[0].timed_epoch()
        assert seconds > 0 and loss == 0.0
        worker = pool.workers["floor"]
    assert worker.process.exitcode == 0  # asked to close, and did
