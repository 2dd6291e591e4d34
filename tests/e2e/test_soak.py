"""Soak: SIGKILL a training run at random moments, some of them mid-save, and resume it each time
(trainer.resume=auto). The end must equal an uninterrupted run's bit for bit on CPU: the weights and
optimizer state, the curriculum's history, every metric row and unlock event, each step exactly once.

Each attempt is a fresh process forked from a server that has already imported torch, so a
restart costs a fork, not an interpreter start: 10 kills fit in well under a minute on 2 cores.
"""

import logging
import multiprocessing
import random
import signal
import time
from multiprocessing import forkserver
from pathlib import Path

import pytest
import torch

from bicameral.checkpoint.format import load_checkpoint
from bicameral.checkpoint.manager import newest_valid_checkpoint
from bicameral.files import torn_writes
from tests.conftest import MICRO, compose_config, read_jsonl

SLOW_SAVE_S = 0.03  # every save sleeps this long before its rename: a slow disk, a wide window to kill in
OVERRIDES = [*MICRO, "trackers=local", "trainer.ckpt_every=3", "trainer.log_every=2", "trainer.val_every=5",
             "trainer.accum_steps=2", "model.dropout=0.1", "curriculum.unlock_threshold=5.2",
             "curriculum.min_steps_per_level=3"]


def attempt(run_dir: str, cache_dir: str, overrides: list[str], step) -> None:
    """One process's try at the run: what `python train.py` does, on a disk with slow saves. It
    publishes each finished step in `step` (shared memory), so the parent can aim its kills."""
    import os

    import bicameral.checkpoint.format as checkpoint
    from bicameral.engine.run import train
    from bicameral.engine.trainer import Trainer

    os.environ["XDG_CACHE_HOME"] = cache_dir
    logging.getLogger("bicameral").setLevel(logging.ERROR)
    # one thread: on a busy 2-core machine two spinning threads make these tiny steps 20x slower
    torch.set_num_threads(1)
    real_save, real_step = checkpoint.torch.save, Trainer._step

    def slow_save(*args, **kwargs):
        real_save(*args, **kwargs)
        time.sleep(SLOW_SAVE_S)

    def published_step(self):
        real_step(self)
        step.value = self.step

    checkpoint.torch.save, Trainer._step = slow_save, published_step
    train(compose_config(*overrides), run_dir)


class Attempt:
    """A fresh process on the run dir, forked from a server that has torch imported already."""

    ctx = None

    @classmethod
    def start_server(cls) -> None:
        if cls.ctx is None:
            cls.ctx = multiprocessing.get_context("forkserver")
            cls.ctx.set_forkserver_preload(["torch", "hydra", "bicameral.engine.run", "tests.e2e.test_soak"])
            forkserver.ensure_running()

    def __init__(self, run_dir: Path, cache_dir: Path, overrides: list[str]):
        Attempt.start_server()
        self.step = Attempt.ctx.RawValue("i", 0)
        self.proc = Attempt.ctx.Process(target=attempt, args=(str(run_dir), str(cache_dir), overrides, self.step))
        self.proc.start()

    def wait_for(self, condition) -> None:
        while not condition() and self.proc.is_alive():
            time.sleep(0.001)


def torn_saves(run_dir: Path) -> set[str]:
    return {p.name for p in torn_writes(run_dir / "checkpoint.pt")}


def checkpoint_step(run_dir: Path) -> int:
    found = newest_valid_checkpoint(run_dir, "checkpoint.pt")
    return found[1]["step"] if found else 0


