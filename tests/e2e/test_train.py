"""The engine end to end: the real CLI in a subprocess, exact resume, checkpoints, W&B offline."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bicameral.checkpoint.format import CheckpointError, load_checkpoint
from bicameral.config import ConfigError
from bicameral.engine.run import train
from tests.conftest import MICRO, ROOT, micro_config, read_jsonl
from tests.wandb_offline import find_offline_runs, iter_records, read_offline_run


def test_train_py_learns_unlocks_and_records_everything(tmp_path, corpus_cache):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "train.py", *MICRO, "trainer.steps_per_epoch=40", "trainer.epochs=2",
           "curriculum.unlock_threshold=5.0", "curriculum.min_steps_per_level=10", "trainer.ckpt_every=40",
           f"hydra.run.dir={run_dir}"]
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "XDG_CACHE_HOME": str(corpus_cache),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Epoch 0:" in out and "Epoch 1:" in out and "  step 5/40 loss=" in out
    assert "  [UNLOCK] 8 -> 16 (loss=" in out and "    Next unlock target: loss < " in out
    assert "  Hemisphere: Freq=" in out

    metrics = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert len(metrics) == 16 and metrics[-1]["loss"] < metrics[0]["loss"] - 1.0  # it learns
    events = read_jsonl(run_dir / "events.jsonl")
    unlocks = [e for e in events if e["kind"] == "unlock"]
    assert len(unlocks) >= 1 and unlocks[0]["from_cutoff"] == 8 and unlocks[0]["prev_bar"] == 5.0
    assert events[-1]["kind"] == "finish" and events[-1]["unlock_steps"] == [e["step"] for e in unlocks]
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "train.log").is_file()

    # W&B (offline) holds the same unlock events, read back from what wandb wrote
    [wandb_dir] = find_offline_runs(run_dir)
    run = read_offline_run(wandb_dir)
    logged = [row for row in run.history if "unlock/step" in row]
    assert [row["unlock/step"] for row in logged] == [e["step"] for e in unlocks]
    assert [row["unlock/to_cutoff"] for row in logged] == [e["to_cutoff"] for e in unlocks]
    assert [row["unlock/score"] for row in logged] == pytest.approx([e["score"] for e in unlocks])
    assert run.config["curriculum"]["_target_"] == "bicameral.curriculum.Achievement"
    assert "curriculum=achievement" in run.tags
    assert run.summary["unlock_steps"] == [e["step"] for e in unlocks]
    # bits per byte beside every val loss (bytes: nats per token over ln 2), in the JSONL and in W&B
    vals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "val"]
    assert [r["bits_per_byte"] for r in vals] == pytest.approx([r["val_loss"] / math.log(2) for r in vals])
    assert [row["val/bits_per_byte"] for row in run.history if "val/bits_per_byte" in row] == pytest.approx(
        [r["bits_per_byte"] for r in vals])
    assert f"bits/byte={vals[-1]['bits_per_byte']:.3f}" in out


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data=text_file", "data.path=/no/such/corpus.txt"], "Corpus path /no/such/corpus.txt does not exist"),
        (["curriculum.levels=[64,32]"], "must be strictly increasing"),
        (["trainer.resume=/no/such/ckpt.pt"], "Checkpoint /no/such/ckpt.pt does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_before_any_work(tmp_path, overrides, message):
    cmd = [sys.executable, "train.py", *overrides, f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "wandb").exists()


def micro_cfg(run_dir: Path, *extra):
    # a first bar high enough that the micro model unlocks within a few dozen steps
    threshold = [] if "curriculum=none" in extra else ["curriculum.unlock_threshold=5.2"]
    return micro_config("trainer.steps_per_epoch=20", "trainer.epochs=2", "trainer.ckpt_every=10",
                        "curriculum.min_steps_per_level=5", "model.dropout=0.1", *threshold, *extra)


def test_resume_continues_exactly(tmp_path, corpus_cache):
    """N steps, resume, N more == 2N straight: same losses, unlocks, bar, LR and weights (CPU)."""
    straight = train(micro_cfg(tmp_path / "straight"), tmp_path / "straight")
    first = train(micro_cfg(tmp_path / "first"), tmp_path / "first", stop_at=15)
    assert first["step"] == 15
    resumed = train(micro_cfg(tmp_path / "resumed", f"trainer.resume={tmp_path / 'first' / 'checkpoint.pt'}"),
                    tmp_path / "resumed")

    def rows(name):
        return [(r["step"], r["loss"], r["lr"], r["cutoff"]) for r in read_jsonl(tmp_path / name / "metrics.jsonl")
                if r["kind"] == "train"]

    assert rows("first") + rows("resumed") == rows("straight")
    assert resumed["unlock_steps"] == straight["unlock_steps"] and len(straight["unlock_steps"]) >= 2
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert a["curriculum"] == b["curriculum"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_transformer_baseline_trains_in_the_same_engine(tmp_path, corpus_cache):
    summary = train(micro_cfg(tmp_path, "model.arch=transformer", "curriculum=none", "trainer.epochs=1"), tmp_path)
    rows = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0 and summary["unlock_steps"] == []
    assert all(r["cutoff"] == 33 and r["freq_share"] == 0 for r in rows)


def test_band_curriculum_on_a_transformer_fails_at_start(tmp_path, corpus_cache):
    with pytest.raises(ConfigError, match="has no frequency path. Fix: add curriculum=none"):
        train(micro_cfg(tmp_path, "model.arch=transformer"), tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_checkpoint_holds_everything_and_leaves_no_temp_files(tmp_path, corpus_cache):
    train(micro_cfg(tmp_path), tmp_path, stop_at=10)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 10 and state["config"]["model"]["d_model"] == 32
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert "level" in state["curriculum"] and "cycle_start" in state["schedule"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_bad_checkpoints_fail_naming_the_file(tmp_path, corpus_cache):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt cannot be read"):
        load_checkpoint(garbage)
    train(micro_cfg(tmp_path / "a"), tmp_path / "a", stop_at=5)
    wider = micro_cfg(tmp_path / "b", "model.d_model=64", f"trainer.resume={tmp_path / 'a' / 'checkpoint.pt'}")
    with pytest.raises(CheckpointError, match="does not fit this config"):
        train(wider, tmp_path / "b")


def test_score_is_the_mean_loss_over_the_score_window(tmp_path, corpus_cache):
    cfg = micro_cfg(tmp_path, "trainer.log_every=1", "curriculum.score_window=3", "trainer.steps_per_epoch=15",
                    "trainer.epochs=1")
    train(cfg, tmp_path)
    losses = {r["step"]: r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"}
    unlocks = [e for e in read_jsonl(tmp_path / "events.jsonl") if e["kind"] == "unlock"]
    assert unlocks
    for event in unlocks:
        window = [losses[s] for s in range(event["step"] - 2, event["step"] + 1)]
        assert event["score"] == pytest.approx(sum(window) / 3, rel=1e-6)
        assert event["score"] != pytest.approx(losses[event["step"]], rel=1e-6)  # not one noisy batch


def test_judge_every_sets_when_the_curriculum_is_asked_apart_from_the_log(tmp_path, corpus_cache):
    cfg = micro_cfg(tmp_path, "trainer.log_every=2", "curriculum.judge_every=6", "curriculum.min_steps_per_level=0",
                    "curriculum.unlock_threshold=9.0", "trainer.steps_per_epoch=20", "trainer.epochs=1")
    train(cfg, tmp_path)
    unlocks = [e["step"] for e in read_jsonl(tmp_path / "events.jsonl") if e["kind"] == "unlock"]
    # the first judgement clears a bar of 9, and only judgements unlock
    assert unlocks[0] == 6 and all(step % 6 == 0 for step in unlocks)
    losses = {r["step"]: r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"}
    assert sorted(losses) == list(range(2, 21, 2))  # logged every 2 steps all the same


def test_wandb_unlock_table_after_a_resume_holds_every_unlock_once(tmp_path, corpus_cache):
    """The table comes from the curriculum's restored history, not from what one process saw."""
    train(micro_cfg(tmp_path, "trackers=wandb"), tmp_path, stop_at=12)
    summary = train(micro_cfg(tmp_path, "trackers=wandb"), tmp_path)  # resume=auto continues the same run
    assert summary["unlock_steps"][0] <= 12 < summary["unlock_steps"][-1]  # unlocks on both sides of the stop
    first, second = find_offline_runs(tmp_path)
    assert read_offline_run(first).run_id == read_offline_run(second).run_id
    [table] = (second / "files" / "media" / "table").glob("unlocks_*.table.json")
    rows = json.loads(table.read_text())
    steps = [row[rows["columns"].index("step")] for row in rows["data"]]
    assert steps == summary["unlock_steps"]
    tokens = [row[rows["columns"].index("tokens")] for row in rows["data"]]
    assert tokens == [s * 4 * 64 for s in steps]  # batch 4 x seq_len 64 tokens a step
    # the final checkpoint rides along as a model artifact, kept offline for `wandb sync`
    [log] = second.glob("run-*.wandb")
    artifacts = [r.artifact for r in iter_records(log) if r.WhichOneof("record_type") == "artifact"]
    models = [a.name for a in artifacts if a.type == "model"]
    assert models == [f"checkpoint-{read_offline_run(second).run_id}"]
