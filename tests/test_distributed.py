"""fastfnn.distributed on one machine: searches under Dask's and Ray's joblib backends and Ray
Tune give the serial run's scores, with workers warmed by the plugin / runtime_env and running their
share of threads; data-parallel fits average the workers' shard fits. Small data, so each engine's
tests take seconds beyond its start-up."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastfnn import FastFNN, FastFNNRegressor
from fastfnn.distributed import (WarmupPlugin, average_states, epochs_trainable,
                                 fit_data_parallel, ray_runtime_env, warm_worker)
from fastfnn.kernels.threads import process_share
from .conftest import blobs

sklearn_model_selection = pytest.importorskip("sklearn.model_selection")
joblib = pytest.importorskip("joblib")
numba = pytest.importorskip("numba")

#: What the workers compile: the blobs are float64, fitted with float32 weights.
WARM = {"backend": "numba", "dtypes": ("float32",), "inputs": ("float",)}


def searches():
    """A grid and a randomized search, 4 candidates x 3 folds each, of a small net."""
    model = FastFNN(hidden_layer_sizes=(16,), max_iter=4, batch_size=32, random_state=0,
                    backend="numba")
    grid = {"learning_rate_init": [0.01, 0.1], "alpha": [1e-4, 1e-2]}
    return [sklearn_model_selection.GridSearchCV(model, grid, cv=3, n_jobs=2),
            sklearn_model_selection.RandomizedSearchCV(model, grid, n_iter=4, cv=3, n_jobs=2,
                                                       random_state=0)]


def split_scores(search):
    """Every candidate's test score on every fold, (folds, candidates)."""
    return np.array([search.cv_results_[f"split{i}_test_score"] for i in range(3)])


@pytest.fixture(scope="module")
def data():
    X, y = blobs(n=240, n_features=12, n_classes=3, spread=1.5)
    serial = []
    with joblib.parallel_config(backend="sequential"):
        for search in searches():
            serial.append(split_scores(search.fit(X, y)))
    return X, y, serial


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="Dask's distributed is not installed "
                                      "(pip install -e '.[dask]')")
    environ = dict(os.environ)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.register_plugin(WarmupPlugin(**WARM))
        yield client
    # The nanny sets OMP_NUM_THREADS=1 (its pre-spawn-environ) in this process too, for good:
    # the tests after these would otherwise fit with one thread.
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env=ray_runtime_env(**WARM))
    yield ray
    ray.shutdown()


def test_warm_worker_reports_what_it_compiled():
    report = warm_worker(**WARM)
    assert report["backend"] == "numba"
    assert [line for line, _ in report["done"]] == ["float32 weights, float inputs"]


def test_ray_runtime_env_names_its_hook_and_the_shared_cache(tmp_path):
    env = ray_runtime_env(cache_dir=tmp_path, **WARM)
    assert env["env_vars"] == {"NUMBA_CACHE_DIR": str(tmp_path)}
    hook = env["worker_process_setup_hook"]
    assert hook.__name__ == "warm_worker"   # Ray names the hook by it
    assert hook.keywords == {"backend": "numba", "dtypes": ("float32",), "inputs": ("float",)}
    assert "env_vars" not in ray_runtime_env()


def test_dask_workers_are_warmed_and_run_one_thread_each(dask_client):
    plugins = dask_client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert all(WarmupPlugin.name in names for names in plugins.values())
    # The nanny sets OMP_NUM_THREADS=1; Numba alone would have run a thread per core.
    assert set(dask_client.run(lambda: process_share(numba)).values()) == {1}


def test_searches_under_dask_score_as_serial(data, dask_client):
    X, y, serial = data
    with joblib.parallel_config(backend="dask"):
        for search, expected in zip(searches(), serial):
            np.testing.assert_array_equal(split_scores(search.fit(X, y)), expected)


def test_ray_workers_run_one_thread_each(ray_session):
    share = ray_session.remote(lambda: process_share(numba))
    assert ray_session.get([share.remote() for _ in range(2)]) == [1, 1]


def test_searches_under_ray_score_as_serial(data, ray_session):
    from ray.util.joblib import register_ray

    X, y, serial = data
    register_ray()
    with joblib.parallel_config(backend="ray"):
        for search, expected in zip(searches(), serial):
            np.testing.assert_array_equal(split_scores(search.fit(X, y)), expected)


