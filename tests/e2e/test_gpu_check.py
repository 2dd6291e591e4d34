"""experiments/gpu_check.sh --cpu-dry-run: every section of the GPU check runs, on tiny CPU shapes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SECTIONS = {"environment", "kernel_resources", "cuda_tests", "race", "bench_step", "profile", "mixers"}


def test_gpu_check_dry_run_writes_its_report(tmp_path, corpus_cache):
    """The device script rehearsed on the CPU: every section runs and lands in gpu_check.json and gpu_check.md."""
    # the script calls python3: this suite's interpreter, also when the venv was not activated
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TRITON_INTERPRET", None)  # the script sets what each section needs
    proc = subprocess.run(["bash", "experiments/gpu_check.sh", "--cpu-dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = {s["name"]: s for s in report["sections"]}
    assert set(sections) == SECTIONS
    assert all(s["rc"] == 0 and not s["timed_out"] for s in sections.values()), sections
    assert all(report["environment"][name][0].isdigit() for name in ("torch", "hydra", "omegaconf", "triton"))
    assert {(r["kernel"], r["registers"] > 0) for r in report["kernel_resources"]} == {
        ("forward", True), ("adjoint", True), ("gram", True)}
    assert report["cuda_tests"]["counts"]["skipped"] >= 1  # collected; they run on the card
    race = report["race"]
    assert list(race["runs"]) == ["transformer", "bicameral none", "bicameral achievement"]
    for run in race["runs"].values():  # scored on the same held-out tokens along its clock, stopped by it
        seconds = [point["seconds"] for point in run["curve"]]
        assert seconds == sorted(seconds) and seconds[-1] >= race["budget_seconds"] and run["compile_seconds"] > 0
    assert [row["run"] for row in race["headline"]] == ["bicameral none", "bicameral achievement"]
    step = report["training_step"]["rows"]
    assert {r["arch"] for r in step} == {"transformer", "bicameral"}
    assert all(r["vs_transformer"] > 0 for r in step if r["arch"] == "bicameral")
    profile = {r["model"]: r for r in report["profile"]}
    assert set(profile) == {"transformer", "bicameral/fft"}
    assert "GEMM" in profile["transformer"]["families"] and "FFT" in profile["bicameral/fft"]["families"]
    mixers = {r["mixer"]: r for r in report["mixers"]["rows"]}
    assert {"freq/fft", "attention/causal"} <= set(mixers) and mixers["attention/causal"]["vs_causal_attention"] == 1
    rendered = (tmp_path / "gpu_check.md").read_text()
    for heading in ("## Time-to-loss race", "## Training step", "## Profile", "## Each mixer alone", "## CUDA tests"):
        assert heading in rendered


def test_gpu_check_refuses_an_unknown_argument():
    proc = subprocess.run(["bash", "experiments/gpu_check.sh", "--gpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--cpu-dry-run" in proc.stderr
