"""What bicameral-prepare reads: documents from local text files or folders, JSONL or Parquet files (through Hugging
Face `datasets`, from local files only), or the embedded corpus, streamed so memory stays flat whatever their size.

A document is cut into line-aligned pieces of about PIECE_BYTES; the piece is the unit of the train/val split,
so the split is the same text whatever tokenizer encodes it.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bicameral.data.corpus import TEXT_SUFFIXES, shakespeare_text
from bicameral.errors import CorpusError

PIECE_BYTES = 1 << 16
READ_BYTES = 1 << 22  # a large text file is read this much at a time
TABLE_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
EMBEDDED = "shakespeare"


@dataclass(frozen=True)
class Source:
    kind: str  # text | json | parquet | embedded
    path: Path | None


def find_sources(inputs: list[str]) -> list[Source]:
    """Each input as the sources it holds, in a fixed (sorted) order; a bad input fails in one line."""
    if not inputs:
        raise CorpusError("Nothing to prepare. Fix: bicameral-prepare FILE_OR_FOLDER... --out DIR "
                          f"(or {EMBEDDED} for the embedded corpus).")
    sources = []
    for item in inputs:
        if item == EMBEDDED:
            sources.append(Source("embedded", None))
            continue
        path = Path(item).expanduser()
        if not path.exists():
            raise CorpusError(f"Input {path} does not exist. Fix: pass a UTF-8 text, JSONL or Parquet file or folder.")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found = [source_of(p) for p in files]
        found = [s for s in found if s is not None]
        if not found:
            raise CorpusError(f"Input {path} holds no text ({', '.join(sorted(TEXT_SUFFIXES))}), JSONL or Parquet "
                              "files. Fix: point at files of those kinds.")
        sources.extend(found)
    return sources


def source_of(path: Path) -> Source | None:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return Source(TABLE_SUFFIXES[suffix], path)
    return Source("text", path) if suffix in TEXT_SUFFIXES else None


def documents(sources: list[Source], text_field: str) -> Iterator[str]:
    """Every document of every source, in order; a text file is one document, read in line-aligned chunks and
    yielded whole only when small (`pieces` cuts it again either way)."""
    for source in sources:
        if source.kind == "embedded":
            yield shakespeare_text()
        elif source.kind == "text":
            yield from text_documents(source.path)
        else:
            yield from table_documents(source, text_field)


def text_documents(path: Path) -> Iterator[str]:
    """A UTF-8 file as one document, streamed: a file larger than READ_BYTES arrives as several line-aligned
    parts of one document (`DocumentPart`), so memory holds a part at a time."""
    with open(path, "rb") as f:
        head = f.read(8192)
        if b"\x00" in head:
            raise CorpusError(f"{path} looks binary (NUL bytes). Fix: pass UTF-8 text.")
        f.seek(0)
        carry, offset, first = b"", 0, True
        while True:
            block = f.read(READ_BYTES)
            data = carry + block
            if block:  # keep a partial last line for the next read
                cut = data.rfind(b"\n") + 1 or whole_characters(data)
                data, carry = data[:cut], data[cut:]
            else:
                carry = b""
            if data:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise CorpusError(f"{path} is not valid UTF-8 (byte {offset + err.start}). "
                                      "Fix: convert it with iconv -t UTF-8.") from None
                yield text if first else DocumentPart(text)
                first = False
                offset += len(data)
            if not block:
                return


def whole_characters(data: bytes) -> int:
    """The length of `data` without an incomplete UTF-8 character at its end: a block cut with no newline in
    it must not split a character, or valid text would fail to decode."""
    start = len(data) - 1
    while start > len(data) - 4 and start >= 0 and data[start] & 0xC0 == 0x80:  # continuation bytes
        start -= 1
    if start < 0:
        return len(data)
    lead = data[start]
    length = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else \
        4 if lead >> 3 == 0b11110 else 1  # an invalid lead byte: decoding names it
    return start if start + length > len(data) else len(data)


class DocumentPart(str):
    """The continuation of the document before it (no separator between them)."""


def table_documents(source: Source, text_field: str) -> Iterator[str]:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only: nothing is ever downloaded
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from datasets import load_dataset
    except ImportError:
        raise CorpusError(f"{source.path}: JSONL and Parquet inputs need the 'datasets' package. "
                          "Fix: pip install 'bicameral[data]'.") from None
    try:
        rows = load_dataset(source.kind, data_files=[str(source.path)], split="train", streaming=True)
        for row in rows:
            if text_field not in row:
                raise CorpusError(f"{source.path} has no field {text_field!r} (its fields: {', '.join(row)}). "
                                  "Fix: --text-field NAME.")
            text = row[text_field]
            if isinstance(text, str) and text:
                yield text
    except CorpusError:
        raise
    except Exception as err:
        raise CorpusError(f"{source.path} cannot be read as {source.kind} ({str(err).splitlines()[0]}). "
                          'Fix: check the file, or convert it to JSONL, one {"text": ...} object per line.'
                          ) from None


def pieces(text: str) -> Iterator[str]:
    """Line-aligned pieces of about PIECE_BYTES characters (a line longer than that is one piece)."""
    start = 0
    while start < len(text):
        end = min(start + PIECE_BYTES, len(text))
        if end < len(text):
            newline = text.rfind("\n", start, end)
            end = newline + 1 if newline >= start else (text.find("\n", end) + 1 or len(text))
        yield text[start:end]
        start = end
