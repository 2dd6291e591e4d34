"""Read back what `wandb` wrote in offline mode, so tests can assert on it.

An offline run folder (`<WANDB_DIR>/wandb/offline-run-<time>-<id>/`) holds a
`run-<id>.wandb` transaction log: a LevelDB-style log of serialized
`wandb.proto.wandb_internal_pb2.Record` protobufs. wandb's Go core writes it and
the Python package (0.31.0) ships no reader for it, so the small log format is
decoded here directly:

    file   := header block*
    header := ident ":W&B" (4 bytes), magic 0xBEE1 (uint16 LE), version 0 (uint8)
    block  := 32 KiB of chunks; a tail shorter than a chunk header is zero padding
    chunk  := crc32 (uint32 LE), length (uint16 LE), type (uint8), data[length]

A record too big for the rest of a block is split into FIRST/MIDDLE*/LAST
chunks; a record that fits is one FULL chunk. The crc is zlib.crc32 of the type
byte followed by the data.

wandb-core buffers writes to this log, so read it only after `run.finish()`
(or process exit): before that, recent rows - even the run record - may be missing.
WANDB_DIR is read once per process; between tests pass `wandb.init(dir=...)` or
call `wandb.teardown()`, or later runs land in the first test's folder.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

_HEADER = struct.Struct("<4sHB")  # ident, magic, version
_CHUNK = struct.Struct("<IHB")  # crc32, length, type
_IDENT, _MAGIC, _VERSION = b":W&B", 0xBEE1, 0
_BLOCK_LEN = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def find_offline_runs(root: str | Path) -> list[Path]:
    """All wandb offline run folders (`offline-run-*`) under root (searched recursively), sorted."""
    # The folder name starts with a timestamp, so sorting by path is also
    # (to the second) chronological for runs in the same WANDB_DIR.
    return sorted(p for p in Path(root).rglob("offline-run-*") if p.is_dir())


@dataclass
class OfflineRun:
    """One offline run, as recorded in its transaction log."""

    run_id: str
    name: str | None
    group: str | None
    tags: list[str] = field(default_factory=list)
    job_type: str | None = None
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    artifacts: list[dict] = field(default_factory=list)  # {"name", "type", "files": [paths in the artifact]}


def read_offline_run(run_dir: str | Path) -> OfflineRun:
    """Parse the run-*.wandb transaction log inside an offline run folder."""
    logs = sorted(Path(run_dir).glob("run-*.wandb"))
    if len(logs) != 1:
        raise FileNotFoundError(f"expected one run-*.wandb in {run_dir}, found {logs}")

    run: OfflineRun | None = None
    config: dict = {}
    summary: dict = {}
    history: list[dict] = []
    artifacts: list[dict] = []

    for record in iter_records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            # Written at init (and again on resume); carries the initial config.
            r = record.run
            run = OfflineRun(
                run_id=r.run_id,
                name=r.display_name or None,
                group=r.run_group or None,
                tags=list(r.tags),
                job_type=r.job_type or None,
            )
            _apply(config, r.config.update, r.config.remove)
            _apply(summary, r.summary.update, r.summary.remove)
        elif kind == "config":
            _apply(config, record.config.update, record.config.remove)
        elif kind == "summary":
            # Summary is written as a stream of partial updates, not one final
            # snapshot, so replaying them in order yields the final values.
            _apply(summary, record.summary.update, record.summary.remove)
        elif kind == "history":
            history.append(_history_row(record.history))
        elif kind == "artifact":
            a = record.artifact
            artifacts.append({"name": a.name, "type": a.type, "files": sorted(e.path for e in a.manifest.contents)})

    if run is None:
        # wandb-core buffers the log and flushes it at finish/exit.
        raise ValueError(f"no run record in {logs[0]}; was run.finish() called?")
    run.config = _plain_config(config)
    run.summary = summary
    run.history = history
    run.artifacts = artifacts
    return run


def iter_records(path: str | Path) -> Iterator[pb.Record]:
    """Yield every protobuf Record in a `.wandb` transaction log, in order.

    A truncated trailing chunk (a run still being written) ends the scan quietly.
    """
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size or _HEADER.unpack_from(data) != (_IDENT, _MAGIC, _VERSION):
        raise ValueError(f"{path} is not a wandb transaction log (version {_VERSION})")

    pos = _HEADER.size
    pending = b""  # payload of a record split across FIRST/MIDDLE chunks
    while pos < len(data):
        # Chunks never straddle a block boundary; a short tail is padding.
        room = _BLOCK_LEN - pos % _BLOCK_LEN
        if room < _CHUNK.size:
            pos += room
            continue
        if pos + _CHUNK.size > len(data):
            return
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        start, pos = pos + _CHUNK.size, pos + _CHUNK.size + length
        if pos > len(data):
            return
        payload = data[start:pos]
        if crc != zlib.crc32(payload, zlib.crc32(bytes([kind]))):
            raise ValueError(f"{path}: bad checksum at byte {start - _CHUNK.size}")

        if kind in (_FULL, _FIRST):
            pending = payload
        elif kind in (_MIDDLE, _LAST):
            pending += payload
        else:
            raise ValueError(f"{path}: unknown chunk type {kind}")
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _key_path(item: Any) -> list[str]:
    """An item's key as a path: `nested_key` if set, else the flat `key`."""
    return list(item.nested_key) or [item.key]


def _item_value(item: Any) -> Any:
    """Decode an item's value; history items may use typed fields instead of JSON."""
    if item.value_json:
        return json.loads(item.value_json)
    # HistoryItem has a `value` oneof (none/boolean/integer/number/text/json).
    typed = item.WhichOneof("value") if isinstance(item, pb.HistoryItem) else None
    if typed is None or typed == "none":
        return None
    if typed == "json":
        return json.loads(item.json)
    return getattr(item, typed)


def _set_path(target: dict, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = value


def _del_path(target: dict, path: list[str]) -> None:
    node: Any = target
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)


def _apply(target: dict, updates: Iterable[Any], removes: Iterable[Any] = ()) -> None:
    """Apply config/summary update and remove items to a nested dict."""
    for item in updates:
        _set_path(target, _key_path(item), _item_value(item))
    for item in removes:
        _del_path(target, _key_path(item))


def _history_row(history: pb.HistoryRecord) -> dict:
    """One wandb.log() row; nested keys become nested dicts, as logged."""
    row: dict = {}
    for item in history.item:
        _set_path(row, _key_path(item), _item_value(item))
    # `_step` is normally an item too; fall back to the record's step number.
    row.setdefault("_step", history.step.num)
    return row


def _plain_config(config: dict) -> dict:
    """The user's config: without wandb's `_wandb` entry, `{"value": v}` wrapping undone.

    The transaction log stores raw values; the wrapped `{"value": v, "desc": d}`
    form is what config.yaml and the server use, and there every top-level
    entry is wrapped. Unwrapping only when all entries look wrapped keeps a
    user dict such as `{"opt": {"value": 1}}` intact.
    """

    def wrapped(v: Any) -> bool:
        return isinstance(v, dict) and "value" in v and set(v) <= {"value", "desc"}

    if config and all(wrapped(v) for v in config.values()):
        config = {k: v["value"] for k, v in config.items()}
    return {k: v for k, v in config.items() if k != "_wandb"}
