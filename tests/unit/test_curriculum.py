"""Curricula driven by scripted scores: the reference's two examples, the old system, the guards."""

import math

import pytest

from bicameral.curriculum import (
    Achievement,
    CurriculumError,
    FixedThreshold,
    NoCurriculum,
    StepSchedule,
    default_levels,
    resolve_levels,
)

LEVELS = [128, 256, 512, 513]
# the reference's examples judge every score: no guard (the loss-driven curricula default to 50 steps a level)
NO_GUARD = {"min_steps_per_level": 0}


def drive(curriculum, scores: dict[int, float]):
    """Feed step -> score in order; return the unlock events and their log lines."""
    events, lines = [], []
    for step, score in scores.items():
        event = curriculum.observe(step, score)
        if event:
            events.append(event)
            lines.extend(event.log_lines())
    return events, lines


def test_reference_timeline_beat_your_own_score():
    """Level 1 unlocks at 3.15 < 3.2, level 2 at 3.08 < 3.15 (after the spike), level 3 at 2.95 < 3.08."""
    scores = {100: 4.5, 200: 3.6, 300: 3.2, 400: 3.15,  # 3.2 is not below the bar 3.2
              500: 3.4, 600: 3.2, 700: 3.16, 800: 3.08,  # spike after the unlock, then down
              900: 3.15, 1000: 3.12, 1100: 3.10, 1200: 3.09, 1300: 3.085, 1400: 3.081, 1500: 2.95,
              1600: 2.5, 1700: 2.0}  # full resolution: keep training, no more unlocks
    curriculum = Achievement(levels=LEVELS, unlock_threshold=3.2, **NO_GUARD)
    events, lines = drive(curriculum, scores)
    unlocks = [(e.step, e.from_cutoff, e.to_cutoff) for e in events]
    assert unlocks == [(400, 128, 256), (800, 256, 512), (1500, 512, 513)]
    assert [e.prev_bar for e in events] == [3.2, 3.15, 3.08]
    assert [e.next_bar for e in events] == [3.15, 3.08, 2.95]
    assert lines == [
        "  [UNLOCK] 128 -> 256 (loss=3.150)",
        "    Next unlock target: loss < 3.150",
        "  [UNLOCK] 256 -> 512 (loss=3.080, beat prev 3.150)",
        "    Next unlock target: loss < 3.080",
        "  [UNLOCK] 512 -> 513 (loss=2.950, beat prev 3.080)",
        "    Next unlock target: loss < 2.950",
    ]
    assert curriculum.finished and curriculum.cutoff == 513 and curriculum.bar == 2.95


def test_seed_log_example():
    scores = {10: 4.250, 20: 3.850, 30: 3.450, 40: 3.178, 50: 3.420, 60: 3.250, 70: 3.145}
    events, lines = drive(Achievement(levels=LEVELS, unlock_threshold=3.2, **NO_GUARD), scores)
    assert [e.step for e in events] == [40, 70]
    assert lines == [
        "  [UNLOCK] 128 -> 256 (loss=3.178)",
        "    Next unlock target: loss < 3.178",
        "  [UNLOCK] 256 -> 512 (loss=3.145, beat prev 3.178)",
        "    Next unlock target: loss < 3.145",
    ]


def test_one_unlock_per_decision_even_far_below_every_bar():
    curriculum = Achievement(levels=LEVELS, unlock_threshold=3.2, **NO_GUARD)
    events, _ = drive(curriculum, {10: 1.0, 20: 0.9, 30: 0.8})
    assert [e.to_cutoff for e in events] == [256, 512, 513]


def test_fixed_threshold_old_system():
    scores = {10: 3.1, 20: 2.99, 30: 2.7, 40: 2.49, 50: 2.3, 60: 1.99, 70: 1.5}
    events, lines = drive(FixedThreshold(levels=LEVELS, thresholds=[3.0, 2.5, 2.0], **NO_GUARD), scores)
    assert [(e.step, e.prev_bar) for e in events] == [(20, 3.0), (40, 2.5), (60, 2.0)]
    assert lines[:2] == ["  [UNLOCK] 128 -> 256 (loss=2.990, below 3.000)", "    Next unlock target: loss < 2.500"]
    assert events[-1].next_bar is None


def test_none_is_full_resolution_from_the_start():
    curriculum = NoCurriculum(levels=LEVELS)
    assert curriculum.cutoff == 513 and curriculum.finished
    assert drive(curriculum, {10: 0.1})[0] == []


def test_step_schedule_unlocks_at_its_steps_whatever_the_loss():
    events, _ = drive(StepSchedule(levels=LEVELS, unlock_steps=[20, 40, 60]), {s: 9.0 for s in range(10, 80, 10)})
    assert [e.step for e in events] == [20, 40, 60]


