"""One protocol for everything a checkpoint holds: `state_dict()` and `load_state_dict(state)`, and the
adapters that give it to the run's RNGs and data order. `bicameral.checkpoint.CheckpointManager`
collects every component under its name and hands each its state back on resume.
"""

import hashlib
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from bicameral.data.batches import TrainBatches
from bicameral.engine import rng
from bicameral.engine.distributed import Dist

log = logging.getLogger("bicameral")


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


def derived_seed(seed: int, step: int, rank: int, world_size: int) -> int:
    """A generator seed from the four numbers that place a rank's batches in a run."""
    digest = hashlib.sha256(f"bicameral data order {seed} {step} {rank} {world_size}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch seeds are 63-bit


class DataOrder:
    """Each rank's training-batch order; every rank takes part in a save (the states are gathered).

    A resume on as many processes continues each rank's own order, draw for draw. On another number (a
    preempted 4-GPU job back on 2), each rank's order is derived anew from (seed, step, rank, world size)."""

    def __init__(self, batches: TrainBatches, dist: Dist, seed: int, step: Callable[[], int]):
        self.batches, self.dist, self.seed, self.step = batches, dist, seed, step

    def state_dict(self) -> list[dict]:
        return self.dist.gather(self.batches.state_dict())  # one data order per rank

    def load_state_dict(self, state: list[dict]) -> None:
        if len(state) == self.dist.world_size:
            self.batches.load_state_dict(state[self.dist.rank])
            return
        step = self.step()
        self.batches.generator.manual_seed(derived_seed(self.seed, step, self.dist.rank, self.dist.world_size))
        if self.dist.is_main:
            log.info(f"The checkpoint's data order is of {len(state)} processes and this run has "
                     f"{self.dist.world_size}: each rank's order was derived anew from (seed, step {step}, rank, "
                     "world size)")
