"""Checkpoints written atomically: a crash mid-save never leaves a corrupt file behind."""

import os
import tempfile
from pathlib import Path

import torch

from bicameral.errors import BicameralError


class CheckpointError(BicameralError, RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file and the problem."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


REQUIRED_KEYS = ("model", "optimizer", "schedule", "curriculum", "step", "rng", "config")


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist. Fix: pass an existing file to trainer.resume.")
    try:
        # weights_only=False: the file also holds RNG states and plain config containers
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, foreign or not a torch file at all
        raise CheckpointError(f"Checkpoint {path} cannot be read ({type(err).__name__}: {err}).") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint {path} is not a bicameral checkpoint (missing {', '.join(missing)}).")
    return state
