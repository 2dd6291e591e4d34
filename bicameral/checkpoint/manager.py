"""A run's checkpoints: the manager that owns them, and finding the ones a run dir holds.

The `CheckpointManager` keeps a run's components under their names (COMPONENTS), decides when a save is
due, saves (`bicameral.checkpoint.format`), retries and fails as below, and removes torn saves;
`bicameral.checkpoint.resume` decides what an earlier run in the run dir means, from the checkpoints
`checkpoints_in` finds.
"""

import logging
import os
from pathlib import Path

from bicameral.checkpoint.format import CheckpointError, load_checkpoint, plain, previous_path, save_checkpoint
from bicameral.engine.stateful import Stateful
from bicameral.files import torn_writes

# every stateful part of a run, by the name its state has in a checkpoint
COMPONENTS = ("model", "optimizer", "schedule", "curriculum", "rng", "batches", "loop", "spikes", "trackers",
              "callbacks")
ADDED_LATER = ("callbacks",)  # components older checkpoints do not hold: on resume they keep their fresh state
FAILED_SAVES_IN_A_ROW = 3  # a disk that stays full ends the run, not only one error line per save
log = logging.getLogger("bicameral")


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
