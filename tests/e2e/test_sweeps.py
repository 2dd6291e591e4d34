"""Sweeps through the real CLI in subprocesses: multirun, W&B groups, failures, launchers, Optuna."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MICRO, ROOT, read_jsonl
from tests.wandb_offline import find_offline_runs, read_offline_run

QUICK = [*MICRO, "trackers=local", "trainer.steps_per_epoch=5"]


def run_cli(args: list[str], tmp_path: Path, corpus_cache: Path, timeout: int = 300):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "XDG_CACHE_HOME": str(corpus_cache)}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if (p / "metrics.jsonl").exists())


def events(job: Path) -> list[dict]:
    return read_jsonl(job / "events.jsonl")


@pytest.mark.slow  # a minute or more on 2 cores; `pytest -m slow`
def test_threshold_by_curriculum_multirun_groups_runs_and_compares(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "curriculum=achievement,fixed_threshold", "curriculum.unlock_threshold=4.8,5.2", *MICRO,
                    f"hydra.sweep.dir={sweep}"], tmp_path, corpus_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]

    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == [
        "curriculum.unlock_threshold=4.8,curriculum=achievement",
        "curriculum.unlock_threshold=4.8,curriculum=fixed_threshold",
        "curriculum.unlock_threshold=5.2,curriculum=achievement",
        "curriculum.unlock_threshold=5.2,curriculum=fixed_threshold",
    ]
    runs = [r for r in map(read_offline_run, find_offline_runs(sweep)) if r.job_type != "report"]  # + the report run
    assert len(runs) == 4 and len({r.run_id for r in runs}) == 4
    # no seeds swept: each job is a variant of its own, its W&B group named by the sweep and its overrides
    assert sorted(r.group for r in runs) == [f"{tmp_path.name}/sweep/{j.name}" for j in jobs]
    by_name = {r.name: r for r in runs}
    assert set(by_name) == {j.name for j in jobs}  # each W&B run is named by its overrides
    for job in jobs:
        run = by_name[job.name]
        curriculum = dict(o.split("=") for o in job.name.split(","))["curriculum"]
        threshold = run.config["curriculum"]["unlock_threshold"]
        assert f"curriculum={curriculum}" in run.tags and f"threshold={threshold}" in run.tags
        unlocks = [e for e in events(job) if e["kind"] == "unlock"]
        assert unlocks and unlocks[0]["prev_bar"] == threshold  # the first bar is the swept threshold
        assert [row["unlock/step"] for row in run.history if "unlock/step" in row] == [e["step"] for e in unlocks]
        assert run.summary["unlock_steps"] == [e["step"] for e in unlocks]
        assert run.summary["unlocks"]["nrows"] == len(unlocks)  # the unlock table

    report = subprocess.run([sys.executable, "experiments/compare_curricula.py", str(sweep), "--target-loss", "3.5"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "curriculum=achievement" in report.stdout and "curriculum=fixed_threshold" in report.stdout
    png = sweep / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "curriculum.levels=[16,8],[8,16]", *QUICK, f"hydra.sweep.dir={sweep}"],
                   tmp_path, corpus_cache)
    assert proc.returncode != 0
    assert "must be strictly increasing" in proc.stdout + proc.stderr
    [good] = [job for job in job_dirs(sweep) if job.name.startswith("curriculum.levels=[8,16]")]
    assert events(good)[-1]["kind"] == "finish"
    # the sweep's report still came, and says which job failed and why
    report = (sweep / "comparison.md").read_text()
    assert "| curriculum.levels=[16,8] | failed |" in report
    assert "curriculum.levels=[16,8]: failed, nothing logged: curriculum.levels=[16, 8] must be strictly" in report


# slow: the submitit plugin's launch; the basic launcher's sweeps stay in the default suite
@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "hydra/launcher=submitit_local", "curriculum=achievement,none", *QUICK,
                    f"hydra.sweep.dir={sweep}"], tmp_path, corpus_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validated against ConfigStore schema" not in proc.stderr
    jobs = job_dirs(sweep)
    assert [j.name.split(",")[0] for j in jobs] == ["curriculum=achievement", "curriculum=none"]
    assert all(events(j)[-1]["kind"] == "finish" for j in jobs)
    assert (sweep / ".submitit").is_dir()  # each job ran as its own submitit process


# slow: the Optuna sweeper (an extra); the threshold sweep itself stays in the default suite
@pytest.mark.slow
def test_optuna_searches_the_threshold(tmp_path, corpus_cache):
    sweep = tmp_path / "sweep"
    small = ["model.seq_len=64", "model.d_model=32", "model.n_layers=2", "model.kernel_len=16",
             "trainer.steps_per_epoch=5", "trainer.batch_size=4", "trainer.val_every=5", "trackers=local"]
    proc = run_cli(["+experiment=threshold_search", "hydra.sweeper.n_trials=2", *small, f"hydra.sweep.dir={sweep}",
                    "hydra.sweep.subdir=${hydra.job.num}"], tmp_path, corpus_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(job_dirs(sweep)) == 2
    results = (sweep / "optimization_results.yaml").read_text()
    assert "curriculum.unlock_threshold" in results and "best_value" in results
