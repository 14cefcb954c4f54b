"""Training checkpoints: a model file (fastfnn.io.modelfile) plus what resuming the fit needs.

A checkpoint is a model file whose header's ``checkpoint`` section holds the fit's progress: a hash
of its configuration and data, its seed, the random generator's state after the last finished
epoch, the stopping rule's counters, and whether early stopping's best weights follow as entries.
Any model reader loads it as the model after that epoch; :func:`load_checkpoint` also checks the
section, as untrusted as the rest of the file.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from fastfnn.io.modelfile import fail, is_int, is_number, read_model_file, save_model, shorten
from fastfnn.state import FittedState

#: The section's keys (``has_best`` is written by the model file).
_SECTION_KEYS = {"config_hash", "seed", "rng_state", "best_loss", "best_score",
                 "no_improvement", "finished", "has_best", "fit_start"}

#: Keys a checkpoint from an earlier version may lack, with the value they stand for.
_SECTION_DEFAULTS = {"fit_start": 0}


class CheckpointMismatchError(ValueError):
    """A checkpoint that a fit was asked to resume was written by a fit with other parameters,
    data, row weights or starting weights (its configuration hash differs)."""


@dataclass(eq=False)
class TrainingProgress:
    """Where a fit stands after an epoch, beyond its FittedState.

    config_hash: SHA-256 (64 hex digits) of the parameters, backend, data and starting weights: a
        fit resumes only a checkpoint of the same configuration.
    seed: the fit's seed; rng_state: its PCG64 generator's ``bit_generator.state``.
    best_loss / best_score: the stopping rule's best training loss / validation score so far
        (math.inf / -math.inf before any).
    no_improvement: epochs since the last improvement; finished: the stopping rule has fired.
    best: early stopping's best (coefs, intercepts) so far, host arrays, or None.
    fit_start: epochs in the history before this fit began (a warm start continues the history).
    """

    config_hash: str
    seed: int
    rng_state: dict
    best_loss: float
    best_score: float
    no_improvement: int
    finished: bool
    best: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    fit_start: int = 0


@dataclass(eq=False)
class Checkpoint:
    """A fit after its last finished epoch: the fitted state (weights as trained, not yet the best
    ones, optimizer state, history) and the progress that resuming continues from."""

    state: FittedState
    progress: TrainingProgress


def save_checkpoint(checkpoint: Checkpoint, path):
    """Write ``checkpoint`` to ``path`` atomically (an interrupted write keeps the previous file).

    Returns ``path``. Raises ValueError for a state or progress the format cannot store.
    """
    progress = checkpoint.progress
    section = {
        "config_hash": progress.config_hash,
        "seed": int(progress.seed),
        "rng_state": progress.rng_state,
        # JSON has no infinities: the "nothing seen yet" values are stored as null.
        "best_loss": None if math.isinf(progress.best_loss) else float(progress.best_loss),
        "best_score": None if math.isinf(progress.best_score) else float(progress.best_score),
        "no_improvement": int(progress.no_improvement),
        "finished": bool(progress.finished),
        "fit_start": int(progress.fit_start),
    }
    _check_section(os.fsdecode(path), {**section, "has_best": progress.best is not None})
    return save_model(checkpoint.state, path, section, progress.best)


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises FileNotFoundError when ``path`` does not exist and ValueError ("<path>: <what was
    wrong>, expected <what>") for a model file without training progress or optimizer state, and for
    anything malformed.
    """
    where = os.fsdecode(path)
    state, section, best = read_model_file(path)
    if section is None:
        fail(where, "a model file without training progress", "a checkpoint written by fit")
    if isinstance(section, dict):
        section = {**_SECTION_DEFAULTS, **section}
    _check_section(where, section)
    if state.optimizer is None:
        fail(where, "a checkpoint without optimizer state", "the optimizer state to resume")
    progress = TrainingProgress(
        config_hash=section["config_hash"], seed=section["seed"], rng_state=section["rng_state"],
        best_loss=math.inf if section["best_loss"] is None else section["best_loss"],
        best_score=-math.inf if section["best_score"] is None else section["best_score"],
        no_improvement=section["no_improvement"], finished=section["finished"], best=best,
        fit_start=section["fit_start"])
    return Checkpoint(state, progress)


def _check_section(where, section):
    if not (isinstance(section, dict) and set(section) == _SECTION_KEYS):
        fail(where, f"checkpoint is {shorten(section)}",
             f"an object with exactly the keys {sorted(_SECTION_KEYS)}")
    if not (isinstance(section["config_hash"], str)
            and re.fullmatch(r"[0-9a-f]{64}", section["config_hash"])):
        fail(where, "checkpoint config_hash is malformed", "64 hexadecimal digits")
    if not (is_int(section["seed"]) and 0 <= section["seed"] < 2**64):
        fail(where, f"checkpoint seed is {shorten(section['seed'])}", "an integer in [0, 2**64)")
    rng_state = section["rng_state"]
    inner = rng_state.get("state") if isinstance(rng_state, dict) else None
    if not (isinstance(rng_state, dict)
            and set(rng_state) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and rng_state["bit_generator"] == "PCG64" and isinstance(inner, dict)
            and set(inner) == {"state", "inc"}
            and all(is_int(v) and 0 <= v < 2**128 for v in inner.values())
            and rng_state["has_uint32"] in (0, 1) and is_int(rng_state["has_uint32"])
            and is_int(rng_state["uinteger"]) and 0 <= rng_state["uinteger"] < 2**32):
        fail(where, "checkpoint rng_state is malformed", "a PCG64 generator state")
    for key in ("best_loss", "best_score"):
        if not (section[key] is None or is_number(section[key])):
            fail(where, f"checkpoint {key} is {shorten(section[key])}", "null or a finite number")
    for key in ("no_improvement", "fit_start"):
        if not (is_int(section[key]) and section[key] >= 0):
            fail(where, f"checkpoint {key} is malformed", "an integer >= 0")
    for key in ("finished", "has_best"):
        if not isinstance(section[key], bool):
            fail(where, f"checkpoint {key} is {shorten(section[key])}", "true or false")
