"""Files that are whole or absent: every writer of the project (checkpoints, records, the token cache, reports)
writes through `written_atomically`, so a killed writer never leaves a half-written file behind."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the renames in `folder` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yields a temp path beside `path` (named `.<name>.<random><suffix>`, so writers that go by the suffix still
    do), renamed onto `path` only when the block ends without error; a kill mid-write leaves the old file, or
    none. `durable`: the file and the rename are fsynced first, for what a power cut must not take (checkpoints,
    records)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def torn_writes(path: str | os.PathLike) -> list[Path]:
    """The temp files that killed writers of `path` left behind."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp*"))


def write_text_atomically(path: str | os.PathLike, text: str, durable: bool = False) -> None:
    with written_atomically(path, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
