"""Never lose a run: torn saves, exact resume anywhere, preemption, non-finite steps, failing services."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import bicameral.checkpoint.format as checkpoint_format
from bicameral.checkpoint.format import CheckpointError, load_checkpoint, save_checkpoint
from bicameral.checkpoint.manager import newest_valid_checkpoint
from bicameral.engine.preemption import PREEMPTED_EXIT_CODE, Preempted
from bicameral.engine.run import build_run, fit, train
from bicameral.engine.trainer import NonFiniteError, Trainer
from bicameral.files import torn_writes
from bicameral.model.lm import LanguageModel
from tests.conftest import MICRO, ROOT, micro_config, read_jsonl


def cfg_for(*extra):
    return micro_config("trainer.epochs=2", "trainer.ckpt_every=4", "curriculum.unlock_threshold=5.2",
                        "trainer.accum_steps=2", "model.dropout=0.1", *extra)


def rows(run_dir: Path, kind: str = "train") -> list[tuple]:
    records = read_jsonl(run_dir / "metrics.jsonl")
    return [(r["step"], r.get("loss", r.get("val_loss")), r.get("lr"), r.get("cutoff")) for r in records
            if r["kind"] == kind]


def events(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "events.jsonl")


# -- 1. atomic, verifiable checkpoints -----------------------------------------------------------

SAVER = """
import sys, torch
from bicameral.checkpoint.format import save_checkpoint
state = {k: 0 for k in ("optimizer", "schedule", "curriculum", "rng", "config")}
step = 0
while True:
    step += 1
    state.update(step=step, model={"w": torch.full((6_000_000,), float(step))})  # ~24 MB per save
    save_checkpoint(state, sys.argv[1])
    print(step, flush=True)
"""


def test_sigkill_mid_save_always_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    for kill_after in (0.05, 0.13, 0.21, 0.34, 0.55):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one complete save before the kill
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        found = newest_valid_checkpoint(tmp_path, "checkpoint.pt")
        assert found is not None
        _, state = found
        assert torch.all(state["model"]["w"] == state["step"])  # complete, not a torn write


def test_a_save_never_leaves_a_moment_without_the_checkpoint(tmp_path, monkeypatch):
    """A kill between a save's renames once left only checkpoint.prev.pt: the previous one is now linked into
    place, so checkpoint.pt exists before and after every rename."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)
    real_replace, present = os.replace, []

    def watched(src, dst):
        present.append(path.exists())
        real_replace(src, dst)
        present.append(path.exists())

    monkeypatch.setattr(checkpoint_format.os, "replace", watched)
    save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert present and all(present)
    assert torch.load(path, weights_only=True)["step"] == 2
    assert torch.load(tmp_path / "checkpoint.prev.pt", weights_only=True)["step"] == 1
    assert not torn_writes(tmp_path / "checkpoint.pt")


