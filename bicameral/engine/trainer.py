"""The engine: one training loop for every curriculum, optimizer, schedule and model size.

The curriculum only decides (returns an unlock event or nothing); the trainer applies it:
it sets the model's cutoff, restarts the LR cycle and tells the trackers. Callbacks
(`bicameral.callbacks`) are called at named points and may end the run with `request_stop`.
"""

import contextlib
import logging
import math
import re
import time
from collections import deque

import torch

from bicameral.callbacks import Callbacks
from bicameral.checkpoint.manager import CheckpointManager
from bicameral.curriculum import Curriculum, UnlockEvent, judging
from bicameral.data.batches import TrainBatches, val_batches
from bicameral.data.datasets import Dataset
from bicameral.engine.distributed import SINGLE_PROCESS, Dist, is_peer_failure, weights_checksum
from bicameral.engine.events import SkippedStep, TrainStats, ValResult
from bicameral.engine.preemption import Preempted, StopRequest
from bicameral.engine.spike import SpikeMeter, SpikeResult
from bicameral.engine.stateful import DataOrder, RandomState
from bicameral.errors import BicameralError, ConfigError
from bicameral.optim import hyperparameters, reapply_hyperparameters
from bicameral.tracking.tracker import Tracker

log = logging.getLogger("bicameral")


class PeerLost(BicameralError):
    """A rank that stopped, hung or died: every other rank ends, its last good checkpoint kept."""


CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that capture CUDA graphs


class NonFiniteError(BicameralError):
    """Too many non-finite steps in a row: the run stops, its last good checkpoint kept."""


