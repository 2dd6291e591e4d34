"""What a run does with its run dir: continue the run already there, start one, or replace one when asked.

A run dir that holds an earlier run (a checkpoint, or records) is continued by `trainer.resume=auto`
(another seed is refused when the checkpoint is checked, `bicameral.checkpoint.fingerprint`). Anything that would
start over in it, and so remove that work (`trainer.resume=null`, another run's checkpoint), stops at
start naming what is there, unless
`trainer.overwrite=true` asks for it; the removal is then logged file by file. Two exceptions start
over without asking, with a warning, because the earlier attempt left nothing to continue: records
without a checkpoint and without a finish record (a run killed before its first save, or preempted
under `trainer.ckpt=null`).
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from bicameral.checkpoint.format import CheckpointError, load_checkpoint, previous_path
from bicameral.checkpoint.manager import checkpoints_in, damaged_path
from bicameral.config import ConfigError
from bicameral.tracking.records import RECORD_FILES, record_rows

log = logging.getLogger("bicameral")


@dataclass
class EarlierRun:
    """What an earlier run left in a run dir."""

    checkpoints: list[Path] = field(default_factory=list)  # checkpoint.pt, .prev, .damaged: whichever exist
    records: dict[Path, int] = field(default_factory=dict)  # record file -> rows
    finished: bool = False  # the records end in a finish record

    def __bool__(self) -> bool:
        return bool(self.checkpoints) or any(self.records.values())

    def files(self) -> list[Path]:
        return [*self.checkpoints, *self.records]

    def describe(self) -> str:
        """e.g. 'checkpoint.pt, checkpoint.prev.pt, 95 record rows, finished'"""
        parts = [p.name for p in self.checkpoints]
        rows = sum(self.records.values())
        parts += [f"{rows} record rows"] if rows else []
        return ", ".join(parts + (["finished"] if self.finished else []))


def earlier_run(run_dir: Path, ckpt: str | None) -> EarlierRun:
    checkpoints = []
    if ckpt:
        path = run_dir / ckpt
        checkpoints = [p for p in (path, previous_path(path), damaged_path(path)) if p.exists()]
    records, finished = {}, False
    for name in RECORD_FILES:
        rows = record_rows(run_dir / name)
        if rows:
            records[run_dir / name] = len(rows)
            finished = finished or any(row.get("kind") == "finish" for row in rows)
    return EarlierRun(checkpoints, records, finished)


def remove_earlier_run(earlier: EarlierRun, run_dir: Path) -> None:
    """trainer.overwrite=true: the earlier run's checkpoints and records go, each named in the log."""
    for path in earlier.files():
        path.unlink(missing_ok=True)
    log.warning(f"trainer.overwrite=true: removed the earlier run in {run_dir} "
                f"({', '.join(p.name for p in earlier.files())}); starting over")


def _refuse(run_dir: Path, earlier: EarlierRun, why: str) -> ConfigError:
    return ConfigError(
        f"Run dir {run_dir} holds an earlier run ({earlier.describe()}), and {why} would start over in it and "
        "remove it. Fix: trainer.resume=auto continues it; another hydra.run.dir keeps it; "
        "trainer.overwrite=true replaces it."
    )


def find_resume(cfg, run_dir: Path) -> tuple[Path | None, dict | None]:
    """The checkpoint this run continues from, or (None, None) to start fresh; `cfg` is the whole config.

    A checkpoint that exists but does not load is never passed over quietly: alone, it stops the run;
    beside a loadable one, it is set aside as <name>.damaged<suffix>, so no later save rotates it over the
    good one, and the log says so. Only one process may call this (rank 0): it may move and remove files."""
    t = cfg.trainer
    earlier = earlier_run(run_dir, t.ckpt)
    explicit = Path(t.resume).expanduser() if t.resume not in (None, "auto") else None
    own = {p.resolve() for p in earlier.checkpoints}
    if earlier and t.overwrite:
        if explicit is not None and explicit.resolve() in own:
            raise ConfigError(f"trainer.overwrite=true would remove {explicit}, the checkpoint trainer.resume names. "
                              "Fix: drop trainer.overwrite to continue from it, or copy it elsewhere first.")
        remove_earlier_run(earlier, run_dir)
        earlier = EarlierRun()
    if t.resume is None:
        if earlier:
            raise _refuse(run_dir, earlier, "trainer.resume=null")
        return None, None
    if explicit is not None:
        if earlier and explicit.resolve() not in own:
            raise _refuse(run_dir, earlier, f"resuming {explicit} (another run's checkpoint)")
        return explicit, load_checkpoint(explicit)
    if not earlier:
        return None, None
    loaded, damaged = checkpoints_in(run_dir, t.ckpt) if t.ckpt else ([], [])
    if damaged and not loaded:
        raise CheckpointError(f"{damaged[0][1]} No other checkpoint in {run_dir} to resume from, and a fresh start "
                              "would cut its records. Fix: trainer.resume=<a good checkpoint>, or "
                              "trainer.overwrite=true to start over (it removes the file and the records).")
    if not loaded:
        if earlier.finished:  # a finished run that kept no checkpoint: nothing to continue, everything to lose
            raise _refuse(run_dir, earlier, "a run with no checkpoint to continue from")
        log.warning(f"Run dir {run_dir} holds records ({earlier.describe()}) but no checkpoint: the earlier attempt "
                    "stopped before its first save. Starting over; its records are cut.")
        return None, None
    path, state = max(loaded, key=lambda item: item[1]["step"])
    for bad, why in damaged:
        aside = damaged_path(bad)
        os.replace(bad, aside)
        log.warning(f"{why} Resuming from {path} instead; the damaged file is kept as {aside}.")
    return path, state
