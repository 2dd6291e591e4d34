"""Checkpoints: what they hold, how they are written and read, and the manager that owns a run's.

The `CheckpointManager` keeps a run's components under their names (COMPONENTS), decides when a save is
due, saves, retries and fails as below, and removes torn saves; `bicameral.resume` decides what an earlier
run in the run dir means, from the checkpoints `checkpoints_in` finds.

Checkpoints are written atomically, with the previous one kept: a crash mid-save never costs a run.

A save writes a temp file in the same folder (bicameral.files), hard-links the current checkpoint to
`<name>.prev<suffix>`, fsyncs the temp file, renames it into place and fsyncs the folder. A process
killed at any point leaves `<name>` complete, old or new, and the previous one beside it.

Loading never runs code from the file: checkpoints hold only tensors and plain types and load
with `torch.load(weights_only=True)`; a file that needs anything else is refused. A checkpoint
written before RNG states were stored as tensors is converted once, by its owner:

    python -m bicameral.checkpoint upgrade OLD.pt NEW.pt --trust
"""

import argparse
import logging
import os
import pickle
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from bicameral.errors import BicameralError, exit_on_bad_input
from bicameral.files import torn_writes, written_atomically
from bicameral.stateful import Stateful

# every stateful part of a run, by the name its state has in a checkpoint
COMPONENTS = ("model", "optimizer", "schedule", "curriculum", "rng", "batches", "loop", "spikes", "trackers",
              "callbacks")
ADDED_LATER = ("callbacks",)  # components older checkpoints do not hold: on resume they keep their fresh state
REQUIRED_KEYS = (*COMPONENTS[:5], "step", "config")  # what every bicameral checkpoint ever written holds
FAILED_SAVES_IN_A_ROW = 3  # a disk that stays full ends the run, not only one error line per save
log = logging.getLogger("bicameral")


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


def damaged_path(path: Path) -> Path:
    """checkpoint.pt -> checkpoint.damaged.pt: where an unloadable checkpoint is set aside, kept for a look."""
    return path.with_name(f"{path.stem}.damaged{path.suffix}")


def checkpoints_in(run_dir: str | os.PathLike, name: str) -> tuple[list[tuple[Path, dict]], list[tuple[Path, str]]]:
    """The run dir's checkpoint and its previous one: (path, state) of those that load, and (path, why) of each
    one that exists but does not."""
    path = Path(run_dir) / name
    loaded, damaged = [], []
    for candidate in (path, previous_path(path)):
        if not candidate.exists():
            continue  # a save killed between its two renames leaves only the previous one
        try:
            loaded.append((candidate, load_checkpoint(candidate)))
        except CheckpointError as err:
            damaged.append((candidate, str(err)))
    return loaded, damaged


def newest_valid_checkpoint(run_dir: str | os.PathLike, name: str) -> tuple[Path, dict] | None:
    """The loadable checkpoint with the highest step in run_dir, or None."""
    loaded, _ = checkpoints_in(run_dir, name)
    return max(loaded, key=lambda item: item[1]["step"], default=None)