def _mean(values: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    # a window of skipped steps only has no score: NaN, which no curriculum takes
    return torch.stack(values).mean() if values else torch.tensor(math.nan, device=device)


def tokens_per_step(trainer_cfg, seq_len: int, world_size: int) -> int:
    return trainer_cfg["batch_size"] * trainer_cfg["accum_steps"] * seq_len * world_size


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def _tensors(values: list[float], device: torch.device) -> list[torch.Tensor]:
    # float32, as the step losses were: a resumed window averages to the very same score
    return [torch.tensor(v, dtype=torch.float32, device=device) for v in values]


class Trainer:
    """Trains `model` for `cfg.epochs x cfg.steps_per_epoch` optimizer steps.

    `cfg` is the trainer section (TrainerConfig). Every stateful part, the trainer's own loop
    counters included, is tracked by `checkpointer`, which saves and restores them together.
    """

    def __init__(self, cfg, model, optimizer: torch.optim.Optimizer, schedule, curriculum: Curriculum,
                 data: Dataset, trackers: Tracker, checkpointer: CheckpointManager, seed: int, device: torch.device,
                 dist: Dist = SINGLE_PROCESS, callbacks: Callbacks | None = None):
        self.cfg, self.model, self.optimizer, self.schedule = cfg, model, optimizer, schedule
        self.callbacks = callbacks if callbacks is not None else Callbacks()
        self.stop_reason: str | None = None  # set by request_stop: the loop ends after the current step
        self.curriculum, self.data, self.trackers, self.dist = curriculum, data, trackers, dist
        self.checkpointer, self.device = checkpointer, device
        self.total_steps = cfg.epochs * cfg.steps_per_epoch
        # UTF-8 bytes each id stands for, so every validation also reports bits per byte (None: no tokenizer)
        self.token_bytes = (torch.from_numpy(data.tokenizer.token_bytes()) if data.tokenizer is not None else None)
        # each rank draws its own batches; rank 0 draws what a single process would
        self.batches = TrainBatches(data.train, cfg.batch_size, model.cfg.seq_len, seed + 7919 * dist.rank)
        self.tokens_per_step = tokens_per_step(cfg, model.cfg.seq_len, dist.world_size)
        # (first step, tokens per step) for each stretch of the run at one batch size: a resume may change it
        self.token_rates: list[tuple[int, int]] = [(0, self.tokens_per_step)]
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        self.ddp = None
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        trained = self.ddp or model
        compile_model = cfg.compile if cfg.compile is not None else device.type == "cuda"
        self.forward = torch.compile(trained, mode=cfg.compile_mode) if compile_model else trained
        self.cuda_graphs = compile_model and cfg.compile_mode in CUDA_GRAPH_MODES
        # fused Adam/AdamW/SGD take a device flag that skips a whole update (GradScaler's found_inf): a non-finite
        # gradient is skipped without the host waiting for the device; other optimizers read the flag on the host
        self.skips_on_device = bool(getattr(optimizer, "_step_supports_amp_scaling", False))
        self.step = 0
        self.lr = self.schedule.get_last_lr()[0]  # the LR the last step trained at (group 0)
        # the LR area: sum over steps of lr / peak (group 0), so reports can name the LR a restart adds
        self.peak_lr = self.schedule.base_lrs[0]
        self.lr_area: float | None = 0.0  # None after a resume from a checkpoint that did not carry it
        # (step, loss, share, non-finite flag) of the steps since the numbers were last read, all on the device:
        # the host reads them at log time (and before a save), not once a step
        self.unread: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.log_losses: list[torch.Tensor] = []  # this log window's step losses
        self.log_shares: list[torch.Tensor] = []
        self.judge_every, score_window = judging(curriculum.judge_every, curriculum.score_window, cfg.log_every)
        if self.judge_every % cfg.log_every:  # the judged window is a logged one: its unlock names its tokens
            raise ConfigError(f"curriculum.judge_every={self.judge_every} must be a multiple of trainer.log_every="
                              f"{cfg.log_every}. Fix: e.g. curriculum.judge_every={cfg.log_every}.")
        self.score_losses: deque[torch.Tensor] = deque(maxlen=score_window)  # what the curriculum judges
        self.val_losses: list[float] = []
        self.val_bits_per_byte: float | None = None  # the last validation's
        self.skipped_steps = 0  # updates skipped for a non-finite gradient, in all
        self.bad_in_a_row = 0
        self.spikes = SpikeMeter(cfg.spike_window or 5 * self.judge_every)
        checkpointer.track(model=model, optimizer=optimizer, schedule=schedule, curriculum=curriculum,
                           batches=DataOrder(self.batches, dist, seed, lambda: self.step), rng=RandomState(device),
                           loop=self, spikes=self.spikes, trackers=trackers, callbacks=self.callbacks)

    # -- one optimizer step ---------------------------------------------------------------------

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """accum_steps micro-batches, clip, update; the mean loss, the gate share and whether the gradient was
        non-finite (its update skipped), all on the device: nothing here waits for the device."""
        self.model.train()
        self.lr = self.optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=self.device)
        share_sum = torch.zeros((), device=self.device)
        for micro in range(self.cfg.accum_steps):
            x, y = self._to_device(*self.batches.next())
            # DDP averages gradients once per optimizer step, on the last micro-batch
            last = micro == self.cfg.accum_steps - 1
            sync = self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()  # a new step: the graphs' last outputs may be reused
            with sync:
                with self.autocast:
                    out = self.forward(x, y)
                (out.loss / self.cfg.accum_steps).backward()
            loss_sum += out.loss.detach()
            share_sum += out.freq_share
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        # after DDP's all-reduce every rank sees the same norm, so every rank skips alike
        nonfinite = ~torch.isfinite(grad_norm)
        self._update(nonfinite)
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()  # a skipped step still spends its place in the schedule
        return loss_sum / self.cfg.accum_steps, share_sum / self.cfg.accum_steps, nonfinite

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device.type != "cuda":
            return x, y
        # from pinned host memory the copies run asynchronously, behind the step still on the device
        return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)

    def _update(self, nonfinite: torch.Tensor) -> None:
        """The optimizer step, unless the gradient was non-finite."""
        if not self.skips_on_device:
            if not nonfinite.item():  # the host waits for the device here (on the CPU that costs nothing)
                self.optimizer.step()
            return
        # the fused kernels leave parameters and moments alone where found_inf is 1, and take back the step count
        self.optimizer.grad_scale, self.optimizer.found_inf = None, nonfinite.float()
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.grad_scale, self.optimizer.found_inf

    def _read_steps(self) -> None:
        """Read the unread steps' numbers (one host sync for them all): a finite step's loss joins the log and
        score windows; a skipped one is counted, and too many in a row stop the run."""
        if not self.unread:
            return
        unread, self.unread = self.unread, []
        flags = torch.stack([nonfinite for *_, nonfinite in unread]).tolist()
        for (step, loss, share, _), skipped in zip(unread, flags):
            if skipped:
                self._skip(step)
                continue
            self.bad_in_a_row = 0
            self.log_losses.append(loss)
            self.log_shares.append(share)
            self.score_losses.append(loss)

    def _skip(self, step: int) -> None:
        """Count a skipped update; stop the run after max_nonfinite_steps of them in a row."""
        self.skipped_steps += 1
        self.bad_in_a_row += 1
        self.trackers.on_skip(SkippedStep(step=step, skipped_steps=self.skipped_steps))
        if self.bad_in_a_row >= self.cfg.max_nonfinite_steps:
            saved = self.checkpointer.path is not None and self.checkpointer.path.exists()  # none yet at first
            kept = f"; the last good checkpoint is {self.checkpointer.path}" if saved else \
                "; no checkpoint was saved before it"
            raise NonFiniteError(
                f"{self.bad_in_a_row} non-finite gradients in a row at step {step}{kept}. "
                f"Fix: lower optimizer.lr or trainer.grad_clip{', or resume from that checkpoint' if saved else ''}."
            )

    # -- the loop -------------------------------------------------------------------------------

    def fit(self, stop_at: int | None = None) -> dict:
        """Train to epochs x steps_per_epoch (or stop early at `stop_at`, checkpointed)."""
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        self.model.set_cutoff(self.curriculum.cutoff)
        self.callbacks.on_fit_start(self)
        with StopRequest() as stop:
            try:
                self._train_until(end, stop)
                self._read_steps()  # the last steps after the last log point
                if self.step == self.total_steps:  # the run's real end closes a spike window still open
                    self._report_spike(self.spikes.close(self.step))
                summary = self.summary()
            except RuntimeError as err:  # a collective another rank never joined: one line, not a hang
                if not (self.dist.enabled and is_peer_failure(err)):
                    raise
                raise PeerLost(self._peer_lost(err)) from None
        self.callbacks.on_fit_end(self, summary)
        return summary

    def request_stop(self, reason: str) -> None:
        """End the run after the current step (validated, and checkpointed when checkpoints are on), as a
        finished run whose summary says why: a callback's early stop."""
        self.stop_reason = reason

    def _train_until(self, end: int, stop: StopRequest) -> None:
        cfg = self.cfg
        window_start, window_tokens = time.perf_counter(), 0
        first = True
        while self.step < end:
            if first or self.step % cfg.steps_per_epoch == 0:
                self.trackers.on_epoch(self.step // cfg.steps_per_epoch)
                first = False
            self._step()
            window_tokens += self.tokens_per_step
            if self.step % cfg.log_every == 0:
                self._report(window_start, window_tokens)
                window_start, window_tokens = time.perf_counter(), 0
            self.callbacks.on_step_end(self)
            validated = self.step % cfg.val_every == 0 or self.step in (end, self.total_steps)  # stop_at too
            if validated:
                self.validate()
            due = self.checkpointer.due(self.step, end)
            if due:
                self.save(final=self.step == end)
            signalled, requested = self._stops_requested(stop)
            if not (signalled or requested):
                continue
            if requested and not signalled and not validated:
                self.validate()  # a requested stop ends like a run's end: its summary's val loss is this step's
            if self.checkpointer.path is not None and not due:
                self.save(final=True)  # the run stops on it: it must be there
            if not signalled:
                return
            stop.pass_on()
            raise Preempted(self.step)

    def _peer_lost(self, err: RuntimeError) -> str:
        saved = self.checkpointer.last_saved_step
        kept = (f"the last good checkpoint is {self.checkpointer.path} at step {saved}" if saved is not None
                else "no checkpoint was saved before it")
        reason = re.sub(r"^\[[^\]]*\] ", "", str(err).splitlines()[0])  # gloo's source location first
        return (f"Rank {self.dist.rank} lost the other ranks during step {self.step + 1}: a collective failed "
                f"({reason}): a rank stopped, hung or died, or waited past trainer.dist_timeout_s="
                f"{self.cfg.dist_timeout_s:g}; {kept}. Fix: see why that rank stopped (its log), then rerun to resume.")

    def _step(self) -> None:
        """One optimizer step; its numbers are read later, with the others of its log window."""
        loss, share, nonfinite = self.train_step()
        self.step += 1
        if self.lr_area is not None:  # a skipped update counts: it spent its place in the schedule
            self.lr_area += self.lr / self.peak_lr
        self.unread.append((self.step, loss, share, nonfinite))

    def _stops_requested(self, stop: StopRequest) -> tuple[bool, bool]:
        """(a stop signal, a callback's request_stop): either, on any rank, stops every rank at the same step."""
        flags = (stop.signal is not None, self.stop_reason is not None)
        if self.dist.enabled:
            summed = self.dist.sum(torch.tensor([float(f) for f in flags], device=self.device)).tolist()
            flags = tuple(total > 0 for total in summed)
            if flags[1] and self.stop_reason is None:
                self.stop_reason = "requested on another rank"
        return flags

    def _report(self, window_start: float, window_tokens: int) -> None:
        """Log the window; at a judgement, let the curriculum judge the smoothed score (averaged over ranks)."""
        self._read_steps()
        means = [_mean(list(values), self.device) for values in (self.log_losses, self.log_shares, self.score_losses)]
        loss, share, score = self.dist.mean(torch.stack(means)).tolist()
        # timed once the device has finished the window's steps (the host ran ahead of it until the read above)
        tokens_per_s = window_tokens / max(time.perf_counter() - window_start, 1e-9)
        self.log_losses.clear()
        self.log_shares.clear()
        stats = TrainStats(
            step=self.step,
            epoch=(self.step - 1) // self.cfg.steps_per_epoch,
            epoch_step=(self.step - 1) % self.cfg.steps_per_epoch + 1,
            loss=loss,
            lr=self.lr,
            cutoff=self.curriculum.cutoff,
            level=self.curriculum.level,
            freq_share=share,
            tokens=self.tokens_at(self.step),
            tokens_per_s=tokens_per_s,
        )
        self.trackers.on_train(stats)
        if self.step % self.judge_every:
            return
        self._report_spike(self.spikes.observe(self.step, score))  # measured on the curriculum's own score
        event = self.curriculum.observe(self.step, score)
        if event is not None:
            self.apply_unlock(event, stats)

    def apply_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        self.callbacks.on_unlock_start(self, event)
        self.model.set_cutoff(event.to_cutoff)
        if self.cfg.restart_lr:
            self.schedule.restart(self.step)
        self.trackers.on_unlock(event, stats)
        self._report_spike(self.spikes.unlock(event.step, event.score, event.from_cutoff, event.to_cutoff))
        self.callbacks.on_unlock_end(self, event)

    def _report_spike(self, result: SpikeResult | None) -> None:
        if result is not None:
            self.trackers.on_spike(result, self.step)

    @torch.no_grad()
    def validate(self) -> float:
        self.callbacks.on_validation_start(self)
        self.model.eval()
        totals = torch.zeros(3, device=self.device)  # loss sum, share sum, batches
        targets, target_bytes = 0, 0  # over every rank's batches: each rank counts them all, on the host
        batches = val_batches(self.data.val, self.cfg.batch_size, self.model.cfg.seq_len, self.cfg.val_batches)
        for i, (x, y) in enumerate(batches):
            if self.token_bytes is not None:
                targets, target_bytes = targets + y.numel(), target_bytes + int(self.token_bytes[y].sum())
            if i % self.dist.world_size != self.dist.rank:  # ranks share the fixed val windows
                continue
            with self.autocast:
                out = self.model(x.to(self.device), y.to(self.device))
            totals += torch.stack([out.loss.float(), out.freq_share, torch.ones((), device=self.device)])
        loss_sum, share_sum, n = self.dist.sum(totals).tolist()
        val_loss = loss_sum / n
        self.val_losses.append(val_loss)
        # every batch holds as many targets, so val_loss x targets is the nats of them all
        bits_per_byte = val_loss * targets / (math.log(2) * target_bytes) if target_bytes else None
        self.val_bits_per_byte = bits_per_byte
        result = ValResult(step=self.step, tokens=self.tokens_at(self.step), val_loss=val_loss,
                           freq_share=share_sum / n, bits_per_byte=bits_per_byte)
        self.trackers.on_val(result)
        self.callbacks.on_validation_end(self, result)
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
            "final_val_bits_per_byte": self.val_bits_per_byte,
            "final_cutoff": self.curriculum.cutoff,
            "unlock_steps": [e["step"] for e in unlocks],
            "steps_to_full_resolution": full[0] if full else (0 if self.curriculum.finished else None),
            "lr_area": self.lr_area,
            "curriculum": self.curriculum.name,
            "unlocks": self.unlock_history(),
            **({"stop_reason": self.stop_reason} if self.stop_reason is not None else {}),
            **ranks,
        }

    def unlock_history(self) -> list[dict]:
        """Every unlock of the run so far, resumes included, with the tokens seen at each."""
        return [{**e, "tokens": self.tokens_at(e["step"])} for e in self.curriculum.history]

    def tokens_at(self, step: int) -> int:
        """Training tokens seen by the end of `step`, across every batch size the run has trained with."""
        ends = [start for start, _ in self.token_rates[1:]] + [step]
        return sum(max(0, min(step, end) - start) * rate for (start, rate), end in zip(self.token_rates, ends))

    # -- checkpoints: the loop's own state, and saving everything -------------------------------

    def state_dict(self) -> dict:
        return {
            "skips": {"total": self.skipped_steps, "in_a_row": self.bad_in_a_row},
            "lr_area": self.lr_area,
            "val_bits_per_byte": self.val_bits_per_byte,
            "token_rates": [list(rate) for rate in self.token_rates],
            "windows": {"log": _floats(self.log_losses), "share": _floats(self.log_shares),
                        "score": _floats(self.score_losses), "val": list(self.val_losses)},
        }

    def load_state_dict(self, state: dict) -> None:
        self.skipped_steps, self.bad_in_a_row = state["skips"]["total"], state["skips"]["in_a_row"]
        self.lr_area = state.get("lr_area")  # checkpoints from before it was kept have none
        self.val_bits_per_byte = state.get("val_bits_per_byte")
        self.token_rates = [tuple(rate) for rate in state.get("token_rates", [])]  # [] in older checkpoints
        windows = state["windows"]
        self.log_losses = _tensors(windows["log"], self.device)
        self.log_shares = _tensors(windows["share"], self.device)
        self.score_losses.extend(_tensors(windows["score"], self.device))
        self.val_losses = list(windows["val"])

    def resume(self, state: dict) -> None:
        """Continue from a checkpoint's state: every tracked component, then the model's cutoff. Settings
        that changed since the checkpoint take effect: the optimizer's, and the batch size's token count."""
        built = hyperparameters(self.optimizer)
        self.step = state["step"]  # first: a data order derived anew starts from it
        self.checkpointer.load_state_dict(state)
        changed = reapply_hyperparameters(self.optimizer, built)
        if changed:
            self.schedule._last_lr = [group["lr"] for group in self.optimizer.param_groups]
            log.info("Optimizer settings applied to the restored param groups: "
                     + "; ".join(f"{key} {old} -> {new}" for key, (old, new) in changed.items()))
        self.lr = self.schedule.get_last_lr()[0]
        if not self.token_rates:  # a checkpoint from before token rates were kept trained at its config's
            saved, world_size = state["config"], len(state["batches"])
            self.token_rates = [(0, tokens_per_step(saved["trainer"], saved["model"]["seq_len"], world_size))]
        if self.token_rates[-1][1] != self.tokens_per_step:
            self.token_rates.append((self.step, self.tokens_per_step))
        self.model.set_cutoff(self.curriculum.cutoff)

    def save(self, final: bool = False) -> None:
        """Checkpoint every component; `final`: the run stops after it, so its failure fails the run."""
        self._read_steps()  # the windows are saved, and a run past max_nonfinite_steps must stop before its save
        state = self.checkpointer.state_dict(self.step)  # every rank takes part: data orders are gathered
        if self.dist.is_main:
            self.checkpointer.save(state, final)
            if self.checkpointer.last_saved_step == self.step:  # a failed save that the run survives is no save
                self.callbacks.on_save(self, self.checkpointer.path)
