"""One protocol for everything a checkpoint holds: `state_dict()` and `load_state_dict(state)`, and the
adapters that give it to the run's RNGs and data order. `bicameral.checkpoint.CheckpointManager`
collects every component under its name and hands each its state back on resume.
"""

from typing import Protocol, runtime_checkable

import torch

from bicameral.data.batches import TrainBatches
from bicameral.engine import rng
from bicameral.engine.distributed import Dist


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
