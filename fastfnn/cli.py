"""The ``fastfnn`` command line: ``train``, ``evaluate``, ``info`` and ``bench``.

Every failure the user can cause (a bad path or option value, an unknown or unavailable backend, a
malformed model file) ends with one line ``fastfnn: error: ...`` on stderr and a non-zero exit status:
2 for a wrong command line, 1 for anything else. No traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys

import numpy as np

#: Where ``fastfnn train`` saves the model unless told otherwise.
DEFAULT_OUT = "fastfnn-mnist.npz"

#: Epochs without improvement that end training under --early-stopping, unless told otherwise.
EARLY_STOPPING_PATIENCE = 10

MNIST_FEATURES = 28 * 28


class _UsageError(Exception):
    """A wrong command line: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing its usage and exiting."""

    def error(self, message):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except the unset ones (None, False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def main(argv=None) -> int:
    """Run ``fastfnn`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "bench":
            return _bench(extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return args.handler(args)
    except _UsageError as exc:
        print(f"fastfnn: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help and --version end here
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print("fastfnn: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        # FloatingPointError: fastfnn.TrainingDivergedError, whose message says what to try.
        print(f"fastfnn: error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``fastfnn`` and its subcommands."""
    from fastfnn import __version__

    parser = _Parser(prog="fastfnn", description="Train and run feedforward neural networks on "
                     "NumPy, Numba or a CUDA GPU.")
    parser.add_argument("--version", action="version", version=f"fastfnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train", help="train a network on MNIST and save it",
        formatter_class=_HelpFormatter,
        description="Train a network on MNIST (by default 784-128-64-10 ReLU, SGD with Nesterov "
                    "momentum, mini-batches of 128, 20 epochs), save the model and report its "
                    "test accuracy. Training runs all --epochs unless --early-stopping or "
                    "--n-iter-no-change asks otherwise. On a terminal a progress bar follows "
                    "each epoch; one line per epoch reports its loss, accuracy, validation "
                    "accuracy (with --early-stopping) and seconds.")
    _add_data_arguments(train)
    train.add_argument("--backend", default="auto",
                       help="compute backend: auto (CUDA GPU, else Numba, else NumPy; "
                            "$FASTFNN_BACKEND overrides), numpy, numba or cupy")
    train.add_argument("--limit", type=_positive_int, metavar="N",
                       help="train on the first N training images only (default: all)")
    train.add_argument("--hidden", type=_hidden, default="128,64", metavar="H,H",
                       help="hidden layer sizes, comma-separated; '' for softmax regression")
    train.add_argument("--activation", default="relu",
                       choices=("relu", "tanh", "logistic", "sigmoid", "identity"),
                       help="hidden-layer activation")
    train.add_argument("--output", default="auto", choices=("auto", "softmax", "sigmoid"),
                       help="output layer: softmax + cross-entropy or one-vs-rest sigmoid units")
    train.add_argument("--solver", default="sgd", choices=("sgd", "adam"),
                       help="optimizer")
    train.add_argument("--lr", type=float, default=0.1,
                       help="learning rate (learning_rate_init)")
    train.add_argument("--momentum", type=float, default=0.9,
                       help="SGD momentum")
    train.add_argument("--no-nesterov", action="store_true",
                       help="plain momentum instead of Nesterov's")
    train.add_argument("--alpha", type=float, default=1e-4,
                       help="L2 penalty")
    train.add_argument("--batch-size", type=_batch_size, default="128",
                       metavar="N|full", help="rows per step, or 'full' for full-batch descent")
    train.add_argument("--epochs", type=_positive_int, default=20,
                       metavar="N", help="epochs to train (max_iter)")
    train.add_argument("--init", type=_init, default="auto", metavar="auto|he|xavier|STD",
                       help="weight initialisation: He for ReLU and Xavier otherwise (auto), or a "
                            "normal standard deviation")
    train.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                       help="precision of the weights and arithmetic")
    train.add_argument("--seed", type=_int, default=0,
                       help="random seed of initialisation, shuffling and the validation split")
    train.add_argument("--early-stopping", action="store_true",
                       help="hold out --validation-fraction of the training data and stop when its "
                            "accuracy stops improving; keep the best weights")
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="share of the training data held out by --early-stopping")
    train.add_argument("--n-iter-no-change", type=_positive_int, metavar="N",
                       help="stop after N epochs without an improvement of more than --tol "
                            "(default: 10 with --early-stopping, else --epochs: never stop early)")
    train.add_argument("--tol", type=float, default=0.0,
                       help="least improvement that counts (training loss, or validation accuracy "
                            "with --early-stopping)")
    train.add_argument("--out", default=DEFAULT_OUT, metavar="MODEL",
                       help="where to save the trained model (.npz)")
    train.add_argument("--quiet", action="store_true",
                       help="print only the test accuracy and where the model was saved")
    train.add_argument("--log-json", metavar="PATH",
                       help="write one JSON object per epoch (epoch, loss, accuracy, val_loss, "
                            "val_accuracy, seconds) to PATH when training ends")
    train.set_defaults(handler=_train)

    evaluate = sub.add_parser("evaluate", help="loss, accuracy and confusion matrix on the MNIST "
                              "test set", description="Evaluate a saved model on the MNIST test set: "
                              "loss, accuracy and the confusion matrix.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by fastfnn train or "
                          "FastFNN.save")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--backend", help="compute backend (default: the model's own, as saved)")
    evaluate.set_defaults(handler=_evaluate)

    info = sub.add_parser("info", help="backends, versions and hardware",
                          description="Show which backends can run here (or why not), their "
                          "versions, threads and devices, and the Python and NumPy versions.")
    info.set_defaults(handler=_info)

    # The bench options come from fastfnn.bench, imported only when the command is run.
    sub.add_parser("bench", add_help=False, help="time training epochs on every backend "
                   "(see 'fastfnn bench --help')")
    return parser


def _add_data_arguments(parser):
    """--data and --no-download, shared by train and evaluate."""
    parser.add_argument("--data", metavar="DIR",
                        help="folder with the MNIST IDX files, raw or .gz; missing files are "
                             "downloaded into it (default: $FASTFNN_DATA/mnist, else "
                             "~/.cache/fastfnn/mnist)")
    parser.add_argument("--no-download", action="store_true",
                        help="fail instead of downloading MNIST when the files are missing")


# ------------------------------------------------------------------------------ option value types
def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_int(text):
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _hidden(text):
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        sizes = tuple(_positive_int(p) for p in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer sizes such as 128,64 (or '' for none), "
            f"got {text!r}") from None
    return sizes


def _batch_size(text):
    if text.strip().lower() == "full":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full', got {text!r}") from None


def _init(text):
    if text in ("auto", "he", "xavier"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, he, xavier or a standard deviation, got {text!r}") from None


# ------------------------------------------------------------------------------------------ train
def _train(args) -> int:
    from fastfnn import FastFNN
    from fastfnn.backends import resolve_backend_name
    from fastfnn.data import load_mnist
    from fastfnn.serialization import save_model
    from fastfnn.trainer import HISTORY_KEYS
    from fastfnn.validation import check_hyperparameters

    early = args.early_stopping
    model = FastFNN(
        hidden_layer_sizes=args.hidden, activation=args.activation, solver=args.solver,
        alpha=args.alpha, batch_size=args.batch_size, learning_rate_init=args.lr,
        max_iter=args.epochs, random_state=args.seed, tol=args.tol, momentum=args.momentum,
        nesterovs_momentum=not args.no_nesterov, early_stopping=early,
        validation_fraction=args.validation_fraction,
        n_iter_no_change=args.n_iter_no_change or (EARLY_STOPPING_PATIENCE if early
                                                   else args.epochs),
        backend=args.backend, dtype=args.dtype, init=args.init, output=args.output,
        # verbose: FastFNN's progress bar over each epoch (on a terminal) and one line per epoch.
        verbose=not args.quiet)
    # Everything that can be checked is checked before minutes go into loading and training.
    check_hyperparameters(model)
    backend = resolve_backend_name(args.backend)
    _check_output_path("--out", args.out)
    if args.log_json:
        _check_output_path("--log-json", args.log_json)
    (X, y), (X_test, y_test) = load_mnist(args.data, dtype=np.uint8,
                                          download=not args.no_download)
    if args.limit is not None:
        X, y = X[:args.limit], y[:args.limit]
    if not args.quiet:
        sizes = (X.shape[1], *args.hidden, len(np.unique(y)))
        print(f"training {'-'.join(map(str, sizes))} {args.activation} on {X.shape[0]} MNIST "
              f"images: backend {backend}, {args.dtype}, {args.solver} lr {args.lr:g}, batch "
              f"{args.batch_size or 'full'}, up to {args.epochs} epochs", flush=True)
    model.fit(X, y)
    model.verbose = False  # the saved model trains silently when used again
    save_model(model, args.out)  # first: the training is on disk before anything else can fail
    if args.log_json:
        with open(args.log_json, "w", encoding="utf-8") as log:
            for epoch, values in enumerate(zip(*(model.history_[k] for k in HISTORY_KEYS))):
                log.write(json.dumps({"epoch": epoch + 1, **dict(zip(HISTORY_KEYS, values))})
                          + "\n")
    if not args.quiet:
        print(f"trained {model.n_iter_} epochs in {sum(model.history_['seconds']):.1f} s")
    result = model.evaluate(X_test, y_test)
    print(f"test accuracy {result['accuracy']:.4f} (loss {result['loss']:.4f}, "
          f"{len(y_test)} images)")
    print(f"model saved to {args.out}")
    return 0


def _check_output_path(option, path):
    """Fail early (before any training) when ``path`` cannot be a new file."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{option} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{option} {path} is a folder, expected a file name")


# --------------------------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    from fastfnn.backends import resolve_backend_name
    from fastfnn.data import load_mnist
    from fastfnn.metrics import format_confusion_matrix
    from fastfnn.serialization import load_model

    model = load_model(args.model)
    if args.backend is not None:
        model.set_params(backend=args.backend)
    backend = resolve_backend_name(model.backend)
    if model.n_features_in_ != MNIST_FEATURES:
        raise ValueError(f"{args.model}: the model takes {model.n_features_in_} features, "
                         f"expected {MNIST_FEATURES} (28x28 MNIST images)")
    _, (X_test, y_test) = load_mnist(args.data, dtype=np.uint8, download=not args.no_download)
    result = model.evaluate(X_test, y_test)
    sizes = [model.n_features_in_, *(w.shape[1] for w in model.coefs_)]
    print(f"model {args.model}: {'-'.join(map(str, sizes))} {model._activation}, "
          f"{model._output} output, {model.coefs_[0].dtype}; backend {backend}")
    correct = round(result["accuracy"] * len(y_test))
    print(f"test loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f} "
          f"({correct}/{len(y_test)})")
    print(format_confusion_matrix(result["confusion_matrix"], model.classes_))
    return 0


# ------------------------------------------------------------------------------------------- info
def _info(args) -> int:  # noqa: ARG001 - every handler takes the parsed arguments
    from fastfnn import __version__
    from fastfnn.backends import available_backends, get_backend, resolve_backend_name

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    print(f"fastfnn {__version__}")
    print(f"Python {platform.python_version()} ({platform.python_implementation()}) on "
          f"{platform.platform()}")
    print(f"NumPy {np.__version__}")
    print(f"CPUs: {os.cpu_count()} ({usable} usable by this process)")
    print(f"FASTFNN_BACKEND: {os.environ.get('FASTFNN_BACKEND') or '(not set)'}")
    report = available_backends()
    try:
        auto = resolve_backend_name("auto")
    except ValueError as exc:  # a bad FASTFNN_BACKEND
        auto = f"none ({exc})"
    print(f"backend 'auto' picks: {auto}")
    print("backends:")
    for name, reason in report.items():
        if reason:
            print(f"  {name}: not available: {reason}")
            continue
        print(f"  {name}: available")
        try:
            facts = get_backend(name).describe()
        except Exception as exc:  # noqa: BLE001 - a report must go on past one broken backend
            print(f"    (describe() failed: {type(exc).__name__}: {exc})")
            continue
        for key, value in facts.items():
            print(f"    {key}: {value}")
    return 0


# ------------------------------------------------------------------------------------------ bench
def _bench(argv) -> int:
    try:
        bench = importlib.import_module("fastfnn.bench")
    except ImportError as exc:
        raise _UsageError(f"the bench command is not available here ({exc})") from None
    parser = _Parser(prog="fastfnn bench", description=(bench.__doc__ or "").split("\n\n")[0])
    bench.add_arguments(parser)
    status = bench.run(parser.parse_args(argv))
    return 0 if status is None else int(status)
