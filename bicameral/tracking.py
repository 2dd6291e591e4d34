"""Trackers report what the engine did: console lines, JSONL records in the run dir, W&B.

Each tracker is a `_target_` node of the `trackers:` config, built from its own settings alone.
The engine hands every tracker the same typed events (`bicameral.events`) through the `Tracker`
methods, and `on_finish(summary)` once at the end, or `on_fail(...)` when training stopped early.
Trackers never reach back into training (callbacks may: `bicameral.callbacks`). A tracker with
resume state (the W&B run id) has `state_dict`/`load_state_dict`, collected with the checkpoint;
`start(run)` hands it the run's facts and opens its outputs once every input has been checked, so
bad input never leaves an empty record behind.
"""

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bicameral.curriculum import UnlockEvent
from bicameral.errors import BicameralError, ConfigError
from bicameral.events import SkippedStep, TrainStats, ValResult
from bicameral.spike import SpikeResult

log = logging.getLogger("bicameral")


def format_lr(lr: float) -> str:
    """The reference's compact LR: 2.0e-4, 1.99e-4."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}e{int(exponent)}"


def format_count(n: float) -> str:
    """1234 -> 1.2k, 2500000 -> 2.5M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def format_duration(seconds: float) -> str:
    """11100 -> 3h05m, 312 -> 5m12s, 7 -> 7s."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress(stats: TrainStats, total_steps: int) -> str:
    """Global progress, throughput and time left: [412/50000 1.2k tok/s eta 3h05m]."""
    seconds_per_step = stats.tokens / stats.step / max(stats.tokens_per_s, 1e-9)
    eta = format_duration((total_steps - stats.step) * seconds_per_step)
    return f"[{stats.step}/{total_steps} {format_count(stats.tokens_per_s)} tok/s eta {eta}]"


def hemisphere_line(freq_share: float) -> str:
    return f"  Hemisphere: Freq={100 * freq_share:.1f}% Time={100 * (1 - freq_share):.1f}%"


@dataclass(frozen=True)
class RunInfo:
    """What a tracker learns about its run when it starts."""

    run_dir: Path
    config: dict  # resolved
    steps_per_epoch: int
    total_steps: int
    name: str  # readable, from the config: achievement-t3.2-bicameral-d128x4-seed0
    tags: list[str] = field(default_factory=list)
    checkpoint: Path | None = None  # where the run saves; None: no checkpoints


class Tracker:
    """What every tracker may hear; each method does nothing unless a tracker needs it."""

    required = True  # False: a tracker that fails is dropped with a warning, and training goes on

    @property
    def label(self) -> str:
        """The tracker's name in warnings."""
        return type(self).__name__

    def start(self, run: RunInfo) -> None:
        """Open outputs: called once, after all input is checked and any resume state is loaded."""

    def on_epoch(self, epoch: int) -> None: ...

    def on_train(self, stats: TrainStats) -> None: ...

    def on_val(self, result: ValResult) -> None: ...

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        """An unlock, decided on the log window `stats` describes."""

    def on_spike(self, result: SpikeResult, step: int) -> None:
        """An unlock's loss spike (`result.step` is the unlock's step), measured once its window closed,
        reported at training step `step`."""

    def on_skip(self, skipped: SkippedStep) -> None: ...

    def on_finish(self, summary: dict) -> None:
        """The run ended; `summary["unlocks"]` is the curriculum's whole unlock history, resumes included."""

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        """Training stopped early: kind "failed" (it raised) or "preempted" (checkpointed, resumable);
        `unlocks` is the curriculum's history so far."""


