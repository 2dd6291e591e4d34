"""The README's main job as a user runs it (minutes on a 2-core CPU): `pytest -m slow`."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, read_jsonl


@pytest.mark.slow
def test_default_train_py_unlocks_at_least_twice(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "trackers=local", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("[UNLOCK]") >= 2
    events = read_jsonl(tmp_path / "events.jsonl")
    summary = events[-1]
    assert summary["kind"] == "finish" and summary["step"] == 900 and summary["final_val_loss"] < 2.0
    assert (tmp_path / "checkpoint.pt").is_file()
