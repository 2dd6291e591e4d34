"""The paired report on a synthetic sweep of 3 seeds: differences against the baseline with their intervals,
identical variants collapsed, the LR area named, yoked controls paired, the excess loss after each unlock."""

import csv

import pytest
from scipy import stats as sps

from bicameral.report.paired import difference, excess_by_seed, excess_contrast, excess_loss
from bicameral.report.runs import load_runs
from bicameral.report.tables import decision_table, format_difference, report_text
from bicameral.report.write import RUN_COLUMNS, build_report, write_report
from tests.unit.test_compare import config, write_job

T975_2 = 4.302653  # t quantile 0.975 with 2 degrees of freedom, from a table
SEEDS = (0, 1, 2)


def curve(final: float) -> list[float]:
    """Ten logged train losses (steps 10..100) falling to `final`."""
    return [final + 0.1 * (9 - i) for i in range(10)]


def job(root, name: str, overrides: list[str], seed: int, final: float, lr_area: float, unlocks=(),
        yoked_to: str | None = None, losses=None) -> None:
    cfg = config("none", seed)
    if yoked_to is not None:
        cfg["yoked_to"] = yoked_to
    write_job(root / name, [*overrides, f"seed={seed}"], cfg, losses=losses or curve(final), vals={100: final},
              unlocks=unlocks, finish={"final_val_loss": final, "best_val_loss": final, "lr_area": lr_area,
                                       "steps_to_full_resolution": 0, "wall_time_s": 10.0})


@pytest.fixture
def sweep(tmp_path):
    """none, achievement (unlocks at 30/60, LR area +10%), a margin variant that is achievement's very runs, and
    achievement's yoked controls: the same restarts with the band open."""
    root = tmp_path / "multirun" / "yoke_demo" / "2026-12-01_10-00-00"
    unlocks = [(30, 32, 64), (60, 64, 129)]
    for k in SEEDS:
        job(root, f"curriculum=none,seed={k}", ["curriculum=none"], k, 1.95 + 0.01 * k, 100.0)
        ach = curve(1.90 + 0.02 * k)
        ach[3] += 0.05  # the step after the first unlock (steps 31..40 are logged at 40): a cost of 0.05
        job(root, f"curriculum=achievement,seed={k}", ["curriculum=achievement"], k, 1.90 + 0.02 * k, 110.0, unlocks,
            losses=ach)
        job(root, f"curriculum.margin=0.02,curriculum=achievement,seed={k}",
            ["curriculum=achievement", "curriculum.margin=0.02"], k, 1.90 + 0.02 * k, 110.0, unlocks, losses=ach)
        job(root, f"yoked/curriculum=achievement,seed={k}", ["curriculum=none", "schedule.restart_steps=[30,60]"], k,
            1.92 + 0.01 * k, 110.0, yoked_to=f"curriculum=achievement,seed={k}", losses=curve(1.92 + 0.01 * k))
    return root


def test_paired_differences_against_the_baseline_with_interval_p_and_verdict(sweep):
    report = build_report(load_runs(sweep), sweep)
    assert report["baseline"] == "curriculum=none" and report["title"] == "yoke_demo"
    rows = {r["variant"]: r for r in report["paired"]}
    # the margin variant is achievement's very runs: shown and tested once
    assert set(rows) == {"curriculum=achievement", "yoked(curriculum=achievement)"}
    final = rows["curriculum=achievement"]["final_val_loss"]
    # achievement 1.90, 1.92, 1.94 minus none 1.95, 1.96, 1.97: -0.05, -0.04, -0.03; mean -0.04, sd 0.01
    assert final["values"] == pytest.approx([-0.05, -0.04, -0.03]) and final["n"] == 3
    half = T975_2 * 0.01 / 3 ** 0.5  # 0.024841
    assert (final["low"], final["high"]) == pytest.approx((-0.04 - half, -0.04 + half), abs=1e-6)
    assert final["p"] == pytest.approx(sps.ttest_rel([1.90, 1.92, 1.94], [1.95, 1.96, 1.97]).pvalue)
    assert final["verdict"] == "lower (CI excludes 0)"
    yoked = rows["yoked(curriculum=achievement)"]["final_val_loss"]
    # yoked 1.92, 1.93, 1.94 minus none: -0.03 each, sd 0: certain
    assert yoked["values"] == pytest.approx([-0.03] * 3) and yoked["p"] == 0.0
    # Holm over the two rows of the table: the smaller p (0) doubled, the larger one times 1
    assert (yoked["p_holm"], final["p_holm"]) == (0.0, pytest.approx(final["p"]))
    text = report_text(report)
    assert "curriculum=achievement ≡ curriculum.margin=0.02,curriculum=achievement" in text
    assert "-0.040 [-0.065, -0.015]" in text