class ConsoleTracker(Tracker):
    """The reference's log lines, through the `bicameral` logger (Hydra also copies them to train.log)."""

    def start(self, run: RunInfo) -> None:
        self.steps_per_epoch, self.total_steps = run.steps_per_epoch, run.total_steps

    def on_epoch(self, epoch: int) -> None:
        log.info(f"Epoch {epoch}:")

    def on_train(self, stats: TrainStats) -> None:
        # the reference's line, then where the whole run stands
        log.info(f"  step {stats.epoch_step}/{self.steps_per_epoch} loss={stats.loss:.3f} "
                 f"lr={format_lr(stats.lr)} cutoff={stats.cutoff}  {progress(stats, self.total_steps)}")

    def on_val(self, result: ValResult) -> None:
        log.info(f"  val_loss={result.val_loss:.3f} (step {result.step})")
        log.info(hemisphere_line(result.freq_share))

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        for line in [*event.log_lines(), hemisphere_line(stats.freq_share)]:
            log.info(line)

    def on_spike(self, result: SpikeResult, step: int) -> None:
        log.info(result.log_line())

    def on_skip(self, skipped: SkippedStep) -> None:
        log.info(f"  [SKIP] step {skipped.step}: non-finite gradient, update skipped "
                 f"({skipped.skipped_steps} so far)")

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        if kind == "failed":
            log.error(f"Run failed at step {step}: {error}")


class RecordError(BicameralError, OSError):
    """A record that could not be written: the run stops rather than train on without its record."""


class JsonlTracker(Tracker):
    """metrics.jsonl (train and val rows) and events.jsonl (unlocks, skips, the end) in the run dir.

    A write that fails (a full disk) stops the run with a RecordError. No checkpoint is saved on it: a
    checkpoint past the lost row would leave a hole in the record for good, while a resume from the last
    checkpoint trains the steps after it again and writes their rows afresh."""

    def start(self, run: RunInfo) -> None:
        self.run_dir = Path(run.run_dir)
        # append: a resumed run continues the same record
        self.metrics = self._open("metrics.jsonl")
        self.events = self._open("events.jsonl")

    def _open(self, name: str):
        try:
            return open(self.run_dir / name, "a", encoding="utf-8")
        except OSError as err:
            raise self._error(self.run_dir / name, err) from None

    @staticmethod
    def _error(path, err: OSError) -> RecordError:
        return RecordError(f"Could not write {path} ({err.strerror or err}): the run stops rather than train on "
                           f"without its record. Fix: free space in {Path(path).parent} (or make it writable), then "
                           "rerun to resume from the last checkpoint.")

    def on_train(self, stats: TrainStats) -> None:
        self._write(self.metrics, {"kind": "train", **asdict(stats)})

    def on_val(self, result: ValResult) -> None:
        self._write(self.metrics, {"kind": "val", **asdict(result)})

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        self._write(self.events, {"kind": "unlock", **asdict(event), "tokens": stats.tokens,
                                  "freq_share": stats.freq_share})

    def on_spike(self, result: SpikeResult, step: int) -> None:
        # at_step: when it was reported, so a resume can cut exactly the records after its checkpoint
        self._write(self.events, {**result.to_record(), "at_step": step})

    def on_skip(self, skipped: SkippedStep) -> None:
        self._write(self.events, {"kind": "skip", **asdict(skipped)})

    def _write(self, f, record: dict) -> None:
        try:
            f.write(json.dumps(record) + "\n")
            f.flush()  # a crash loses at most the line being written
        except OSError as err:
            raise self._error(f.name, err) from None

    def on_finish(self, summary: dict) -> None:
        self._close({"kind": "finish", **{k: v for k, v in summary.items() if k != "unlocks"}})

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        self._close({"kind": kind, "step": step, "error": error})

    def _close(self, last_record: dict) -> None:
        try:
            self._write(self.events, last_record)
        finally:
            for f in (self.metrics, self.events):
                with contextlib.suppress(OSError):  # what could not be flushed is already reported
                    f.close()


