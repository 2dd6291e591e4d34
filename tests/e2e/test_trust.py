"""Trust: loading a checkpoint never runs code, a run dir has one writer, each record is kept once."""

import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from bicameral.checkpoint.format import CheckpointError, load_checkpoint, save_checkpoint
from bicameral.checkpoint.upgrade import upgrade
from bicameral.engine import rng
from bicameral.engine.run import train
from bicameral.tracking.records import cut_after
from tests.conftest import MICRO, ROOT, read_jsonl
from tests.e2e.test_bad_input import compose_cfg, unsafe_checkpoint

# -- loading never runs code -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["train.py", *MICRO, "trackers=local", "trainer.resume={ckpt}", "hydra.run.dir={tmp}/run"],
    ["-m", "bicameral.tools.sample", "{ckpt}"],
    ["-m", "bicameral.tools.evaluate", "{ckpt}"],
], ids=["train", "sample", "evaluate"])
def test_every_command_refuses_an_unsafe_checkpoint_and_runs_nothing(tmp_path, corpus_cache, command):
    ckpt, marker = unsafe_checkpoint(tmp_path)
    args = [arg.format(ckpt=ckpt, tmp=tmp_path) for arg in command]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache)}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    [line] = [line for line in out.splitlines() if "is refused" in line]
    assert line.startswith(f"error: Checkpoint {ckpt} is refused: it needs posix.system to load")
    assert "Traceback" not in out
    assert not marker.exists()


def old_format_rng() -> dict:
    """RNG states as checkpoints held them before: numpy's tuple with an array, Python's tuples."""
    return {"torch": torch.get_rng_state(), "cuda": None, "numpy": np.random.get_state(), "python": random.getstate()}


def draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_states_round_trip_as_tensors_and_plain_types(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # a cached Gaussian is part of numpy's state too
    captured = rng.capture(torch.device("cpu"))
    expected = draws()
    save_checkpoint({"rng": captured}, tmp_path / "rng.pt")
    rng.restore(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"], torch.device("cpu"))
    assert draws() == expected


def test_an_old_checkpoint_is_refused_then_upgraded_once_by_its_owner(tmp_path, corpus_cache):
    train(compose_cfg("trainer.steps_per_epoch=2"), tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    torch.manual_seed(5), np.random.seed(6), random.seed(7)
    state["rng"] = old_format_rng()
    expected = draws()
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(CheckpointError, match=f"{old} is refused: it needs numpy.* upgrade {old} NEW.pt"):
        load_checkpoint(old)
    cli = subprocess.run([sys.executable, "-m", "bicameral.checkpoint", "upgrade", str(old), str(tmp_path / "new.pt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "rerun with --trust" in cli.stderr  # it asks first: this runs the pickle
    upgrade(old, tmp_path / "new.pt")
    rng.restore(load_checkpoint(tmp_path / "new.pt")["rng"], torch.device("cpu"))
    assert draws() == expected


# -- one writer per run dir ----------------------------------------------------------------------------


def test_a_second_run_on_a_dir_fails_fast_and_a_killed_holder_never_blocks_the_resume(tmp_path, corpus_cache):
    cmd = [sys.executable, "train.py", *MICRO, "trackers=local", "trainer.steps_per_epoch=100000",
           "trainer.log_every=1", "trainer.ckpt_every=3", f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in first.stdout:
        if "step 4/" in line:  # training, with a checkpoint at step 3
            break
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.poll() is None  # the first run went on throughout
    assert second.returncode == 2
    [refusal] = [line for line in second.stdout.splitlines() if line.startswith("error:")]
    assert refusal.startswith(f"error: Run dir {tmp_path} is in use by another run (pid {first.pid} on host ")
    assert "Epoch 0:" not in second.stdout  # it stopped before any work
    first.send_signal(signal.SIGKILL)
    first.wait()
    steps = [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, len(steps) + 1))  # the first run's record: each of its steps once

    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")["step"]
    resumed = subprocess.run([*cmd, f"trainer.stop_at={checkpoint + 2}"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"Resumed from {tmp_path / 'checkpoint.pt'} at step {checkpoint}," in resumed.stdout
    steps = [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, checkpoint + 3))  # the killed run's rows after its checkpoint were cut
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] != first.pid


# -- each record once ------------------------------------------------------------------------------


def test_a_cut_drops_rows_after_the_step_and_torn_lines_atomically(tmp_path):
    rows = [{"kind": "train", "step": s} for s in (5, 10, 15)] + [{"kind": "val", "step": 10}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "tra')
    events = [{"kind": "unlock", "step": 10}, {"kind": "preempted", "step": 10, "error": "preempted at step 10"},
              {"kind": "unlock", "step": 12}, {"kind": "failed", "step": 13, "error": "boom"}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert cut_after(tmp_path, 10) == {"metrics.jsonl": 2, "events.jsonl": 2}
    assert read_jsonl(tmp_path / "metrics.jsonl") == [rows[0], rows[1], rows[3]]
    assert read_jsonl(tmp_path / "events.jsonl") == events[:2]  # what happened up to step 10 stays
    before = (tmp_path / "events.jsonl").stat().st_ino
    assert cut_after(tmp_path, 10) == {} and (tmp_path / "events.jsonl").stat().st_ino == before  # no rewrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "metrics.jsonl"]  # no temp files
