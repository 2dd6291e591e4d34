"""One protocol for everything a checkpoint holds: `state_dict()` and `load_state_dict(state)`.

The `Checkpointer` collects the stateful components of a run (model, optimizer, schedule,
curriculum, data order, RNG, the loop's own counters, the trackers' resume state) under one
name each, and hands each its state back on resume.
"""

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from bicameral import rng
from bicameral.checkpoint import CheckpointError, plain, save_checkpoint
from bicameral.data import TrainBatches
from bicameral.distributed import Dist

log = logging.getLogger("bicameral")
FAILED_SAVES_IN_A_ROW = 3  # a disk that stays full ends the run, not only one error line per save
ADDED_LATER = ("callbacks",)  # components older checkpoints do not hold: on resume they keep their fresh state


@runtime_checkable
class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class RandomState:
    """Every RNG a step draws from (torch on the CPU and this rank's device, numpy, Python's `random`),
    as tensors and plain types, so the checkpoint loads with weights_only=True."""

    def __init__(self, device: torch.device):
        self.device = device

    def state_dict(self) -> dict:
        return rng.capture(self.device)

    def load_state_dict(self, state: dict) -> None:
        rng.restore(state, self.device)


class DataOrder:
    """Each rank's training-batch order; every rank takes part in a save (the states are gathered)."""

    def __init__(self, batches: TrainBatches, dist: Dist):
        self.batches, self.dist = batches, dist

    def state_dict(self) -> list[dict]:
        return self.dist.gather(self.batches.state_dict())  # one data order per rank

    def load_state_dict(self, state: list[dict]) -> None:
        if len(state) != self.dist.world_size:
            raise ValueError(f"checkpoint holds {len(state)} ranks' data order, this run has "
                             f"{self.dist.world_size} processes")
        self.batches.load_state_dict(state[self.dist.rank])


class Checkpointer:
    """Saves and restores a run's stateful components, by name, in one atomic file."""

    def __init__(self, path: str | Path | None, metadata: dict | None = None):
        self.path = Path(path) if path is not None else None  # None: no checkpoints
        self.metadata = metadata or {}  # plain values saved alongside, e.g. the resolved config
        self.components: dict[str, Stateful] = {}
        self.failed_in_a_row = 0
        self.last_saved_step: int | None = None  # of the newest checkpoint on disk: saved, or resumed from

    def track(self, **components: Stateful) -> None:
        for name, component in components.items():
            if not isinstance(component, Stateful):
                raise TypeError(f"{name} ({type(component).__name__}) has no state_dict/load_state_dict")
            self.components[name] = component

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
