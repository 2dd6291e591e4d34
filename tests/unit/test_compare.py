"""The sweep comparison on a synthetic multirun dir: per-run numbers, variant aggregates, spikes, files, plot, CLI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from matplotlib.figure import Figure

from bicameral.report.plot import plot_comparison
from bicameral.report.runs import load_runs
from bicameral.report.summary import mean_spread, pick_baseline, summarize_run, summarize_variants, sweep_title
from bicameral.report.tables import format_stat, report_text, run_table, unlock_table, variant_table
from bicameral.report.write import build_report, write_report

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
        "optimizer": {"lr": 1e-3},
        "trainer": {"epochs": 1, "steps_per_epoch": 100, "batch_size": 16, "log_every": 10, "val_every": 50,
                    "run_dir": "${hydra:runtime.output_dir}"},
        "trackers": {"wandb": {"name": "${curriculum.name}-s${seed}"}},
        "seed": seed,
    }


def write_jsonl(path: Path, rows: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def write_job(job: Path, overrides: list[str], cfg: dict, losses=(), vals=None, unlocks=(), spikes=(), finish=None,
              replay_from: int | None = None, tail: str = "", failed: str | None = None) -> None:
    """One job dir. losses: train loss every 10 steps from step 10; vals: {step: val_loss}; unlocks: (step, from, to);
    spikes: (unlock step, spike, recovery steps or None); failed: the error of a run that raised.
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
               "next_bar": 2.5, "reason": "beat_prev", "tokens": s * TOKENS_PER_STEP, "freq_share": 0.5}
              for s, a, b in unlocks]
    cutoffs = {s: (a, b) for s, a, b in unlocks}
    events += [{"kind": "spike", "step": s, "from_cutoff": cutoffs[s][0], "to_cutoff": cutoffs[s][1], "score": 2.5,
                "spike": spike, "recovery_steps": recovery, "window_steps": 50} for s, spike, recovery in spikes]
    events.sort(key=lambda e: e["step"])
    if replay_from is not None:
        rows = [r for r in rows if r["step"] <= replay_from + 20] + [r for r in rows if r["step"] > replay_from]
        events = [e for e in events if e["step"] <= replay_from + 20] + [e for e in events if e["step"] > replay_from]
    if finish is not None:
        events.append({"kind": "finish", "step": 100, "final_cutoff": 129, "unlock_steps": [u[0] for u in unlocks],
                       **finish})
    if failed is not None:
        events.append({"kind": "failed", "step": rows[-1]["step"], "error": failed})
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
        unlocks=[(30, 32, 64), (60, 64, 128), (90, 128, 129)], spikes=[(30, 0.2, 20), (60, 0.1, None), (90, 0.05, 10)],
        finish={"final_val_loss": 1.9, "best_val_loss": 1.9, "steps_to_full_resolution": 90, "wall_time_s": 120.0})
    job("achievement", 1, losses=[4.1, 3.5, 3.0, 2.7, 2.2, 1.99, 1.9, 1.85, 1.8, 1.75], vals={50: 1.95, 100: 2.05},
        unlocks=[(40, 32, 64), (70, 64, 128), (100, 128, 129)], spikes=[(40, 0.3, 30), (70, 0.1, 10)], replay_from=30,
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
    """The cells of the first plain-text table row that starts with first_cell (columns are 2+ spaces apart):
    the variants table's, when the per-unlock table below it starts its rows the same way."""
    line = next(line for line in text.splitlines() if line.startswith(first_cell + " "))
    return re.split(r" {2,}", line)


def test_runs_are_found_labelled_grouped_into_variants_and_given_a_status(sweep):
    runs = load_runs(sweep)
    assert [(r.label, r.variant, r.status) for r in runs] == [
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
    # the replayed rows, unlock and spike after the resume count once
    assert [r["step"] for r in run.train] == list(range(10, 101, 10))
    assert [u["step"] for u in run.unlocks] == [40, 70, 100]
    assert [s["step"] for s in run.spikes] == [40, 70]
    assert {r.label: r for r in runs}["curriculum=none,seed=0"].threshold is None
    assert pick_baseline(runs) == "curriculum=none"


def test_per_run_numbers_and_spikes(sweep):
    s = {x["label"]: x for x in (summarize_run(r, 2.0) for r in load_runs(sweep))}
    a0, a1 = s["curriculum=achievement,seed=0"], s["curriculum=achievement,seed=1"]
    assert (a0["final_val_loss"], a0["best_val_loss"], a0["wall_time_s"]) == (1.9, 1.9, 120.0)
    assert (a1["final_val_loss"], a1["best_val_loss"]) == (2.05, 1.95)
    assert [(u["step"], u["tokens"], u["to_cutoff"]) for u in a0["unlocks"]] == [
        (30, 30 * TOKENS_PER_STEP, 64), (60, 60 * TOKENS_PER_STEP, 128), (90, 90 * TOKENS_PER_STEP, 129)]
    assert (a0["steps_to_target"], a0["tokens_to_target"]) == (70, 70 * TOKENS_PER_STEP)
    assert a1["steps_to_target"] == 60
    assert s["curriculum=none,seed=0"]["steps_to_target"] == 50  # a loss of exactly 2.0 counts
    # spikes join their unlock by step; the mean recovery is over the unlocks that recovered
    assert [(u["spike"], u["recovery_steps"]) for u in a0["unlocks"]] == [(0.2, 20), (0.1, None), (0.05, 10)]
    assert a0["mean_spike"] == pytest.approx(0.35 / 3) and a0["mean_recovery_steps"] == 15
    assert (a0["unlocks_measured"], a0["unlocks_recovered"]) == (3, 2)
    assert [u["measured"] for u in a1["unlocks"]] == [True, True, False]  # the last one's window never closed
    assert (a1["mean_spike"], a1["mean_recovery_steps"]) == (pytest.approx(0.2), 20)
    none = s["curriculum=none,seed=0"]
    assert (none["mean_spike"], none["mean_recovery_steps"], none["unlocks_measured"]) == (None, None, 0)
    # the crashed run: numbers from what it logged, nothing it never reached
    crashed = s["curriculum=fixed_threshold,seed=0"]
    assert (crashed["last_step"], crashed["final_val_loss"], crashed["steps_to_target"]) == (30, None, None)
    assert s["curriculum=fixed_threshold,seed=1"]["last_step"] is None

    headers, rows = run_table(list(s.values()), 2.0)
    assert headers[-3:] == ["unlock 1", "unlock 2", "unlock 3"]
    # LR area estimated from the logged LR (1e-3 every 10 steps) over optimizer.lr 1e-3: 100 steps at peak
    assert rows[0] == ["curriculum=achievement,seed=0", "finished", "1.900", "1.900", "100.0", "70 (0.287M)", "120",
                       "32->64 @ 30 (0.123M) +0.200 rec 20", "64->128 @ 60 (0.246M) +0.100 not rec.",
                       "128->129 @ 90 (0.369M) +0.050 rec 10"]
    assert rows[1][-1] == "128->129 @ 100 (0.41M)"  # not measured: no spike part
    assert rows[2][1:7] == ["incomplete", "—", "—", "30.0", "—", "—"]


def test_variant_aggregates(sweep):
    runs = load_runs(sweep)
    variants = {v["variant"]: v for v in summarize_variants([summarize_run(r, 2.0) for r in runs])}
    ach, none = variants["curriculum=achievement"], variants["curriculum=none"]
    fixed = variants["curriculum=fixed_threshold"]
    # two seeds: the mean, the values themselves, and no spread (no ± under 3 seeds)
    assert ach["final_val_loss"]["mean"] == pytest.approx((1.9 + 2.05) / 2)
    assert (ach["final_val_loss"]["spread"], ach["final_val_loss"]["values"]) == (None, [1.9, 2.05])
    assert ach["best_val_loss"]["values"] == [1.9, 1.95]
    assert (ach["steps_to_target"]["mean"], ach["steps_to_target"]["values"]) == (65, [70, 60])
    assert ach["steps_to_full_resolution"]["values"] == [90, 100]
    assert ach["wall_time_s"]["values"] == [120, 130]
    # spikes: each seed's mean spike, and each seed's mean recovery
    assert ach["mean_spike"]["values"] == pytest.approx([0.35 / 3, 0.2])
    assert ach["mean_recovery_steps"]["values"] == [15, 20]
    assert (ach["unlocks_recovered"], ach["unlocks_measured"]) == (4, 5)
    assert none["final_val_loss"]["values"] == [1.8, 1.7]
    assert none["steps_to_target"]["values"] == [50, 70]
    assert none["steps_to_full_resolution"]["mean"] == 0
    # crashed runs are counted, never averaged
    assert (fixed["runs"], fixed["finished"], fixed["final_val_loss"], fixed["steps_to_target"]) == (2, 0, None, None)

    headers, rows = variant_table(list(variants.values()), 2.0, {})
    assert headers[8:11] == ["spike", "recovery (steps)", "recovered"]
    assert rows[0] == ["curriculum=achievement", "2/2", "1.900, 2.050", "1.900, 1.950", "100.0, 100.0", "0.41M",
                       "70, 60", "90, 100", "+0.117, +0.200", "15, 20", "4/5", "120, 130"]
    assert rows[1] == ["curriculum=fixed_threshold", "0/2", "—", "—", "—", "—", "—", "—", "—", "—", "—", "—"]
    assert rows[2][8:11] == ["—", "—", "—"]  # no unlocks, nothing to measure

    # at 1.7 only none,seed=0 gets there (step 90): the cell says it is one run of two
    low = {v["variant"]: v for v in summarize_variants([summarize_run(r, 1.7) for r in runs])}
    _, rows = variant_table(list(low.values()), 1.7, {})
    assert low["curriculum=none"]["steps_to_target"] == {"mean": 90, "spread": None, "n": 1, "values": [90]}
    assert rows[2][6] == "90 (1/2)" and rows[0][6] == "—"


def test_unlock_aggregates_keep_each_unlock_apart(sweep):
    report = build_report(load_runs(sweep), sweep)
    rows = {(u["variant"], u["unlock"]): u for u in report["unlocks"]}
    assert set(rows) == {("curriculum=achievement", k) for k in (1, 2, 3)}  # none never unlocks; crashed runs count not
    first, second, third = (rows[("curriculum=achievement", k)] for k in (1, 2, 3))
    assert (first["step"]["values"], first["cutoffs"]) == ([30, 40], ["32->64"])
    assert first["spike"]["values"] == pytest.approx([0.2, 0.3])
    assert (second["measured"], second["recovered"], second["recovery_steps"]["n"]) == (2, 1, 1)  # seed 0 did not
    assert (third["measured"], third["spike"]["n"]) == (1, 1)  # seed 1's last unlock came too late to be measured
    _, table = unlock_table(report["unlocks"], [])
    assert table[0] == ["curriculum=achievement", "1", "32->64", "30, 40", "+0.200, +0.300", "20, 30", "2/2"]
    assert table[1][4:] == ["+0.100, +0.100", "10 (1/2)", "1/2"] and table[2][4:] == ["+0.050 (1/2)", "10 (1/2)", "1/1"]
    assert "Unlocks (seeds aggregated):" in report_text(report)
    assert "Unlocks" not in report_text(report, brief=True)  # a sweep's closing lines stay short


def test_spread_is_the_sample_std_from_three_runs():
    stat = mean_spread([1.0, 2.0, 4.0])
    assert stat["mean"] == pytest.approx(7 / 3)
    # sum of squared deviations (16 + 1 + 25) / 9, over n - 1 = 2
    assert stat["spread"] == pytest.approx((42 / 9 / 2) ** 0.5)
    assert mean_spread([3.0]) == {"mean": 3.0, "spread": None, "n": 1, "values": [3.0]} and mean_spread([]) is None
    assert format_stat(mean_spread([30, 35]), 2, None) == "30, 35"  # no ± under 3: the values, as they are
    assert format_stat(mean_spread([30, 35, 32.5]), 3, None) == "32.5 ± 2.5"  # whole steps bare, a half keeps .5
    assert format_stat(mean_spread([1.0, 2.0, 4.0]), 3, 3) == "2.333 ± 1.528"


def test_report_files(sweep, tmp_path):
    out = tmp_path / "report"
    report = write_report(load_runs(sweep), sweep, out, target_loss=2.0)
    text = report_text(report)
    assert text.startswith("Every run has trainer.steps_per_epoch=100 (left out of the labels).")
    assert table_row(text, "curriculum=achievement") == [
        "curriculum=achievement", "2/2", "1.900, 2.050", "1.900, 1.950", "100.0, 100.0", "0.41M", "70, 60",
        "90, 100", "+0.117, +0.200", "15, 20", "4/5", "120, 130"]
    assert "curriculum=fixed_threshold,seed=1: failed, nothing logged" in text
    assert "curriculum=fixed_threshold,seed=0: incomplete, last logged step 30 of 100" in text
    # what a sweep prints at its end: the variants, without the per-run table
    short = report_text(report, brief=True)
    assert "curriculum=achievement,seed=0" not in short and table_row(short, "curriculum=none")[1] == "2/2"

    md = (out / "comparison.md").read_text()
    # a sweep dir named by date and time only: titled by what it compares
    title = "curriculum=achievement vs curriculum=fixed_threshold vs curriculum=none"
    assert md.startswith(f"# {title}\n") and "![curves](comparison.png)" in md
    assert ("| curriculum=achievement | 2/2 | 1.900, 2.050 | 1.900, 1.950 | 100.0, 100.0 | 0.41M | 70, 60 | 90, 100 | "
            "+0.117, +0.200 | 15, 20 | 4/5 | 120, 130 |") in md
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["target_loss"] == 2.0 and len(saved["runs"]) == 6 and saved["baseline"] == "curriculum=none"
    assert saved["variants"][0]["steps_to_target"] == {"mean": 65, "spread": None, "n": 2, "values": [70, 60]}
    assert saved["runs"][0]["unlocks"][1] == {
        "step": 60, "tokens": 60 * TOKENS_PER_STEP, "from_cutoff": 64, "to_cutoff": 128, "score": 2.5,
        "reason": "beat_prev", "measured": True, "spike": 0.1, "recovery_steps": None, "window_steps": 50}
    assert {r["label"]: r["status"] for r in saved["runs"]}["curriculum=fixed_threshold,seed=1"] == "failed"

    png = (out / "comparison.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 50_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 1.2 < width / height < 1.6  # four panels, two by two


def test_a_report_killed_mid_write_leaves_the_last_whole_files(sweep, tmp_path, monkeypatch):
    """Each file is written beside its name and renamed into place: a kill mid-figure never leaves a 0-byte PNG."""
    out = tmp_path / "report"
    write_report(load_runs(sweep), sweep, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def killed_mid_write(fig, path, **kwargs):
        Path(path).write_bytes(PNG_MAGIC)  # the start of the file, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        write_report(load_runs(sweep), sweep, out, title="another title")
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert after.keys() == before.keys()  # no temp file left behind
    assert after["comparison.png"] == before["comparison.png"]
    assert after["comparison.md"].startswith(b"# another title")  # the text files before it were whole, and new


def test_plot_draws_each_variant_as_a_mean_with_its_seed_band(sweep, tmp_path):
    runs = load_runs(sweep)
    fig = plot_comparison(runs, [tmp_path / "p.png"], "the sweep", baseline="curriculum=none",
                          labels={"curriculum=none": "full band"})
    ax_a, ax_b, ax_c, ax_d = fig.axes
    assert [ax.get_title()[0] for ax in fig.axes] == ["a", "b", "c", "d"]
    assert fig.get_suptitle() == "the sweep"

    # a: one mean line per variant over its seeds, every seed's unlocks on the mean curve
    lines = {line.get_label(): line for line in ax_a.lines}
    ach = lines["curriculum=achievement"]
    a0 = [4.0, 3.4, 2.9, 2.6, 2.3, 2.1, 1.95, 1.9, 1.85, 1.8]
    a1 = [4.1, 3.5, 3.0, 2.7, 2.2, 1.99, 1.9, 1.85, 1.8, 1.75]
    assert list(ach.get_xdata()) == [s * TOKENS_PER_STEP for s in range(10, 101, 10)]
    assert list(ach.get_ydata()) == pytest.approx([(x + y) / 2 for x, y in zip(a0, a1)])
    assert len(ax_a.collections) == 0  # no band under 3 seeds
    marks = lines["curriculum=achievement unlocks"]
    assert sorted(marks.get_xdata()) == [s * TOKENS_PER_STEP for s in (30, 40, 60, 70, 90, 100)]
    assert lines["curriculum=none"].get_color() == "black"  # the baseline
    assert lines["curriculum=fixed_threshold"].get_linestyle() == "--"  # none of its runs finished
    low, high = ax_a.get_ylim()
    assert high < 3.8  # the first tenth (3.8 to 4.1) is left out, so the late curves are not squashed

    # b: the last half as the mean paired difference to the baseline, seed by seed
    n0 = [3.8, 3.0, 2.5, 2.1, 2.0, 1.9, 1.8, 1.75, 1.7, 1.68]
    n1 = [3.9, 3.1, 2.6, 2.3, 2.05, 2.01, 1.98, 1.9, 1.8, 1.72]
    diff = {line.get_label(): line for line in ax_b.lines}["curriculum=achievement"]
    assert list(diff.get_xdata()) == [s * TOKENS_PER_STEP for s in range(50, 101, 10)]
    expected = [((a0[i] - n0[i]) + (a1[i] - n1[i])) / 2 for i in range(4, 10)]
    assert list(diff.get_ydata()) == pytest.approx(expected)
    assert len(ax_b.collections) == 0  # two pairs: no interval drawn
    assert "curriculum=fixed_threshold" not in {line.get_label() for line in ax_b.lines}  # ended before the half
    assert "minus full band, paired by seed" in ax_b.get_title()  # the baseline under its legend name

    # c: val loss means; d: the LR of each variant's first seed with its unlocks
    val = {line.get_label(): line for line in ax_c.lines}
    assert list(val["curriculum=achievement"].get_ydata()) == pytest.approx([(2.4 + 1.95) / 2, (1.9 + 2.05) / 2])
    lr_marks = {line.get_label(): line for line in ax_d.lines}["curriculum=achievement unlocks"]
    assert list(lr_marks.get_xdata()) == [30, 60, 90]

    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["full band (baseline, 2 seeds)", "curriculum=achievement (2 seeds)",
                          "curriculum=fixed_threshold (1 seed, not finished)"]  # the failed seed has no curve
    assert legend[3:] == ["unlock", "shaded: 95% interval of the mean (3+ seeds)"]


def test_the_difference_panel_smooths_many_log_points(tmp_path):
    """Noisy late curves: the difference is a rolling mean, and the panel says over how many points."""
    losses = [3.0 - 0.01 * i + (0.05 if i % 2 else -0.05) for i in range(60)]
    for name in ("a", "b"):
        offset = 0.02 if name == "a" else 0.0
        write_job(tmp_path / "sweep" / f"v={name}", [f"v={name}"], config("none", 0),
                  losses=[x + offset for x in losses])  # one seed each: seed 0 pairs with seed 0
    runs = load_runs(tmp_path / "sweep")
    fig = plot_comparison(runs, [tmp_path / "p.png"], "t", baseline="v=b")
    ax_b = fig.axes[1]
    [diff] = [line for line in ax_b.lines if line.get_label() == "v=a"]
    assert list(diff.get_ydata()) == pytest.approx([0.02] * 31)
    assert "rolling mean over 3 log points" in ax_b.get_xlabel()


def test_single_run_and_nested_job_dirs(tmp_path):
    # a submitit-style sweep: job dirs one level deeper, and an arch override
    nested = tmp_path / "sweep" / "0" / "model.arch=transformer,seed=3"
    write_job(nested, ["model.arch=transformer", "seed=3"], config("fixed_threshold", 3, arch="transformer"),
              losses=[3.0, 2.0], vals={20: 2.1})
    [run] = load_runs(tmp_path / "sweep")
    assert (run.label, run.variant, run.arch, run.seed, run.status) == (
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
    assert (run.status, run.variant) == ("incomplete", "(base config)")  # a seeds-only sweep's one variant


def run_cli(*args, cwd):
    cmd = [sys.executable, "-m", "bicameral.report", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_prints_the_tables_and_writes_the_files(sweep, tmp_path):
    proc = run_cli(sweep, "--target-loss", "2.0", "--out", tmp_path / "out", cwd=tmp_path)  # any cwd
    assert proc.returncode == 0, proc.stderr
    assert table_row(proc.stdout, "curriculum=achievement,seed=0")[:7] == [
        "curriculum=achievement,seed=0", "finished", "1.900", "1.900", "100.0", "70 (0.287M)", "120"]
    assert table_row(proc.stdout, "curriculum=none")[:4] == ["curriculum=none", "2/2", "1.800, 1.700", "1.800, 1.700"]
    assert f"to {tmp_path / 'out'}" in proc.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "comparison.md", "comparison.json", "runs.csv", "comparison.png", "comparison.pdf", "comparison.svg"}
    assert (tmp_path / "out" / "comparison.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (tmp_path / "out" / "comparison.svg").read_bytes()[:2000]


def test_cli_on_a_dir_without_runs_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli(tmp_path / "empty", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: no runs under") and proc.stderr.count("\n") == 1


def test_labels_leave_the_preset_out_and_the_title_names_the_sweep(tmp_path):
    """Two sweeps in one folder (as experiments/results/study was made): presets differ, so they are not shared."""
    root = tmp_path / "multirun"
    for preset, variant in (("curriculum_comparison", "curriculum=none"),
                            ("curriculum_comparison", "curriculum=achievement"),
                            ("study", "+study=none"), ("study", "+study=freq_only")):
        overrides = [f"+experiment={preset}", variant, "seed=0"]
        write_job(root / preset / ",".join(sorted(overrides)), overrides, config("none", 0), losses=[3.0, 2.0])
    runs = load_runs(root)
    assert sorted({r.variant for r in runs}) == ["+study=freq_only", "+study=none", "curriculum=achievement",
                                                 "curriculum=none"]
    assert {r.label for r in runs} == {r.variant for r in runs}  # seed=0 is shared, so left out too
    assert sweep_title(root, runs) == "curriculum_comparison + study"  # not "<parent>/multirun"
    assert pick_baseline(runs) == "+study=none"  # the first variant a ...=none override names

    one = load_runs(root / "study")
    assert sweep_title(root / "study", one) == "study"  # the preset is in the dir's name already

    # the same variant under two presets: there the preset tells them apart, so it stays
    extra = ["+experiment=study", "curriculum=none", "seed=0"]
    write_job(root / "study" / "extra", extra, config("none", 0), losses=[3.0, 2.0])
    both = {r.variant for r in load_runs(root)}
    assert {"+experiment=curriculum_comparison,curriculum=none", "+experiment=study,curriculum=none"} <= both


def test_a_default_sweep_dir_is_titled_by_its_shared_preset(sweep):
    runs = load_runs(sweep)
    for run in runs:
        run.overrides = [*run.overrides, "+experiment=smoke"]
    assert sweep_title(sweep, runs) == "smoke"  # the dir's date and time are no name


def test_a_failed_run_says_why(tmp_path):
    root = tmp_path / "sweep"
    write_job(root / "seed=0", ["seed=0"], config("none", 0), losses=[3.0, 2.9, 2.8], failed="RuntimeError: boom")
    bad = root / "seed=1"
    write_job(bad, ["seed=1"], config("none", 1))  # bad input: train.py logged one error line, then nothing
    (bad / "train.log").write_text("[2026-11-26 12:00:00,000] error: curriculum.levels=[16, 8] must be strictly "
                                   "increasing. Fix: e.g. curriculum.levels=[128,256,512,513].\n")
    report = write_report(load_runs(root), root, tmp_path / "out")
    assert [r["status"] for r in report["runs"]] == ["failed", "failed"]
    text = report_text(report)
    assert "seed=0: failed, last logged step 30: RuntimeError: boom" in text
    assert "seed=1: failed, nothing logged: curriculum.levels=[16, 8] must be strictly increasing." in text
    assert table_row(text, "(base config)")[1] == "0/2"


def test_reading_results_never_imports_the_code_a_config_names(tmp_path, monkeypatch):
    """A run dir whose curriculum names a module on the path: the report names the curriculum without importing it."""
    (tmp_path / "booby_trap.py").write_text("from pathlib import Path\nPath(__file__).with_name('RAN').touch()\n"
                                            "class Trap:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config("none", 0)
    cfg["curriculum"] = {"_target_": "booby_trap.Trap"}
    write_job(tmp_path / "run", [], cfg, losses=[3.0, 2.5], vals={20: 2.6})
    [run] = load_runs(tmp_path / "run")
    write_report([run], tmp_path / "run", tmp_path / "out")
    assert run.curriculum == "trap" and not (tmp_path / "RAN").exists() and "booby_trap" not in sys.modules


def test_bits_per_byte_show_only_where_runs_measured_them(tmp_path):
    """Runs on tokenized data record bits per byte with each val loss: the tables and runs.csv carry them; a
    sweep of runs from before shows no empty column."""
    root = tmp_path / "sweep"
    root.mkdir()
    for seed, bits in ((0, 2.5), (1, 2.7), (2, 2.6)):
        overrides = ["curriculum=none", f"seed={seed}"]
        job = root / ",".join(overrides)
        write_job(job, overrides, config("none", seed), losses=[3.0, 2.0], vals={20: 2.0},
                  finish={"final_val_loss": 2.0, "best_val_loss": 2.0, "final_val_bits_per_byte": bits})
    report = build_report(load_runs(root), root)
    text = report_text(report)
    assert table_row(text, "seed=1")[4] == "2.700" and table_row(text, "(base config)")[4] == "2.600 ± 0.100"
    assert [s["final_val_bits_per_byte"] for s in report["runs"]] == [2.5, 2.7, 2.6]
    assert "bits/byte" not in report_text(build_report(load_runs(write_sweep(tmp_path / "old")), tmp_path / "old"))
