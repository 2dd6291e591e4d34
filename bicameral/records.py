"""Every step recorded exactly once in metrics.jsonl and events.jsonl, whatever the stops and resumes.

A run that resumes from a checkpoint at step S trains steps S+1... again, so the rows a crashed or
stopped attempt wrote after S are cut first (S = 0 for a run that starts fresh in a dir that
already has records, as after a kill before the first save): every row or event with `step > S` goes, whatever its
kind (train, val, unlock, skip, and a finish, failed or preempted record after S). Records at or
before S stay, terminal ones included: they are what happened up to the checkpoint. A line torn by
a kill mid-write goes too. Each file is rewritten atomically (temp file, fsync, rename), so a crash
during the cut leaves the old file or the new one, never a mix.
"""

import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("bicameral")

RECORD_FILES = ("metrics.jsonl", "events.jsonl")


def _after(line: str, step: int) -> bool:
    """True for a line to cut: torn (no newline, or not JSON) or recorded after `step`."""
    if not line.endswith("\n"):
        return True  # the writer was killed mid-line
    try:
        row = json.loads(line)
    except ValueError:
        return True
    # a spike is recorded after its unlock's step, at "at_step": that is when it was written
    row_step = row.get("at_step", row.get("step")) if isinstance(row, dict) else None
    return isinstance(row_step, int) and row_step > step


def _replace_atomically(path: Path, lines: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


def cut_after(run_dir: str | os.PathLike, step: int) -> dict[str, int]:
    """Cut the records after `step` from the run dir's JSONL files; {file name: lines cut}."""
    run_dir = Path(run_dir)
    cut = {}
    for name in RECORD_FILES:
        path = run_dir / name
        if not path.exists():
            continue
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.readlines()
        kept = [line for line in lines if not _after(line, step)]
        if len(kept) < len(lines):
            _replace_atomically(path, kept)
            cut[name] = len(lines) - len(kept)
    if cut:
        counts = ", ".join(f"{n} from {name}" for name, n in cut.items())
        log.info(f"Records after step {step} cut ({counts}): those steps are trained again")
    return cut