class WandbTracker(Tracker):
    """Weights & Biases, offline by default: runs land under the run dir, no account needed."""

    label = "W&B"
    required = False  # a service outage never stops training: the console and the JSONL record go on
    MODES = ("offline", "online", "disabled")
    UNLOCK_COLUMNS = ["step", "tokens", "from_cutoff", "to_cutoff", "score", "prev_bar", "next_target", "reason"]

    def __init__(self, project: str = "bicameral", entity: str | None = None, mode: str = "offline",
                 init_timeout_s: float = 30.0, group: str | None = None, name: str | None = None,
                 tags: tuple[str, ...] | list[str] = (), log_checkpoint: bool = True):
        """mode: offline (no account; files under the run dir, `wandb sync` uploads them) | online | disabled.
        init_timeout_s: online, how long to wait for the server before training goes on without W&B.
        name: None = derived from the config. tags: added to the ones derived from the config.
        log_checkpoint: the final checkpoint as a W&B artifact (kept offline for `wandb sync`)."""
        if mode not in self.MODES:
            raise ConfigError(f"trackers.wandb.mode={mode!r}: use {', '.join(self.MODES)}.")
        if not init_timeout_s > 0:
            raise ConfigError(f"trackers.wandb.init_timeout_s={init_timeout_s} must be > 0 (seconds).")
        self.project, self.entity, self.mode, self.init_timeout_s = project, entity, mode, init_timeout_s
        self.group, self.name, self.tags, self.log_checkpoint = group, name, list(tags), log_checkpoint
        self.run_id: str | None = None  # set on start; a resume continues the same W&B run

    @property
    def recovery_hint(self) -> str:
        """What keeps a W&B copy when the service fails: offline mode, unless the run already is offline."""
        if self.mode == "offline":
            return ""
        return " Rerun with trackers.wandb.mode=offline to keep a W&B copy that `wandb sync` uploads later."

    def state_dict(self) -> dict:
        return {"wandb_run_id": self.run_id}

    def load_state_dict(self, state: dict) -> None:
        self.run_id = state.get("wandb_run_id")

    def start(self, run: RunInfo) -> None:
        import wandb  # imported here: runs without W&B never pay for it

        self.wandb, self.checkpoint = wandb, run.checkpoint
        if self.mode == "online":  # a server that does not answer would otherwise hold the start silently
            server = os.environ.get("WANDB_BASE_URL", "the W&B server")
            log.info(f"W&B: connecting to {server} (trackers.wandb.mode=online); after trackers.wandb.init_timeout_s="
                     f"{self.init_timeout_s:g} s without an answer, training goes on without it")
        self.run = wandb.init(
            project=self.project, entity=self.entity, group=self.group, name=self.name or run.name,
            job_type="train", tags=[*run.tags, *self.tags], config=run.config, mode=self.mode,
            dir=str(run.run_dir), id=self.run_id, resume="allow" if self.run_id else None,
            settings=wandb.Settings(quiet=True, init_timeout=self.init_timeout_s),  # our own lines say where it went
        )
        self.run_id = self.run.id
        # every curve shares the global step axis; tokens seen is logged alongside as an alternative x
        for axis in ("global_step", "tokens"):
            self.run.define_metric(axis)
        for prefix in ("train", "val", "unlock"):
            self.run.define_metric(f"{prefix}/*", step_metric="global_step")
        self.run.define_metric("val/loss", summary="min,last")

    def on_train(self, stats: TrainStats) -> None:
        keys = ("loss", "lr", "cutoff", "level", "freq_share", "tokens_per_s", "epoch")
        self.run.log({f"train/{k}": getattr(stats, k) for k in keys} | self._axes(stats.step, stats.tokens),
                     step=stats.step)

    def on_val(self, result: ValResult) -> None:
        self.run.log({"val/loss": result.val_loss, "val/freq_share": result.freq_share}
                     | self._axes(result.step, result.tokens), step=result.step)

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        keys = ("from_cutoff", "to_cutoff", "score", "prev_bar", "next_target", "reason")
        self.run.log({f"unlock/{k}": getattr(event, k) for k in keys} | {"unlock/step": event.step}
                     | self._axes(event.step, stats.tokens), step=event.step)

    def on_spike(self, result: SpikeResult, step: int) -> None:
        # logged when the window closes, at that step: W&B steps never go back to the unlock's
        self.run.log({"unlock/spike": result.spike, "unlock/recovery_steps": result.recovery_steps,
                      "unlock/spike_step": result.step, "global_step": step}, step=step)

    def on_skip(self, skipped: SkippedStep) -> None:
        self.run.log({"train/skipped_steps": skipped.skipped_steps, "global_step": skipped.step}, step=skipped.step)

    @staticmethod
    def _axes(step: int, tokens: int) -> dict:
        return {"global_step": step, "tokens": tokens}

    def _log_unlock_table(self, unlocks: list[dict]) -> None:
        # from the curriculum's own history: complete after any number of resumes, each unlock once
        rows = [[u.get(c) for c in self.UNLOCK_COLUMNS] for u in unlocks]
        self.run.log({"unlocks": self.wandb.Table(columns=self.UNLOCK_COLUMNS, data=rows)})

    def _log_checkpoint(self) -> None:
        if self.log_checkpoint and self.checkpoint is not None and self.checkpoint.is_file():
            artifact = self.wandb.Artifact(f"checkpoint-{self.run.id}", type="model")
            artifact.add_file(str(self.checkpoint))
            self.run.log_artifact(artifact)

    def on_finish(self, summary: dict) -> None:
        self._log_unlock_table(summary.get("unlocks", []))
        self._log_checkpoint()
        for key, value in summary.items():
            if key != "unlocks":
                self.run.summary[key] = value
        offline = self.run.settings.mode == "offline"
        run_dir = self.run.settings.sync_dir
        self.run.finish()
        if offline:
            log.info(f"W&B offline run saved; upload it with: wandb sync {run_dir}")

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        self._log_unlock_table(list(unlocks))
        self.run.summary[kind] = error
        self.run.finish(exit_code=1)  # closed now, so the next multirun job starts a fresh run

    def abandon(self) -> None:
        """Best-effort close after a failure, so a broken run never lingers into the next one."""
        try:
            self.run.finish(exit_code=1)
        except Exception:
            pass


