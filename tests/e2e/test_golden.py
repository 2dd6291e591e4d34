"""A refactor must not move numerics: the smoke run's losses, unlocks and val loss per curriculum.

Bit for bit on a processor that recorded tests/golden_losses.json (one recording per processor); on another,
float32 reductions may round differently, so there the comparison is at a relative tolerance of 1e-6.
"""

import json

import pytest

from tests.golden import CURRICULA, GOLDEN_FILE, PER_STEP, UNLOCKING, processor, recording_for, smoke_run

GOLDEN, SAME_MACHINE = recording_for(json.loads(GOLDEN_FILE.read_text())["recordings"], processor())


def assert_matches(actual: dict, expected: dict) -> None:
    assert actual["unlock_steps"] == expected["unlock_steps"]
    values = [*actual["losses"], actual["final_val_loss"]]
    wanted = [*expected["losses"], expected["final_val_loss"]]
    if SAME_MACHINE:
        assert values == wanted  # bit for bit
    else:
        assert values == pytest.approx(wanted, rel=1e-6)


@pytest.mark.parametrize("curriculum", CURRICULA)
def test_smoke_run_reproduces_the_golden_losses(curriculum, corpus_cache):
    golden = GOLDEN["runs"][curriculum]
    assert_matches(smoke_run(curriculum), golden["smoke"])
    assert_matches(smoke_run(curriculum, *PER_STEP, *UNLOCKING[curriculum]), golden["per_step"])


def test_golden_runs_cover_unlocks_and_restarts():
    per_step = {name: runs["per_step"] for name, runs in GOLDEN["runs"].items()}
    assert all(len(run["losses"]) == 40 for run in per_step.values())
    assert all(len(per_step[name]["unlock_steps"]) == 3 for name in ("achievement", "fixed_threshold", "step_schedule"))
