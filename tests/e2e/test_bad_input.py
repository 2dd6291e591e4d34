"""Every bad input is answered before training starts, with one line naming the problem and the fix.

The README's "Bad input" table lists each case here with the line it prints.
"""

import errno
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from bicameral.checkpoint.format import load_checkpoint, save_checkpoint
from bicameral.engine.lock import RunDirLock
from bicameral.engine.run import train
from bicameral.engine.trainer import NonFiniteError
from bicameral.errors import BicameralError
from tests.conftest import MICRO, ROOT, micro_config

compose_cfg = micro_config


# Every bad config input, in one table each: what fails as Hydra composes (a typo in a key or an option,
# a wrong type), and what fails as the run is built, before its first step (values that cannot work, bad
# components). README "Bad input" shows the lines.
COMPOSE_ERRORS = [
    ("model=huge", "model"),  # an unknown group option
    ("trainer.log_evry=5", "log_evry"),  # a typo in a key
    ("curriculum.unlock_treshold=3", "unlock_treshold"),
    ("model.widht=3", "widht"),
    ("trainer.batch_size=four", "batch_size"),  # a wrong type
]


@pytest.mark.parametrize("override, key", COMPOSE_ERRORS, ids=[o for o, _ in COMPOSE_ERRORS])
def test_config_typos_fail_at_composition_naming_the_key(override, key):
    with pytest.raises((ConfigCompositionException, MissingConfigException, ValidationError)) as err:
        compose_cfg(override)
    assert key in str(err.value) + str(err.value.__cause__)


def corpus(tmp_path, content: bytes | None) -> str:
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    return f"data.path={path}"


BAD_VALUES = [
    # values of the right type that cannot work
    (["optimizer.lr=0"], "optimizer.lr=0 must be > 0"),
    (["curriculum.unlock_threshold=high"], "curriculum.unlock_threshold='high' must be a number"),
    (["optimizer.lr=-1e-3"], "optimizer.lr=-0.001 must be > 0"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 must be >= 1"),
    (["trainer.steps_per_epoch=0"], "trainer.steps_per_epoch=0 must be >= 1"),
    (["trainer.epochs=-1"], "trainer.epochs=-1 must be >= 1"),
    (["trainer.accum_steps=0"], "trainer.accum_steps=0 must be >= 1"),
    (["curriculum.levels=[16,8,33]"], "must be strictly increasing"),
    (["curriculum.levels=[8,16,40]"], "40 exceeds the 33 rfft bins of seq_len=64"),
    (["curriculum.unlock_threshold=0"], "curriculum.unlock_threshold=0 must be > 0"),
    (["curriculum=fixed_threshold", "curriculum.thresholds=[2.0,-1.0,0.5]"], "thresholds must be > 0"),
    (["model.time_window=0"], "model.time_window=0 must be in 1..seq_len=64"),
    (["model.time_window=65"], "model.time_window=65 must be in 1..seq_len=64"),
    (["model.kernel_len=0"], "model.kernel_len=0 must be in 1..seq_len=64"),
    (["model.kernel_len=100"], "model.kernel_len=100 must be in 1..seq_len=64"),
    (["model.arch=transformer"], "has no frequency path. Fix: add curriculum=none"),
    (["model.seq_len=4000000"], "too short for seq_len=4000000"),  # seq_len larger than the corpus
    (["trainer.stop_at=-1"], "trainer.stop_at=-1 must be >= 1, or null to train to the end"),
    (["model.n_heads=3"], "model.d_model=32 must be divisible by model.n_heads=3"),
    (["trainer.log_every=2", "curriculum.judge_every=5"],
     "curriculum.judge_every=5 must be a multiple of trainer.log_every=2. Fix: e.g. curriculum.judge_every=2."),
    # components: a _target_ that does not import, is of the wrong kind, or does not take the node's keys
    (["optimizer._target_=torch.optim.Adamm"], "optimizer._target_=torch.optim.Adamm does not import"),
    (["optimizer._target_=no_such_module.Opt"], "Fix: check the spelling, or put its module on PYTHONPATH."),
    (["optimizer._target_=torch.optim.RMSprop"],
     "torch.optim.RMSprop does not take optimizer.betas, optimizer.amsgrad, optimizer.fused. Fix: drop them "
     "with ~optimizer.betas ~optimizer.amsgrad ~optimizer.fused"),
    (["optimizer._target_=torch.nn.Linear"], "is not a torch.optim.optimizer.Optimizer"),
    (["curriculum._target_=collections.OrderedDict"],
     "is not a bicameral.curriculum.Curriculum. Fix: subclass bicameral.curriculum.Curriculum"),
    (["schedule._target_=torch.optim.AdamW"], "is not a torch.optim.lr_scheduler.LRScheduler"),
    (["+curriculum.patience=3"], "bicameral.curriculum.Achievement does not take curriculum.patience"),
    (["optimizer.betas=[1.5,0.9]"], "optimizer: torch.optim.AdamW rejected its settings (Invalid beta"),
    (["curriculum.levels=5"], "curriculum.levels=5 must be a list of cutoffs in bins"),
    (["model.lean=[conv_input,gate]"], "model.lean=['conv_input', 'gate'] names ['gate']: use any of conv_input, "
     "head_gate, shared_out"),
    (["trainer.compile_mode=fast"], "trainer.compile_mode='fast': use null, default, reduce-overhead"),
    (["trackers.wandb.mode=live", "trackers=wandb"], "trackers.wandb.mode='live': use offline, online, disabled."),
]


@pytest.mark.parametrize("overrides, message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_values_fail_before_any_step(tmp_path, corpus_cache, overrides, message):
    with pytest.raises(BicameralError) as err:
        train(compose_cfg(*overrides), tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "looks binary"),
        (b"To be, or not to be", "too short for seq_len=64"),
    ],
)
def test_bad_corpora_fail_naming_the_path(tmp_path, content, message):
    path_override = corpus(tmp_path, content)
    with pytest.raises(BicameralError, match=message) as err:
        train(compose_cfg("data=text_file", path_override), tmp_path / "run")
    assert str(tmp_path / "corpus.txt") in str(err.value)