def test_min_steps_per_level_holds_the_unlock_back():
    curriculum = Achievement(levels=LEVELS, unlock_threshold=3.2, min_steps_per_level=30)
    events, _ = drive(curriculum, {10: 3.0, 20: 2.9, 30: 2.8, 40: 2.7, 50: 2.6, 60: 2.5})
    assert [(e.step, e.score) for e in events] == [(30, 2.8), (60, 2.5)]


def test_max_steps_per_level_unlocks_anyway_and_says_so():
    curriculum = Achievement(levels=LEVELS, unlock_threshold=3.2, max_steps_per_level=30, **NO_GUARD)
    events, lines = drive(curriculum, {10: 4.0, 20: 3.9, 30: 3.8, 40: 3.7})
    assert [(e.step, e.reason) for e in events] == [(30, "max_steps")]
    assert lines[0] == "  [UNLOCK] 128 -> 256 (loss=3.800, max steps per level reached)"
    assert curriculum.bar == 3.2  # a capped unlock does not raise the bar


def test_margin_and_non_finite_scores():
    curriculum = Achievement(levels=LEVELS, unlock_threshold=3.2, margin=0.1, **NO_GUARD)
    assert curriculum.observe(10, 3.15) is None  # not 0.1 below the bar
    assert curriculum.observe(20, math.nan) is None and curriculum.observe(30, -math.inf) is None
    assert curriculum.observe(40, 3.05) is not None


def test_state_dict_round_trip_continues_at_the_same_level_and_bar():
    a = Achievement(levels=LEVELS, unlock_threshold=3.2, min_steps_per_level=10)
    drive(a, {10: 3.1, 20: 3.3, 30: 3.0})
    b = Achievement(levels=LEVELS, unlock_threshold=3.2, min_steps_per_level=10)
    b.load_state_dict(a.state_dict())
    assert (b.level, b.bar, b.cutoff, b.level_start_step) == (a.level, a.bar, a.cutoff, a.level_start_step)
    assert b.observe(35, 2.9) is None  # min steps since the last unlock at 30 still apply
    assert b.observe(40, 2.9).prev_bar == 3.0


def test_a_history_saved_before_the_rename_reads_back_with_next_bar():
    a = Achievement(levels=LEVELS, unlock_threshold=3.2, min_steps_per_level=0)
    drive(a, {10: 3.1})
    state = a.state_dict()
    state["history"] = [{("next_target" if k == "next_bar" else k): v for k, v in u.items()} for u in state["history"]]
    b = Achievement(levels=LEVELS, unlock_threshold=3.2)
    b.load_state_dict(state)
    assert b.history == a.history and b.history[0]["next_bar"] == 3.1


def test_levels_default_and_validation():
    assert default_levels(1024) == [128, 256, 512, 513]
    assert default_levels(256) == [32, 64, 128, 129]
    assert resolve_levels([16, 64], 256) == [16, 64, 129]  # always ends at full resolution
    with pytest.raises(CurriculumError, match="strictly increasing"):
        resolve_levels([128, 128, 513], 1024)
    with pytest.raises(CurriculumError, match="exceeds the 513 rfft bins"):
        resolve_levels([128, 600], 1024)
    with pytest.raises(CurriculumError, match="one threshold per unlock"):
        FixedThreshold(levels=LEVELS, thresholds=[3.0])
    with pytest.raises(CurriculumError, match="unlock_threshold"):
        Achievement(levels=LEVELS, unlock_threshold=0)


def test_a_plug_in_whose_ready_returns_no_bool_fails_naming_it():
    """The string "False" is truthy: read as a yes it would unlock; it must be refused, not obeyed."""
    from dataclasses import dataclass

    from bicameral.curriculum import Curriculum, CurriculumError

    @dataclass(kw_only=True)
    class Sloppy(Curriculum):
        def ready(self, step, score):
            return "False"

    with pytest.raises(CurriculumError, match=r"Sloppy\.ready returned 'False'; it must return True or False\."):
        Sloppy(levels=[8, 16]).observe(10, 3.0)


def test_a_plug_in_that_names_its_bar_target_still_unlocks_with_it_and_is_told_the_new_name():
    from dataclasses import dataclass

    from bicameral.curriculum import Curriculum

    with pytest.warns(FutureWarning, match=r"Older\.target is now called next_bar"):
        @dataclass(kw_only=True)
        class Older(Curriculum):
            @property
            def target(self):
                return 3.0

            def ready(self, step, score):
                return score < self.target

    event = Older(levels=[8, 16]).observe(10, 2.5)
    assert event.prev_bar == 3.0
