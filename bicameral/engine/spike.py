"""The loss spike after an unlock, measured (the reference's "Why The Loss Spikes").

New frequency bands briefly confuse the model: the smoothed training loss rises above the score it
unlocked at, then falls back. For each unlock this measures, once `window` steps have passed:
  spike    = the highest smoothed loss in (unlock step, unlock step + window], minus the unlock's score
  recovery = steps from the unlock to the first smoothed loss below that score; None = not recovered

    meter = SpikeMeter(window=50)
    meter.unlock(step=100, score=3.15, from_cutoff=128, to_cutoff=256)  # after the curriculum unlocks
    result = meter.observe(step=110, loss=3.40)  # at each log point; a SpikeResult once the window closes
    result.log_line()  # '  [SPIKE] 128 -> 256: +0.250 over 3.150, recovered in 30 steps'

Pure logic on plain numbers, with a state_dict of plain types, so a run resumed mid-window reports the
same spike as one that never stopped.
"""

from dataclasses import asdict, dataclass

from bicameral.errors import BicameralError


@dataclass
class SpikeResult:
    step: int  # the unlock's step
    from_cutoff: int
    to_cutoff: int
    score: float  # the smoothed loss the unlock happened at
    spike: float | None  # highest smoothed loss in the window minus score; None if nothing was logged in it
    recovery_steps: int | None  # steps until the smoothed loss was below score again; None = not recovered
    window_steps: int  # steps the window covered: shorter than asked when the next unlock or the run's end cut it

    def to_record(self) -> dict:
        """The events.jsonl row."""
        return {"kind": "spike", **asdict(self)}

    def log_line(self) -> str:
        """The console line, in the reference's shape."""
        head = f"  [SPIKE] {self.from_cutoff} -> {self.to_cutoff}: "
        if self.spike is None:
            return head + f"no loss logged within {self.window_steps} steps"
        head += f"{self.spike:+.3f} over {self.score:.3f}, "
        if self.recovery_steps is None:
            return head + f"not recovered within {self.window_steps} steps"
        return head + f"recovered in {self.recovery_steps} steps"


class SpikeMeter:
    """Measures one unlock at a time: a new unlock closes the window still open, at its own step, because
    from there on the loss answers to the new band."""

    def __init__(self, window: int):
        if not isinstance(window, int) or window < 1:
            raise BicameralError(f"trainer.spike_window={window} must be a whole number of steps >= 1.")
        self.window = window
        self.open: dict | None = None  # the unlock being measured: its fields, the peak so far, when it recovered

    def unlock(self, step: int, score: float, from_cutoff: int, to_cutoff: int) -> SpikeResult | None:
        """Start measuring an unlock; returns the previous unlock's result if its window was still open."""
        cut = self.close(step)
        self.open = {"step": step, "score": float(score), "from_cutoff": from_cutoff, "to_cutoff": to_cutoff,
                     "peak": None, "recovered_at": None}
        return cut

    def observe(self, step: int, loss: float) -> SpikeResult | None:
        """Take the smoothed training loss at a log point; returns the result when this step closes the window."""
        w = self.open
        if w is None or step <= w["step"]:
            return None  # nothing open, or the log point the unlock itself was scored on
        end = w["step"] + self.window
        if step > end:  # a log point past the window: the window closed before it
            return self.close(end)
        w["peak"] = loss if w["peak"] is None else max(w["peak"], loss)
        if w["recovered_at"] is None and loss < w["score"]:
            w["recovered_at"] = step
        return self.close(end) if step == end else None

    def close(self, step: int) -> SpikeResult | None:
        """End the open window at `step` (a new unlock, or the run's last step); None if none is open.
        A run that stops only to be resumed must not call this: its checkpoint carries the window."""
        w, self.open = self.open, None
        if w is None:
            return None
        return SpikeResult(
            step=w["step"], from_cutoff=w["from_cutoff"], to_cutoff=w["to_cutoff"], score=w["score"],
            spike=None if w["peak"] is None else w["peak"] - w["score"],
            recovery_steps=None if w["recovered_at"] is None else w["recovered_at"] - w["step"],
            window_steps=min(step, w["step"] + self.window) - w["step"],
        )

    def state_dict(self) -> dict:
        # the window is config, not state: a resume with another spike_window measures with the new one
        return {"open": None if self.open is None else dict(self.open)}

    def load_state_dict(self, state: dict) -> None:
        self.open = None if state["open"] is None else dict(state["open"])