def test_the_unlocking_alone_is_the_variant_minus_its_yoked_control(sweep):
    report = build_report(load_runs(sweep), sweep)
    [row] = report["unlocking"]
    assert (row["variant"], row["reference"]) == ("curriculum=achievement", "yoked(curriculum=achievement)")
    # 1.90, 1.92, 1.94 minus 1.92, 1.93, 1.94: -0.02, -0.01, 0.00; mean -0.01, sd 0.01: the CI holds 0
    final = row["final_val_loss"]
    assert final["values"] == pytest.approx([-0.02, -0.01, 0.0])
    assert final["verdict"] == "not distinguishable (n=3)"
    assert row["lr_area"] == (110.0, 110.0)  # the control's restarts hold the LR equal


def test_the_confounds_are_named(sweep):
    report = build_report(load_runs(sweep), sweep)
    lines = report["confounds"]
    [lr] = [line for line in lines if line.startswith("LR area: curriculum=achievement ")]
    assert "+10% the LR area of curriculum=none (110.0 vs 100.0" in lr
    assert "yoked(curriculum=achievement) holds it equal" in lr
    assert any(line.startswith("Identical: curriculum=achievement ≡ curriculum.margin=0.02,curriculum=achievement")
               for line in lines)
    assert not any(line.startswith("Tokens differ") for line in lines)  # every run trained 100 steps
    # means (100, 1.96), (110, 1.92) and (110, 1.92): on one falling line
    fit = report["lr_area_vs_final_val"]
    assert (fit["r"], fit["variants"]) == (pytest.approx(-1.0), 3)
    assert any(line.startswith("Across 3 variants (yoked controls aside), mean final val loss against mean LR area: "
                               "r = -1.00") for line in lines)


def test_excess_loss_after_each_unlock_is_paired_against_the_yoked_control(sweep):
    rows = {e["unlock"]: e for e in excess_loss(load_runs(sweep)) if e["variant"] == "curriculum=achievement"}
    # the spike window defaults to 5 log windows (50 steps): after the unlock at 30, steps 40..80
    # seed k: achievement's curve is (1.90 + 0.02k) + 0.1(9 - i) with +0.05 at step 40; the control's (1.92 + 0.01k)
    # + 0.1(9 - i): run - control per step is -0.02 + 0.01k, and +0.05 once in 5 points: mean -0.02 + 0.01k + 0.01
    first = rows[1]["excess"]
    assert first["values"] == pytest.approx([-0.01, 0.0, 0.01]) and rows[1]["cutoffs"] == ["32->64"]
    # after the unlock at 60: steps 70..100 (4 points), no extra cost
    assert rows[2]["excess"]["values"] == pytest.approx([-0.02, -0.01, 0.0])


def test_runs_csv_and_json_hold_every_run(sweep, tmp_path):
    report = write_report(load_runs(sweep), sweep, tmp_path / "out")
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RUN_COLUMNS
    assert len(rows) == len(report["runs"]) == 12
    ach0 = next(r for r in rows if r["label"] == "curriculum=achievement,seed=0")
    assert (ach0["final_val_loss"], ach0["lr_area"], ach0["unlock_steps"], ach0["restart_steps"]) == (
        "1.9", "110.0", "30 60", "30 60")
    control = next(r for r in rows if r["yoked_to"] == "curriculum=achievement,seed=1")
    assert (control["variant"], control["seed"]) == ("yoked(curriculum=achievement)", "1")


def test_fewer_than_three_seeds_show_values_never_a_plus_minus(sweep):
    for k in (2,):
        for path in sweep.glob(f"*seed={k}"):
            (path / "events.jsonl").unlink()  # seed 2 never finished anywhere
    report = build_report(load_runs(sweep), sweep)
    text = report_text(report)
    assert "±" not in text.split("Paired differences")[1].split("Confounds")[0]
    row = {r["variant"]: r for r in report["paired"]}["curriculum=achievement"]["final_val_loss"]
    assert row["n"] == 2 and row["low"] is not None  # the interval is computed, but not shown under 3 pairs
    assert "-0.050, -0.040" in text and "too few seeds (n=2)" in text


def test_an_unknown_baseline_is_one_clear_error(sweep):
    with pytest.raises(ValueError, match=r"--baseline 'curriculum=oops' is not a variant of this sweep"):
        build_report(load_runs(sweep), sweep, baseline="curriculum=oops")
    report = build_report(load_runs(sweep), sweep, baseline="curriculum=achievement")
    assert report["baseline"] == "curriculum=achievement"
    assert [r["variant"] for r in report["paired"]] == ["curriculum=none", "yoked(curriculum=achievement)"]


def test_seeds_that_do_not_pair_fall_back_to_welch():
    a = {0: 1.90, 1: 1.92, 2: 1.94}
    b = {3: 1.95, 4: 1.97, 5: 1.99}
    cell = difference(a, b)
    welch = sps.ttest_ind([1.90, 1.92, 1.94], [1.95, 1.97, 1.99], equal_var=False)
    assert (cell["test"], cell["seeds"]) == ("Welch t", []) and cell["p"] == pytest.approx(welch.pvalue)
    assert cell["mean"] == pytest.approx(-0.05) and format_difference(cell).endswith(" (Welch)")
    # two seeds a side: the difference of the means, no interval
    two = difference({0: 1.90, 1: 1.92}, {3: 1.95, 4: 1.97})
    assert format_difference(two) == "-0.050 (Welch, n=2)"
    # one shared seed and too few for Welch: that one pair
    assert difference({0: 1.9}, {0: 2.0, 1: 2.1})["values"] == pytest.approx([-0.1])


