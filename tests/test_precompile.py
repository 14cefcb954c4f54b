"""fastfnn.warmup: after it, fits, predictions and evaluations of the kinds it covered compile nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import fastfnn
from fastfnn.backends import available_backends

# Run in a fresh process with an empty Numba cache: warm up one dtype x input kind, then count the
# compiles that everything a user does with that kind starts.
_CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    from numba.core import event
    import fastfnn
    from fastfnn import FastFNN

    report = fastfnn.warmup("numba", dtypes=["float64"], inputs=["float"])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 30)) * (rng.random((300, 30)) < 0.3)
    y = rng.integers(0, 3, 300)
    Y = (rng.random((300, 4)) < 0.4).astype(int)
    warnings.simplefilter("ignore")
    with event.install_recorder("numba:compile") as rec:
        for batch in (1, 32, "auto", None):
            for solver in ("sgd", "adam"):
                model = FastFNN((20, 10), solver=solver, batch_size=batch, max_iter=2,
                                dtype="float64", backend="numba", random_state=0,
                                early_stopping=batch == 32).fit(X, y)
        model.predict_proba(X); model.evaluate(X, y)
        FastFNN((20,), dtype="float64", backend="numba", max_iter=2).fit(X, Y).predict(X)
    print(json.dumps({"compiles": len(rec.buffer), "done": len(report["done"])}))
""")


def test_warmup_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown input kind 'int'"):
        fastfnn.warmup("numpy", inputs=("int",))
    with pytest.raises(ValueError, match="unknown backend"):
        fastfnn.warmup("tpu")


def test_warmup_reports_what_it_did():
    lines = []
    report = fastfnn.warmup("numpy", dtypes=("float32",), on_done=lambda *a: lines.append(a))
    assert report["backend"] == "numpy" and report["cache"] == ""
    assert [line for line, _ in report["done"]] == ["float32 weights, uint8 inputs",
                                                     "float32 weights, float inputs"]
    assert lines == report["done"]


@pytest.mark.skipif(bool(available_backends()["numba"]), reason="numba is not available")
def test_after_warmup_nothing_compiles(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("FASTFNN_COMPILE_NOTICE", None)
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"compiles": 0, "done": 1}
    # The warm-up reports its own progress: no compile notice from it (nor from the fits).
    assert "fastfnn: compiling" not in proc.stderr, proc.stderr[-3000:]
