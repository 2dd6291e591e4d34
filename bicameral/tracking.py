"""Trackers report what the engine did: console lines, JSONL records in the run dir, W&B.

Every tracker takes the same records: `log(kind, record)` with kind one of
  "epoch"  {"epoch"}
  "train"  {"step", "epoch", "epoch_step", "loss", "lr", "cutoff", "level", "freq_share", "tokens", "tokens_per_s"}
  "val"    {"step", "tokens", "val_loss", "freq_share"}
  "unlock" {"step", "from_cutoff", "to_cutoff", "score", "prev_bar", "next_target", "reason", "freq_share", ...}
  "skip"   {"step", "skipped_steps"}: an update skipped for a non-finite gradient
and `finish(summary)` once at the end, or `fail(step, error)` when training raised. Trackers never
reach back into training.
"""

import json
import logging
import os
from pathlib import Path

from bicameral.curriculum import UnlockEvent

log = logging.getLogger("bicameral")


def format_lr(lr: float) -> str:
    """The seed's compact LR: 2.0e-4, 1.99e-4."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}e{int(exponent)}"


def hemisphere_line(freq_share: float) -> str:
    return f"  Hemisphere: Freq={100 * freq_share:.1f}% Time={100 * (1 - freq_share):.1f}%"


def run_tags(cfg) -> list[str]:
    """W&B tags derived from the config, so runs filter by curriculum, threshold, arch and size."""
    c, m = cfg.curriculum, cfg.model
    tags = [f"curriculum={c.name}", f"arch={m.arch}", f"size=d{m.d_model}x{m.n_layers}", f"seed={cfg.seed}"]
    if "unlock_threshold" in c:
        tags.append(f"threshold={c.unlock_threshold}")
    return tags + list(cfg.logger.tags)


def run_name(cfg) -> str:
    """A readable W&B run name from the config: achievement-t3.2-bicameral-d128x4-seed0."""
    c, m = cfg.curriculum, cfg.model
    threshold = f"-t{c.unlock_threshold}" if "unlock_threshold" in c else ""
    return f"{c.name}{threshold}-{m.arch}-d{m.d_model}x{m.n_layers}-seed{cfg.seed}"


class ConsoleTracker:
    """The seed's log lines, through the `bicameral` logger (Hydra also copies them to train.log)."""

    def __init__(self, steps_per_epoch: int):
        self.steps_per_epoch = steps_per_epoch

    def log(self, kind: str, record: dict) -> None:
        for line in self.lines(kind, record):
            log.info(line)

    def lines(self, kind: str, r: dict) -> list[str]:
        if kind == "epoch":
            return [f"Epoch {r['epoch']}:"]
        if kind == "train":
            return [
                f"  step {r['epoch_step']}/{self.steps_per_epoch} loss={r['loss']:.3f} "
                f"lr={format_lr(r['lr'])} cutoff={r['cutoff']}"
            ]
        if kind == "val":
            return [f"  val_loss={r['val_loss']:.3f} (step {r['step']})", hemisphere_line(r["freq_share"])]
        if kind == "skip":
            return [f"  [SKIP] step {r['step']}: non-finite gradient, update skipped ({r['skipped_steps']} so far)"]
        if kind == "unlock":
            fields = UnlockEvent.__dataclass_fields__
            event = UnlockEvent(**{k: v for k, v in r.items() if k in fields})
            return [*event.log_lines(), hemisphere_line(r["freq_share"])]
        return []

    def finish(self, summary: dict) -> None:
        pass

    def fail(self, step: int, error: str, kind: str = "failed") -> None:
        if kind == "failed":
            log.error(f"Run failed at step {step}: {error}")


class JsonlTracker:
    """metrics.jsonl (train and val rows) and events.jsonl (unlocks) in the run dir."""

    def __init__(self, run_dir: str | os.PathLike):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        # append: a resumed run continues the same record
        self.metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        self.events = open(run_dir / "events.jsonl", "a", encoding="utf-8")

    def log(self, kind: str, record: dict) -> None:
        if kind in ("train", "val"):
            self._write(self.metrics, {"kind": kind, **record})
        elif kind in ("unlock", "skip"):
            self._write(self.events, {"kind": kind, **record})

    @staticmethod
    def _write(f, record: dict) -> None:
        f.write(json.dumps(record) + "\n")
        f.flush()  # a crash loses at most the line being written

    def finish(self, summary: dict) -> None:
        self._close({"kind": "finish", **summary})

    def fail(self, step: int, error: str, kind: str = "failed") -> None:
        self._close({"kind": kind, "step": step, "error": error})

    def _close(self, last_record: dict) -> None:
        self._write(self.events, last_record)
        self.metrics.close()
        self.events.close()