def soak(tmp_path: Path, cache_dir: Path, kills: int, epochs: int, seed: int) -> str:
    overrides = [*OVERRIDES, f"trainer.epochs={epochs}"]
    total = epochs * 20
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    Attempt.start_server()  # before the clock starts: only an attempt's own start-up is timed
    began = time.perf_counter()
    reference = Attempt(straight, cache_dir, overrides)
    reference.wait_for(lambda: reference.step.value > 0)
    startup_s = time.perf_counter() - began  # to aim kills at a process that is still starting
    reference.proc.join()
    assert reference.proc.exitcode == 0

    rng = random.Random(seed)
    resumed_from, kill_log, mid_save = [], [], 0
    for done in range(kills):
        resumed_from.append(checkpoint_step(killed))
        left_before = torn_saves(killed)  # by earlier kills; the next attempt deletes them as it starts
        # a random step in this attempt's share of the steps left, so the kills spread over the run
        share = (total - resumed_from[-1]) / (kills - done + 1)
        target = min(resumed_from[-1] + rng.randint(1, max(1, round(2 * share))), total - 2)
        moment = "during a save" if done % 2 else ("while starting" if done % 4 == 0 else "mid-step")
        run = Attempt(killed, cache_dir, overrides)
        if moment == "while starting":  # a random moment before its first step
            deadline = time.perf_counter() + rng.uniform(0, startup_s)
            run.wait_for(lambda run=run, deadline=deadline: time.perf_counter() > deadline or run.step.value)
        else:
            run.wait_for(lambda run=run, target=target: run.step.value >= target)
        if moment == "during a save":  # the next save to begin, at a random point inside it
            run.wait_for(lambda before=left_before: torn_saves(killed) - before)
            time.sleep(rng.uniform(0, SLOW_SAVE_S / 2))
        elif moment == "mid-step":
            time.sleep(rng.uniform(0, 0.05))
        assert run.proc.is_alive(), f"attempt {done + 1} ended (exit code {run.proc.exitcode}) before its kill"
        run.proc.kill()  # SIGKILL
        run.proc.join()
        assert run.proc.exitcode == -signal.SIGKILL
        in_save = bool(torn_saves(killed) - left_before)  # its temp file is left: the kill came mid-save
        mid_save += in_save
        kill_log.append(f"after step {run.step.value}{' in its save' if in_save else ''}" if run.step.value
                        else "before its first step")
    resumed_from.append(checkpoint_step(killed))
    last = Attempt(killed, cache_dir, overrides)  # the last resume runs to the end
    last.proc.join()
    assert last.proc.exitcode == 0 and not torn_saves(killed)

    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    assert a["step"] == b["step"] == total
    weights = [k for k in a["model"] if torch.equal(a["model"][k], b["model"][k])]
    assert len(weights) == len(a["model"]) == len(b["model"])
    moments = [(k, n) for k, s in a["optimizer"]["state"].items() for n in s
               if torch.equal(s[n], b["optimizer"]["state"][k][n])]
    assert len(moments) == sum(len(s) for s in a["optimizer"]["state"].values())
    assert a["curriculum"] == b["curriculum"] and a["schedule"] == b["schedule"]

    def timeless(rows):  # tokens_per_s is wall-clock speed, the one field a rerun never repeats
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]

    metrics_a, metrics_b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(killed / "metrics.jsonl")
    assert timeless(metrics_b) == timeless(metrics_a)
    for kind, every in (("train", 2), ("val", 5)):
        assert [r["step"] for r in metrics_b if r["kind"] == kind] == list(range(every, total + 1, every))
    unlocks_a = [e for e in read_jsonl(straight / "events.jsonl") if e["kind"] == "unlock"]
    unlocks_b = [e for e in read_jsonl(killed / "events.jsonl") if e["kind"] == "unlock"]
    assert unlocks_b == unlocks_a and len(unlocks_a) >= 2
    assert [e["step"] for e in unlocks_a] == [e["step"] for e in b["curriculum"]["history"]]
    assert mid_save >= 1 and len(set(resumed_from)) >= 3  # kills landed in saves and all over the run

    print("kills: " + "; ".join(kill_log))
    return (f"soak: {kills} SIGKILLs ({mid_save} mid-save), {kills} resumes (from steps {resumed_from[1:]}); "
            f"equal to the uninterrupted run bit for bit: {len(weights)}/{len(a['model'])} weight tensors, "
            f"{len(moments)} optimizer moments, curriculum ({len(unlocks_a)} unlocks), "
            f"{len(metrics_b)}/{len(metrics_a)} metric rows; each of {total} steps recorded once")


@pytest.mark.slow  # a minute or more on 2 cores; `pytest -m slow`
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path, corpus_cache):
    print("\n" + soak(tmp_path, corpus_cache, kills=10, epochs=2, seed=0))


@pytest.mark.slow
def test_sigkill_soak_long(tmp_path, corpus_cache):
    print("\n" + soak(tmp_path, corpus_cache, kills=40, epochs=6, seed=1))
