"""One training run: `build_run(cfg)` builds and checks every part (data, model, optimizer, schedule,
curriculum, trackers, callbacks, the Trainer), resumed when a checkpoint is there; `fit(run)` trains it.
`train(cfg, run_dir)` does both under the run dir's lock."""

import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bicameral.callbacks import Callback, Callbacks
from bicameral.checkpoint.fingerprint import check_resume, run_fingerprint
from bicameral.checkpoint.format import CheckpointError, load_checkpoint
from bicameral.checkpoint.manager import CheckpointManager
from bicameral.checkpoint.resume import find_resume
from bicameral.config import check_config
from bicameral.curriculum import Curriculum
from bicameral.data.datasets import Dataset, describe
from bicameral.engine.build import (
    build_component,
    build_curriculum,
    build_data,
    build_model,
    build_optimizer,
    build_schedule,
    fit_vocabulary,
    qualified_name,
)
from bicameral.engine.device import pick_device
from bicameral.engine.distributed import Dist, init_distributed
from bicameral.engine.lock import ensure_writable, holds_run_dir_lock
from bicameral.engine.preemption import Preempted
from bicameral.engine.trainer import Trainer
from bicameral.errors import BicameralError, ConfigError
from bicameral.model.lm import LanguageModel
from bicameral.report.names import run_name, run_tags
from bicameral.tracking.records import cut_after
from bicameral.tracking.tracker import RunInfo, Tracker, Trackers

log = logging.getLogger("bicameral")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_trackers(cfg: DictConfig) -> Trackers:
    """Every `trackers.<name>` node, in config order; nothing is opened until `start()`."""
    return Trackers([build_component(node, f"trackers.{name}", Tracker) for name, node in cfg.trackers.items()])


def build_callbacks(cfg: DictConfig, extra: Iterable[Callback] = ()) -> Callbacks:
    """Every `callbacks.<name>` node, in config order, then the ones passed in code (named by class)."""
    built = {name: build_component(node, f"callbacks.{name}", Callback) for name, node in cfg.callbacks.items()}
    for callback in extra:
        name = type(callback).__name__
        if name in built:
            raise ConfigError(f"Two callbacks are named {name}. Fix: give the config's node another name.")
        built[name] = callback
    return Callbacks(built)


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


@dataclass
class Run:
    """Everything a run is made of, built and checked, before its first step."""

    cfg: DictConfig
    config: dict  # cfg resolved, as checkpoints and trackers record it
    run_dir: Path
    dist: Dist
    device: torch.device
    data: Dataset
    model: LanguageModel
    curriculum: Curriculum
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    trackers: Trackers
    callbacks: Callbacks
    trainer: Trainer
    checkpoint: Path | None  # where it saves; None: no checkpoints
    resumed_from: Path | None  # the checkpoint it continues, if any


def build_run(cfg: DictConfig, run_dir: str | Path, callbacks: Iterable[Callback] = ()) -> Run:
    """Check the config and build every part of the run, resumed from its checkpoint when there is one.
    Everything that can fail on bad input fails here, before any work. `callbacks` are added to the
    config's own. The caller holds the run dir's lock (`train` does)."""
    check_config(cfg)
    use_cuda = cfg.trainer.device != "cpu" and torch.cuda.is_available()
    dist = init_distributed(use_cuda, cfg.trainer.dist_timeout_s)
    device = pick_device(cfg.trainer.device, dist.local_rank)
    run_dir = Path(dist.broadcast(str(run_dir)))  # each rank's Hydra made its own dir; rank 0's is the run's
    ensure_writable(run_dir)
    resume_path, resume_state = agree_on_resume(cfg, run_dir, dist)
    seed_everything(cfg.seed)
    data = build_data(cfg.data, cfg.model.seq_len)
    fit_vocabulary(cfg.model, data)
    config = OmegaConf.to_container(cfg, resolve=True)
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
    trackers = build_trackers(cfg) if dist.is_main else Trackers([])  # only rank 0 reports
    run_callbacks = build_callbacks(cfg, callbacks)
    # the fingerprint rides in every checkpoint, so the next resume can check it is the same run
    # the tokenizer that decodes the run's ids: a copy in the run dir, named (and hashed) in every checkpoint
    tokenizer = data.tokenizer.meta() if data.tokenizer is not None else None
    if tokenizer is not None and dist.is_main:
        data.tokenizer.save(run_dir)
    checkpointer = CheckpointManager(checkpoint, cfg.trainer.ckpt_every,
                                     metadata={"config": config, "fingerprint": fingerprint, "tokenizer": tokenizer})
    trainer = Trainer(cfg.trainer, model, optimizer, schedule, curriculum, data, trackers, checkpointer, cfg.seed,
                      device, dist=dist, callbacks=run_callbacks)
    if resume_state is not None:
        try:
            trainer.resume(resume_state)
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(
                f"Checkpoint {resume_path} does not fit this config ({str(err).splitlines()[0]}). "
                "Fix: resume with the settings it was trained with, or start this config in another hydra.run.dir."
            ) from None
    return Run(cfg, config, run_dir, dist, device, data, model, curriculum, optimizer, schedule, trackers,
               run_callbacks, trainer, checkpoint, resume_path)


