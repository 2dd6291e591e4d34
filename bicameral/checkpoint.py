"""Checkpoints written atomically, with the previous one kept: a crash mid-save never costs a run.

A save writes a temp file in the same folder, fsyncs it, moves the current checkpoint to
`<name>.prev<suffix>`, renames the temp file into place and fsyncs the folder. A process
killed at any point leaves at least one complete checkpoint: the new one, or the previous one.
"""

import os
import tempfile
from pathlib import Path

import torch

from bicameral.errors import BicameralError

REQUIRED_KEYS = ("model", "optimizer", "schedule", "curriculum", "step", "rng", "config")


class CheckpointError(BicameralError, RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file and the problem."""


def previous_path(path: Path) -> Path:
    """checkpoint.pt -> checkpoint.prev.pt"""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames themselves survive a power cut
    finally:
        os.close(fd)


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Atomically replace `path` with `state`, keeping the checkpoint it replaces as the previous one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's state, or a CheckpointError naming the file and what is wrong with it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist. Fix: pass an existing file to trainer.resume.")
    try:
        # weights_only=False: the file also holds RNG states and plain config containers
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, foreign or not a torch file at all
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"Checkpoint {path} cannot be read: it is truncated or not a checkpoint ({reason})."
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint {path} is not a bicameral checkpoint (missing {', '.join(missing)}).")
    return state


def newest_valid_checkpoint(run_dir: str | os.PathLike, name: str) -> tuple[Path, dict] | None:
    """For trainer.resume=auto: the loadable checkpoint with the highest step in run_dir, or None."""
    path = Path(run_dir) / name
    found = []
    for candidate in (path, previous_path(path)):
        try:
            found.append((candidate, load_checkpoint(candidate)))
        except CheckpointError:
            continue  # missing, or torn by a crash: the other one is the fallback
    return max(found, key=lambda item: item[1]["step"], default=None)
