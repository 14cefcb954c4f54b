"""Time and accuracy of a recipe (fastfnn.recipes) on MNIST, and what each of its ingredients adds.

Usage: ``python benchmarks/recipe_mnist.py [--recipe mnist] [--ablation] [--set name=value ...]
[--torch]`` with MNIST under $FASTFNN_DATA (or the user cache). Each row is one fit of the whole
training set (60,000 rows, uint8) measured after a short untimed fit of the same parameters on
2,000 rows (Numba compiles, or loads its cache, there); the accuracy is on the 10,000 test rows.
``--ablation`` also fits the recipe with one ingredient at a time taken back to FastFNN's default;
``--torch`` fits the same network, optimizer, schedule, label smoothing and dropout in PyTorch on
the CPU (its own process, torch.set_num_threads(2); no shifts) as the time-to-accuracy comparison.
Prints a Markdown table. Not part of the test suite (minutes per row).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

from fastfnn import FastFNN, load_dataset
from fastfnn.params import BY_NAME, defaults
from fastfnn.recipes import recipe_params

#: Rows of the untimed fit that compiles the kernels before the timed one.
WARMUP_ROWS = 2000

#: The ingredients the ablation takes back to their defaults, one at a time.
INGREDIENTS = (("learning_rate",), ("label_smoothing",), ("dropout",), ("augment_shift",))


def fit_and_score(params, data):
    """(test accuracy, fit seconds, epochs) of one FastFNN(**params) fit on MNIST ``data``."""
    (X, y), (X_test, y_test) = data
    FastFNN(**{**params, "max_iter": 1}).fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
    model = FastFNN(**params)
    started = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - started
    return model.score(X_test, y_test), seconds, model.n_iter_


def torch_fit(params):
    """(test accuracy, fit seconds) of the recipe's network trained by PyTorch in this process."""
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(0)
    (X, y), (X_test, y_test) = load_dataset("mnist", dtype=np.uint8)
    X = torch.from_numpy(X.astype(np.float32) / 255)
    y = torch.from_numpy(y.astype(np.int64))
    sizes = (784, *params["hidden_layer_sizes"], 10)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0 and params.get("dropout"):
            layers.append(torch.nn.Dropout(params["dropout"]))
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    batch, epochs = params["batch_size"], params["max_iter"]
    opt = torch.optim.Adam(net.parameters(), lr=params["learning_rate_init"],
                           weight_decay=params.get("alpha", 0.0))
    steps = -(-X.shape[0] // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, params["learning_rate_init"],
                                                total_steps=epochs * steps, cycle_momentum=False)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=params.get("label_smoothing", 0.0))
    started = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(X.shape[0]).split(batch):
            opt.zero_grad()
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - started
    net.eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(X_test.astype(np.float32) / 255)).argmax(1).numpy()
    return float((predicted == y_test).mean()), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--torch", action="store_true")
    parser.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, text = item.partition("=")
        overrides[name] = BY_NAME[name].from_text(text)
    params = recipe_params(args.recipe, {"backend": "numba", "random_state": 0, **overrides})
    if args.torch_child:
        print(*torch_fit(params))
        return
    data = load_dataset("mnist", dtype=np.uint8)
    rows = [("recipe " + args.recipe, params)]
    if args.ablation:
        rows += [(f"without {names[0]}", {**params, **{n: defaults()[n] for n in names}})
                 for names in INGREDIENTS
                 if any(params.get(n, defaults()[n]) != defaults()[n] for n in names)]
    print(f"| variant | test accuracy | fit seconds | epochs |\n|---|---|---|---|", flush=True)
    for label, row_params in rows:
        accuracy, seconds, epochs = fit_and_score(row_params, data)
        print(f"| {label} | {accuracy:.4f} | {seconds:.1f} | {epochs} |", flush=True)
    if args.torch:
        out = subprocess.run([sys.executable, __file__, "--torch-child", "--recipe", args.recipe,
                              *(f"--set={s}" for s in args.set)], check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"| PyTorch CPU, same recipe (no shifts) | {float(out[0]):.4f} | "
              f"{float(out[1]):.1f} | {params['max_iter']} |")


if __name__ == "__main__":
    main()
