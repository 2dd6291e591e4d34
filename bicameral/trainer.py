"""The engine: one training loop for every curriculum and model size.

The curriculum only decides (returns an unlock event or nothing); the trainer applies it:
it sets the model's cutoff, restarts the LR cycle and tells the trackers.
"""

import contextlib
import logging
import math
import time
from collections import deque
from pathlib import Path

import torch

from bicameral import rng
from bicameral.checkpoint import save_checkpoint
from bicameral.curriculum import Curriculum, UnlockEvent
from bicameral.data import Split, TrainBatches, val_batches
from bicameral.distributed import SINGLE_PROCESS, Dist, weights_checksum
from bicameral.errors import BicameralError
from bicameral.preemption import Preempted, StopRequest
from bicameral.schedule import CosineWithRestarts

log = logging.getLogger("bicameral")


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BicameralError(f"trainer.device={name} but CUDA is not available. Fix: trainer.device=auto or cpu.")
    return device


class NonFiniteError(BicameralError):
    """Too many non-finite steps in a row: the run stops, its last good checkpoint kept."""


def _mean(values: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    # a window of skipped steps only has no score: NaN, which no curriculum takes
    return torch.stack(values).mean() if values else torch.tensor(math.nan, device=device)


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def _tensors(values: list[float], device: torch.device) -> list[torch.Tensor]:
    # float32, as the step losses were: a resumed window averages to the very same score
    return [torch.tensor(v, dtype=torch.float32, device=device) for v in values]


class Trainer:
    def __init__(self, cfg, model, optimizer, schedule: CosineWithRestarts, curriculum: Curriculum,
                 data: Split, run_dir: str | Path, config: dict, seed: int, device: torch.device,
                 score_window: int | None = None, dist: Dist = SINGLE_PROCESS):
        self.cfg, self.model, self.optimizer, self.schedule = cfg, model, optimizer, schedule
        self.curriculum, self.data, self.dist = curriculum, data, dist
        self.run_dir, self.config, self.device = Path(run_dir), config, device
        self.total_steps = cfg.epochs * cfg.steps_per_epoch
        # each rank draws its own batches; rank 0 draws what a single process would
        self.batches = TrainBatches(data.train, cfg.batch_size, model.cfg.seq_len, seed + 7919 * dist.rank)
        self.tokens_per_step = cfg.batch_size * cfg.accum_steps * model.cfg.seq_len * dist.world_size
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        self.ddp = None
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        trained = self.ddp or model
        self.forward = torch.compile(trained) if cfg.compile else trained
        self.step = 0
        self.log_losses: list[torch.Tensor] = []  # this log window's step losses
        self.log_shares: list[torch.Tensor] = []
        self.score_losses: deque[torch.Tensor] = deque(maxlen=score_window or cfg.log_every)  # judged
        self.val_losses: list[float] = []
        self.skipped_steps = 0  # updates skipped for a non-finite gradient, in all
        self.bad_in_a_row = 0
        self.extra_state: dict = {}  # e.g. the W&B run id, kept with the checkpoint

    # -- one optimizer step ---------------------------------------------------------------------

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """accum_steps micro-batches, clip, update; the mean loss and gate share (on device), or None
        when the gradient was not finite and the update was skipped."""
        self.model.train()
        lr = self.schedule.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=self.device)
        share_sum = torch.zeros((), device=self.device)
        for micro in range(self.cfg.accum_steps):
            x, y = (t.to(self.device, non_blocking=True) for t in self.batches.next())
            # DDP averages gradients once per optimizer step, on the last micro-batch
            last = micro == self.cfg.accum_steps - 1
            sync = self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()
            with sync:
                with self.autocast:
                    out = self.forward(x, y)
                (out.loss / self.cfg.accum_steps).backward()
            loss_sum += out.loss.detach()
            share_sum += out.freq_share
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        # one host sync per step; after DDP's all-reduce every rank sees the same norm and agrees
        finite = bool(torch.isfinite(grad_norm).item())
        if finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if not finite:
            return self._skip()
        self.bad_in_a_row = 0
        return loss_sum / self.cfg.accum_steps, share_sum / self.cfg.accum_steps

    def _skip(self) -> None:
        """Count a skipped update; stop the run after max_nonfinite_steps of them in a row."""
        self.skipped_steps += 1
        self.bad_in_a_row += 1
        self.trackers.log("skip", {"step": self.step + 1, "skipped_steps": self.skipped_steps})
        if self.bad_in_a_row >= self.cfg.max_nonfinite_steps:
            ckpt = self.run_dir / self.cfg.ckpt if self.cfg.ckpt else None
            saved = ckpt is not None and ckpt.exists()  # none yet when the very first steps blow up
            kept = f"; the last good checkpoint is {ckpt}" if saved else "; no checkpoint was saved before it"
            raise NonFiniteError(
                f"{self.bad_in_a_row} non-finite gradients in a row at step {self.step + 1}{kept}. "
                f"Fix: lower optimizer.lr or trainer.grad_clip{', or resume from that checkpoint' if saved else ''}."
            )
        return None

    # -- the loop -------------------------------------------------------------------------------

    def fit(self, trackers, stop_at: int | None = None) -> dict:
        """Train to epochs x steps_per_epoch (or stop early at `stop_at`, checkpointed)."""
        cfg, self.trackers = self.cfg, trackers
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        self.model.set_cutoff(self.curriculum.cutoff)
        window_start, window_tokens = time.perf_counter(), 0
        first = True
        with StopRequest() as stop:
            while self.step < end:
                if first or self.step % cfg.steps_per_epoch == 0:
                    self.trackers.log("epoch", {"epoch": self.step // cfg.steps_per_epoch})
                    first = False
                self._step()
                window_tokens += self.tokens_per_step
                if self.step % cfg.log_every == 0:
                    elapsed = time.perf_counter() - window_start
                    self._report(tokens_per_s=window_tokens / max(elapsed, 1e-9))
                    window_start, window_tokens = time.perf_counter(), 0
                if self.step % cfg.val_every == 0 or self.step in (end, self.total_steps):  # stop_at too
                    self.validate()
                due = cfg.ckpt and (self.step % cfg.ckpt_every == 0 or self.step == end)
                if due:
                    self.save()
                if self._stop_requested(stop):
                    if cfg.ckpt and not due:
                        self.save()
                    stop.pass_on()
                    raise Preempted(self.step)
        return self.summary()

    def _step(self) -> None:
        """One optimizer step; a finite loss joins the log and score windows."""
        result = self.train_step()
        self.step += 1
        if result is not None:
            loss, share = result
            self.log_losses.append(loss)
            self.log_shares.append(share)
            self.score_losses.append(loss)

    def _stop_requested(self, stop: StopRequest) -> bool:
        """A stop signal on any rank stops every rank at the same step."""
        if not self.dist.enabled:
            return stop.signal is not None
        flag = torch.tensor([float(stop.signal is not None)], device=self.device)
        return bool(self.dist.sum(flag).item())

    def _report(self, tokens_per_s: float) -> None:
        """Log the window, then let the curriculum judge the smoothed score (averaged over ranks)."""
        means = [_mean(list(values), self.device) for values in (self.log_losses, self.log_shares, self.score_losses)]
        loss, share, score = self.dist.mean(torch.stack(means)).tolist()
        self.log_losses.clear()
        self.log_shares.clear()
        self.trackers.log("train", {
            "step": self.step,
            "epoch": (self.step - 1) // self.cfg.steps_per_epoch,
            "epoch_step": (self.step - 1) % self.cfg.steps_per_epoch + 1,
            "loss": loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "cutoff": self.curriculum.cutoff,
            "level": self.curriculum.level,
            "freq_share": share,
            "tokens": self.step * self.tokens_per_step,
            "tokens_per_s": tokens_per_s,
        })
        event = self.curriculum.observe(self.step, score)
        if event is not None:
            self.apply_unlock(event, share)

    def apply_unlock(self, event: UnlockEvent, freq_share: float) -> None:
        self.model.set_cutoff(event.to_cutoff)
        if self.cfg.restart_lr:
            self.schedule.restart(self.step)
        self.trackers.log("unlock", {**vars(event), "tokens": self.step * self.tokens_per_step,
                                     "freq_share": freq_share})

    @torch.no_grad()
    def validate(self) -> float:
        self.model.eval()
        totals = torch.zeros(3, device=self.device)  # loss sum, share sum, batches
        batches = val_batches(self.data.val, self.cfg.batch_size, self.model.cfg.seq_len, self.cfg.val_batches)
        for i, (x, y) in enumerate(batches):
            if i % self.dist.world_size != self.dist.rank:  # ranks share the fixed val windows
                continue
            with self.autocast:
                out = self.model(x.to(self.device), y.to(self.device))
            totals += torch.stack([out.loss.float(), out.freq_share, torch.ones((), device=self.device)])
        loss_sum, share_sum, n = self.dist.sum(totals).tolist()
        val_loss = loss_sum / n
        self.val_losses.append(val_loss)
        self.trackers.log("val", {"step": self.step, "tokens": self.step * self.tokens_per_step,
                                  "val_loss": val_loss, "freq_share": share_sum / n})
        return val_loss

    def summary(self) -> dict:
        unlocks = self.curriculum.history
        full = [e["step"] for e in unlocks if e["to_cutoff"] == self.model.n_bins]
        ranks = {}
        if self.dist.enabled:  # every rank must have unlocked alike and hold the same weights
            mine = {"unlock_steps": [e["step"] for e in unlocks], "weights": weights_checksum(self.model)}
            ranks = {"ranks": self.dist.gather(mine)}
            if any(r != ranks["ranks"][0] for r in ranks["ranks"]):
                raise RuntimeError(f"ranks diverged: {ranks['ranks']}")
        return {
            "step": self.step,
            "final_val_loss": self.val_losses[-1] if self.val_losses else math.nan,
            "best_val_loss": min(self.val_losses) if self.val_losses else math.nan,
            "final_cutoff": self.curriculum.cutoff,
            "unlock_steps": [e["step"] for e in unlocks],
            "steps_to_full_resolution": full[0] if full else (0 if self.curriculum.finished else None),
            **ranks,
        }

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "step": self.step,
            "skips": {"total": self.skipped_steps, "in_a_row": self.bad_in_a_row},
            "batches": self.dist.gather(self.batches.state_dict()),  # one data order per rank
            "windows": {"log": _floats(self.log_losses), "share": _floats(self.log_shares),
                        "score": _floats(self.score_losses), "val": list(self.val_losses)},
            "rng": rng.capture(self.device),  # tensors and plain types: loads with weights_only=True
            "config": self.config,
            "extra": self.extra_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.curriculum.load_state_dict(state["curriculum"])
        self.step = state["step"]
        self.skipped_steps, self.bad_in_a_row = state["skips"]["total"], state["skips"]["in_a_row"]
        if len(state["batches"]) != self.dist.world_size:
            raise ValueError(f"checkpoint holds {len(state['batches'])} ranks' data order, this run has "
                             f"{self.dist.world_size} processes")
        self.batches.load_state_dict(state["batches"][self.dist.rank])
        windows = state["windows"]
        self.log_losses = _tensors(windows["log"], self.device)
        self.log_shares = _tensors(windows["share"], self.device)
        self.score_losses.extend(_tensors(windows["score"], self.device))
        self.val_losses = list(windows["val"])
        rng.restore(state["rng"], self.device)
        self.extra_state = dict(state.get("extra", {}))
        self.model.set_cutoff(self.curriculum.cutoff)

    def save(self) -> None:
        state = self.state_dict()  # every rank takes part: the data order is gathered from all
        if not self.dist.is_main:
            return
        path = self.run_dir / self.cfg.ckpt
        try:
            save_checkpoint(state, path)
        except OSError as err:  # a full disk: the previous checkpoint is untouched, training goes on
            log.error(f"Checkpoint save at step {self.step} failed ({err.strerror or err}); "
                      f"the previous checkpoint at {path} is kept.")