class Trackers(Tracker):
    """Fans each event out to every tracker. A tracker that is not `required` (W&B) and raises is dropped
    with one warning, so a service outage never stops training: the console and the JSONL record go on.
    Its resume state is each stateful tracker's, by class name."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = list(trackers)

    def _each(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                if tracker.required:
                    raise
                self.trackers.remove(tracker)
                if hasattr(tracker, "run"):
                    tracker.abandon()
                what = "could not start" if method == "start" else "failed"
                reason = str(err).splitlines()[0] if str(err) else ""
                hint = getattr(tracker, "recovery_hint", "")
                log.warning(f"{tracker.label} {what} ({type(err).__name__}: {reason}); training goes on without it. "
                            f"The run's record is in metrics.jsonl and events.jsonl.{hint}")

    def _stateful(self) -> dict:
        return {type(t).__name__: t for t in self.trackers if hasattr(t, "state_dict")}

    def state_dict(self) -> dict:
        return {name: t.state_dict() for name, t in self._stateful().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, tracker in self._stateful().items():
            tracker.load_state_dict(state.get(name, {}))

    def start(self, run: RunInfo) -> None:
        self._each("start", run)

    def on_epoch(self, epoch: int) -> None:
        self._each("on_epoch", epoch)

    def on_train(self, stats: TrainStats) -> None:
        self._each("on_train", stats)

    def on_val(self, result: ValResult) -> None:
        self._each("on_val", result)

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        self._each("on_unlock", event, stats)

    def on_spike(self, result: SpikeResult, step: int) -> None:
        self._each("on_spike", result, step)

    def on_skip(self, skipped: SkippedStep) -> None:
        self._each("on_skip", skipped)

    def on_finish(self, summary: dict) -> None:
        self._each("on_finish", summary)

    def on_fail(self, step: int, error: str, kind: str = "failed", unlocks: list[dict] = ()) -> None:
        """Every tracker records the failure where it still can: one that cannot is named, and the others go on,
        so the error that stopped the run is the one reported."""
        for tracker in self.trackers:
            try:
                tracker.on_fail(step, error, kind, unlocks)
            except Exception as err:
                log.warning(f"{tracker.label} could not record the {kind} run ({type(err).__name__}: {err})")
