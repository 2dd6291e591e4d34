"""Warmup + cosine learning rate whose cycle restarts at its peak at each unlock."""

import math
from dataclasses import dataclass


@dataclass
class CosineWithRestarts:
    peak_lr: float
    total_steps: int
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # the floor each cycle decays to, as a fraction of peak_lr
    cycle_start: int = 0  # step the current cycle began at: 0, or the last restart

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step `step` (0-based)."""
        if self.cycle_start == 0 and step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        begin = self.warmup_steps if self.cycle_start == 0 else self.cycle_start
        span = max(1, self.total_steps - begin)  # each cycle decays over the steps that remain
        progress = min(1.0, (step - begin) / span)
        floor = self.peak_lr * self.min_lr_ratio
        return floor + (self.peak_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def restart(self, step: int) -> None:
        """Start a new cycle at the peak from `step` on."""
        self.cycle_start = step

    def state_dict(self) -> dict:
        return {"cycle_start": self.cycle_start}

    def load_state_dict(self, state: dict) -> None:
        self.cycle_start = state["cycle_start"]
