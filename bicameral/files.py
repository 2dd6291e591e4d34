"""Files that are whole or absent: a killed writer never leaves a half-written report or figure behind."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path beside `path` (same suffix, so writers that go by it still do); renamed onto `path`
    only when the block ends without error. A kill mid-write leaves the old file, or none."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    with written_atomically(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
