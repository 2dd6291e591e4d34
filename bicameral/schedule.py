"""LR schedules whose cycle restarts at its peak: at each unlock, and at any `restart_steps`.

Each is a `torch.optim.lr_scheduler.LRScheduler`, so `get_last_lr()` and `state_dict()` come
from torch. The peak of every parameter group is the lr its optimizer was built with. Step
`s` (0-based) trains at `lr_at(peak, s)`; `scheduler.step()` after each optimizer step moves on.
"""

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from bicameral.errors import BicameralError


class ScheduleError(BicameralError, ValueError):
    """A schedule setting that cannot work; the message names the key and the fix."""


class RestartingSchedule(LRScheduler):
    """Warmup to the peak, then one decay cycle over the steps that remain; a restart starts a new
    cycle at the peak that decays over what remains from there. Subclasses shape the decay."""

    def __init__(self, optimizer: Optimizer, total_steps: int, warmup_steps: int = 50, min_lr_ratio: float = 0.1,
                 restart_steps: Sequence[int] = (), last_epoch: int = -1):
        if warmup_steps < 0:
            raise ScheduleError(f"schedule.warmup_steps={warmup_steps} must be >= 0.")
        if not 0 <= min_lr_ratio <= 1:
            raise ScheduleError(f"schedule.min_lr_ratio={min_lr_ratio} must be in [0, 1].")
        self.total_steps, self.warmup_steps, self.min_lr_ratio = total_steps, warmup_steps, min_lr_ratio
        self.restart_steps = sorted(int(s) for s in restart_steps or [])  # restarts with the band as it is
        self.cycle_start = 0  # step the current cycle began at: 0, or the last restart
        super().__init__(optimizer, last_epoch)

    def decay(self, progress: float) -> float:
        """The cycle's shape: 1 at its start (progress 0), 0 at its end (progress 1)."""
        raise NotImplementedError

    def lr_at(self, peak: float, step: int) -> float:
        """Learning rate for optimizer step `step` (0-based) of a group whose peak is `peak`."""
        if self.cycle_start == 0 and step < self.warmup_steps:
            return peak * (step + 1) / self.warmup_steps
        begin = self.warmup_steps if self.cycle_start == 0 else self.cycle_start
        span = max(1, self.total_steps - begin)  # each cycle decays over the steps that remain
        progress = min(1.0, (step - begin) / span)
        floor = peak * self.min_lr_ratio
        return floor + (peak - floor) * self.decay(progress)

    def get_lr(self) -> list[float]:
        if self.last_epoch in self.restart_steps:  # a scheduled restart begins at this very step
            self.cycle_start = self.last_epoch
        return [self.lr_at(peak, self.last_epoch) for peak in self.base_lrs]

    def load_state_dict(self, state_dict: dict) -> None:
        """The running state only: the settings (total steps, warmup...) stay this run's own, so a resume
        may extend trainer.epochs."""
        self.__dict__.update({k: state_dict[k] for k in ("last_epoch", "_step_count", "_last_lr", "cycle_start")})

    def restart(self, step: int) -> None:
        """Start a new cycle at the peak from `step` on (the step about to be trained)."""
        self.cycle_start = step
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class CosineWithRestarts(RestartingSchedule):
    """Warmup + cosine down to `min_lr_ratio` x peak (the default)."""

    def decay(self, progress: float) -> float:
        return 0.5 * (1 + math.cos(math.pi * progress))


class LinearWithRestarts(RestartingSchedule):
    """Warmup + a straight line down to `min_lr_ratio` x peak."""

    def decay(self, progress: float) -> float:
        return 1.0 - progress


class Constant(RestartingSchedule):
    """Warmup, then the peak throughout: a restart changes nothing after the warmup."""

    def decay(self, progress: float) -> float:
        return 1.0
