"""The spike after an unlock, measured from scripted smoothed losses (log points every 10 steps)."""

import json

import pytest

from bicameral.engine.spike import SpikeMeter, SpikeResult
from bicameral.errors import BicameralError


def feed(meter: SpikeMeter, losses: dict[int, float]) -> list[SpikeResult]:
    """observe() each (step, loss) in order; the results it yields."""
    return [r for step, loss in losses.items() if (r := meter.observe(step, loss)) is not None]


def test_the_seeds_example_spike_then_recovery():
    """At 128: loss=3.15 -> unlock 256; at 256: loss=3.40 (spike!) -> drops to 3.10."""
    meter = SpikeMeter(window=50)
    assert meter.observe(100, 3.15) is None  # the log point the unlock was scored on
    assert meter.unlock(100, 3.15, from_cutoff=128, to_cutoff=256) is None
    [result] = feed(meter, {110: 3.30, 120: 3.40, 130: 3.10, 140: 3.05, 150: 3.00, 160: 2.90})
    assert result.spike == pytest.approx(0.25)
    assert (result.step, result.score, result.recovery_steps, result.window_steps) == (100, 3.15, 30, 50)
    assert result.log_line() == "  [SPIKE] 128 -> 256: +0.250 over 3.150, recovered in 30 steps"
    record = result.to_record()
    assert record == {"kind": "spike", "step": 100, "from_cutoff": 128, "to_cutoff": 256, "score": 3.15,
                      "spike": pytest.approx(0.25), "recovery_steps": 30, "window_steps": 50}
    json.dumps(record)  # an events.jsonl row


def test_equal_to_the_score_is_not_recovered_yet():
    meter = SpikeMeter(window=30)
    meter.unlock(0, 3.0, 32, 64)
    [result] = feed(meter, {10: 3.2, 20: 3.0, 30: 2.99})
    assert result.recovery_steps == 30 and result.spike == pytest.approx(0.2)


def test_not_recovered_within_the_window():
    meter = SpikeMeter(window=30)
    meter.unlock(50, 2.5, 64, 128)
    results = feed(meter, {60: 2.9, 70: 2.7, 80: 2.6, 90: 2.4})
    assert len(results) == 1  # closed at 80; the 2.4 at 90 came too late
    [result] = results
    assert (result.spike, result.recovery_steps, result.window_steps) == (pytest.approx(0.4), None, 30)
    assert result.log_line() == "  [SPIKE] 64 -> 128: +0.400 over 2.500, not recovered within 30 steps"


def test_a_log_point_past_the_window_closes_it_without_counting():
    """A window that ends between log points (window 25, logs every 10) closes at the next one."""
    meter = SpikeMeter(window=25)
    meter.unlock(0, 3.0, 32, 64)
    assert feed(meter, {10: 3.1, 20: 3.2}) == []
    result = meter.observe(30, 9.0)
    assert (result.spike, result.window_steps) == (pytest.approx(0.2), 25)


def test_no_spike_when_the_loss_only_falls():
    meter = SpikeMeter(window=20)
    meter.unlock(0, 3.0, 32, 64)
    [result] = feed(meter, {10: 2.9, 20: 2.8})
    assert result.spike == pytest.approx(-0.1) and result.recovery_steps == 10


def test_an_unlock_before_the_window_closed_cuts_it_there():
    meter = SpikeMeter(window=50)
    meter.unlock(100, 3.0, 32, 64)
    assert feed(meter, {110: 3.3, 120: 3.1}) == []
    cut = meter.unlock(120, 3.1, 64, 128)  # the next band unlocked at step 120
    assert (cut.step, cut.to_cutoff, cut.spike, cut.recovery_steps, cut.window_steps) == (
        100, 64, pytest.approx(0.3), None, 20)
    # the new unlock is measured from its own score, over its own full window
    [second] = feed(meter, {130: 3.2, 140: 3.0, 150: 2.9, 160: 2.9, 170: 2.8})
    assert (second.step, second.from_cutoff, second.spike, second.recovery_steps, second.window_steps) == (
        120, 64, pytest.approx(0.1), 20, 50)


def test_the_end_of_the_run_closes_an_open_window():
    meter = SpikeMeter(window=50)
    assert meter.close(200) is None  # nothing open
    meter.unlock(180, 2.0, 64, 129)
    feed(meter, {190: 2.1, 200: 1.9})
    result = meter.close(200)
    assert (result.spike, result.recovery_steps, result.window_steps) == (pytest.approx(0.1), 20, 20)


def test_an_unlock_with_nothing_logged_after_it():
    meter = SpikeMeter(window=50)
    meter.unlock(10, 3.0, 32, 64)
    result = meter.unlock(10, 2.9, 64, 128)  # max_steps_per_level=0 can unlock twice at one log point
    assert (result.spike, result.recovery_steps, result.window_steps) == (None, None, 0)
    assert result.log_line() == "  [SPIKE] 32 -> 64: no loss logged within 0 steps"


def test_resume_mid_window_gives_the_same_result():
    losses = {110: 3.3, 120: 3.4, 130: 3.2, 140: 3.1, 150: 3.0}
    straight = SpikeMeter(window=50)
    straight.unlock(100, 3.15, 128, 256)
    [expected] = feed(straight, losses)

    first = SpikeMeter(window=50)
    first.unlock(100, 3.15, 128, 256)
    feed(first, {110: 3.3, 120: 3.4})
    state = json.loads(json.dumps(first.state_dict()))  # plain types only: it goes in a checkpoint
    resumed = SpikeMeter(window=50)
    resumed.load_state_dict(state)
    assert feed(resumed, {130: 3.2, 140: 3.1, 150: 3.0}) == [expected]
    assert expected.recovery_steps == 40 and expected.spike == pytest.approx(0.25)


def test_a_window_that_is_not_a_positive_step_count_is_one_clear_error():
    for bad in (0, -5, 2.5):
        with pytest.raises(BicameralError, match=r"trainer.spike_window=.* must be a whole number of steps >= 1"):
            SpikeMeter(window=bad)
