"""The console line: the reference's shape, then global progress, throughput and time left."""

import logging
from pathlib import Path

import pytest

from bicameral.engine.events import TrainStats
from bicameral.tracking.console import ConsoleTracker
from bicameral.tracking.format import format_count, format_duration, progress
from bicameral.tracking.tracker import RunInfo


def stats(step: int, tokens_per_s: float, tokens_per_step: int = 4096) -> TrainStats:
    return TrainStats(step=step, epoch=0, epoch_step=step, loss=3.25, lr=2e-4, cutoff=128, level=0,
                      freq_share=0.5, tokens=step * tokens_per_step, tokens_per_s=tokens_per_s)


@pytest.mark.parametrize("seconds, text", [(7, "7s"), (312, "5m12s"), (11100, "3h05m"), (0.4, "0s")])
def test_durations_read_like_a_clock(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("n, text", [(950, "950"), (1234, "1.2k"), (2_500_000, "2.5M")])
def test_counts_are_short(n, text):
    assert format_count(n) == text


def test_progress_gives_the_time_left_at_the_current_rate():
    # 4096 tokens a step at 1228.8 tok/s: 3.33 s a step, 49588 steps left -> 45.9 hours
    assert progress(stats(412, 1228.8), 50000) == "[412/50000 1.2k tok/s eta 45h54m]"


def test_train_line_keeps_the_seed_shape_then_adds_progress(caplog):
    with caplog.at_level(logging.INFO, logger="bicameral"):
        console = ConsoleTracker()
        console.start(RunInfo(run_dir=Path("."), config={}, steps_per_epoch=1000, total_steps=50000, name="run"))
        console.on_train(stats(10, 4096.0))
    assert caplog.messages == ["  step 10/1000 loss=3.250 lr=2.0e-4 cutoff=128  [10/50000 4.1k tok/s eta 13h53m]"]
