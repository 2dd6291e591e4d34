"""Yoked controls through the real commands: one command runs a sweep, each unlocking run's control and one
report; each control trains with the band open from step 0 at the very LR of the run it copies."""

import json
import os
import subprocess
import sys

import pytest

from bicameral.engine.run import train
from bicameral.report.runs import load_runs
from tests.conftest import MICRO, ROOT, micro_config


def records(path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == kind]


def test_lr_area_is_the_sum_of_the_schedule(tmp_path, corpus_cache):
    """Linear schedule, peak 1, floor 0.1, 5 warmup steps, 20 steps, a restart at 10 (sums by hand):
    warmup (1+2+3+4+5)/5 = 3; steps 5..9 decay over 15: 5 - 0.9 (0+1+2+3+4)/15 = 4.4;
    steps 10..19 decay over 10: 10 - 0.9 (0+...+9)/10 = 5.95. In all 13.35 steps at peak LR."""
    cfg = micro_config("curriculum=none", "schedule=linear_restarts", "schedule.restart_steps=[10]",
                       "trainer.ckpt=null")
    summary = train(cfg, run_dir=tmp_path / "run")
    assert summary["lr_area"] == pytest.approx(13.35, rel=1e-9)
    [finish] = records(tmp_path / "run" / "events.jsonl", "finish")
    assert finish["lr_area"] == summary["lr_area"]


@pytest.mark.slow  # a minute or more on 2 cores; `pytest -m slow`
def test_one_command_runs_the_sweep_its_yoked_controls_and_one_report(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    overrides = [*MICRO, "curriculum=achievement,none", "seed=0", "trainer.log_every=1", "trackers=local",
                 "curriculum.max_steps_per_level=5", "trainer.steps_per_epoch=20"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache)}
    proc = subprocess.run([sys.executable, "-m", "bicameral.report.yoked", str(sweep), "--quiet", "--", *overrides],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[yoked 1/1] finished" in proc.stdout

    runs = {r.label: r for r in load_runs(sweep)}
    reference = runs["curriculum=achievement"]
    control = runs["yoked(curriculum=achievement),seed=0"]
    assert control.path == sweep / "yoked" / reference.relative_path
    assert control.yoked_to == reference.relative_path and control.curriculum == "none"
    restarts = [u["step"] for u in reference.unlocks]
    assert restarts == [5, 10, 15] and control.restart_steps == restarts and not control.unlocks
    # the band open from step 0, and the reference's LR at every step
    assert {r["cutoff"] for r in control.train} == {33}
    assert [r["lr"] for r in control.train] == [r["lr"] for r in reference.train]
    assert control.finish["lr_area"] == reference.finish["lr_area"] and control.seed == reference.seed

    report = json.loads((sweep / "comparison.json").read_text())
    assert report["baseline"] == "curriculum=none"
    [unlocking] = report["unlocking"]
    assert (unlocking["variant"], unlocking["reference"]) == ("curriculum=achievement",
                                                            "yoked(curriculum=achievement)")
    assert unlocking["final_val_loss"]["n"] == 1 and unlocking["lr_area"][0] == unlocking["lr_area"][1]
    assert "The unlocking alone" in proc.stdout and (sweep / "runs.csv").is_file()


def test_a_sweep_dir_that_holds_runs_is_not_swept_again(tmp_path):
    (tmp_path / "sweep" / "job").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "bicameral.report.yoked", str(tmp_path / "sweep"), "--",
                           "seed=0,1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and "already holds runs" in proc.stderr and proc.stderr.count("\n") == 1
