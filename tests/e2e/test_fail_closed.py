"""A run never silently starts over: an earlier run in its dir is continued, or replaced only when asked;
a resume's changed settings take effect (optimizer hyperparameters, the token count across a batch change);
a full disk fails the run cleanly, its last checkpoint kept."""

import errno
import json
import logging
import os
import subprocess

import pytest

from bicameral.checkpoint.format import CheckpointError, load_checkpoint
from bicameral.config import ConfigError
from bicameral.engine.run import train
from bicameral.errors import BicameralError
from bicameral.files import torn_writes
from bicameral.tracking.jsonl import JsonlTracker, RecordError
from tests.conftest import micro_config, read_jsonl


def cfg_for(*overrides):
    return micro_config("trainer.steps_per_epoch=4", "trainer.ckpt_every=2", *overrides)


def records(run_dir, name="metrics.jsonl") -> list[dict]:
    return read_jsonl(run_dir / name)


@pytest.mark.parametrize("override", ["trainer.resume=null", "seed=1"])
def test_starting_over_a_finished_run_must_be_asked_for(tmp_path, corpus_cache, override):
    train(cfg_for(), tmp_path)
    kept = {name: (tmp_path / name).read_bytes() for name in ("metrics.jsonl", "events.jsonl", "checkpoint.pt")}
    with pytest.raises(BicameralError, match=r"trainer\.overwrite=true") as err:
        train(cfg_for(override), tmp_path)
    assert "\n" not in str(err.value)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept  # nothing cut, nothing saved


def test_a_finished_run_run_again_trains_nothing_and_records_nothing(tmp_path, corpus_cache, caplog):
    """A sweep run again keeps its finished jobs: no second finish record, no wall time of zero."""
    first = train(cfg_for(), tmp_path)
    kept = {name: (tmp_path / name).read_bytes() for name in ("metrics.jsonl", "events.jsonl", "checkpoint.pt")}
    caplog.set_level(logging.INFO, logger="bicameral")
    again = train(cfg_for(), tmp_path)
    assert f"Nothing to train: {tmp_path / 'checkpoint.pt'} is at step 4, where this run ends" in caplog.text
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept
    assert again["final_val_loss"] == first["final_val_loss"] and again["step"] == 4


def test_overwrite_replaces_the_earlier_run_and_names_what_it_removes(tmp_path, corpus_cache, caplog):
    train(cfg_for(), tmp_path)
    caplog.set_level(logging.INFO, logger="bicameral")
    summary = train(cfg_for("seed=1", "trainer.overwrite=true", "trainer.steps_per_epoch=2"), tmp_path)
    assert (f"trainer.overwrite=true: removed the earlier run in {tmp_path} (checkpoint.pt, checkpoint.prev.pt, "
            "metrics.jsonl, events.jsonl); starting over") in caplog.text
    assert summary["step"] == 2 and "Resumed from" not in caplog.text
    assert [r["step"] for r in records(tmp_path)] == [2]  # the new run's one val row only
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["seed"] == 1


def test_a_finished_run_without_checkpoints_is_not_retrained_over(tmp_path, corpus_cache):
    train(cfg_for("trainer.ckpt=null"), tmp_path)
    with pytest.raises(ConfigError, match=r"holds an earlier run \(\d+ record rows, finished\)"):
        train(cfg_for("trainer.ckpt=null"), tmp_path)


def test_records_without_a_checkpoint_start_over_with_a_warning(tmp_path, corpus_cache, caplog):
    """A run killed before its first save left rows and nothing to continue: a requeue starts over, and says so."""
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1, "loss": 5.0}) + "\n")
    caplog.set_level(logging.INFO, logger="bicameral")
    assert train(cfg_for(), tmp_path)["step"] == 4
    assert "holds records (1 record rows) but no checkpoint" in caplog.text
    assert [r["step"] for r in records(tmp_path)] == [4]  # the old row cut; one val row at the end


def test_another_runs_checkpoint_is_not_resumed_over_this_run(tmp_path, corpus_cache):
    train(cfg_for(), tmp_path / "a")
    train(cfg_for(), tmp_path / "b")
    with pytest.raises(ConfigError, match=r"Run dir .*/b holds an earlier run .* resuming .*/a/checkpoint\.pt"):
        train(cfg_for(f"trainer.resume={tmp_path / 'a' / 'checkpoint.pt'}"), tmp_path / "b")


