"""Frequency-band curricula: they decide when the next band unlocks; the engine applies it.

Levels are cutoffs in rfft bins, e.g. [128, 256, 512, 513] at seq_len 1024 (513 = full).
The engine asks a curriculum every `judge_every` steps (by default each log window), with a
smoothed loss (the mean over the last `score_window` steps), never a single batch. At most one
unlock per judgement.

The extension point is `Curriculum`: a dataclass subclass that implements
`ready(step, score) -> bool` is a complete curriculum. Its init fields are its config (the
YAML keys); its `field(init=False)` fields are its running state, saved in checkpoints.
"""

import copy
import math
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import ClassVar

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
    next_bar: float | None  # the bar for the next unlock (None when not score-driven)
    reason: str  # "first_bar", "beat_prev", "threshold", "schedule", "max_steps" or "ready" (a plug-in's rule)

    def log_lines(self) -> list[str]:
        """The reference's console lines for this unlock."""
        detail = {
            "beat_prev": f", beat prev {self.prev_bar:.3f}" if self.prev_bar is not None else "",
            "threshold": f", below {self.prev_bar:.3f}" if self.prev_bar is not None else "",
            "max_steps": ", max steps per level reached",
            "schedule": ", scheduled",
        }.get(self.reason, "")  # "first_bar" and a plug-in curriculum's "ready" need no detail
        lines = [f"  [UNLOCK] {self.from_cutoff} -> {self.to_cutoff} (loss={self.score:.3f}{detail})"]
        if self.next_bar is not None:  # "target": the reference's word
            lines.append(f"    Next unlock target: loss < {self.next_bar:.3f}")
        return lines


