"""The console tracker: one line per log step, unlock and validation."""

import logging

from bicameral.curriculum import UnlockEvent
from bicameral.engine.events import SkippedStep, TrainStats, ValResult
from bicameral.engine.spike import SpikeResult
from bicameral.tracking.format import format_lr, hemisphere_line, progress
from bicameral.tracking.tracker import RunInfo, Tracker

log = logging.getLogger("bicameral")


class ConsoleTracker(Tracker):
    """The reference's log lines, through the `bicameral` logger (Hydra also copies them to train.log)."""

    def start(self, run: RunInfo) -> None:
        self.steps_per_epoch, self.total_steps = run.steps_per_epoch, run.total_steps

    def on_epoch(self, epoch: int) -> None:
        log.info(f"Epoch {epoch}:")

    def on_train(self, stats: TrainStats) -> None:
        # the reference's line, then where the whole run stands
        log.info(f"  step {stats.epoch_step}/{self.steps_per_epoch} loss={stats.loss:.3f} "
                 f"lr={format_lr(stats.lr)} cutoff={stats.cutoff}  {progress(stats, self.total_steps)}")

    def on_val(self, result: ValResult) -> None:
        bits = f" bits/byte={result.bits_per_byte:.3f}" if result.bits_per_byte is not None else ""
        log.info(f"  val_loss={result.val_loss:.3f}{bits} (step {result.step})")
        log.info(hemisphere_line(result.freq_share))

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        for line in [*event.log_lines(), hemisphere_line(stats.freq_share)]:
            log.info(line)

    def on_spike(self, result: SpikeResult, step: int) -> None:
        log.info(result.log_line())

    def on_skip(self, skipped: SkippedStep) -> None:
        log.info(f"  [SKIP] step {skipped.step}: non-finite gradient, update skipped "
                 f"({skipped.skipped_steps} so far)")

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        if kind == "failed":
            log.error(f"Run failed at step {step}: {error}")
