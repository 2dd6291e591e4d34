"""One training run: config -> data, model, optimizer, schedule, curriculum, trackers -> Trainer.fit."""

import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bicameral.build import (
    build_curriculum,
    build_data,
    build_model,
    build_optimizer,
    build_schedule,
    qualified_name,
)
from bicameral.checkpoint import CheckpointError, load_checkpoint, remove_torn_saves
from bicameral.config import ConfigError, check_config
from bicameral.distributed import Dist, init_distributed
from bicameral.errors import BicameralError
from bicameral.fingerprint import check_resume, run_fingerprint
from bicameral.lock import holds_run_dir_lock
from bicameral.preemption import Preempted
from bicameral.records import cut_after
from bicameral.report.names import run_name, run_tags
from bicameral.resume import find_resume
from bicameral.stateful import Checkpointer
from bicameral.tracking import ConsoleTracker, JsonlTracker, Trackers, WandbTracker
from bicameral.trainer import Trainer, pick_device

log = logging.getLogger("bicameral")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_trackers(cfg: DictConfig, run_dir: Path, config: dict, curriculum: str, checkpoint: Path | None) -> Trackers:
    """Console and JSONL always; W&B unless logger=none. Nothing is opened until `start()`."""
    t = cfg.trainer
    trackers = [ConsoleTracker(t.steps_per_epoch, t.epochs * t.steps_per_epoch), JsonlTracker(run_dir)]
    if cfg.logger.backend != "wandb":
        return Trackers(trackers)
    wandb_tracker = WandbTracker(run_dir, cfg.logger, config, name=run_name(cfg, curriculum),
                                 tags=run_tags(cfg, curriculum), checkpoint=checkpoint)
    return Trackers([*trackers, wandb_tracker], optional=(wandb_tracker,))


def ensure_writable(run_dir: Path) -> None:
    """Fail before any work when the run dir cannot take files."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write_test_{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
        finally:  # a full disk creates the file, then fails to fill it
            probe.unlink(missing_ok=True)
    except OSError as err:
        raise ConfigError(
            f"Output dir {run_dir} is not writable ({err.strerror or err}). Fix: hydra.run.dir=<a writable folder>."
        ) from None


def agree_on_resume(cfg: DictConfig, run_dir: Path, dist: Dist) -> tuple[Path | None, dict | None]:
    """The checkpoint to continue from, as rank 0 finds it (it alone may move or remove files in the run dir);
    the other ranks load the file it chose, or stop with its error."""
    if not dist.enabled:
        return find_resume(cfg, run_dir)
    found, error = (None, None), None
    if dist.is_main:
        try:
            found = find_resume(cfg, run_dir)
        except BicameralError as err:
            error = err
    path, message = dist.broadcast((found[0] and str(found[0]), error and str(error)))
    if error is not None:
        raise error
    if message is not None:
        raise BicameralError(message)
    return found if dist.is_main or path is None else (Path(path), load_checkpoint(path))


@holds_run_dir_lock  # one writer per run dir, from before anything touches it until the run ends
def train(cfg: DictConfig, run_dir: str | Path, stop_at: int | None = None) -> dict:
    """Run the configured training in `run_dir`; returns the run summary."""
    run_dir = Path(run_dir)
    check_config(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    use_cuda = cfg.trainer.device != "cpu" and torch.cuda.is_available()
    dist = init_distributed(use_cuda, cfg.trainer.dist_timeout_s)
    device = pick_device(cfg.trainer.device, dist.local_rank)
    run_dir = Path(dist.broadcast(str(run_dir)))  # each rank's Hydra made its own dir; rank 0's is the run's
    ensure_writable(run_dir)
    # everything that can fail on bad input happens before the first step
    resume_path, resume_state = agree_on_resume(cfg, run_dir, dist)
    seed_everything(cfg.seed)
    data = build_data(cfg.data, cfg.model.seq_len)
    fingerprint = run_fingerprint(config, data)
    if resume_state is not None:  # another corpus, model or curriculum fails here, naming the keys
        check_resume(resume_path, resume_state, fingerprint, config)
    model = build_model(cfg.model).to(device)
    curriculum = build_curriculum(cfg.curriculum, cfg.model.seq_len)
    if len(curriculum.levels) > 1 and not model.has_frequency_path:
        raise ConfigError(
            f"curriculum={curriculum.name} unlocks frequency bands, but model.arch={cfg.model.arch} has no "
            "frequency path. Fix: add curriculum=none for this model."
        )
    optimizer = build_optimizer(cfg.optimizer, model, device)
    total_steps = cfg.trainer.epochs * cfg.trainer.steps_per_epoch
    schedule = build_schedule(cfg.schedule, optimizer, total_steps)
    checkpoint = run_dir / cfg.trainer.ckpt if cfg.trainer.ckpt else None
    # only rank 0 reports
    trackers = build_trackers(cfg, run_dir, config, curriculum.name, checkpoint) if dist.is_main else Trackers([])
    # the fingerprint rides in every checkpoint, so the next resume can check it is the same run
    checkpointer = Checkpointer(checkpoint, metadata={"config": config, "fingerprint": fingerprint})
    trainer = Trainer(cfg.trainer, model, optimizer, schedule, curriculum, data, trackers, checkpointer, cfg.seed,
                      device, dist=dist)
    if resume_state is not None:
        try:
            trainer.resume(resume_state)
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(
                f"Checkpoint {resume_path} does not fit this config ({str(err).splitlines()[0]}). "
                "Fix: resume with the settings it was trained with, or start this config in another hydra.run.dir."
            ) from None
    if not dist.is_main:
        return trainer.fit(stop_at=stop_at)
    # the steps after the checkpoint are trained again: their records, and torn saves, go first
    cut_after(run_dir, trainer.step)
    remove_torn_saves(run_dir, cfg.trainer.ckpt)
    trackers.start()  # last, so bad input never leaves an empty W&B run behind; W&B that fails is dropped

    processes = f" x {dist.world_size} processes" if dist.enabled else ""
    log.info(f"bicameral: {model.num_params() / 1e6:.2f}M params on {device}{processes}, "
             f"{len(data.train):,} train / {len(data.val):,} val tokens, run dir {run_dir}")
    log.info(f"  optimizer={qualified_name(optimizer)} schedule={qualified_name(schedule)} "
             f"curriculum={qualified_name(curriculum)} levels={curriculum.levels}")
    if resume_state is not None:
        log.info(f"Resumed from {resume_path} at step {trainer.step}, cutoff={curriculum.cutoff}")
    start = time.perf_counter()
    try:
        summary = trainer.fit(stop_at=stop_at)
    except Preempted as stop:  # checkpointed: a rerun in the same run dir resumes (trainer.resume=auto)
        saved = "checkpoint saved, run again to resume" if checkpoint is not None else \
            "no checkpoint (trainer.ckpt=null), so a rerun starts over"
        log.warning(f"{stop}: {saved}")
        trackers.on_fail(trainer.step, str(stop), kind="preempted", unlocks=trainer.unlock_history())
        raise
    except BaseException as err:  # recorded as failed everywhere, then raised as it was
        trackers.on_fail(trainer.step, f"{type(err).__name__}: {err}", unlocks=trainer.unlock_history())
        raise
    summary["wall_time_s"] = time.perf_counter() - start
    trackers.on_finish(summary)
    log.info(f"Done: step {summary['step']}, final val_loss={summary['final_val_loss']:.3f}, "
             f"best {summary['best_val_loss']:.3f}, cutoff={summary['final_cutoff']}, "
             f"unlocks at steps {summary['unlock_steps']}, {summary['wall_time_s']:.0f}s")
    return summary