def test_optimizer_hyperparameters_changed_on_resume_are_applied(tmp_path, corpus_cache, caplog):
    train(cfg_for("optimizer.weight_decay=0.1"), tmp_path, stop_at=2)
    caplog.set_level(logging.INFO, logger="bicameral")
    train(cfg_for("optimizer.weight_decay=0.5", "optimizer.betas=[0.8,0.9]"), tmp_path)
    groups = load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]  # the no-decay group stays undecayed
    assert all(tuple(g["betas"]) == (0.8, 0.9) for g in groups)
    assert ("Optimizer settings applied to the restored param groups: betas (0.9, 0.99) -> (0.8, 0.9); "
            "weight_decay 0.1 -> 0.5") in caplog.text


def test_a_new_peak_lr_on_resume_rescales_the_schedule_in_place(tmp_path, corpus_cache):
    train(cfg_for("optimizer.lr=1e-3", "trainer.log_every=1"), tmp_path / "resumed", stop_at=2)
    train(cfg_for("optimizer.lr=2e-3", "trainer.log_every=1"), tmp_path / "resumed")
    train(cfg_for("optimizer.lr=2e-3", "trainer.log_every=1"), tmp_path / "straight")
    resumed, straight = ([r["lr"] for r in records(tmp_path / run) if r["kind"] == "train"]
                         for run in ("resumed", "straight"))
    assert resumed[:2] == pytest.approx([s / 2 for s in straight[:2]])  # trained at the old peak
    assert resumed[2:] == pytest.approx(straight[2:])  # then the new peak's schedule, from its place in it


def test_tokens_stay_cumulative_across_a_batch_size_change(tmp_path, corpus_cache):
    """2 steps x 4 x 64, then 2 steps x 8 x 64: 512 + 1024 tokens, not 4 steps x 8 x 64."""
    train(cfg_for("trainer.log_every=2", "trainer.batch_size=4"), tmp_path, stop_at=2)
    summary = train(cfg_for("trainer.log_every=2", "trainer.batch_size=8"), tmp_path)
    assert [r["tokens"] for r in records(tmp_path) if r["kind"] == "train"] == [512, 1536]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["loop"]["token_rates"] == [[0, 256], [2, 512]]
    assert summary["step"] == 4


# -- a full disk ----------------------------------------------------------------------------------


class FillsUp:
    """A record file whose writes fail with ENOSPC once `rows` rows are in."""

    def __init__(self, f, rows: int):
        self.f, self.rows, self.name = f, rows, f.name

    def write(self, text: str) -> int:
        if self.rows <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.rows -= 1
        return self.f.write(text)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def test_a_record_write_that_fails_mid_run_ends_the_run_cleanly(tmp_path, corpus_cache, monkeypatch, caplog):
    """The run stops with one line and a failed record, and keeps its last checkpoint: no save over the lost row."""
    real_open = JsonlTracker._open
    monkeypatch.setattr(JsonlTracker, "_open", lambda self, name: FillsUp(real_open(self, name), rows=2)
                        if name == "metrics.jsonl" else real_open(self, name))
    cfg = cfg_for("trainer.steps_per_epoch=12", "trainer.ckpt_every=4", "trainer.log_every=4", "trainer.val_every=100")
    with pytest.raises(RecordError, match=f"Could not write {tmp_path / 'metrics.jsonl'} \\(No space left on device\\)"
                       ": the run stops rather than train on without its record. Fix: free space in "):
        train(cfg, tmp_path)
    assert "Traceback" not in caplog.text
    assert records(tmp_path, "events.jsonl")[-1]["kind"] == "failed"
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 8  # the rows at 4 and 8 are in; 12 is not
    monkeypatch.undo()
    assert train(cfg, tmp_path)["step"] == 12  # and the rerun resumes
    assert [r["step"] for r in records(tmp_path) if r["kind"] == "train"] == [4, 8, 12]


@pytest.fixture
def small_filesystem(tmp_path):
    """A 1.2 MB tmpfs: room for two checkpoints of the smoke model, not three."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount_point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("no tmpfs can be mounted here; the injected ENOSPC tests in test_robustness.py cover this path")
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=False)  # even after a failed test


def test_a_really_full_filesystem_fails_the_run_naming_the_last_good_checkpoint(small_filesystem, corpus_cache):
    run_dir = small_filesystem / "run"
    with pytest.raises(CheckpointError, match=r"Checkpoint save at step 8 failed \(No space left on device\), the "
                       r"run's last save; the last good checkpoint is .*checkpoint\.pt at step 4"):
        train(cfg_for("trainer.steps_per_epoch=8"), run_dir)
    assert records(run_dir, "events.jsonl")[-1]["kind"] == "failed"
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 4
    assert not torn_writes(run_dir / "checkpoint.pt")