def fit(run: Run, stop_at: int | None = None) -> dict:
    """Train `run` to its end (or to `stop_at`, checkpointed), reporting to its trackers; the run summary."""
    cfg, trainer, trackers = run.cfg, run.trainer, run.trackers
    end = trainer.total_steps if stop_at is None else min(stop_at, trainer.total_steps)
    if run.resumed_from is not None and trainer.step >= end:  # its records already end with this run's finish
        log.info(f"Nothing to train: {run.resumed_from} is at step {trainer.step}, where this run ends; "
                 f"its record is in {run.run_dir}. Fix: raise trainer.epochs or trainer.steps_per_epoch to go on.")
        return trainer.summary()
    if not run.dist.is_main:
        return trainer.fit(stop_at=stop_at)
    # the steps after the checkpoint are trained again: their records, and torn saves, go first
    cut_after(run.run_dir, trainer.step)
    trainer.checkpointer.remove_torn_saves()
    curriculum = run.curriculum.name
    # last, so bad input never leaves an empty W&B run behind; a tracker that is not required and fails is dropped
    trackers.start(RunInfo(run_dir=run.run_dir, config=run.config, steps_per_epoch=cfg.trainer.steps_per_epoch,
                           total_steps=trainer.total_steps, name=run_name(cfg, curriculum),
                           tags=run_tags(cfg, curriculum), checkpoint=run.checkpoint))

    processes = f" x {run.dist.world_size} processes" if run.dist.enabled else ""
    log.info(f"bicameral: {run.model.num_params() / 1e6:.2f}M params on {run.device}{processes}, "
             f"run dir {run.run_dir}")
    log.info(f"  data {describe(run.data)}")
    log.info(f"  optimizer={qualified_name(run.optimizer)} schedule={qualified_name(run.schedule)} "
             f"curriculum={qualified_name(run.curriculum)} levels={run.curriculum.levels}")
    if run.resumed_from is not None:
        log.info(f"Resumed from {run.resumed_from} at step {trainer.step}, cutoff={run.curriculum.cutoff}")
    start = time.perf_counter()
    try:
        summary = trainer.fit(stop_at=stop_at)
    except Preempted as stop:  # checkpointed: a rerun in the same run dir resumes (trainer.resume=auto)
        saved = "checkpoint saved, run again to resume" if run.checkpoint is not None else \
            "no checkpoint (trainer.ckpt=null), so a rerun starts over"
        log.warning(f"{stop}: {saved}")
        trackers.on_fail(trainer.step, str(stop), kind="preempted", unlocks=trainer.unlock_history())
        raise
    except BaseException as err:  # recorded as failed everywhere, then raised as it was
        trackers.on_fail(trainer.step, f"{type(err).__name__}: {err}", unlocks=trainer.unlock_history())
        raise
    summary["wall_time_s"] = time.perf_counter() - start
    trackers.on_finish(summary)
    stopped = f", stopped early: {summary['stop_reason']}" if "stop_reason" in summary else ""
    log.info(f"Done: step {summary['step']}, final val_loss={summary['final_val_loss']:.3f}, "
             f"best {summary['best_val_loss']:.3f}, cutoff={summary['final_cutoff']}, "
             f"unlocks at steps {summary['unlock_steps']}, {summary['wall_time_s']:.0f}s{stopped}")
    return summary


@holds_run_dir_lock  # one writer per run dir, from before anything touches it until the run ends
def train(cfg: DictConfig, run_dir: str | Path, stop_at: int | None = None,
          callbacks: Iterable[Callback] = ()) -> dict:
    """Build the configured run in `run_dir` and train it; returns the run summary."""
    return fit(build_run(cfg, run_dir, callbacks), stop_at=stop_at)
