"""One checkpoint file: what it may hold, how it is written and how it is read.

Written atomically, with the previous one kept: a crash mid-save never costs a run. A save writes a temp
file in the same folder (bicameral.files), hard-links the current checkpoint to `<name>.prev<suffix>`,
fsyncs the temp file, renames it into place and fsyncs the folder. A process killed at any point leaves
`<name>` complete, old or new, and the previous one beside it.

Loading never runs code from the file: checkpoints hold only tensors and plain types and load with
`torch.load(weights_only=True)`; a file that needs anything else is refused.
"""

import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from bicameral.errors import BicameralError
from bicameral.files import written_atomically

# what every bicameral checkpoint ever written holds
REQUIRED_KEYS = ("model", "optimizer", "schedule", "curriculum", "rng", "step", "config")


class CheckpointError(BicameralError, RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file and the problem."""


# what torch.load(weights_only=True) reads back, besides dicts, lists and tuples of them
PLAIN = (torch.Tensor, bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size)


def plain(value, where: str):
    """value as a safe load reads it back: numpy scalars become Python numbers and numpy arrays tensors; any
    other type fails now, at the save, naming the component and key, not at the next resume. Containers
    with nothing to convert are returned as they are (a model's state_dict keeps its _metadata)."""
    if isinstance(value, np.generic):  # np.float64 passes for a float, but unpickling it needs numpy
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        items = {k: plain(v, f"{where}.{k}") for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if isinstance(value, list | tuple):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if all(a is b for a, b in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, PLAIN):
        return value
    raise CheckpointError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a safe load "
                          "(torch.load weights_only) cannot read. Fix: keep only tensors, numbers, strings, lists "
                          "and dicts in a component's state_dict.")


def previous_path(path: Path) -> Path:
    """checkpoint.pt -> checkpoint.prev.pt"""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Atomically and durably replace `path` with `state`, keeping the checkpoint it replaces as the previous one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path, durable=True) as tmp:
        with open(tmp, "wb") as f:  # a file torch writes to, so a full disk's OSError reaches us
            try:
                torch.save(state, f)
            except RuntimeError as err:  # it can surface as torch's zip writer failing to close
                if isinstance(err.__context__, OSError):
                    raise err.__context__ from None
                raise
        if path.exists():  # linked, not moved, into place: `path` exists at every moment of a save
            keep = path.with_name(f".{path.name}.prev.tmp")  # a torn one is removed like any temp file
            keep.unlink(missing_ok=True)
            try:
                os.link(path, keep)
                os.replace(keep, previous_path(path))
            except OSError:  # a filesystem without hard links: moved, leaving a moment with the previous one only
                keep.unlink(missing_ok=True)
                os.replace(path, previous_path(path))


_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _safe_load(path: Path):
    """torch.load that only ever builds tensors and plain types; a CheckpointError for anything else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol of foreign files
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        needs = _UNSAFE_GLOBAL.search(str(err))
        if needs is None:  # not a pickle the safe loader understands: garbage or another format
            raise CheckpointError(f"Checkpoint {path} cannot be read: it is not a checkpoint "
                                  "(not a file of tensors and plain types).") from None
        raise CheckpointError(
            f"Checkpoint {path} is refused: it needs {needs.group(1)} to load, not only tensors and plain types, "
            "and unpickling that would run code from the file; nothing in it was run. Fix: only if you wrote it "
            f"yourself with an older bicameral, convert it once: python -m bicameral.checkpoint upgrade {path} NEW.pt"
        ) from None
    except Exception as err:  # truncated, or not a torch file at all
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"Checkpoint {path} cannot be read: it is truncated or not a checkpoint ({reason})."
        ) from None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's state, or a CheckpointError naming the file and what is wrong with it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"Checkpoint {path} is a folder, not a file. Fix: pass the checkpoint file in it, "
                              f"e.g. {path / 'checkpoint.pt'}.")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist. Fix: pass an existing file to trainer.resume.")
    state = _safe_load(path)
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint {path} is not a bicameral checkpoint (missing {', '.join(missing)}).")
    return state