def test_a_checkpoint_of_another_shape_fails_naming_it(tmp_path, corpus_cache):
    train(compose_cfg("trainer.steps_per_epoch=2"), tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoint.pt"
    with pytest.raises(BicameralError, match=f"Checkpoint {ckpt} does not fit this config "
                       r"\(model\.d_model 32 -> 64\)\. .*another hydra\.run\.dir"):
        train(compose_cfg("model.d_model=64", f"trainer.resume={ckpt}"), tmp_path / "b")
    assert not (tmp_path / "b" / "metrics.jsonl").exists()


def test_a_foreign_checkpoint_fails_naming_it(tmp_path, corpus_cache):
    foreign = tmp_path / "foreign.pt"
    save_checkpoint({"state_dict": torch.zeros(1)}, foreign)
    with pytest.raises(BicameralError, match="foreign.pt is not a bicameral checkpoint"):
        train(compose_cfg(f"trainer.resume={foreign}"), tmp_path / "run")


def test_an_unwritable_output_dir_fails_at_start(tmp_path, corpus_cache):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(BicameralError, match=f"Output dir {blocker / 'run'} is not writable"):
        train(compose_cfg(), blocker / "run")


# -- trust: checkpoints, run dirs, resumes ---------------------------------------------------------


class RunsCode:
    """Unpickling this creates the marker file: the proof that loading ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def unsafe_checkpoint(tmp_path):
    path, marker = tmp_path / "shared.pt", tmp_path / "code_ran"
    torch.save({"model": RunsCode(marker), "step": 1}, path)
    return path, marker


def test_an_unsafe_checkpoint_is_refused_and_nothing_in_it_runs(tmp_path, corpus_cache):
    path, marker = unsafe_checkpoint(tmp_path)
    with pytest.raises(BicameralError, match=f"Checkpoint {path} is refused: it needs posix.system to load") as err:
        train(compose_cfg(f"trainer.resume={path}"), tmp_path / "run")
    assert "nothing in it was run" in str(err.value) and "\n" not in str(err.value)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):  # a bare pickle, not torch's zip format, is refused too
        path.write_bytes(pickle.dumps({"model": RunsCode(marker)}, protocol=protocol))
        with pytest.raises(BicameralError, match=f"Checkpoint {path} (is refused|cannot be read)"):
            load_checkpoint(path)
    assert not marker.exists() and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_locked_run_dir_fails_at_start_naming_the_holder(tmp_path, corpus_cache):
    import socket

    with RunDirLock(tmp_path):  # another run holds it
        with pytest.raises(BicameralError, match=f"Run dir {tmp_path} is in use by another run "
                           f"\\(pid {os.getpid()} on host {socket.gethostname()}, since .*\\)\\. Fix: wait"):
            train(compose_cfg(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.lock"]  # touched nothing else


def text_corpus(path, seed: int) -> str:
    generator = torch.Generator().manual_seed(seed)
    path.write_text("".join(chr(c) for c in torch.randint(97, 123, (400,), generator=generator).tolist()))
    return f"data.path={path}"


def test_a_resume_on_another_corpus_fails_naming_it(tmp_path, corpus_cache):
    first = text_corpus(tmp_path / "a.txt", seed=0)
    train(compose_cfg("data=text_file", first, "trainer.steps_per_epoch=2"), tmp_path / "run")
    other = text_corpus(tmp_path / "b.txt", seed=1)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(BicameralError, match=f"Checkpoint {ckpt} does not fit this config \\(corpus [0-9a-f]{{12}} "
                       "-> [0-9a-f]{12}\\)"):
        train(compose_cfg("data=text_file", other, "trainer.steps_per_epoch=4"), tmp_path / "run")
    # the same text under another path is the same corpus: the resume goes on
    (tmp_path / "a.txt").rename(tmp_path / "moved.txt")
    summary = train(compose_cfg("data=text_file", f"data.path={tmp_path / 'moved.txt'}",
                                "trainer.steps_per_epoch=4"), tmp_path / "run")
    assert summary["step"] == 4


def test_safe_changes_on_resume_are_applied_and_logged(tmp_path, corpus_cache, caplog):
    judged = "curriculum.judge_every=5"  # set, so the log cadence may change without moving the judgements
    train(compose_cfg("trainer.steps_per_epoch=2", judged), tmp_path)
    caplog.set_level(logging.INFO, logger="bicameral")
    train(compose_cfg("trainer.steps_per_epoch=2", judged, "trainer.epochs=2", "trainer.log_every=1"), tmp_path)
    assert ("Resuming with changed settings (applied): trainer.epochs 1 -> 2; trainer.log_every 5 -> 1"
            in caplog.text)


def test_a_resume_that_would_move_the_judgements_is_refused(tmp_path, corpus_cache):
    """By default the curriculum is judged at each log window: another log cadence would judge at other steps."""
    train(compose_cfg("trainer.steps_per_epoch=2"), tmp_path)
    with pytest.raises(BicameralError, match=r"does not fit this config \(curriculum.judge_every 5 -> 1; "
                                             r"curriculum.score_window 5 -> 1\)"):
        train(compose_cfg("trainer.steps_per_epoch=2", "trainer.epochs=2", "trainer.log_every=1"), tmp_path)


def cache_file(cache_dir):
    return next(cache_dir.rglob("shakespeare-*.tok"))


def first_line_of_training(caplog) -> int:
    return next(i for i, r in enumerate(caplog.records) if r.getMessage().startswith("Epoch 0:"))


def test_a_corrupted_token_cache_is_caught_and_rebuilt(tmp_path, corpus_cache, caplog):
    cache_dir = tmp_path / "cache"
    train(compose_cfg(f"data.cache_dir={cache_dir}"), tmp_path / "a", stop_at=1)
    cache = cache_file(cache_dir)
    good = cache.read_bytes()
    cache.write_bytes(good[:1000] + bytes([good[1000] ^ 1]) + good[1001:])  # one flipped bit
    caplog.set_level(logging.INFO, logger="bicameral")
    train(compose_cfg(f"data.cache_dir={cache_dir}"), tmp_path / "b", stop_at=1)
    [warning] = [i for i, r in enumerate(caplog.records) if "is corrupted" in r.getMessage()]
    assert f"Token cache {cache} is corrupted" in caplog.records[warning].getMessage()
    assert warning < first_line_of_training(caplog) and cache.read_bytes() == good


def test_an_unwritable_cache_dir_costs_a_warning_not_the_run(tmp_path, corpus_cache, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    caplog.set_level(logging.INFO, logger="bicameral")
    summary = train(compose_cfg(f"data.cache_dir={blocker / 'cache'}"), tmp_path / "run", stop_at=1)
    [warning] = [i for i, r in enumerate(caplog.records) if "is not writable" in r.getMessage()]
    assert (f"Token cache dir {blocker / 'cache'} is not writable (Not a directory)"
            in caplog.records[warning].getMessage())
    assert warning < first_line_of_training(caplog) and summary["step"] == 1


def test_a_huge_lr_ends_in_the_non_finite_stop_keeping_the_checkpoint(tmp_path, corpus_cache):
    with pytest.raises(NonFiniteError, match="10 non-finite gradients in a row at step 12; the last good checkpoint "
                       f"is {tmp_path / 'checkpoint.pt'}. Fix: lower optimizer.lr"):
        train(compose_cfg("optimizer.lr=1e6", "trainer.ckpt_every=1"), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 11  # the one before the stop, intact


def test_a_huge_lr_without_any_checkpoint_says_so(tmp_path, corpus_cache):
    with pytest.raises(NonFiniteError, match="at step 12; no checkpoint was saved before it. Fix: lower optimizer.lr "
                       "or trainer.grad_clip.$"):
        train(compose_cfg("optimizer.lr=1e6"), tmp_path)


def test_levels_that_are_not_a_list_fail_in_one_line_naming_the_key(tmp_path, corpus_cache):
    with pytest.raises(BicameralError, match=r"curriculum.levels=5 must be a list of cutoffs in bins. Fix: ") as err:
        train(compose_cfg("curriculum.levels=5"), tmp_path)
    assert "\n" not in str(err.value) and not (tmp_path / "metrics.jsonl").exists()


def test_a_folder_without_text_files_fails_naming_it(tmp_path, corpus_cache):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "weights.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(BicameralError, match=f"Corpus folder {tmp_path / 'data'} holds no text files"):
        train(compose_cfg("data=text_file", f"data.path={tmp_path / 'data'}"), tmp_path / "run")


def test_cuda_on_a_machine_without_it_fails_at_start(tmp_path, corpus_cache, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BicameralError, match="trainer.device=cuda but CUDA is not available. "
                       "Fix: trainer.device=auto or cpu."):
        train(compose_cfg("trainer.device=cuda"), tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_resume_from_a_folder_names_the_file_to_pass(tmp_path, corpus_cache):
    with pytest.raises(BicameralError, match=f"Checkpoint {tmp_path} is a folder, not a file. Fix: pass the "
                       "checkpoint file in it"):
        train(compose_cfg(f"trainer.resume={tmp_path}"), tmp_path / "run")


def test_a_full_disk_at_start_fails_in_one_line_and_leaves_no_probe(tmp_path, corpus_cache, monkeypatch):
    real_write_bytes = Path.write_bytes

    def fills_up(self, data):
        real_write_bytes(self, b"")  # the file is made, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", fills_up)
    with pytest.raises(BicameralError, match=f"Output dir {tmp_path} is not writable \\(No space left on device\\)"):
        train(compose_cfg(), tmp_path)
    assert not list(tmp_path.glob(".write_test_*"))


def run_train(tmp_path, *overrides) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *MICRO, "trackers=local", *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_yaml_syntax_error_in_a_config_file_is_one_line(tmp_path):
    (tmp_path / "curriculum").mkdir()
    (tmp_path / "curriculum" / "mine.yaml").write_text("defaults:\n  - achievement\nlevels: [8, 16\nmargin: 0.1\n")
    proc = run_train(tmp_path, f"hydra.searchpath=[file://{tmp_path}]", "curriculum=mine",
                     f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: YAML syntax error in {tmp_path / 'curriculum' / 'mine.yaml'}: while parsing a flow "
                           "sequence (line 3, column 9), expected ',' or ']', but got ':' (line 4, column 7). Fix: "
                           "correct the YAML there.\n")


def test_an_output_dir_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_train(tmp_path, f"hydra.run.dir={blocker / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: Output path {blocker / 'run'} cannot be written (Not a directory). Fix: hydra.run.dir=<a writable "
        "folder> (hydra.sweep.dir for a multirun)."]


def test_hydra_errors_print_as_hydra_prints_them(tmp_path):
    proc = run_train(tmp_path, "trainer.log_evry=5", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Could not override 'trainer.log_evry'." in proc.stderr and "Key 'log_evry' not in 'TrainerConfig'" in \
        proc.stderr


def test_a_checkpoint_from_before_lean_blocks_resumes_and_a_lean_block_cannot_resume_it(tmp_path, corpus_cache):
    train(compose_cfg("trainer.steps_per_epoch=2"), tmp_path)
    ckpt = tmp_path / "checkpoint.pt"
    state = load_checkpoint(ckpt)
    del state["fingerprint"]["model.lean"], state["config"]["model"]["lean"]  # as written before the setting
    save_checkpoint(state, ckpt)
    with pytest.raises(BicameralError, match=r"does not fit this config \(model.lean \[\] -> \['head_gate'\]\)"):
        train(compose_cfg("trainer.steps_per_epoch=2", "trainer.epochs=2", "model.lean=[head_gate]"), tmp_path)
    summary = train(compose_cfg("trainer.steps_per_epoch=2", "trainer.epochs=2"), tmp_path)
    assert summary["step"] == 4
