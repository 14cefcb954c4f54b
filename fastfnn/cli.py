"""The ``fastfnn`` command line: train, evaluate, plot, predict, info, warmup and bench.

Every failure the user can cause (a bad path or option value, an unknown or unavailable backend, a
malformed model, checkpoint, log or image file, a missing optional extra) ends with one line
``fastfnn: error: ...`` on stderr and a non-zero exit status: 2 for a wrong command line (an
unknown option, value or --backend name, options that do not go together), 1 for anything else (a
backend that is known but cannot run here included). No traceback. A Python warning is one line
``fastfnn: warning: ...``. When the reader of stdout goes away (``fastfnn info | head -1``), the
command ends quietly with exit status 141 (128 + SIGPIPE, as a shell reports such a command).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import platform
import re
import sys
import warnings

import numpy as np

from fastfnn._version import __version__
from fastfnn.params import BY_NAME
from fastfnn.recipes import RECIPES, recipe_params
from fastfnn.sklearn_compat import ConvergenceWarning

#: Where ``fastfnn train`` saves the model unless told otherwise.
DEFAULT_OUT = "fastfnn-mnist.npz"

#: Epochs without improvement that end training under --early-stopping, unless told otherwise.
EARLY_STOPPING_PATIENCE = 10

#: n_iter_no_change that never stops training early. It does not depend on --epochs, so that a
#: checkpoint written under --epochs 2 can be resumed under --epochs 4 (the configuration matches).
NEVER_STOP_EARLY = 2**31 - 1

MNIST_FEATURES = 28 * 28

#: The files ``fastfnn plot`` and ``train --plot`` may write in their folder.
PLOT_FILES = ("loss.png", "accuracy.png", "confusion.png")

#: Estimator parameter -> the train option that sets it, filled as the parser is built.
_FLAGS = {"nesterovs_momentum": "--no-nesterov", "early_stopping": "--early-stopping"}

#: The exit status when stdout's reader has gone away (``fastfnn info | head -1``): 128 + SIGPIPE,
#: as a shell reports a command that a broken pipe ended.
BROKEN_PIPE_STATUS = 141


class _UsageError(Exception):
    """A wrong command line: reported as one line, exit status 2."""


class _MissingExtra(Exception):
    """An optional dependency (an extra such as fastfnn[plot]) is not installed: exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing its usage and exiting."""

    def error(self, message):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


class _StoreParameter(argparse.Action):
    """Stores an option's value and notes its ``dest`` in ``given_parameters``: the options given
    on the command line replace a recipe's values, the defaults of the others do not."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given_parameters = getattr(namespace, "given_parameters", set()) | {self.dest}


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
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args, extra = parser.parse_known_args(argv)
            if args.command == "bench":
                status = _bench(extra)
            else:
                if extra:
                    parser.error(f"unrecognized arguments: {' '.join(extra)}")
                status = args.handler(args)
        sys.stdout.flush()  # a reader that went away is noticed here, not at exit
        return status
    except _UsageError as exc:
        print(f"fastfnn: error: {exc}", file=sys.stderr)
        return 2
    except _MissingExtra as exc:
        print(f"fastfnn: error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help and --version end here
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print("fastfnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE_STATUS
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        # FloatingPointError: fastfnn.TrainingDivergedError, whose message says what to try.
        print(f"fastfnn: error: {exc}", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    """warnings.showwarning while the command runs: one line, without fastfnn's source code."""
    print(f"fastfnn: warning: {message}", file=sys.stderr if file is None else file)


def _discard_stdout():
    """Point stdout at /dev/null, so that the interpreter's flush at exit finds no broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): nothing is flushed to a pipe at exit


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``fastfnn`` and its subcommands."""
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
                    "accuracy (with --early-stopping) and seconds. --log-json writes the same "
                    "per epoch, as training goes. --checkpoint saves the whole training state "
                    "after every epoch (atomically: an interrupted run leaves the last complete "
                    "epoch), and --resume continues from it, e.g. with more --epochs; the options "
                    "and data must be those of the run that wrote it (--epochs and --quiet "
                    "aside; --epochs too with the cosine and onecycle schedules, which span "
                    "them), and the result is bitwise that of an uninterrupted run. --plot DIR "
                    "writes loss.png, accuracy.png and confusion.png (test set) after training.")
    _add_data_arguments(train)
    train.add_argument("--recipe", choices=sorted(RECIPES),
                       help="start from a recipe's parameters (fastfnn.recipes; e.g. mnist: "
                            ">= 98.5%% in <= 30 s on two cores); options given replace its values")
    _parameter_option(train, "--backend", "backend", "auto")
    train.add_argument("--limit", type=_positive_int, metavar="N",
                       help="train on the first N training images only (default: all)")
    _parameter_option(train, "--hidden", "hidden_layer_sizes", "128,64", metavar="H,H")
    _parameter_option(train, "--activation", "activation", "relu")
    _parameter_option(train, "--output", "output", "auto")
    _parameter_option(train, "--solver", "solver", "sgd")
    _parameter_option(train, "--lr", "learning_rate_init", 0.1)
    _parameter_option(train, "--momentum", "momentum", 0.9)
    train.add_argument("--no-nesterov", action="store_true",
                       help="plain momentum instead of Nesterov's (nesterovs_momentum=False)")
    _parameter_option(train, "--alpha", "alpha", 1e-4)
    _parameter_option(train, "--batch-size", "batch_size", "128", metavar="N|full")
    _parameter_option(train, "--epochs", "max_iter", 20, metavar="N")
    _parameter_option(train, "--init", "init", "auto", metavar="auto|he|xavier|STD")
    _parameter_option(train, "--n-jobs", "n_jobs", None, metavar="N")
    _parameter_option(train, "--dtype", "dtype", "float32")
    _parameter_option(train, "--seed", "random_state", 0)
    train.add_argument("--early-stopping", action="store_true",
                       help=BY_NAME["early_stopping"].doc + " (with --validation-fraction)")
    _parameter_option(train, "--validation-fraction", "validation_fraction", 0.1)
    _parameter_option(train, "--n-iter-no-change", "n_iter_no_change", None, metavar="N",
                      note=f" (default: {EARLY_STOPPING_PATIENCE} with --early-stopping, else never "
                           "stop early)")
    _parameter_option(train, "--tol", "tol", 0.0)
    _parameter_option(train, "--lr-schedule", "learning_rate", "constant")
    _parameter_option(train, "--lr-warmup", "lr_warmup", 0.0, metavar="EPOCHS")
    _parameter_option(train, "--dropout", "dropout", 0.0, metavar="RATE[,RATE]")
    _parameter_option(train, "--input-dropout", "input_dropout", 0.0, metavar="RATE")
    _parameter_option(train, "--label-smoothing", "label_smoothing", 0.0, metavar="EPS")
    _parameter_option(train, "--augment-shift", "augment_shift", 0, metavar="PIXELS")
    train.add_argument("--out", default=DEFAULT_OUT, metavar="MODEL",
                       help="where to save the trained model (.npz)")
    train.add_argument("--quiet", action="store_true",
                       help="print only the test accuracy and where the model was saved")
    train.add_argument("--log-json", metavar="PATH",
                       help="write one JSON line per epoch (epoch, loss, accuracy, val_loss, "
                            "val_accuracy, seconds) to PATH, flushed after each epoch; with "
                            "--resume it starts with the checkpoint's epochs")
    train.add_argument("--checkpoint", metavar="PATH",
                       help="save the training state to PATH after every epoch (atomically); a "
                            "checkpoint is also a model file")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint when that file exists (else start "
                            "afresh); needs the same options and data as the run that wrote it")
    train.add_argument("--plot", metavar="DIR",
                       help="after training, write loss.png, accuracy.png and confusion.png to "
                            "DIR (created if needed; needs fastfnn[plot])")
    train.set_defaults(handler=_train)

    evaluate = sub.add_parser("evaluate", help="loss, accuracy and confusion matrix on the MNIST "
                              "test set", description="Evaluate a saved model on the MNIST test set: "
                              "loss, accuracy and the confusion matrix.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by fastfnn train or "
                          "FastFNN.save")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--backend", help="compute backend (default: the model's own, as saved)")
    evaluate.set_defaults(handler=_evaluate)

    plot = sub.add_parser(
        "plot", help="loss/accuracy curves and confusion matrix as PNG files",
        formatter_class=_HelpFormatter,
        description="Plot a model file (.npz, e.g. from fastfnn train or --checkpoint): "
                    "loss.png and (a classifier's) accuracy.png from its training history, and "
                    "confusion.png from its predictions on the MNIST test set (when it is a "
                    "classifier of the digits 0-9 in 28x28 images). "
                    "Or plot a --log-json file (one JSON object per line): the curves only. "
                    "Needs fastfnn[plot] (matplotlib).")
    plot.add_argument("source", metavar="MODEL_OR_LOG",
                      help="a model file or a log written by fastfnn train --log-json")
    plot.add_argument("--out", default=".", metavar="DIR",
                      help="folder to write the PNG files to (created if needed)")
    _add_data_arguments(plot)
    plot.add_argument("--backend", help="compute backend for the confusion matrix (default: "
                      "the model's own, as saved)")
    plot.set_defaults(handler=_plot)

    predict = sub.add_parser(
        "predict", help="recognise digits in PNG/JPEG images",
        description="Classify digit images with a model that takes 28x28 images: each image "
                    "(PNG or JPEG, any size, dark-on-light or light-on-dark) is prepared as "
                    "MNIST digits are, and one line 'IMAGE: DIGIT (probability P)' is printed. "
                    "All images are read before any is classified: the first one that cannot be "
                    "read ends the command with an error naming it (exit status 1) and nothing "
                    "is printed. Needs fastfnn[images] (Pillow).")
    predict.add_argument("model", metavar="MODEL", help="a model file written by fastfnn train "
                         "or FastFNN.save")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files of digits")
    predict.add_argument("--backend", help="compute backend (default: the model's own, as saved)")
    predict.set_defaults(handler=_predict)

    export = sub.add_parser(
        "export", help="write a saved model as ONNX",
        description="Write the model in MODEL (a classifier's or a regressor's file, from fastfnn "
                    "train or save) to OUT as an ONNX graph: the input X (n, n_features), a "
                    "classifier's outputs label and probabilities, a regressor's variable. The "
                    "file is written whole or not at all. Needs fastfnn[onnx].")
    export.add_argument("model", metavar="MODEL", help="a model file written by fastfnn train "
                        "or save")
    export.add_argument("out", metavar="OUT", help="the ONNX file to write (.onnx)")
    export.add_argument("--input-dtype", choices=("float32", "float64", "uint8"),
                        help="the graph input's type; uint8 is read as 8-bit intensities (x / 255), "
                             "as fit reads uint8 (default: the model's dtype)")
    export.set_defaults(handler=_export)

    info = sub.add_parser("info", help="backends, versions and hardware",
                          description="Show which backends can run here (or why not), their "
                          "versions, threads and devices, and the Python and NumPy versions.")
    info.set_defaults(handler=_info)

    warmup = sub.add_parser(
        "warmup", help="compile every kernel ahead of time (for Docker images and workers)",
        formatter_class=_HelpFormatter,
        description="Compile, or load from the cache, every kernel signature that fits, "
                    "predictions and evaluations reach, for each weight dtype and input kind "
                    "asked for, so the first real fit does not wait for the compiler. Run it "
                    "once when building an image or starting a worker; the kernels are cached "
                    "on disk (where: the last line; NUMBA_CACHE_DIR moves it).")
    _parameter_option(warmup, "--backend", "backend", "auto")
    warmup.add_argument("--dtypes", default="float32,float64", type=_names,
                        metavar="float32,float64", help="weight dtypes to compile for")
    warmup.add_argument("--inputs", default="uint8,float", type=_names, metavar="uint8,float",
                        help="input kinds: uint8 (8-bit intensities such as MNIST) and float")
    warmup.set_defaults(handler=_warmup)

    # The bench options come from fastfnn.bench, imported only when the command is run.
    sub.add_parser("bench", add_help=False, help="time training epochs on every backend "
                   "(see 'fastfnn bench --help')")
    return parser


def _add_data_arguments(parser):
    """--data and --no-download, shared by train, evaluate and plot."""
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


def _parameter_option(parser, flag, name, default, *, metavar=None, note=""):
    """Add ``flag``, which sets the estimator parameter ``name`` (its ``dest``).

    Its choices, or its conversion and check, and its help come from fastfnn.params (a value the
    estimator would refuse is a usage error); ``default`` is the command line's own (a string
    default is converted as a given value is); ``note`` is added to the help.
    """
    param = BY_NAME[name]
    _FLAGS[name] = flag
    renamed = flag.lstrip("-").replace("-", "_") != name
    help_text = f"{param.doc}{f' ({name})' if renamed else ''}{note}"
    metavar = metavar or flag.lstrip("-").replace("-", "_").upper()
    if param.choices:
        parser.add_argument(flag, dest=name, default=default, choices=param.choices,
                            help=help_text, action=_StoreParameter)
        return

    def convert(text):
        try:
            return param.from_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(flag, dest=name, type=convert, default=default, metavar=metavar,
                        help=help_text, action=_StoreParameter)


# ------------------------------------------------------------------------------------------ train
def _train(args) -> int:
    from fastfnn import FastFNN
    from fastfnn.io.checkpoint import CheckpointMismatchError

    if args.resume and not args.checkpoint:
        raise _UsageError("--resume needs --checkpoint PATH: the checkpoint to continue from "
                          "(see 'fastfnn train --help')")
    # Every option named after a parameter was checked by fastfnn.params while parsing.
    params = {name: value for name, value in vars(args).items() if name in BY_NAME}
    if args.recipe:
        given = getattr(args, "given_parameters", set())
        params = recipe_params(args.recipe, {**{k: v for k, v in params.items()
                                                if k not in RECIPES[args.recipe].params},
                                             **{k: params[k] for k in given}})
    params.update(
        nesterovs_momentum=not args.no_nesterov,
        n_iter_no_change=args.n_iter_no_change or (EARLY_STOPPING_PATIENCE if args.early_stopping
                                                   else params.get("n_iter_no_change")
                                                   if args.recipe else NEVER_STOP_EARLY),
        # verbose: FastFNN's progress bar over each epoch (on a terminal) and one line per epoch.
        verbose=not args.quiet)
    model = FastFNN(**params)
    # Everything that can be checked is checked before minutes go into loading and training.
    backend = _backend(args.backend)
    _check_together(model)
    _check_output_path("--out", args.out)
    if args.log_json:
        _check_output_path("--log-json", args.log_json)
    if args.checkpoint:
        _check_output_path("--checkpoint", args.checkpoint)
    if args.plot:
        _require("matplotlib", "plots need matplotlib", "plot")
        _check_plot_targets("--plot", args.plot, PLOT_FILES)
    resumed_history = None
    if args.resume and os.path.exists(args.checkpoint):
        resumed_history = _resumable_history(args.checkpoint, model)
    (X_all, y_all), (X_test, y_test) = _load_mnist(args)
    X, y = X_all[:args.limit], y_all[:args.limit]  # (a limit of None keeps all)
    if args.limit is not None:
        _check_limit(args.limit, y_all, y_test)
    if not args.quiet:
        sizes = (X.shape[1], *params["hidden_layer_sizes"], len(np.unique(y)))
        print(f"training {'-'.join(map(str, sizes))} {params['activation']} on {X.shape[0]} MNIST "
              f"images: backend {backend}, {params['dtype']}, {params['solver']} lr "
              f"{params['learning_rate_init']:g}, batch {params['batch_size'] or 'full'}, up to "
              f"{_count(params['max_iter'], 'epoch')}"
              f"{f' (recipe {args.recipe})' if args.recipe else ''}", flush=True)
        if resumed_history is not None:
            print(f"resuming from {args.checkpoint} after epoch {len(resumed_history['loss'])}",
                  flush=True)
    log = _EpochLog(args.log_json, resumed_history) if args.log_json else None
    try:
        with warnings.catch_warnings():
            # the command trains a fixed number of epochs by design (unless early stopping ends
            # them): reaching it is the plan, not a failure to converge
            for message in ("Stochastic Optimizer: Maximum iterations", "lbfgs failed to converge"):
                warnings.filterwarnings("ignore", message, ConvergenceWarning)
            try:
                model.fit(X, y, on_epoch=log.on_epoch if log else None,
                          checkpoint=args.checkpoint, resume=args.resume)
            except CheckpointMismatchError:  # the options were compared before the data
                raise _UsageError(f"--checkpoint {args.checkpoint} was written on other data (a "
                                  "different --limit or copy of MNIST); resume it with the same, "
                                  "or run without --resume to start afresh") from None
        if log:
            log.finish()  # a resumed fit that had nothing left to train still gets its log
    finally:
        if log:
            log.close()
    model.verbose = False  # the saved model trains silently when used again
    model.save(args.out)  # first: the training is on disk before anything else can fail
    if not args.quiet:
        before = 0 if resumed_history is None else len(resumed_history["loss"])
        seconds = model.history_["seconds"][before:]
        total = "" if resumed_history is None else f" ({len(model.history_['loss'])} in all)"
        print(f"trained {_count(len(seconds), 'epoch')} in {_seconds(sum(seconds))}{total}")
    result = model.evaluate(X_test, y_test)
    print(f"test accuracy {result['accuracy']:.4f} (loss {result['loss']:.4f}, "
          f"{len(y_test)} images)")
    print(f"model saved to {args.out}")
    if args.plot:
        written = _write_plots(model.history_, args.plot, args.out, result["confusion_matrix"],
                               model.classes_)
        print(f"plots saved to {args.plot}: {', '.join(p.name for p in written)}")
    return 0


def _count(n, noun):
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 epoch", "3 epochs"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _seconds(seconds):
    """A duration for people: tenths of a second from 1 s, two significant digits below."""
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2g} s"


def _in_option_words(message):
    """``message`` with the parameter names that have an option (those with an underscore, which
    read as names, not words) replaced by the option: "lr_warmup" -> "--lr-warmup"."""
    return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: _FLAGS.get(m.group(), m.group()), message)


def _check_together(model):
    """The checks fit makes of the parameters against each other (for 28x28 images, ten digits),
    made before any data is read: _UsageError in the options' words."""
    from fastfnn.model import _regularisation
    from fastfnn.params import resolve

    hp = resolve(model.get_params())
    if hp["early_stopping"] and hp["solver"] != "lbfgs" and hp["validation_fraction"] == 0:
        raise _UsageError("--early-stopping needs a --validation-fraction above 0 (e.g. 0.1): "
                          "0 holds out no images to validate on (see 'fastfnn train --help')")
    output = "softmax" if hp["output"] == "auto" else hp["output"]
    try:
        _regularisation(hp, MNIST_FEATURES, output, incremental=False)
    except ValueError as exc:
        raise _UsageError(f"{_in_option_words(str(exc))} (see 'fastfnn train --help')") from None


def _resumable_history(checkpoint, model):
    """The history of ``checkpoint`` when this run can resume it: _UsageError naming the options
    that differ from the run that wrote it, or an --epochs below the epochs it holds. (The data
    is checked by fit.)"""
    from fastfnn.io.checkpoint import load_checkpoint
    from fastfnn.model import resumable_changes

    saved = load_checkpoint(checkpoint).state  # a file that is no checkpoint fails here
    aside = resumable_changes(model.learning_rate)
    mine = model.get_params()
    differ = []
    for name, value in mine.items():
        theirs = saved.params.get(name, BY_NAME[name].default)
        if name not in aside and BY_NAME[name].check(theirs) != BY_NAME[name].check(value):
            option = _FLAGS.get(name, name)
            named = "" if option.lstrip("-").replace("-", "_") == name else f" ({name})"
            differ.append(f"{option}{named} {_option_value(theirs)} there, "
                          f"{_option_value(value)} here")
    if differ:
        raise _UsageError(f"--checkpoint {checkpoint} was written with other options: "
                          f"{'; '.join(differ)}; resume it with the same options, or run without "
                          "--resume to start afresh")
    done = len(saved.history["loss"])
    if done > model.max_iter:
        raise _UsageError(f"--checkpoint {checkpoint} holds {done} epochs, more than --epochs "
                          f"{model.max_iter}: give --epochs {done} or more to resume it, or run "
                          "without --resume to start afresh")
    return saved.history


def _option_value(value):
    """A parameter's value as the command line writes it: 128,64 for a tuple, (unset) for None."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "(unset)" if value is None else str(value)


def _load_mnist(args):
    """MNIST as uint8 from ``--data`` (or the default folders), downloaded unless --no-download;
    errors in the command line's words."""
    from fastfnn import datasets

    if args.data is not None:
        _check_folder("--data", args.data, "a folder with the MNIST IDX files")
    if args.no_download:
        missing = datasets.missing_files("mnist", args.data)
        if all(missing.values()):
            where = "; ".join(f"{'--data ' if args.data else ''}{folder} lacks "
                              f"{datasets.named_files(names)}"
                              for folder, names in missing.items())
            raise FileNotFoundError(
                f"MNIST files not found: {where} (raw or .gz); "
                f"{'put them there' if args.data else 'give --data DIR'}, or run without "
                "--no-download to download them")
    return datasets.load_mnist(args.data, dtype=np.uint8, download=not args.no_download)


def _check_limit(limit, y_all, y_test):
    """_UsageError when the first ``limit`` training labels lack digits of the test set."""
    kept = np.unique(y_all[:limit])
    missing = np.setdiff1d(np.unique(y_test), kept)
    if missing.size:
        # the first image of each missing digit, where the training set has one
        firsts = [int(np.argmax(y_all == d)) for d in missing if (y_all == d).any()]
        advice = f"give --limit {max(firsts) + 1} or more" if firsts else "give a larger --limit"
        raise _UsageError(f"--limit {limit} keeps only the digits {', '.join(map(str, kept))} "
                          f"of the training set; the test set also has "
                          f"{', '.join(map(str, missing))}: {advice}")


class _EpochLog:
    """``--log-json``: one JSON line per epoch of the whole fit, flushed as each epoch ends.

    The file is opened (truncated) at the first epoch, or by :meth:`finish` when no epoch ran, so a
    fit refused before training (a checkpoint of another configuration) leaves an old log as it
    was. A resumed fit's log starts with the checkpoint's epochs (``previous``, a history dict).
    """

    def __init__(self, path, previous=None):
        from fastfnn.trainer import HISTORY_KEYS

        self.keys = HISTORY_KEYS
        self.path, self.previous, self.file = path, previous, None

    def _open(self):
        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")
            if self.previous:
                for epoch, values in enumerate(zip(*(self.previous[k] for k in self.keys))):
                    self._write(epoch, dict(zip(self.keys, values)))
                self.file.flush()

    def _write(self, epoch, record):
        self.file.write(json.dumps({"epoch": epoch + 1, **{k: record[k] for k in self.keys}})
                        + "\n")

    def on_epoch(self, epoch, record):
        """fit's on_epoch callback: ``epoch`` is the 0-based index in the whole fit's history."""
        self._open()
        self._write(epoch, record)
        self.file.flush()

    def finish(self):
        self._open()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


def _check_output_path(option, path):
    """Fail early (before any training) when ``path`` cannot be written (empty, a folder, in a
    missing or unwritable folder); the error names ``option``."""
    from fastfnn.io.atomic import check_target

    try:
        check_target(path)
    except OSError as exc:
        raise type(exc)(f"{option} {exc}") from None


def _check_folder(option, folder, expected="a folder"):
    """NotADirectoryError naming ``option`` when ``folder`` is a file or would have to be created
    below one; the nearest folder that exists (``folder`` itself, or one above it)."""
    path = os.path.abspath(folder)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise NotADirectoryError(f"{option} {folder} {where}, expected {expected}")
    return existing


def _check_output_folder(option, folder):
    """Fail early when ``folder`` is neither a writable folder nor creatable as one."""
    existing = _check_folder(option, folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {folder}: no permission to write in {existing}")


def _check_plot_targets(option, folder, names):
    """Fail early when ``folder`` or a file ``names`` there cannot be written."""
    _check_output_folder(option, folder)
    if os.path.isdir(folder):
        for name in names:
            _check_output_path(option, os.path.join(folder, name))


def _require(module, need, extra):
    """_MissingExtra when ``module`` of the optional extra ``extra`` cannot be imported; ``need``
    says what needs it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise _MissingExtra(f"{need}, which is not installed: pip install 'fastfnn[{extra}]'") \
            from None


def _write_plots(history, folder, source, confusion=None, classes=None):
    """loss.png and accuracy.png (when it has accuracy) from ``history`` of ``source`` (a model or
    log file), and confusion.png when given; the paths. A failure removes what was written."""
    from pathlib import Path

    from fastfnn.plots import plot_confusion_matrix, plot_history, removed_on_failure

    written = plot_history(history, folder, source)
    if confusion is not None:
        with removed_on_failure(written):
            written.append(plot_confusion_matrix(
                confusion, classes, Path(folder) / "confusion.png",
                f"confusion matrix: {source} on the MNIST test set"))
    return written


def _backend(name):
    """The backend ``--backend name`` runs on (resolve_backend_name; None and "auto" pick one): an
    unknown name is a wrong command line (_UsageError), a known one that cannot run here a
    ValueError."""
    from fastfnn.backends import REGISTRY, resolve_backend_name

    try:
        return resolve_backend_name(name)
    except ValueError as exc:
        if name is not None and name.lower() not in (*REGISTRY, "auto"):
            raise _UsageError(f"argument --backend: {exc}") from None
        raise


def _load_model(path, backend, warn_fallback=True):
    """The estimator (classifier or regressor) in ``path``, set to run on ``backend`` (None: the
    model's own, as saved). A saved backend that cannot run here gives way to "auto", said in one
    line on stderr when ``warn_fallback`` and ``backend`` is None."""
    from fastfnn.io.modelfile import BackendFallbackWarning
    from fastfnn.model import MultilayerPerceptron

    if backend is not None:
        _backend(backend)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, expected a model file (.npz) written by "
                                "fastfnn train or save")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BackendFallbackWarning)
        model = MultilayerPerceptron.load(path)
    for warning in caught:
        if warning.category is not BackendFallbackWarning or backend is None and warn_fallback:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    if backend is not None:
        model.set_params(backend=backend)
    return model


def _check_digit_classifier(model, path, command):
    """ValueError naming ``path`` unless ``model`` classifies 28x28 images as the digits 0-9."""
    reason = _not_a_digit_classifier(model)
    if reason is not None:
        raise ValueError(f"{path}: {reason}; fastfnn {command} needs a classifier of the digits "
                         "0-9 in 28x28 images, as fastfnn train writes")


def _not_a_digit_classifier(model):
    """Why ``model`` is no classifier of MNIST digits; None when it is one (a single-label
    classifier of 28x28 images whose classes are the digits 0-9)."""
    from fastfnn.io.modelfile import shorten

    state = model.fitted_state_
    if state.is_regressor:
        return "the model is a regressor"
    if model.n_features_in_ != MNIST_FEATURES:
        return f"the model takes {model.n_features_in_} features, not 28x28 MNIST images"
    if state.multilabel:
        return "the model is multi-label, not a classifier of one digit per image"
    classes = model.classes_.tolist()
    if classes != list(range(10)):
        return f"the model's classes are {shorten(classes)}, not the digits 0-9 of MNIST"
    return None


# --------------------------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    from fastfnn.metrics import format_confusion_matrix

    model = _load_model(args.model, args.backend)
    _check_digit_classifier(model, args.model, "evaluate")
    backend = _backend(model.backend)
    _, (X_test, y_test) = _load_mnist(args)
    result = model.evaluate(X_test, y_test)
    fitted = model.fitted_state_
    print(f"model {args.model}: {'-'.join(map(str, fitted.layer_sizes))} {fitted.activation}, "
          f"{fitted.output} output, {model.coefs_[0].dtype}; backend {backend}")
    correct = round(result["accuracy"] * len(y_test))
    print(f"test loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f} "
          f"({correct}/{len(y_test)})")
    print(format_confusion_matrix(result["confusion_matrix"], model.classes_))
    return 0


# ------------------------------------------------------------------------------------------- plot
def _plot(args) -> int:
    _require("matplotlib", "plots need matplotlib", "plot")
    _check_output_folder("--out", args.out)
    source = args.source
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such file")
    if os.path.isdir(source):
        raise IsADirectoryError(f"{source} is a folder, expected a model file or a --log-json log")
    with open(source, "rb") as f:
        is_model = f.read(4) == b"PK\x03\x04"  # a .npz is a zip archive; a log is text
    from fastfnn.plots import curves

    confusion = classes = reason = None
    if not is_model:
        history = _read_log(source)
    else:
        model = _load_model(source, args.backend)
        history = model.history_
        reason = _not_a_digit_classifier(model)
    names = [f"{metric}.png" for metric in curves(history)]
    _check_plot_targets("--out", args.out, names + (["confusion.png"] if is_model and reason is None
                                                   else []))
    if "accuracy.png" not in names:
        print("no accuracy curve: the model is a regressor")
    if is_model and reason is None:
        _, (X_test, y_test) = _load_mnist(args)
        confusion, classes = model.evaluate(X_test, y_test)["confusion_matrix"], model.classes_
    elif is_model:
        print(f"no confusion matrix: {reason}")
    written = _write_plots(history, args.out, source, confusion, classes)
    print(f"plots saved to {args.out}: {', '.join(p.name for p in written)}")
    return 0


def _read_log(path):
    """The history in a --log-json file; ValueError naming the first malformed line."""
    from fastfnn.trainer import HISTORY_KEYS

    expected = "one JSON object per line with numbers loss and accuracy, as fastfnn train " \
               "--log-json writes"
    history = {k: [] for k in HISTORY_KEYS}
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
                record = json.loads(line) if line.strip() else None
            except UnicodeDecodeError:
                raise ValueError(f"{path}: line {number} is not UTF-8 text, expected "
                                 f"{expected}") from None
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc.msg}), expected "
                                 f"{expected}") from None
            if record is None:
                continue  # blank lines are allowed
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {number} holds a {type(record).__name__}, "
                                 f"expected {expected}")
            for key in HISTORY_KEYS:
                value = record.get(key)
                optional = key not in ("loss", "accuracy")
                if key not in record and not optional:
                    raise ValueError(f"{path}: line {number}: {key} is missing, expected a "
                                     "number")
                if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                        or optional and value is None):
                    raise ValueError(f"{path}: line {number}: {key} is {value!r}, expected "
                                     f"{'null or ' if optional else ''}a number")
                history[key].append(value)
    if not history["loss"]:
        raise ValueError(f"{path}: the log holds no epochs, expected {expected}")
    return history


# ---------------------------------------------------------------------------------------- predict
def _predict(args) -> int:
    _require("PIL.Image", "reading images needs Pillow", "images")
    from fastfnn.images import load_digit

    model = _load_model(args.model, args.backend)
    _check_digit_classifier(model, args.model, "predict")
    digits = []
    for image in args.images:  # all are read first: a bad one stops before any prediction
        try:
            digits.append(load_digit(image))
        except FileNotFoundError:
            raise FileNotFoundError(f"{image}: no such image file") from None
    proba = model.predict_proba(np.stack(digits))
    for image, p in zip(args.images, proba):
        best = int(np.argmax(p))
        print(f"{image}: {model.classes_[best]} (probability {float(p[best]):.4f})")
    return 0


# ------------------------------------------------------------------------------------------ export
def _export(args) -> int:
    _require("onnx", "ONNX export needs the onnx package", "onnx")
    from fastfnn.onnx_export import to_onnx

    # without the fallback warning: the graph is the same whatever backend the model runs on here
    model = _load_model(args.model, None, warn_fallback=False)
    to_onnx(model, args.out, input_dtype=args.input_dtype)
    print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------------------------- info
def _info(args) -> int:  # noqa: ARG001 - every handler takes the parsed arguments
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


def _names(text):
    """A comma-separated list of names (at least one) as a tuple of strings."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _warmup(args) -> int:
    from fastfnn.precompile import warmup

    _backend(args.backend)
    try:
        report = warmup(args.backend, dtypes=args.dtypes, inputs=args.inputs,
                        on_done=lambda line, seconds: print(f"{line}: {seconds:.1f} s", flush=True))
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    print(f"backend {report['backend']}: {report['seconds']:.1f} s in all; kernels cached in "
          f"{report['cache'] or '(this backend keeps no compiled kernels)'}")
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
