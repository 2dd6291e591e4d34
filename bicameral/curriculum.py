"""Frequency-band curricula: they decide when the next band unlocks; the engine applies it.

Levels are cutoffs in rfft bins, e.g. [128, 256, 512, 513] at seq_len 1024 (513 = full).
The score fed to `observe` is a smoothed loss (the mean over the last log window), never a
single batch. At most one unlock per decision.
"""

import math
from dataclasses import dataclass, field

from bicameral.errors import BicameralError


class CurriculumError(BicameralError, ValueError):
    """A curriculum config that cannot work; the message names the key and the fix."""


@dataclass
class UnlockEvent:
    step: int
    from_cutoff: int
    to_cutoff: int
    score: float
    prev_bar: float | None  # the bar this unlock cleared (None for a step schedule)
    next_target: float | None  # the bar for the next unlock (None when not score-driven)
    reason: str  # "first_bar", "beat_prev", "threshold", "max_steps" or "schedule"

    def log_lines(self) -> list[str]:
        """The seed's console lines for this unlock."""
        detail = {
            "first_bar": "",
            "beat_prev": f", beat prev {self.prev_bar:.3f}" if self.prev_bar is not None else "",
            "threshold": f", below {self.prev_bar:.3f}" if self.prev_bar is not None else "",
            "max_steps": ", max steps per level reached",
            "schedule": ", scheduled",
        }[self.reason]
        lines = [f"  [UNLOCK] {self.from_cutoff} -> {self.to_cutoff} (loss={self.score:.3f}{detail})"]
        if self.next_target is not None:
            lines.append(f"    Next unlock target: loss < {self.next_target:.3f}")
        return lines