def test_the_stated_rule_reads_the_unlocking_and_the_restarts_side_by_side(sweep, tmp_path, capsys):
    report = build_report(load_runs(sweep), sweep, decision_margin=0.005)
    rows = {row["question"]: row for row in report["decision"]["rows"]}
    # the unlocking: -0.02, -0.01, 0.00; mean -0.01, CI -0.01 +- 4.3027 x 0.01 / sqrt(3): it holds 0 and is too wide
    unlocking = rows["unlocking"]
    assert (unlocking["variant"], unlocking["minus"]) == ("curriculum=achievement", "yoked(curriculum=achievement)")
    assert (unlocking["low"], unlocking["high"]) == pytest.approx((-0.01 - T975_2 * 0.01 / 3 ** 0.5,
                                                                   -0.01 + T975_2 * 0.01 / 3 ** 0.5))
    assert unlocking["verdict"] == "could not tell"
    # the restarts: the yoked control sits 0.03 below none in every seed
    restarts = rows["restarts"]
    assert (restarts["variant"], restarts["minus"], restarts["verdict"]) == (
        "yoked(curriculum=achievement)", "curriculum=none", "helps")
    assert restarts["mean"] == pytest.approx(-0.03)
    from bicameral.report.__main__ import main
    assert main([str(sweep), "--decision-margin", "0.005", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Decision, by the rule stated before the runs (margin 0.005 nats):" in out
    assert "helps" in out and "could not tell" in out


def test_two_pairs_decide_nothing_and_show_each_pair_without_an_interval(sweep):
    runs = [run for run in load_runs(sweep) if run.seed in (0, 1)]
    rows = build_report(runs, sweep, decision_margin=0.005)["decision"]["rows"]
    restarts = next(row for row in rows if row["question"] == "restarts")
    assert restarts["n"] == 2 and restarts["verdict"] == "could not tell"  # -0.03 twice: clear, but no interval
    _, body = decision_table(rows)
    assert [cell for cell in body if cell[0] == "restarts"][0][4] == "-0.0300, -0.0300"


def test_one_variants_unlock_cost_against_anothers_each_against_its_own_control(sweep):
    """step_schedule's runs unlock where achievement's do, but pay +0.10 at step 40 instead of +0.05."""
    unlocks = [(30, 32, 64), (60, 64, 129)]
    for k in SEEDS:
        steep = curve(1.90 + 0.02 * k)
        steep[3] += 0.10
        job(sweep, f"curriculum=step_schedule,seed={k}", ["curriculum=step_schedule"], k, 1.90 + 0.02 * k, 110.0,
            unlocks, losses=steep)
        job(sweep, f"yoked/curriculum=step_schedule,seed={k}", ["curriculum=none", "schedule.restart_steps=[30,60]"],
            k, 1.92 + 0.01 * k, 110.0, yoked_to=f"curriculum=step_schedule,seed={k}", losses=curve(1.92 + 0.01 * k))
    runs = load_runs(sweep)
    # achievement, seed k: unlock 1 costs -0.01 + 0.01k, unlock 2 -0.02 + 0.01k (the test above); mean of the two
    assert excess_by_seed(runs, "curriculum=achievement") == pytest.approx({0: -0.015, 1: -0.005, 2: 0.005})
    contrast = excess_contrast(runs, "curriculum=achievement", "curriculum=step_schedule")
    # the extra 0.05 at one of the 5 points after unlock 1, halved over 2 unlocks: 0.005 cheaper in every seed
    assert contrast["values"] == pytest.approx([-0.005] * 3) and contrast["n"] == 3
    assert contrast["high"] == pytest.approx(-0.005)


def test_a_restarts_row_of_another_model_than_the_baselines_is_shown_but_not_judged():
    from bicameral.report.paired import decisions

    cell = {"n": 6, "mean": 0.04, "low": 0.03, "high": 0.05, "test": "paired t", "values": [0.04] * 6}
    yoked = {"variant": "yoked(freq_only)", "reference": "none", "final_val_loss": cell}
    unlocking = {"variant": "freq_only", "reference": "yoked(freq_only)", "final_val_loss": cell}
    models = {"freq_only": "freq_only d128x4", "yoked(freq_only)": "freq_only d128x4", "none": "bicameral d128x4"}
    rows = {row["question"]: row for row in decisions([yoked], [unlocking], 0.005, model_of=models)}
    assert rows["unlocking"]["verdict"] == "hurts"  # the same model: judged
    assert rows["restarts"]["verdict"] == "not judged: bicameral d128x4 vs freq_only d128x4, not the restarts alone"
    same = {**models, "none": "freq_only d128x4"}
    assert {row["verdict"] for row in decisions([yoked], [unlocking], 0.005, model_of=same)} == {"hurts"}