class CheckpointManager:
    """A run's checkpoints: its stateful components, by name (COMPONENTS), saved together in one atomic file
    every `every` steps and at the end of each stretch of training; the torn saves of a killed process
    removed; each component's state handed back on resume."""

    def __init__(self, path: str | Path | None, every: int = 1, metadata: dict | None = None):
        self.path = Path(path) if path is not None else None  # None: no checkpoints
        self.every = every
        self.metadata = metadata or {}  # plain values saved alongside, e.g. the resolved config
        self.components: dict = {}
        self.failed_in_a_row = 0
        self.last_saved_step: int | None = None  # of the newest checkpoint on disk: saved, or resumed from

    def track(self, **components) -> None:
        for name, component in components.items():
            if name not in COMPONENTS:
                raise ValueError(f"{name} is not a checkpoint component ({', '.join(COMPONENTS)})")
            if not isinstance(component, Stateful):
                raise TypeError(f"{name} ({type(component).__name__}) has no state_dict/load_state_dict")
            self.components[name] = component

    def due(self, step: int, end: int) -> bool:
        """Whether `step` saves: every `every` steps, and the last step of this stretch (`end`)."""
        return self.path is not None and (step % self.every == 0 or step == end)

    def remove_torn_saves(self) -> None:
        """Delete the temp files of saves that a killed process never finished. Only the run dir's one
        writer (it holds the run's lock) calls this, so no live save is among them."""
        if self.path is not None:
            for torn in torn_writes(self.path):
                torn.unlink(missing_ok=True)

    def state_dict(self, step: int) -> dict:
        """Every component's state, as plain values a safe load reads back."""
        return {"step": step, **{name: plain(c.state_dict(), name) for name, c in self.components.items()},
                **self.metadata}

    def load_state_dict(self, state: dict) -> None:
        for name, component in self.components.items():
            if name not in state:
                if name in ADDED_LATER:
                    continue
                raise KeyError(f"no {name} state")
            component.load_state_dict(state[name])
        self.last_saved_step = state["step"]

    def save(self, state: dict, final: bool = False) -> None:
        """Write `state` atomically; a failed write keeps the previous checkpoint. A failure is retried once,
        then counted: the run's last save failing (`final`), or FAILED_SAVES_IN_A_ROW in a row, ends the run,
        naming the last good checkpoint, rather than report success over work that was not kept."""
        step = state["step"]
        for _ in range(2):  # a transient error costs nothing
            try:
                save_checkpoint(state, self.path)
                self.failed_in_a_row, self.last_saved_step = 0, step
                return
            except OSError as err:
                reason = err.strerror or str(err)
        self.failed_in_a_row += 1
        kept = (f"the last good checkpoint is {self.path} at step {self.last_saved_step}"
                if self.last_saved_step is not None else "no checkpoint was saved before it")
        if final or self.failed_in_a_row >= FAILED_SAVES_IN_A_ROW:
            when = "the run's last save" if final else f"{self.failed_in_a_row} saves in a row"
            raise CheckpointError(f"Checkpoint save at step {step} failed ({reason}), {when}; {kept}. Fix: free space "
                                  f"in {self.path.parent} (or make it writable), then rerun to resume.")
        log.error(f"Checkpoint save at step {step} failed ({reason}), retried once; {kept}.")


# -- converting checkpoints written before the safe format ----------------------------------------


def upgrade(old: str | os.PathLike, new: str | os.PathLike) -> None:
    """Rewrite an older checkpoint (numpy and tuple RNG states) as tensors and plain types.

    This unpickles `old` in full, which runs any code the file holds: for your own files only."""
    from bicameral import rng

    state = torch.load(Path(old).expanduser(), map_location="cpu", weights_only=False)
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint {old} is not a bicameral checkpoint (missing {', '.join(missing)}).")
    if not isinstance(state["rng"]["python"], dict):  # still the pickled objects of the old format
        state["rng"] = rng.from_pickled(state["rng"])
    if "loop" not in state:  # the layout before every component saved its own state
        state = component_layout(state)
    save_checkpoint({k: plain(v, k) for k, v in state.items()}, new)  # e.g. a plug-in's numpy scalars
    load_checkpoint(new)  # the proof: it now loads with weights_only=True


def component_layout(old: dict) -> dict:
    """An old flat checkpoint in the layout of one entry per stateful component."""
    state = {k: v for k, v in old.items() if k not in ("skips", "windows", "extra")}
    state["loop"] = {"skips": old["skips"], "windows": old["windows"]}
    run_id = old.get("extra", {}).get("wandb_run_id")
    state["trackers"] = {"WandbTracker": {"wandb_run_id": run_id}} if run_id else {}
    state["spikes"] = {"open": None}  # not measured then
    # the LR schedule became a torch LRScheduler: its position is the step, its last LR the optimizer's
    lrs = [group["lr"] for group in old["optimizer"]["param_groups"]]
    state["schedule"] = {"cycle_start": old["schedule"]["cycle_start"], "last_epoch": old["step"],
                         "_step_count": old["step"] + 1, "_last_lr": lrs}
    for group in state["optimizer"]["param_groups"]:
        group.setdefault("initial_lr", group["lr"])
    return state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bicameral.checkpoint", description=upgrade.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="convert an older checkpoint you wrote yourself to the safe format")
    up.add_argument("old")
    up.add_argument("new")
    up.add_argument("--trust", action="store_true", help="yes, unpickle OLD in full: I wrote it myself")
    args = parser.parse_args(argv)
    if not args.trust:
        raise CheckpointError(
            f"upgrade unpickles {args.old} in full, which runs any code the file holds. Fix: only for a checkpoint "
            f"you wrote yourself, rerun with --trust: python -m bicameral.checkpoint upgrade {args.old} {args.new} "
            "--trust"
        )
    upgrade(args.old, args.new)
    print(f"{args.new}: loads with weights_only=True", file=sys.stderr)


if __name__ == "__main__":
    with exit_on_bad_input():
        main()
