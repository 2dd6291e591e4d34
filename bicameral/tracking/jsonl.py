"""The JSONL tracker: metrics.jsonl and events.jsonl in the run dir, each step once."""

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

from bicameral.curriculum import UnlockEvent
from bicameral.engine.events import SkippedStep, TrainStats, ValResult
from bicameral.engine.spike import SpikeResult
from bicameral.errors import BicameralError
from bicameral.tracking.tracker import RunInfo, Tracker


class RecordError(BicameralError, OSError):
    """A record that could not be written: the run stops rather than train on without its record."""


class JsonlTracker(Tracker):
    """metrics.jsonl (train and val rows) and events.jsonl (unlocks, skips, the end) in the run dir.

    A write that fails (a full disk) stops the run with a RecordError. No checkpoint is saved on it: a
    checkpoint past the lost row would leave a hole in the record for good, while a resume from the last
    checkpoint trains the steps after it again and writes their rows afresh."""

    def start(self, run: RunInfo) -> None:
        self.run_dir = Path(run.run_dir)
        # append: a resumed run continues the same record
        self.metrics = self._open("metrics.jsonl")
        self.events = self._open("events.jsonl")

    def _open(self, name: str):
        try:
            return open(self.run_dir / name, "a", encoding="utf-8")
        except OSError as err:
            raise self._error(self.run_dir / name, err) from None

    @staticmethod
    def _error(path, err: OSError) -> RecordError:
        return RecordError(f"Could not write {path} ({err.strerror or err}): the run stops rather than train on "
                           f"without its record. Fix: free space in {Path(path).parent} (or make it writable), then "
                           "rerun to resume from the last checkpoint.")

    def on_train(self, stats: TrainStats) -> None:
        self._write(self.metrics, {"kind": "train", **asdict(stats)})

    def on_val(self, result: ValResult) -> None:
        self._write(self.metrics, {"kind": "val", **asdict(result)})

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        self._write(self.events, {"kind": "unlock", **asdict(event), "tokens": stats.tokens,
                                  "freq_share": stats.freq_share})

    def on_spike(self, result: SpikeResult, step: int) -> None:
        # at_step: when it was reported, so a resume can cut exactly the records after its checkpoint
        self._write(self.events, {**result.to_record(), "at_step": step})

    def on_skip(self, skipped: SkippedStep) -> None:
        self._write(self.events, {"kind": "skip", **asdict(skipped)})

    def _write(self, f, record: dict) -> None:
        try:
            f.write(json.dumps(record) + "\n")
            f.flush()  # a crash loses at most the line being written
        except OSError as err:
            raise self._error(f.name, err) from None

    def on_finish(self, summary: dict) -> None:
        self._close({"kind": "finish", **{k: v for k, v in summary.items() if k != "unlocks"}})

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        self._close({"kind": kind, "step": step, "error": error})

    def _close(self, last_record: dict) -> None:
        try:
            self._write(self.events, last_record)
        finally:
            for f in (self.metrics, self.events):
                with contextlib.suppress(OSError):  # what could not be flushed is already reported
                    f.close()