def default_levels(seq_len: int) -> list[int]:
    """[n/8, n/4, n/2, full] bins of the rfft grid: [128, 256, 512, 513] at seq_len 1024."""
    n_bins = seq_len // 2 + 1
    fractions = [seq_len // 8, seq_len // 4, seq_len // 2]
    return sorted({max(1, f) for f in fractions} | {n_bins})


def resolve_levels(levels: list[int] | None, seq_len: int) -> list[int]:
    """Check user levels (or derive the defaults); the last level is always full resolution."""
    n_bins = seq_len // 2 + 1
    if levels is None or (isinstance(levels, list | tuple) and len(levels) == 0):
        return default_levels(seq_len)
    if not isinstance(levels, list | tuple) or not all(isinstance(c, int) for c in levels):
        raise CurriculumError(
            f"curriculum.levels={levels!r} must be a list of cutoffs in bins. Fix: e.g. curriculum.levels=[32,64,128]."
        )
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


def judging(judge_every: int | None, score_window: int | None, log_every: int) -> tuple[int, int]:
    """(steps between judgements, steps averaged into the score) as a run uses them: by default each log
    window, over the steps since the last judgement."""
    every = judge_every or log_every
    return every, score_window or every


def snake_case(name: str) -> str:
    """FixedThreshold -> fixed_threshold."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def curriculum_name(cls: type) -> str:
    """How runs and reports name a curriculum class: its NAME, else its name in snake_case
    (Achievement -> achievement, FixedThreshold -> fixed_threshold)."""
    return getattr(cls, "NAME", None) or snake_case(cls.__name__)


@dataclass(kw_only=True)
class Curriculum:
    """Base of every curriculum: levels, per-level guards, unlock events and checkpoint state.

    A subclass implements `ready(step, score)`; it may name its unlocks by overriding `reason`, report
    the score to beat as `next_bar`, and move its bar after an unlock by overriding `advance`.
    """

    levels: list[int]  # cutoffs in bins, the last one full resolution; the engine derives them from seq_len
    min_steps_per_level: int = 0
    max_steps_per_level: int | None = None  # unlock anyway after this many steps at a level
    judge_every: int | None = None  # steps between judgements; None = trainer.log_every
    score_window: int | None = None  # steps averaged into the score; None = judge_every
    level: int = field(default=0, init=False)
    level_start_step: int = field(default=0, init=False)
    history: list[dict] = field(default_factory=list, init=False)  # every unlock, as plain dicts

    def __post_init__(self):
        if self.min_steps_per_level < 0:
            raise CurriculumError("curriculum.min_steps_per_level must be >= 0.")
        if self.max_steps_per_level is not None and self.max_steps_per_level < max(1, self.min_steps_per_level):
            raise CurriculumError(
                "curriculum.max_steps_per_level must be >= max(1, min_steps_per_level), or null for no cap."
            )
        for key in ("judge_every", "score_window"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise CurriculumError(f"curriculum.{key}={value} must be a whole number of steps >= 1, or null.")

    @property
    def name(self) -> str:
        return curriculum_name(type(self))

    @property
    def cutoff(self) -> int:
        return self.levels[self.level]

    @property
    def finished(self) -> bool:
        return self.level == len(self.levels) - 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "target" in cls.__dict__ and "next_bar" not in cls.__dict__:  # a plug-in written before the rename
            warnings.warn(f"{cls.__name__}.target is now called next_bar; please rename it.", FutureWarning,
                          stacklevel=2)
            cls.next_bar = cls.__dict__["target"]

    @property
    def next_bar(self) -> float | None:
        """The score to beat for the next unlock (None: not score-driven)."""
        return None

    def ready(self, step: int, score: float) -> bool:
        """Whether the next band unlocks now; the guards are already checked."""
        raise NotImplementedError(f"{type(self).__name__} must implement ready(step, score) -> bool")

    def reason(self) -> str:
        """Why a `ready` unlock happened, for the log line and the records."""
        return "ready"

    def advance(self, score: float) -> None:
        """Move the bar after an unlock (nothing to move by default)."""

    def observe(self, step: int, score: float) -> UnlockEvent | None:
        """Take the smoothed score at `step`; return the unlock to apply, if any."""
        if self.finished or not math.isfinite(score):
            return None
        steps_in_level = step - self.level_start_step
        if steps_in_level < self.min_steps_per_level:
            return None
        decision = self.ready(step, score)
        if type(decision).__name__ not in ("bool", "bool_"):  # "False" or a tensor would read as a yes
            raise CurriculumError(f"{type(self).__name__}.ready returned {decision!r}; it must return True or False.")
        if decision:
            return self._unlock(step, score, reason=self.reason())
        if self.max_steps_per_level is not None and steps_in_level >= self.max_steps_per_level:
            return self._unlock(step, score, reason="max_steps")
        return None

    def _unlock(self, step: int, score: float, reason: str) -> UnlockEvent:
        prev_bar = self.next_bar
        from_cutoff = self.cutoff
        self.level += 1
        self.level_start_step = step
        self.advance(score)
        event = UnlockEvent(step, from_cutoff, self.cutoff, score, prev_bar, self.next_bar, reason)
        self.history.append(vars(event).copy())
        return event

    def _state_fields(self) -> list[str]:
        return [f.name for f in fields(self) if not f.init]

    def state_dict(self) -> dict:
        """The running state: every `init=False` field, as plain Python values."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self._state_fields()}

    def load_state_dict(self, state: dict) -> None:
        missing = [name for name in self._state_fields() if name not in state]
        if missing:
            raise KeyError(f"curriculum state lacks {', '.join(missing)}")
        for name in self._state_fields():
            setattr(self, name, copy.deepcopy(state[name]))
        for unlock in self.history:  # written before the bar was called next_bar
            if "next_target" in unlock:
                unlock["next_bar"] = unlock.pop("next_target")


@dataclass(kw_only=True)
class LossDriven(Curriculum):
    """A curriculum the loss unlocks: each band trains a little before the next one can open."""

    min_steps_per_level: int = 50


@dataclass(kw_only=True)
class Achievement(LossDriven):
    """Beat your own score: the first bar is `unlock_threshold`, then each unlock's score."""

    unlock_threshold: float  # the first bar
    margin: float = 0.0  # the score must beat the bar by this much
    bar: float = field(default=math.inf, init=False)

    def __post_init__(self):
        super().__post_init__()
        if not self.unlock_threshold > 0:
            raise CurriculumError(f"curriculum.unlock_threshold={self.unlock_threshold} must be > 0.")
        if self.margin < 0:
            raise CurriculumError(f"curriculum.margin={self.margin} must be >= 0.")
        self.bar = self.unlock_threshold

    @property
    def next_bar(self) -> float:
        return self.bar

    def ready(self, step: int, score: float) -> bool:
        return score < self.bar - self.margin

    def reason(self) -> str:
        # the first bar is a fixed threshold; later bars are scores the model itself set
        return "first_bar" if self.level == 0 else "beat_prev"

    def advance(self, score: float) -> None:
        # a capped unlock (max_steps) keeps the old bar if the score did not beat it
        self.bar = min(score, self.bar)


@dataclass(kw_only=True)
class FixedThreshold(LossDriven):
    """The old system: one fixed threshold per unlock.

    Either `thresholds` (one per unlock), or `unlock_threshold` lowered by `threshold_step` at
    each later unlock (3.0, 2.5, 2.0), so one sweep can share a threshold with `achievement`.
    """

    thresholds: list[float] | None = None
    unlock_threshold: float | None = None
    threshold_step: float | None = None

    def __post_init__(self):
        super().__post_init__()
        n_unlocks = len(self.levels) - 1
        if self.thresholds is None:
            if self.unlock_threshold is None or self.threshold_step is None:
                raise CurriculumError(
                    "curriculum=fixed_threshold needs curriculum.thresholds, or curriculum.unlock_threshold and "
                    "curriculum.threshold_step. Fix: e.g. curriculum.thresholds=[3.0,2.5,2.0]."
                )
            self.thresholds = [round(self.unlock_threshold - i * self.threshold_step, 6) for i in range(n_unlocks)]
        self.thresholds = [float(t) for t in self.thresholds]
        if len(self.thresholds) != n_unlocks:
            raise CurriculumError(
                f"curriculum.thresholds has {len(self.thresholds)} values for {n_unlocks} unlocks "
                f"(levels {self.levels}). Fix: give one threshold per unlock."
            )
        if any(t <= 0 for t in self.thresholds):
            raise CurriculumError(f"curriculum.thresholds={self.thresholds}: thresholds must be > 0.")

    @property
    def next_bar(self) -> float | None:
        return None if self.finished else self.thresholds[self.level]

    def ready(self, step: int, score: float) -> bool:
        return score < self.thresholds[self.level]

    def reason(self) -> str:
        return "threshold"


@dataclass(kw_only=True)
class StepSchedule(Curriculum):
    """A control: unlock at given steps, whatever the loss."""

    unlock_steps: list[int]

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

    def ready(self, step: int, score: float) -> bool:
        return step >= self.unlock_steps[self.level]

    def reason(self) -> str:
        return "schedule"


@dataclass(kw_only=True)
class NoCurriculum(Curriculum):
    """The baseline: full resolution from step 0."""

    NAME: ClassVar[str] = "none"  # as the config group calls it

    def __post_init__(self):
        super().__post_init__()
        self.levels = self.levels[-1:]

    def ready(self, step: int, score: float) -> bool:
        return False  # never reached: a single level is finished from the start
