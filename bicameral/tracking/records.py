"""Every step recorded exactly once in metrics.jsonl and events.jsonl, whatever the stops and resumes.

A run that resumes from a checkpoint at step S trains steps S+1... again, so the rows a crashed or
stopped attempt wrote after S are cut first (S = 0 for a run that starts fresh in a dir that
already has records, as after a kill before the first save): every row or event with `step > S` goes, whatever its
kind (train, val, unlock, skip, and a finish, failed or preempted record after S). Records at or
before S stay, terminal ones included: they are what happened up to the checkpoint. A line torn by
a kill mid-write goes too, and so does a line whose bytes are not UTF-8 (named in the log): a
damaged record never blocks a resume. Each file is rewritten atomically (temp file, fsync, rename), so a crash
during the cut leaves the old file or the new one, never a mix.
"""

import json
import logging
import os
from pathlib import Path

from bicameral.files import written_atomically

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
    with written_atomically(path, durable=True) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)


def _read_lines(path: Path) -> list[str | None]:
    """The file's lines with their endings; None for a line whose bytes are not UTF-8."""
    lines = []
    for raw in path.read_bytes().splitlines(keepends=True):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(None)
    return lines


def record_rows(path: Path) -> list[dict]:
    """The readable rows of a record file ([] when there is none); damaged or torn lines are left out."""
    if not path.exists():
        return []
    rows = []
    for line in _read_lines(path):
        if line is None or not line.endswith("\n"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def cut_after(run_dir: str | os.PathLike, step: int) -> dict[str, int]:
    """Cut the records after `step` from the run dir's JSONL files; {file name: lines cut}."""
    run_dir = Path(run_dir)
    cut = {}
    for name in RECORD_FILES:
        path = run_dir / name
        if not path.exists():
            continue
        lines = _read_lines(path)
        damaged = [i + 1 for i, line in enumerate(lines) if line is None]
        if damaged:
            log.warning(f"{path}: line(s) {', '.join(map(str, damaged))} are not UTF-8 (damaged); cut")
        kept = [line for line in lines if line is not None and not _after(line, step)]
        if len(kept) < len(lines):
            _replace_atomically(path, kept)
            cut[name] = len(lines) - len(kept)
    if cut:
        counts = ", ".join(f"{n} from {name}" for name, n in cut.items())
        log.info(f"Records after step {step} cut ({counts}): those steps are trained again")
    return cut