class WandbTracker:
    """Weights & Biases, offline by default: runs land under the run dir, no account needed."""

    UNLOCK_COLUMNS = ["step", "tokens", "from_cutoff", "to_cutoff", "score", "prev_bar", "next_target", "reason"]

    def __init__(self, run_dir, cfg, config: dict, run_id: str | None = None):
        import wandb  # imported here: logger=none runs never pay for it

        lg = cfg.logger
        self.wandb = wandb
        self.run = wandb.init(
            project=lg.project, entity=lg.entity, group=lg.group, name=lg.name or run_name(cfg),
            tags=run_tags(cfg), config=config, mode=lg.mode, dir=str(run_dir),
            id=run_id, resume="allow" if run_id else None,
            settings=wandb.Settings(quiet=True),  # our own lines say where the run went
        )
        # every curve shares the global step axis; tokens seen is logged alongside as an alternative x
        for axis in ("global_step", "tokens"):
            self.run.define_metric(axis)
        for prefix in ("train", "val", "unlock"):
            self.run.define_metric(f"{prefix}/*", step_metric="global_step")
        self.run.define_metric("val/loss", summary="min,last")
        self.unlocks: list[list] = []

    @property
    def run_id(self) -> str:
        return self.run.id

    def log(self, kind: str, record: dict) -> None:
        step = record.get("step")
        axes = {"global_step": step, "tokens": record.get("tokens")}
        if kind == "train":
            keys = ("loss", "lr", "cutoff", "level", "freq_share", "tokens_per_s", "epoch")
            self.run.log({f"train/{k}": record[k] for k in keys} | axes, step=step)
        elif kind == "val":
            self.run.log({"val/loss": record["val_loss"], "val/freq_share": record["freq_share"]} | axes, step=step)
        elif kind == "unlock":
            keys = ("from_cutoff", "to_cutoff", "score", "prev_bar", "next_target", "reason")
            self.run.log({f"unlock/{k}": record[k] for k in keys} | {"unlock/step": step} | axes, step=step)
            self.unlocks.append([record[c] for c in self.UNLOCK_COLUMNS])
        elif kind == "skip":
            self.run.log({"train/skipped_steps": record["skipped_steps"], "global_step": step}, step=step)

    def finish(self, summary: dict) -> None:
        self.run.log({"unlocks": self.wandb.Table(columns=self.UNLOCK_COLUMNS, data=self.unlocks)})
        for key, value in summary.items():
            self.run.summary[key] = value
        offline = self.run.settings.mode == "offline"
        run_dir = self.run.settings.sync_dir
        self.run.finish()
        if offline:
            log.info(f"W&B offline run saved; upload it with: wandb sync {run_dir}")

    def fail(self, step: int, error: str, kind: str = "failed") -> None:
        self.run.summary[kind] = error
        self.run.finish(exit_code=1)  # closed now, so the next multirun job starts a fresh run

    def abandon(self) -> None:
        """Best-effort close after a failure, so a broken run never lingers into the next one."""
        try:
            self.run.finish(exit_code=1)
        except Exception:
            pass


class Trackers:
    """Fans each record out to every tracker. An optional tracker (W&B) that raises is dropped with one
    warning, so a service outage never stops training: the console and the JSONL record go on."""

    def __init__(self, trackers: list, optional: tuple = ()):
        self.trackers, self.optional = list(trackers), optional

    def _each(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                if tracker not in self.optional:
                    raise
                self.trackers.remove(tracker)
                tracker.abandon()
                log.warning(f"{type(tracker).__name__} failed ({type(err).__name__}: {err}); training goes on "
                            "without it. The run's record is in metrics.jsonl and events.jsonl.")

    def log(self, kind: str, record: dict) -> None:
        self._each("log", kind, record)

    def finish(self, summary: dict) -> None:
        self._each("finish", summary)

    def fail(self, step: int, error: str, kind: str = "failed") -> None:
        """Training stopped early: kind "failed" (it raised) or "preempted" (checkpointed, resumable)."""
        self._each("fail", step, error, kind)
