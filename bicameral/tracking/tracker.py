"""The Tracker interface, the run's facts each tracker starts with (RunInfo), and the set of them the engine
calls (Trackers).

Each tracker is a `_target_` node of the `trackers:` config, built from its own settings alone.
The engine hands every tracker the same typed events (`bicameral.engine.events`) through the `Tracker`
methods, and `on_finish(summary)` once at the end, or `on_fail(...)` when training stopped early.
Trackers never reach back into training (callbacks may: `bicameral.callbacks`). A tracker with
resume state (the W&B run id) has `state_dict`/`load_state_dict`, collected with the checkpoint;
`start(run)` hands it the run's facts and opens its outputs once every input has been checked, so
bad input never leaves an empty record behind.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bicameral.curriculum import UnlockEvent
from bicameral.engine.events import SkippedStep, TrainStats, ValResult
from bicameral.engine.spike import SpikeResult

log = logging.getLogger("bicameral")


@dataclass(frozen=True)
class RunInfo:
    """What a tracker learns about its run when it starts."""

    run_dir: Path
    config: dict  # resolved
    steps_per_epoch: int
    total_steps: int
    name: str  # readable, from the config: achievement-t3.2-bicameral-d128x4-seed0
    tags: list[str] = field(default_factory=list)
    checkpoint: Path | None = None  # where the run saves; None: no checkpoints


class Tracker:
    """What every tracker may hear; each method does nothing unless a tracker needs it."""

    required = True  # False: a tracker that fails is dropped with a warning, and training goes on

    @property
    def label(self) -> str:
        """The tracker's name in warnings."""
        return type(self).__name__

    def start(self, run: RunInfo) -> None:
        """Open outputs: called once, after all input is checked and any resume state is loaded."""

    def on_epoch(self, epoch: int) -> None: ...

    def on_train(self, stats: TrainStats) -> None: ...

    def on_val(self, result: ValResult) -> None: ...

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        """An unlock, decided on the log window `stats` describes."""

    def on_spike(self, result: SpikeResult, step: int) -> None:
        """An unlock's loss spike (`result.step` is the unlock's step), measured once its window closed,
        reported at training step `step`."""

    def on_skip(self, skipped: SkippedStep) -> None: ...

    def on_finish(self, summary: dict) -> None:
        """The run ended; `summary["unlocks"]` is the curriculum's whole unlock history, resumes included."""

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        """Training stopped early: kind "failed" (it raised) or "preempted" (checkpointed, resumable);
        `unlocks` is the curriculum's history so far."""


class Trackers(Tracker):
    """Fans each event out to every tracker. A tracker that is not `required` (W&B) and raises is dropped
    with one warning, so a service outage never stops training: the console and the JSONL record go on.
    Its resume state is each stateful tracker's, by class name."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = list(trackers)

    def _each(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                if tracker.required:
                    raise
                self.trackers.remove(tracker)
                if hasattr(tracker, "run"):
                    tracker.abandon()
                what = "could not start" if method == "start" else "failed"
                reason = str(err).splitlines()[0] if str(err) else ""
                hint = getattr(tracker, "recovery_hint", "")
                log.warning(f"{tracker.label} {what} ({type(err).__name__}: {reason}); training goes on without it. "
                            f"The run's record is in metrics.jsonl and events.jsonl.{hint}")

    def _stateful(self) -> dict:
        return {type(t).__name__: t for t in self.trackers if hasattr(t, "state_dict")}

    def state_dict(self) -> dict:
        return {name: t.state_dict() for name, t in self._stateful().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, tracker in self._stateful().items():
            tracker.load_state_dict(state.get(name, {}))

    def start(self, run: RunInfo) -> None:
        self._each("start", run)

    def on_epoch(self, epoch: int) -> None:
        self._each("on_epoch", epoch)

    def on_train(self, stats: TrainStats) -> None:
        self._each("on_train", stats)

    def on_val(self, result: ValResult) -> None:
        self._each("on_val", result)

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        self._each("on_unlock", event, stats)

    def on_spike(self, result: SpikeResult, step: int) -> None:
        self._each("on_spike", result, step)

    def on_skip(self, skipped: SkippedStep) -> None:
        self._each("on_skip", skipped)

    def on_finish(self, summary: dict) -> None:
        self._each("on_finish", summary)

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        """Every tracker records the failure where it still can: one that cannot is named, and the others go on,
        so the error that stopped the run is the one reported."""
        for tracker in self.trackers:
            try:
                tracker.on_fail(step, error, kind, unlocks)
            except Exception as err:
                log.warning(f"{tracker.label} could not record the {kind} run ({type(err).__name__}: {err})")