def default_levels(seq_len: int) -> list[int]:
    """[n/8, n/4, n/2, full] bins of the rfft grid: [128, 256, 512, 513] at seq_len 1024."""
    n_bins = seq_len // 2 + 1
    fractions = [seq_len // 8, seq_len // 4, seq_len // 2]
    return sorted({max(1, f) for f in fractions} | {n_bins})


def resolve_levels(levels: list[int] | None, seq_len: int) -> list[int]:
    """Check user levels (or derive the defaults); the last level is always full resolution."""
    n_bins = seq_len // 2 + 1
    if levels is None or len(levels) == 0:
        return default_levels(seq_len)
    levels = [int(c) for c in levels]
    if any(c < 1 for c in levels):
        raise CurriculumError(f"curriculum.levels={levels}: cutoffs must be >= 1 bin.")
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise CurriculumError(
            f"curriculum.levels={levels} must be strictly increasing. Fix: e.g. curriculum.levels=[128,256,512,513]."
        )
    if levels[-1] > n_bins:
        raise CurriculumError(
            f"curriculum.levels={levels}: {levels[-1]} exceeds the {n_bins} rfft bins of seq_len={seq_len} "
            f"(seq_len//2+1). Fix: keep every level <= {n_bins}, or leave curriculum.levels unset."
        )
    if levels[-1] != n_bins:
        levels.append(n_bins)  # training always ends able to reach full resolution
    return levels


@dataclass
class Curriculum:
    """Base: holds the levels and the per-level guards; subclasses define `_ready`."""

    levels: list[int]
    min_steps_per_level: int = 0
    max_steps_per_level: int | None = None
    level: int = 0
    level_start_step: int = 0
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.min_steps_per_level < 0:
            raise CurriculumError("curriculum.min_steps_per_level must be >= 0.")
        if self.max_steps_per_level is not None and self.max_steps_per_level < max(1, self.min_steps_per_level):
            raise CurriculumError(
                "curriculum.max_steps_per_level must be >= max(1, min_steps_per_level), or null for no cap."
            )

    @property
    def cutoff(self) -> int:
        return self.levels[self.level]

    @property
    def finished(self) -> bool:
        return self.level == len(self.levels) - 1

    @property
    def target(self) -> float | None:
        """The score to beat for the next unlock (None: not score-driven)."""
        return None

    def observe(self, step: int, score: float) -> UnlockEvent | None:
        """Take the smoothed score at `step`; return the unlock to apply, if any."""
        if self.finished or not math.isfinite(score):
            return None
        steps_in_level = step - self.level_start_step
        if steps_in_level < self.min_steps_per_level:
            return None
        if self._ready(step, score):
            return self._unlock(step, score, reason=self._reason())
        if self.max_steps_per_level is not None and steps_in_level >= self.max_steps_per_level:
            return self._unlock(step, score, reason="max_steps")
        return None

    def _ready(self, step: int, score: float) -> bool:
        raise NotImplementedError

    def _reason(self) -> str:
        """Why a `_ready` unlock happened, for the log line."""
        raise NotImplementedError

    def _unlock(self, step: int, score: float, reason: str) -> UnlockEvent:
        prev_bar = self.target
        from_cutoff = self.cutoff
        self.level += 1
        self.level_start_step = step
        self._advance(score)
        event = UnlockEvent(step, from_cutoff, self.cutoff, score, prev_bar, self.target, reason)
        self.history.append(vars(event).copy())
        return event

    def _advance(self, score: float) -> None:
        """Update the bar after an unlock."""

    def state_dict(self) -> dict:
        return {"level": self.level, "level_start_step": self.level_start_step, "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.level, self.level_start_step = state["level"], state["level_start_step"]
        self.history = list(state["history"])


@dataclass
class Achievement(Curriculum):
    """Beat your own score: the first bar is `unlock_threshold`, then each unlock's score."""

    unlock_threshold: float = 3.2
    margin: float = 0.0  # the score must beat the bar by this much
    bar: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if not self.unlock_threshold > 0:
            raise CurriculumError(f"curriculum.unlock_threshold={self.unlock_threshold} must be > 0.")
        if self.margin < 0:
            raise CurriculumError(f"curriculum.margin={self.margin} must be >= 0.")
        if self.bar is None:
            self.bar = self.unlock_threshold

    @property
    def target(self) -> float:
        return self.bar

    def _ready(self, step: int, score: float) -> bool:
        return score < self.bar - self.margin

    def _reason(self) -> str:
        # the first bar is a fixed threshold; later bars are scores the model itself set
        return "first_bar" if self.level == 0 else "beat_prev"

    def _advance(self, score: float) -> None:
        # a capped unlock (max_steps) keeps the old bar if the score did not beat it
        self.bar = min(score, self.bar)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bar": self.bar}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bar = state["bar"]


@dataclass
class FixedThreshold(Curriculum):
    """The old system: one fixed threshold per unlock."""

    thresholds: list[float] = field(default_factory=lambda: [3.0, 2.5, 2.0])

    def __post_init__(self):
        super().__post_init__()
        self.thresholds = [float(t) for t in self.thresholds]
        if len(self.thresholds) != len(self.levels) - 1:
            raise CurriculumError(
                f"curriculum.thresholds has {len(self.thresholds)} values for {len(self.levels) - 1} unlocks "
                f"(levels {self.levels}). Fix: give one threshold per unlock."
            )
        if any(t <= 0 for t in self.thresholds):
            raise CurriculumError(f"curriculum.thresholds={self.thresholds}: thresholds must be > 0.")

    @property
    def target(self) -> float | None:
        return None if self.finished else self.thresholds[self.level]

    def _ready(self, step: int, score: float) -> bool:
        return score < self.thresholds[self.level]

    def _reason(self) -> str:
        return "threshold"


@dataclass
class StepSchedule(Curriculum):
    """A control: unlock at given steps, whatever the loss."""

    unlock_steps: list[int] = field(default_factory=list)

    def __post_init__(self):
        super().__post_init__()
        self.unlock_steps = [int(s) for s in self.unlock_steps]
        if len(self.unlock_steps) != len(self.levels) - 1 or any(
            b <= a for a, b in zip(self.unlock_steps, self.unlock_steps[1:])
        ):
            raise CurriculumError(
                f"curriculum.unlock_steps={self.unlock_steps} must be {len(self.levels) - 1} increasing steps, "
                f"one per unlock of levels {self.levels}."
            )

    def _ready(self, step: int, score: float) -> bool:
        return step >= self.unlock_steps[self.level]

    def _reason(self) -> str:
        return "schedule"


@dataclass
class NoCurriculum(Curriculum):
    """The baseline: full resolution from step 0."""

    def __post_init__(self):
        super().__post_init__()
        self.levels = self.levels[-1:]