def test_torn_and_foreign_checkpoints_fail_naming_the_file(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint({k: 1 for k in checkpoint_format.REQUIRED_KEYS}, good)
    torn = tmp_path / "torn.pt"
    torn.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"torn\.pt cannot be read: it is truncated or not a checkpoint"):
        load_checkpoint(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a bicameral checkpoint \(missing model"):
        load_checkpoint(foreign)


def test_resume_auto_picks_the_newest_valid_checkpoint_and_says_which(tmp_path, corpus_cache, caplog):
    train(cfg_for(), tmp_path, stop_at=8)  # checkpoints at 4 (now .prev) and 8
    latest = tmp_path / "checkpoint.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # the last save was torn
    caplog.set_level("INFO", logger="bicameral")
    summary = train(cfg_for(), tmp_path, stop_at=10)
    assert f"Resumed from {tmp_path / 'checkpoint.prev.pt'} at step 4" in caplog.text
    assert summary["step"] == 10
    # the damaged file was named, and set aside: the next save did not rotate it over the good one
    assert f"Checkpoint {latest} cannot be read" in caplog.text and "the damaged file is kept as" in caplog.text
    assert (tmp_path / "checkpoint.damaged.pt").stat().st_size == 1000
    assert load_checkpoint(tmp_path / "checkpoint.prev.pt")["step"] in (4, 8)  # a good one, never the torn one


def test_a_damaged_checkpoint_with_nothing_to_fall_back_on_stops_the_run(tmp_path, corpus_cache):
    train(cfg_for(), tmp_path, stop_at=4)  # one checkpoint, no previous one
    latest = tmp_path / "checkpoint.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    records = (tmp_path / "metrics.jsonl").read_bytes()
    with pytest.raises(CheckpointError, match=f"Checkpoint {latest} cannot be read: .* No other checkpoint in "
                       f"{tmp_path} to resume from, and a fresh start would cut its records. Fix: "
                       "trainer.resume=<a good checkpoint>, or trainer.overwrite=true"):
        train(cfg_for(), tmp_path, stop_at=8)
    assert (tmp_path / "metrics.jsonl").read_bytes() == records  # nothing cut, nothing trained


# -- 2. exact resume ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, corpus_cache):
    run_dir = tmp_path_factory.mktemp("straight")
    summary = train(cfg_for(), run_dir)
    return run_dir, summary


@pytest.mark.parametrize("stop_at", [3, 10, 12, 23])  # mid-window; at an unlock; mid-level; after ckpt 20
def test_interrupted_anywhere_the_run_continues_bit_for_bit(tmp_path, straight_run, stop_at):
    straight_dir, straight = straight_run
    unlock_steps = straight["unlock_steps"]
    assert 10 in unlock_steps and 12 not in unlock_steps  # the stop points mean what their names say
    train(cfg_for("trainer.ckpt_every=1000"), tmp_path, stop_at=stop_at)  # only the stop's own save
    resumed = train(cfg_for(), tmp_path)
    assert rows(tmp_path) == rows(straight_dir)
    # the one extra val row is the stop's own: trainer.stop_at validates before it stops
    assert [r for r in rows(tmp_path, "val") if r[0] != stop_at] == rows(straight_dir, "val")
    assert [r[0] for r in rows(tmp_path, "val")].count(stop_at) == 1
    assert resumed["unlock_steps"] == unlock_steps
    a, b = load_checkpoint(straight_dir / "checkpoint.pt"), load_checkpoint(tmp_path / "checkpoint.pt")
    assert a["curriculum"] == b["curriculum"] and a["schedule"] == b["schedule"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# -- 3. preemption --------------------------------------------------------------------------------


def test_a_stop_signal_saves_logs_and_exits_resumably(tmp_path, corpus_cache):
    """The command line: SIGTERM mid-run exits 75 with a checkpoint, and the same command resumes by itself."""
    cmd = [sys.executable, "train.py", *MICRO, "trackers=local", "trainer.steps_per_epoch=100000",
           "trainer.log_every=1", "trainer.ckpt_every=100000", f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "step 3/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out = proc.stdout.read()
    assert proc.wait(timeout=60) == PREEMPTED_EXIT_CODE, out
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert f"preempted at step {state['step']}" in out and state["step"] >= 3
    assert events(tmp_path)[-1] == {"kind": "preempted", "step": state["step"],
                                    "error": f"preempted at step {state['step']}"}
    rerun = subprocess.run([*cmd, f"trainer.stop_at={state['step'] + 2}"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0 and f"at step {state['step']}," in rerun.stdout  # resumed by itself


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR2])
def test_each_stop_signal_ends_the_step_then_saves(tmp_path, corpus_cache, monkeypatch, sig):
    """In-process, the signal arrives during step 3: that step finishes, is saved, and the run stops there."""
    real_step = Trainer._step

    def signalled_during_step_3(self):
        if self.step == 2:
            os.kill(os.getpid(), sig)
        real_step(self)

    monkeypatch.setattr(Trainer, "_step", signalled_during_step_3)
    with pytest.raises(Preempted, match="preempted at step 3"):
        train(cfg_for("trainer.ckpt_every=100"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3
    assert events(tmp_path)[-1] == {"kind": "preempted", "step": 3, "error": "preempted at step 3"}


# -- 4. numerical faults ----------------------------------------------------------------------------


def poison_steps(monkeypatch, bad_calls: set[int]):
    """Make the loss NaN on the given forward calls (training micro-batches and val batches alike)."""
    forward, calls = LanguageModel.forward, {"n": 0}

    def poisoned(self, idx, targets=None):
        out = forward(self, idx, targets)
        calls["n"] += 1
        if targets is not None and self.training and calls["n"] in bad_calls:
            return out._replace(loss=out.loss * float("nan"))
        return out

    monkeypatch.setattr(LanguageModel, "forward", poisoned)


def test_non_finite_steps_are_skipped_counted_and_never_scored(tmp_path, corpus_cache, monkeypatch):
    poison_steps(monkeypatch, {5, 6, 13})  # forward calls in steps 3 and 7 (2 micro-batches a step)
    summary = train(cfg_for("trainer.epochs=1"), tmp_path)
    skips = [e for e in events(tmp_path) if e["kind"] == "skip"]
    assert [(e["step"], e["skipped_steps"]) for e in skips] == [(3, 1), (7, 2)]
    scores = [e["score"] for e in events(tmp_path) if e["kind"] == "unlock"]
    assert scores and all(s == s for s in scores)  # no NaN ever judged
    assert all(loss == loss for _, loss, _, _ in rows(tmp_path)) and summary["step"] == 20


def test_too_many_non_finite_steps_stop_the_run_keeping_the_last_good_checkpoint(tmp_path, corpus_cache,
                                                                                  monkeypatch):
    poison_steps(monkeypatch, set(range(11, 1000)))  # every step from step 6 on
    with pytest.raises(NonFiniteError, match="3 non-finite gradients in a row at step 8"):
        train(cfg_for("trainer.max_nonfinite_steps=3"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 4
    assert events(tmp_path)[-1]["kind"] == "failed"


def test_a_fused_optimizer_skips_non_finite_updates_on_the_device(tmp_path, corpus_cache, monkeypatch):
    """Fused AdamW takes the non-finite flag as GradScaler's found_inf: the update and its step count are skipped
    by the kernel itself, and the run reports the same skips as one that reads the flag every step."""
    poison_steps(monkeypatch, {5, 6, 13})  # forward calls in steps 3 and 7 (2 micro-batches a step)
    run = build_run(cfg_for("trainer.epochs=1", "+optimizer.fused=true"), tmp_path)
    assert run.trainer.skips_on_device
    summary = fit(run)
    skips = [e for e in events(tmp_path) if e["kind"] == "skip"]
    assert [(e["step"], e["skipped_steps"]) for e in skips] == [(3, 1), (7, 2)]
    steps = {int(state["step"]) for state in run.trainer.optimizer.state.values()}
    assert steps == {summary["step"] - 2}  # the two skipped updates never counted
    assert all(loss == loss for _, loss, _, _ in rows(tmp_path)) and summary["step"] == 20


def test_no_step_waits_for_the_device_between_log_points(tmp_path, corpus_cache, monkeypatch):
    """With a fused optimizer a training step never reads a number back from the device: the host reads each
    log window's numbers once, at its log point."""
    reads, inside_a_step = [], {"now": False}
    for name in ("item", "tolist", "__bool__", "__float__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if inside_a_step["now"]:
                reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    step = Trainer._step

    def watched(self):
        inside_a_step["now"] = True
        try:
            step(self)
        finally:
            inside_a_step["now"] = False

    monkeypatch.setattr(Trainer, "_step", watched)
    summary = train(cfg_for("trainer.epochs=1", "+optimizer.fused=true"), tmp_path)
    assert summary["step"] == 20 and reads == []


# -- 6. failing services ----------------------------------------------------------------------------


def test_wandb_that_cannot_start_never_stops_training(tmp_path, corpus_cache, monkeypatch, caplog):
    import wandb

    def refuse(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(wandb, "init", refuse)
    summary = train(cfg_for("trackers=wandb", "trainer.epochs=1"), tmp_path)
    assert summary["step"] == 20 and "W&B could not start (ConnectionError: no network)" in caplog.text
    assert "mode=offline" not in caplog.text  # it was offline already: nothing to suggest
    assert events(tmp_path)[-1]["kind"] == "finish"


def test_an_unreachable_wandb_server_is_named_and_given_up_on_in_time(tmp_path, corpus_cache, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    caplog.set_level("INFO", logger="bicameral")
    started = time.monotonic()
    summary = train(cfg_for("trackers=wandb", "trackers.wandb.mode=online", "trackers.wandb.init_timeout_s=3",
                            "trainer.epochs=1"), tmp_path)
    assert summary["step"] == 20 and time.monotonic() - started < 60
    assert ("W&B: connecting to http://127.0.0.1:9 (trackers.wandb.mode=online); after "
            "trackers.wandb.init_timeout_s=3 s without an answer, training goes on without it") in caplog.text
    assert "W&B could not start" in caplog.text and "Rerun with trackers.wandb.mode=offline" in caplog.text


def test_wandb_failing_mid_run_is_dropped_with_one_warning(tmp_path, corpus_cache, monkeypatch, caplog):
    import wandb.sdk.wandb_run as wandb_run

    def broken_log(self, *args, **kwargs):
        raise RuntimeError("service went away")

    monkeypatch.setattr(wandb_run.Run, "log", broken_log)
    summary = train(cfg_for("trackers=wandb", "trainer.epochs=1"), tmp_path)
    assert summary["step"] == 20 and caplog.text.count("W&B failed (RuntimeError: service went away)") == 1
    assert len(rows(tmp_path)) == 4


def full_disk_from(monkeypatch, step: int) -> None:
    """torch.save fails with ENOSPC for every checkpoint from `step` on."""
    real_save = torch.save

    def save_until_full(obj, f, *args, **kwargs):
        if obj["step"] >= step:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_format.torch, "save", save_until_full)


def test_a_disk_that_stays_full_fails_the_run_naming_the_last_good_checkpoint(tmp_path, corpus_cache,
                                                                              monkeypatch, caplog):
    full_disk_from(monkeypatch, step=8)  # saves every 4 steps: 8, 12 and 16 fail, each after one retry
    with pytest.raises(CheckpointError, match=r"Checkpoint save at step 16 failed \(No space left on device\), "
                       r"3 saves in a row; the last good checkpoint is .*checkpoint\.pt at step 4\. Fix: free space"):
        train(cfg_for("trainer.epochs=1"), tmp_path)
    assert "Checkpoint save at step 8 failed (No space left on device), retried once" in caplog.text
    assert events(tmp_path)[-1]["kind"] == "failed" and "at step 4" in events(tmp_path)[-1]["error"]
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 4
    assert not torn_writes(tmp_path / "checkpoint.pt")


def test_a_failed_last_save_is_a_failed_run_not_done(tmp_path, corpus_cache, monkeypatch):
    full_disk_from(monkeypatch, step=20)  # every save but the last one succeeds
    with pytest.raises(CheckpointError, match=r"Checkpoint save at step 20 failed .*the run's last save; the last "
                       r"good checkpoint is .*at step 16"):
        train(cfg_for("trainer.epochs=1"), tmp_path)
    assert events(tmp_path)[-1]["kind"] == "failed"  # no finish record claims step 20


# -- 7. concurrent sweeps ---------------------------------------------------------------------------


@pytest.mark.slow  # a minute or more on 2 cores; `pytest -m slow`
def test_two_sweeps_started_together_never_share_a_dir(tmp_path, corpus_cache):
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *MICRO, "trackers=local", "trainer.steps_per_epoch=2",
           "trainer.val_every=2", "seed=0,1"]
    env = {**os.environ, "XDG_CACHE_HOME": str(corpus_cache)}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]
    assert all(p.wait(timeout=180) == 0 for p in procs)
    sweeps = {p.parent.parent for p in tmp_path.glob("multirun/*/*/*/metrics.jsonl")}  # job dir -> sweep dir
    assert len(sweeps) == 2
    checkpoints = list(tmp_path.glob("multirun/*/*/*/checkpoint.pt"))
    assert len(checkpoints) == 4 and len(set(checkpoints)) == 4


def test_the_signal_goes_on_to_the_handler_that_was_there_before(tmp_path):
    """Under submitit, its SIGUSR2 handler requeues the job: it must still run, after our save."""
    from bicameral.engine.preemption import StopRequest

    seen = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert stop.signal == signal.SIGUSR2 and seen == []  # ours first: the trainer saves
            stop.pass_on()
        assert seen == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, corpus_cache):
    from tests.wandb_offline import find_offline_runs, read_offline_run

    train(cfg_for("trackers=wandb"), tmp_path, stop_at=6)
    train(cfg_for("trackers=wandb"), tmp_path)  # trainer.resume=auto
    first, second = (read_offline_run(d) for d in find_offline_runs(tmp_path))
    assert first.run_id == second.run_id
    assert [row["global_step"] for row in second.history if "train/loss" in row][0] == 10
