"""The sweep comparison on a synthetic multirun dir: per-run numbers, group aggregates, files, plot and CLI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bicameral.compare import (
    format_stat,
    group_table,
    load_runs,
    mean_spread,
    plot_runs,
    run_table,
    summarize_groups,
    summarize_run,
    write_report,
)
from tests.conftest import ROOT

TOKENS_PER_STEP = 16 * 256  # batch_size x seq_len
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def config(curriculum: str, seed: int, arch: str | None = None) -> dict:
    """A composed job config as Hydra saves it: interpolations unresolved, ??? where nothing was given."""
    model = {"vocab_size": 256, "seq_len": 256, "d_model": 128, "n_layers": 4, "n_heads": 4}
    if arch is not None:  # runs from before model.arch existed have none
        model["arch"] = arch
    cur = {"name": curriculum, "levels": None, "min_steps_per_level": 10}
    if curriculum == "achievement":
        cur["unlock_threshold"] = 3.2
    return {
        "data": {"source": "shakespeare", "path": "???"},
        "model": model,
        "curriculum": cur,
        "trainer": {"epochs": 1, "steps_per_epoch": 100, "batch_size": 16, "log_every": 10, "val_every": 50,
                    "run_dir": "${hydra:runtime.output_dir}"},
        "logger": {"backend": "none", "name": "${curriculum.name}-s${seed}"},
        "seed": seed,
    }


def write_jsonl(path: Path, rows: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def write_job(job: Path, overrides: list[str], cfg: dict, losses=(), vals=None, unlocks=(), finish=None,
              replay_from: int | None = None, tail: str = "") -> None:
    """One job dir. losses: train loss every 10 steps from step 10; vals: {step: val_loss}; unlocks: (step, from, to).
    replay_from: a checkpoint step; the first attempt logged 20 steps past it and crashed, and the resumed attempt
    logged those steps again."""
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if not losses:
        return  # crashed before logging anything
    train = [{"kind": "train", "step": s, "epoch": 0, "epoch_step": s, "loss": loss, "lr": 1e-3, "cutoff": 32,
              "level": 0, "freq_share": 0.5, "tokens": s * TOKENS_PER_STEP, "tokens_per_s": 12000.0}
             for s, loss in zip(range(10, 1000, 10), losses)]
    val = [{"kind": "val", "step": s, "tokens": s * TOKENS_PER_STEP, "val_loss": v, "freq_share": 0.5}
           for s, v in (vals or {}).items()]
    rows = sorted(train + val, key=lambda r: r["step"])
    events = [{"kind": "unlock", "step": s, "from_cutoff": a, "to_cutoff": b, "score": 2.5, "prev_bar": 3.2,
               "next_target": 2.5, "reason": "beat_prev", "tokens": s * TOKENS_PER_STEP, "freq_share": 0.5}
              for s, a, b in unlocks]
    if replay_from is not None:
        rows = [r for r in rows if r["step"] <= replay_from + 20] + [r for r in rows if r["step"] > replay_from]
        events = [e for e in events if e["step"] <= replay_from + 20] + [e for e in events if e["step"] > replay_from]
    if finish is not None:
        events.append({"kind": "finish", "step": 100, "final_cutoff": 129, "unlock_steps": [u[0] for u in unlocks],
                       **finish})
    write_jsonl(job / "metrics.jsonl", rows, tail)
    write_jsonl(job / "events.jsonl", events)


def write_sweep(root: Path) -> Path:
    """python train.py -m curriculum=achievement,none,fixed_threshold seed=0,1 trainer.steps_per_epoch=100, where
    both fixed_threshold jobs crashed: seed=0 midway (its last line cut short), seed=1 before it logged anything."""
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")

    def job(curriculum: str, seed: int, arch: str | None = None, **logged) -> None:
        overrides = [f"curriculum={curriculum}", f"seed={seed}", "trainer.steps_per_epoch=100"]
        write_job(root / ",".join(sorted(overrides)), overrides, config(curriculum, seed, arch), **logged)

    job("achievement", 0, losses=[4.0, 3.4, 2.9, 2.6, 2.3, 2.1, 1.95, 1.9, 1.85, 1.8], vals={50: 2.4, 100: 1.9},
        unlocks=[(30, 32, 64), (60, 64, 128), (90, 128, 129)],
        finish={"final_val_loss": 1.9, "best_val_loss": 1.9, "steps_to_full_resolution": 90, "wall_time_s": 120.0})
    job("achievement", 1, losses=[4.1, 3.5, 3.0, 2.7, 2.2, 1.99, 1.9, 1.85, 1.8, 1.75], vals={50: 1.95, 100: 2.05},
        unlocks=[(40, 32, 64), (70, 64, 128), (100, 128, 129)], replay_from=30,
        finish={"final_val_loss": 2.05, "best_val_loss": 1.95, "steps_to_full_resolution": 100, "wall_time_s": 130.0})
    job("none", 0, "bicameral", losses=[3.8, 3.0, 2.5, 2.1, 2.0, 1.9, 1.8, 1.75, 1.7, 1.68], vals={50: 2.1, 100: 1.8},
        finish={"final_val_loss": 1.8, "best_val_loss": 1.8, "steps_to_full_resolution": 0, "wall_time_s": 100.0})
    job("none", 1, "bicameral", losses=[3.9, 3.1, 2.6, 2.3, 2.05, 2.01, 1.98, 1.9, 1.8, 1.72], vals={50: 2.2, 100: 1.7},
        finish={"final_val_loss": 1.7, "best_val_loss": 1.7, "steps_to_full_resolution": 0, "wall_time_s": 110.0})
    job("fixed_threshold", 0, losses=[4.0, 3.3, 2.9], unlocks=[(30, 32, 64)], tail='{"kind": "train", "step": 40, "epo')
    job("fixed_threshold", 1)
    return root


@pytest.fixture
def sweep(tmp_path) -> Path:
    return write_sweep(tmp_path / "multirun" / "2026-11-26" / "12-00-00")


def table_row(text: str, first_cell: str) -> list[str]:
    """The cells of the plain-text table row that starts with first_cell (columns are 2+ spaces apart)."""
    [line] = [line for line in text.splitlines() if line.startswith(first_cell + " ")]
    return re.split(r" {2,}", line)


def test_runs_are_found_labelled_grouped_and_given_a_status(sweep):
    runs = load_runs(sweep)
    assert [(r.label, r.group, r.status) for r in runs] == [
        ("curriculum=achievement,seed=0", "curriculum=achievement", "finished"),
        ("curriculum=achievement,seed=1", "curriculum=achievement", "finished"),
        ("curriculum=fixed_threshold,seed=0", "curriculum=fixed_threshold", "incomplete"),
        ("curriculum=fixed_threshold,seed=1", "curriculum=fixed_threshold", "failed"),
        ("curriculum=none,seed=0", "curriculum=none", "finished"),
        ("curriculum=none,seed=1", "curriculum=none", "finished"),
    ]
    run = {r.label: r for r in runs}["curriculum=achievement,seed=1"]
    assert (run.curriculum, run.arch, run.threshold, run.seed, run.d_model, run.n_layers) == (
        "achievement", "bicameral", 3.2, 1, 128, 4)
    # the replayed rows and unlock after the resume count once
    assert [r["step"] for r in run.train] == list(range(10, 101, 10))
    assert [u["step"] for u in run.unlocks] == [40, 70, 100]
    assert {r.label: r for r in runs}["curriculum=none,seed=0"].threshold is None


def test_per_run_numbers(sweep):
    s = {x["label"]: x for x in (summarize_run(r, 2.0) for r in load_runs(sweep))}
    a0, a1 = s["curriculum=achievement,seed=0"], s["curriculum=achievement,seed=1"]
    assert (a0["final_val_loss"], a0["best_val_loss"], a0["wall_time_s"]) == (1.9, 1.9, 120.0)
    assert (a1["final_val_loss"], a1["best_val_loss"]) == (2.05, 1.95)
    assert [(u["step"], u["tokens"], u["to_cutoff"]) for u in a0["unlocks"]] == [
        (30, 30 * TOKENS_PER_STEP, 64), (60, 60 * TOKENS_PER_STEP, 128), (90, 90 * TOKENS_PER_STEP, 129)]
    assert (a0["steps_to_target"], a0["tokens_to_target"]) == (70, 70 * TOKENS_PER_STEP)
    assert a1["steps_to_target"] == 60
    assert s["curriculum=none,seed=0"]["steps_to_target"] == 50  # a loss of exactly 2.0 counts
    # the crashed run: numbers from what it logged, nothing it never reached
    crashed = s["curriculum=fixed_threshold,seed=0"]
    assert (crashed["last_step"], crashed["final_val_loss"], crashed["steps_to_target"]) == (30, None, None)
    assert s["curriculum=fixed_threshold,seed=1"]["last_step"] is None

    headers, rows = run_table(list(s.values()), 2.0)
    assert headers[-3:] == ["unlock 1", "unlock 2", "unlock 3"]
    assert rows[0] == ["curriculum=achievement,seed=0", "finished", "1.900", "1.900", "70 (0.287M)", "120",
                       "32->64 @ 30 (0.123M)", "64->128 @ 60 (0.246M)", "128->129 @ 90 (0.369M)"]
    assert rows[2][1:6] == ["incomplete", "—", "—", "—", "—"]


def test_group_aggregates(sweep):
    runs = load_runs(sweep)
    groups = {g["group"]: g for g in summarize_groups([summarize_run(r, 2.0) for r in runs])}
    ach, none, fixed = groups["curriculum=achievement"], groups["curriculum=none"], groups["curriculum=fixed_threshold"]
    # two seeds: mean and half range
    assert ach["final_val_loss"]["mean"] == pytest.approx((1.9 + 2.05) / 2)
    assert ach["final_val_loss"]["spread"] == pytest.approx((2.05 - 1.9) / 2)
    assert (ach["best_val_loss"]["mean"], ach["best_val_loss"]["spread"]) == pytest.approx((1.925, 0.025))
    assert (ach["steps_to_target"]["mean"], ach["steps_to_target"]["spread"]) == (65, 5)
    assert (ach["steps_to_full_resolution"]["mean"], ach["steps_to_full_resolution"]["spread"]) == (95, 5)
    assert (ach["wall_time_s"]["mean"], ach["wall_time_s"]["spread"]) == (125, 5)
    assert (none["final_val_loss"]["mean"], none["final_val_loss"]["spread"]) == pytest.approx((1.75, 0.05))
    assert (none["steps_to_target"]["mean"], none["steps_to_target"]["spread"]) == (60, 10)
    assert none["steps_to_full_resolution"]["mean"] == 0
    # crashed runs are counted, never averaged
    assert (fixed["runs"], fixed["finished"], fixed["final_val_loss"], fixed["steps_to_target"]) == (2, 0, None, None)

    _, rows = group_table(list(groups.values()), 2.0)
    assert rows[0] == ["curriculum=achievement", "2/2", "1.975 ± 0.075", "1.925 ± 0.025", "65 ± 5", "95 ± 5",
                       "125 ± 5"]
    assert rows[1] == ["curriculum=fixed_threshold", "0/2", "—", "—", "—", "—", "—"]

    # at 1.7 only none,seed=0 gets there (step 90): the cell says it is one run of two
    low = {g["group"]: g for g in summarize_groups([summarize_run(r, 1.7) for r in runs])}
    _, rows = group_table(list(low.values()), 1.7)
    assert low["curriculum=none"]["steps_to_target"] == {"mean": 90, "spread": None, "n": 1}
    assert rows[2][4] == "90 (1/2)" and rows[0][4] == "—"


def test_spread_is_the_sample_std_from_three_runs():
    stat = mean_spread([1.0, 2.0, 4.0])
    assert stat["mean"] == pytest.approx(7 / 3)
    # sum of squared deviations (16 + 1 + 25) / 9, over n - 1 = 2
    assert stat["spread"] == pytest.approx((42 / 9 / 2) ** 0.5)
    assert mean_spread([3.0]) == {"mean": 3.0, "spread": None, "n": 1} and mean_spread([]) is None
    assert format_stat(mean_spread([30, 35]), 2, None) == "32.5 ± 2.5"  # whole steps print bare, a half keeps its .5
    assert format_stat(mean_spread([1.0, 2.0, 4.0]), 3, 3) == "2.333 ± 1.528"


def test_report_files_and_plot(sweep, tmp_path):
    out = tmp_path / "report"
    text = write_report(load_runs(sweep), sweep, out, target_loss=2.0)
    assert text.startswith("Every run has trainer.steps_per_epoch=100 (left out of the labels).")
    assert table_row(text, "curriculum=achievement") == [
        "curriculum=achievement", "2/2", "1.975 ± 0.075", "1.925 ± 0.025", "65 ± 5", "95 ± 5", "125 ± 5"]
    assert "curriculum=fixed_threshold,seed=1: failed, nothing logged" in text
    assert "curriculum=fixed_threshold,seed=0: incomplete, last logged step 30 of 100" in text

    md = (out / "comparison.md").read_text()
    assert md.startswith("# 2026-11-26/12-00-00\n") and "![loss vs tokens](comparison.png)" in md
    assert "| curriculum=achievement | 2/2 | 1.975 ± 0.075 | 1.925 ± 0.025 | 65 ± 5 | 95 ± 5 | 125 ± 5 |" in md
    report = json.loads((out / "comparison.json").read_text())
    assert report["target_loss"] == 2.0 and len(report["runs"]) == 6
    assert report["groups"][0]["steps_to_target"] == {"mean": 65, "spread": 5, "n": 2}
    assert {r["label"]: r["status"] for r in report["runs"]}["curriculum=fixed_threshold,seed=1"] == "failed"

    png = (out / "comparison.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 20_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 2 * height * 0.9  # two panels side by side


def test_plot_colours_by_group_and_marks_unlocks_on_the_train_curve(sweep, tmp_path):
    fig = plot_runs(load_runs(sweep), tmp_path / "p.png", "sweep", 2.0)
    ax_train, ax_val = fig.axes
    lines = {line.get_label(): line for line in ax_train.lines}
    a0, a1 = lines["curriculum=achievement,seed=0"], lines["curriculum=achievement,seed=1"]
    assert a0.get_color() == a1.get_color() != lines["curriculum=none,seed=0"].get_color()
    assert lines["curriculum=fixed_threshold,seed=0"].get_linestyle() == "--"  # not finished
    marks = lines["curriculum=achievement,seed=0 unlocks"]
    assert list(marks.get_xdata()) == [30 * TOKENS_PER_STEP, 60 * TOKENS_PER_STEP, 90 * TOKENS_PER_STEP]
    assert list(marks.get_ydata()) == pytest.approx([2.9, 2.1, 1.85])  # the train losses at those steps
    legend = [t.get_text() for t in ax_train.get_legend().get_texts()]
    assert legend[:3] == ["curriculum=achievement", "curriculum=fixed_threshold", "curriculum=none"]
    assert len(ax_val.lines) == 4  # one per run that validated


def test_single_run_and_nested_job_dirs(tmp_path):
    # a submitit-style sweep: job dirs one level deeper, and an arch override
    nested = tmp_path / "sweep" / "0" / "model.arch=transformer,seed=3"
    write_job(nested, ["model.arch=transformer", "seed=3"], config("fixed_threshold", 3, arch="transformer"),
              losses=[3.0, 2.0], vals={20: 2.1})
    [run] = load_runs(tmp_path / "sweep")
    assert (run.label, run.group, run.arch, run.seed, run.status) == (
        "model.arch=transformer,seed=3", "model.arch=transformer", "transformer", 3, "incomplete")
    # the run dir itself is a sweep of one
    [same] = load_runs(nested)
    assert same.label == run.label and same.path == nested


def test_a_run_stopped_early_is_incomplete(tmp_path):
    """trainer.stop_at writes a finish row too: a run only finished if it got to its last step."""
    write_job(tmp_path / "run", ["seed=0"], config("none", 0), losses=[3.0, 2.5, 2.0, 1.9, 1.8], vals={50: 1.9},
              finish={"step": 50, "final_val_loss": 1.9, "best_val_loss": 1.9, "steps_to_full_resolution": 0,
                      "wall_time_s": 50.0})
    [run] = load_runs(tmp_path / "run")
    assert (run.status, run.group) == ("incomplete", "(base config)")  # a seeds-only sweep's one group


def run_cli(*args, cwd):
    cmd = [sys.executable, str(ROOT / "experiments" / "compare_curricula.py"), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_prints_the_tables_and_writes_the_files(sweep, tmp_path):
    proc = run_cli(sweep, "--target-loss", "2.0", "--out", tmp_path / "out", cwd=tmp_path)  # any cwd
    assert proc.returncode == 0, proc.stderr
    assert table_row(proc.stdout, "curriculum=achievement,seed=0")[:6] == [
        "curriculum=achievement,seed=0", "finished", "1.900", "1.900", "70 (0.287M)", "120"]
    assert table_row(proc.stdout, "curriculum=none")[:5] == ["curriculum=none", "2/2", "1.750 ± 0.050",
                                                             "1.750 ± 0.050", "60 ± 10"]
    assert f"to {tmp_path / 'out'}" in proc.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"comparison.md", "comparison.json", "comparison.png"}


def test_cli_on_a_dir_without_runs_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli(tmp_path / "empty", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: no runs under") and proc.stderr.count("\n") == 1