def test_tune_with_asha_reports_the_serial_epochs(ray_session, tmp_path):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    X, y = blobs(n=200, n_features=12, n_classes=3, spread=1.5)
    X_val, y_val = X[150:], y[150:]
    X, y = X[:150], y[:150]
    base = {"hidden_layer_sizes": (8,), "batch_size": 32, "random_state": 0, "backend": "numba"}
    rates = [1e-4, 1e-3, 0.01, 0.1]
    tuner = tune.Tuner(
        tune.with_parameters(epochs_trainable, X=X, y=y, X_val=X_val, y_val=y_val, epochs=4),
        param_space={**base, "learning_rate_init": tune.grid_search(rates)},
        tune_config=tune.TuneConfig(metric="accuracy", mode="max", scheduler=ASHAScheduler(
            max_t=4, grace_period=1, reduction_factor=2, time_attr="epoch")),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    assert not results.errors
    for result in results:
        reported = list(result.metrics_dataframe["accuracy"])
        assert 1 <= len(reported) <= 4
        model = FastFNN(**{**base, "learning_rate_init": result.config["learning_rate_init"]})
        serial = [model.partial_fit(X, y, classes=np.unique(y)).score(X_val, y_val)
                  for _ in reported]
        assert reported == serial


def test_average_states_weighs_weights_and_optimizer_state():
    X, y = blobs(n=60, n_features=5, n_classes=3)
    a = FastFNN(hidden_layer_sizes=(4,), solver="sgd", random_state=0).partial_fit(
        X, y, classes=[0, 1, 2]).fitted_state_
    b = FastFNN(hidden_layer_sizes=(4,), solver="sgd", random_state=1).partial_fit(
        X, y, classes=[0, 1, 2]).fitted_state_
    mean = average_states([a, b], [1, 3])
    for got, first, second in [*zip(mean.coefs, a.coefs, b.coefs),
                               *zip(mean.optimizer.groups[0], a.optimizer.groups[0],
                                    b.optimizer.groups[0])]:
        assert got.dtype == first.dtype
        np.testing.assert_allclose(got, 0.25 * first + 0.75 * second, rtol=1e-6, atol=1e-7)
    assert mean.history["loss"][-1] == pytest.approx(
        0.25 * a.history["loss"][-1] + 0.75 * b.history["loss"][-1])
    assert mean.t == a.t + b.t == 120  # both started from nothing: every row counts
    assert average_states([a, b], [1, 3], start_t=10).t == 10 + (a.t - 10) + (b.t - 10)
    same = average_states([a, a], [2, 5])
    for got, want in zip(same.intercepts, a.intercepts):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_data_parallel_fit_is_the_average_of_shard_fits(dask_client):
    """One round per epoch: each worker's partial_fit over its half in a seeded order, averaged."""
    X, y = blobs(n=300, n_features=12, n_classes=3, spread=1.5)
    model = FastFNN(hidden_layer_sizes=(16,), batch_size=32, max_iter=2, random_state=3,
                    learning_rate_init=0.01, solver="sgd", backend="numba")
    fitted = fit_data_parallel(model, dask_client, X, y)
    seeds, state = np.random.SeedSequence(3), None
    for _ in range(2):
        states = []
        for seed, (start, stop) in zip(seeds.spawn(2), [(0, 150), (150, 300)]):
            rows = start + np.random.default_rng(seed).permutation(150)
            shard = FastFNN(**model.get_params()) if state is None else \
                FastFNN.from_fitted_state(state)
            states.append(shard.partial_fit(X[rows], y[rows], classes=[0, 1, 2]).fitted_state_)
        state = average_states(states, [150, 150], 0 if state is None else state.t)
    for got, want in zip(fitted.coefs_ + fitted.intercepts_, state.coefs + state.intercepts):
        np.testing.assert_array_equal(got, want)
    assert fitted.n_iter_ == 2
    assert fitted.t_ == 600  # every worker's rows: 2 epochs of 300


def test_data_parallel_fit_learns_as_one_process(dask_client):
    X, y = blobs(n=400, n_features=12, n_classes=3, spread=2.0)
    model = FastFNN(hidden_layer_sizes=(16,), batch_size=20, max_iter=4, random_state=0,
                    learning_rate_init=0.01, backend="numba")
    single = FastFNN(**model.get_params()).fit(X, y).score(X, y)
    rounds = []
    often = fit_data_parallel(model, dask_client, X, y, sync_every=2,
                              on_round=lambda epoch, index, fitted: rounds.append((epoch, index)))
    assert rounds == [(e, r) for e in range(4) for r in range(5)]  # 200 rows a shard, 40 a round
    assert often.n_iter_ == 20
    assert often.score(X, y) >= single - 0.02
    again = fit_data_parallel(model, dask_client, X, y, sync_every=2)
    np.testing.assert_array_equal(again.coefs_[0], often.coefs_[0])


def test_data_parallel_shards_dask_arrays_as_arrays(dask_client):
    da = pytest.importorskip("dask.array")
    X, y = blobs(n=200, n_features=6, n_classes=3)
    model = FastFNN(hidden_layer_sizes=(8,), batch_size=20, max_iter=2, random_state=0,
                    backend="numba")
    from_arrays = fit_data_parallel(model, dask_client, X, y, sync_every=3)
    for _ in range(2):  # the same dask arrays twice: each fit holds its own shards
        from_dask = fit_data_parallel(model, dask_client, da.from_array(X, chunks=70),
                                      da.from_array(y, chunks=70), sync_every=3)
        for a, b in zip(from_arrays.coefs_, from_dask.coefs_):
            np.testing.assert_array_equal(a, b)


def test_data_parallel_fits_regressors(dask_client):
    X, y = blobs(n=200, n_features=6, n_classes=3)
    model = FastFNNRegressor(hidden_layer_sizes=(8,), batch_size=20, max_iter=3, random_state=0,
                             learning_rate_init=0.01, backend="numba")
    fitted = fit_data_parallel(model, dask_client, X, y.astype(np.float64), sync_every=2)
    assert isinstance(fitted, FastFNNRegressor) and fitted.n_iter_ == 3 * 3
    assert fitted.loss_curve_[-1] < 0.5 * fitted.loss_curve_[0]


def test_data_parallel_keeps_a_data_frames_feature_names(dask_client):
    """The fitted model had no feature_names_in_ (fit_chunks keeps them)."""
    pd = pytest.importorskip("pandas")
    X, y = blobs(n=80, n_features=4, n_classes=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = FastFNN((4,), batch_size=20, max_iter=1, random_state=0, backend="numpy")
    fitted = fit_data_parallel(model, dask_client, frame, y)
    assert fitted.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="feature names"):
        fitted.predict(frame[["d", "c", "b", "a"]])
    assert not hasattr(fit_data_parallel(model, dask_client, X, y), "feature_names_in_")


def test_data_parallel_takes_numpy_integers_and_random_states(dask_client):
    """np.int64 epochs and sync_every count as ints; a RandomState seeds the fit as fit does."""
    X, y = blobs(n=120, n_features=6, n_classes=3)
    params = dict(hidden_layer_sizes=(8,), batch_size=20, max_iter=1, backend="numpy")
    by_int = fit_data_parallel(FastFNN(random_state=0, **params), dask_client, X, y, epochs=2,
                               sync_every=2)
    by_numpy = fit_data_parallel(FastFNN(random_state=0, **params), dask_client, X, y,
                                 epochs=np.int64(2), sync_every=np.int64(2))
    assert by_numpy.n_iter_ == by_int.n_iter_ == 2 * 2   # 60 rows a shard, 40 a round
    np.testing.assert_array_equal(by_numpy.coefs_[0], by_int.coefs_[0])
    drawn = [fit_data_parallel(FastFNN(random_state=np.random.RandomState(5), **params),
                               dask_client, X, y).coefs_[0] for _ in range(2)]
    np.testing.assert_array_equal(drawn[0], drawn[1])


@pytest.mark.parametrize("change,message", [
    (dict(epochs=0), "epochs must be a positive int"),
    (dict(sync_every=0), "sync_every must be a positive int"),
    (dict(y=np.zeros(3)), "X has 40 rows but y has 3"),
    (dict(solver="lbfgs"), "need a stochastic solver"),
])
def test_data_parallel_refuses_bad_arguments(dask_client, change, message):
    X, y = blobs(n=40)
    model = FastFNN(**{k: change.pop(k) for k in ("solver",) if k in change})
    with pytest.raises(ValueError, match=message):
        fit_data_parallel(model, dask_client, X, change.pop("y", y), **change)


def test_sync_every_needs_a_batch_size(dask_client):
    X, y = blobs(n=40)
    with pytest.raises(ValueError, match="sync_every counts mini-batches"):
        fit_data_parallel(FastFNN(batch_size="auto"), dask_client, X, y, sync_every=3)
