"""The W&B tracker: the run's metrics, unlocks and summary, offline unless set online."""

import logging
import os

from bicameral.curriculum import UnlockEvent
from bicameral.engine.events import SkippedStep, TrainStats, ValResult
from bicameral.engine.spike import SpikeResult
from bicameral.errors import ConfigError
from bicameral.tracking.tracker import RunInfo, Tracker

log = logging.getLogger("bicameral")


class WandbTracker(Tracker):
    """Weights & Biases, offline by default: runs land under the run dir, no account needed."""

    label = "W&B"
    required = False  # a service outage never stops training: the console and the JSONL record go on
    MODES = ("offline", "online", "disabled")
    UNLOCK_COLUMNS = ["step", "tokens", "from_cutoff", "to_cutoff", "score", "prev_bar", "next_bar", "reason"]

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
        bits = {"val/bits_per_byte": result.bits_per_byte} if result.bits_per_byte is not None else {}
        self.run.log({"val/loss": result.val_loss, "val/freq_share": result.freq_share} | bits
                     | self._axes(result.step, result.tokens), step=result.step)

    def on_unlock(self, event: UnlockEvent, stats: TrainStats) -> None:
        keys = ("from_cutoff", "to_cutoff", "score", "prev_bar", "next_bar", "reason")
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
