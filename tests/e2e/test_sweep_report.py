"""The end of a sweep: its comparison written with no second command, and W&B grouping each variant's seeds."""

import json
import logging
import re
from collections import Counter

from omegaconf import OmegaConf

from bicameral.report.sweep_callback import SweepReport
from tests.conftest import read_jsonl
from tests.e2e.test_sweeps import run_cli
from tests.unit.test_compare import write_sweep
from tests.wandb_offline import find_offline_runs, read_offline_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_sweep_ends_with_its_report_and_w_and_b_bands_each_variants_seeds(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    # max_steps_per_level=5: achievement unlocks on schedule even at the smoke preset's untrained losses
    proc = run_cli(["-m", "+experiment=smoke", "curriculum=achievement,none", "seed=0,1", "trainer.steps_per_epoch=10",
                    "curriculum.max_steps_per_level=5", f"hydra.sweep.dir={sweep}"], tmp_path, corpus_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the report, with no second command
    assert {p.name for p in sweep.glob("comparison.*")} | {p.name for p in sweep.glob("runs.csv")} == {
        "comparison.md", "comparison.json", "comparison.png", "comparison.pdf", "comparison.svg", "runs.csv"}
    assert (sweep / "comparison.png").read_bytes()[:8] == PNG_MAGIC
    report = json.loads((sweep / "comparison.json").read_text())
    assert [(v["variant"], v["finished"], v["runs"]) for v in report["variants"]] == [
        ("curriculum=achievement", 2, 2), ("curriculum=none", 2, 2)]
    assert report["baseline"] == "curriculum=none" and report["title"] == f"smoke · {tmp_path.name}/sweep"
    achievement = [r for r in report["runs"] if r["variant"] == "curriculum=achievement"]
    assert all(r["unlocks"] for r in achievement)
    # each unlock's spike, measured by the engine and joined to its unlock in the report
    for job in sweep.glob("curriculum=achievement,*"):
        events = read_jsonl(job / "events.jsonl")
        spikes = [e for e in events if e["kind"] == "spike"]
        assert [s["step"] for s in spikes] == [e["step"] for e in events if e["kind"] == "unlock"]
        assert set(spikes[0]) == {"kind", "step", "from_cutoff", "to_cutoff", "score", "spike", "recovery_steps",
                                  "window_steps", "at_step"}
        assert spikes[0]["window_steps"] == 5 and spikes[0]["spike"] is not None  # cut short by the unlock at 10
    assert all(u["measured"] for r in achievement for u in r["unlocks"])
    # the per-variant and paired tables, printed at the end
    assert "Paired differences against the baseline, curriculum=none:" in proc.stdout
    table = proc.stdout.split("Variants (seeds aggregated):\n")[1]
    assert re.search(r"^curriculum=achievement +2/2 ", table, flags=re.M)
    assert re.search(r"^curriculum=none +2/2 ", table, flags=re.M)

    # W&B: a group per variant holding its two seeds, one tag for the whole sweep, runs named variant + seed
    runs = [read_offline_run(d) for d in find_offline_runs(sweep)]
    training = [r for r in runs if r.job_type != "report"]
    [summary] = [r for r in runs if r.job_type == "report"]
    sweep_name = f"{tmp_path.name}/sweep"
    assert {r.job_type for r in training} == {"train"}
    assert Counter(r.group for r in training) == {f"{sweep_name}/curriculum=achievement": 2,
                                                 f"{sweep_name}/curriculum=none": 2}
    assert {r.name for r in training} == {f"curriculum={c},seed={s}" for c in ("achievement", "none") for s in (0, 1)}
    assert all(f"sweep={sweep_name}" in r.tags for r in runs)
    for run in training:  # spikes on the loss charts' step axis, and each run's final checkpoint as an artifact
        if run.name.startswith("curriculum=achievement"):
            assert any("unlock/spike" in row for row in run.history)
        assert [a["name"] for a in run.artifacts if a["type"] == "model"] == [f"checkpoint-{run.run_id}"]
    # the report run: in the sweep's group, the files as one artifact, the paired differences as a table
    assert summary.group == sweep_name
    assert [a for a in summary.artifacts if a["type"] == "report"] == [{
        "name": f"comparison-{tmp_path.name}_sweep", "type": "report",
        "files": ["comparison.json", "comparison.md", "comparison.pdf", "comparison.png", "comparison.svg",
                  "runs.csv"]}]
    [paired] = [row["paired"] for row in summary.history if "paired" in row]
    assert paired["nrows"] == 2  # achievement minus none, in final and in best val


def test_a_report_that_fails_is_one_warning_and_never_fails_the_sweep(tmp_path, monkeypatch, caplog):
    sweep = write_sweep(tmp_path / "multirun" / "2026-11-26" / "12-00-00")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "trackers": {"jsonl": {}}})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bicameral.report.sweep_callback.write_report", broken)
    with caplog.at_level(logging.WARNING):
        SweepReport().on_multirun_end(config)
    [record] = caplog.records
    assert record.getMessage().startswith("Sweep report not written (OSError: disk full); the runs are intact.")
    assert f"python -m bicameral.report {sweep}" in record.getMessage() and "\n" not in record.getMessage()


def test_the_callback_writes_the_report_without_w_and_b(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "multirun" / "2026-11-26" / "12-00-00")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "trackers": {"jsonl": {}}})
    SweepReport(target_loss=2.0).on_multirun_end(config)
    out = capsys.readouterr().out
    assert re.search(r"^curriculum=fixed_threshold +0/2 ", out, flags=re.M)  # failed jobs shown, never a stop
    assert "curriculum=fixed_threshold,seed=1: failed, nothing logged" in out
    assert (sweep / "comparison.md").is_file() and not (sweep / "wandb").exists()
