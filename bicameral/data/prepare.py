"""Prepare a corpus once: text, JSONL or Parquet -> token shards and meta.json, streamed, memory flat.

    bicameral-prepare INPUT... --out DIR [--tokenizer bytes|bpe|FILE] [--vocab-size N] [--workers N] ...
    (python -m bicameral.data.prepare in a checkout)

Then train with `python train.py data=tokens data.path=DIR`. INPUT is a UTF-8 file or folder, a .jsonl/.json or
.parquet file or folder (read with Hugging Face `datasets`, local files only), or `shakespeare`, the embedded
corpus. The last --val-fraction of the input's bytes is held out as val, cut at line-aligned pieces, so a byte
run and a BPE run of the same input hold out the same text. `--tokenizer bpe` learns a byte-level BPE of
--vocab-size ids from the train split alone.

Each shard is written under a temporary name and renamed when whole, and meta.json is written last: a killed
prepare never leaves a shard set that looks whole.
"""

import argparse
import collections
import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bicameral import __version__
from bicameral.data import shard_format as fmt
from bicameral.data.inputs import DocumentPart, Source, documents, find_sources, pieces
from bicameral.data.tokenizer import ByteTokenizer, HuggingFaceTokenizer
from bicameral.errors import CorpusError
from bicameral.files import write_text_atomically, written_atomically
from bicameral.tools.cli import positive_int, run_tool

DEFAULT_SHARD_TOKENS = 100_000_000  # 200 MB of uint16: few files, and a shard never needs to fit in memory
CHUNK_CHARS = 1 << 22  # text sent to a worker at a time


# ---------------------------------------------------------------------------------------------
# the input as pieces, each in its split


def split_pieces(sources: list[Source], text_field: str, val_fraction: float,
                 total_bytes: int) -> Iterator[tuple[str, str, bool]]:
    """(split, piece, starts a document) for every piece: the pieces that reach past the first (1 - val_fraction)
    of the input's bytes are val (the piece across that line too, so val is never empty)."""
    boundary, seen = (1.0 - val_fraction) * total_bytes, 0
    for document in documents(sources, text_field):
        starts = not isinstance(document, DocumentPart)
        for piece in pieces(document):
            seen += len(piece.encode("utf-8"))
            yield ("val" if seen > boundary else "train"), piece, starts
            starts = False


def count_input(sources: list[Source], text_field: str) -> tuple[int, int]:
    """(UTF-8 bytes, pieces) of the whole input: the split's boundary and the progress bar's total."""
    total = count = 0
    for document in documents(sources, text_field):
        for piece in pieces(document):
            total, count = total + len(piece.encode("utf-8")), count + 1
    return total, count


# ---------------------------------------------------------------------------------------------
# encoding, in worker processes


_worker_tokenizer = None


def _start_worker(tokenizer_json: str | None) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker: the pool is the parallelism
    _worker_tokenizer = ByteTokenizer() if tokenizer_json is None else HuggingFaceTokenizer.from_json(tokenizer_json)


def _encode_chunk(chunk: tuple[str, list[str], int]) -> tuple[str, np.ndarray, int]:
    split, texts, n_bytes = chunk
    return split, encode_all(_worker_tokenizer, texts), n_bytes


def encode_all(tokenizer, texts: list[str]) -> np.ndarray:
    """The texts' ids, concatenated (each encoded on its own, so the result never depends on the chunking)."""
    if isinstance(tokenizer, HuggingFaceTokenizer):
        encoded = tokenizer.encode_batch(texts)
    else:
        encoded = [tokenizer.encode(text) for text in texts]
    return np.concatenate(encoded).astype(np.int64) if encoded else np.zeros(0, dtype=np.int64)


def encoded(tokenizer, chunks: Iterator[tuple[str, list[str], int]], workers: int):
    """(split, ids, UTF-8 bytes) for each chunk, in order; with workers > 1, encoded in that many processes, at
    most two chunks each in flight, so memory stays flat however long the input."""
    if workers == 1:
        for split, texts, n_bytes in chunks:
            yield split, encode_all(tokenizer, texts), n_bytes
        return
    tokenizer_json = tokenizer.json_text if isinstance(tokenizer, HuggingFaceTokenizer) else None
    # spawn: `tokenizers` holds threads that a fork would copy in a locked state
    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (tokenizer_json,)) as pool:
        pending = collections.deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_encode_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def texts_to_encode(sources: list[Source], text_field: str, val_fraction: float, total_bytes: int,
                    writers: dict) -> Iterator[tuple[str, str]]:
    """(split, text) for every piece, a document's first piece after the separator (except a split's first)."""
    for split, piece, starts in split_pieces(sources, text_field, val_fraction, total_bytes):
        writer = writers[split]
        if starts:
            piece = (fmt.DOCUMENT_SEPARATOR if writer.documents else "") + piece
            writer.documents += 1
        yield split, piece


def chunks(items: Iterator[tuple[str, str]]) -> Iterator[tuple[str, list[str], int]]:
    """(split, texts, their UTF-8 bytes) in runs of about CHUNK_CHARS, never across splits."""
    split, texts, size, count = None, [], 0, 0
    for item_split, text in items:
        if texts and (item_split != split or size >= CHUNK_CHARS):
            yield split, texts, count
            texts, size, count = [], 0, 0
        split = item_split
        texts.append(text)
        size += len(text)
        count += len(text.encode("utf-8"))
    if texts:
        yield split, texts, count


# ---------------------------------------------------------------------------------------------
# writing shards


class ShardWriter:
    """One split's shards: ids appended to a temporary file, renamed when the shard is full or the split ends."""

    def __init__(self, folder: Path, split: str, dtype: str, shard_tokens: int):
        self.folder, self.split, self.shard_tokens = folder, split, shard_tokens
        self.dtype = np.dtype(fmt.DTYPES[dtype]).newbyteorder("<")
        self.shards: list[dict] = []
        self.tokens = self.bytes = self.documents = 0
        self._stack, self._file, self._digest, self._count = None, None, None, 0

    def write(self, ids: np.ndarray) -> None:
        data = ids.astype(self.dtype)  # little-endian, as every reader expects
        while len(data):
            if self._file is None:
                self._open()
            take = data[: self.shard_tokens - self._count]
            raw = take.tobytes()
            self._file.write(raw)
            self._digest.update(raw)
            self._count += len(take)
            data = data[len(take):]
            if self._count == self.shard_tokens:
                self._close()

    def finish(self) -> dict:
        if self._file is not None:
            self._close()
        if not self.shards:
            raise CorpusError(f"The input leaves the {self.split} split empty. Fix: a larger input, or another "
                              "--val-fraction.")
        return {"shards": self.shards, "tokens": self.tokens, "bytes": self.bytes, "documents": self.documents}

    def abort(self) -> None:
        if self._stack is not None:  # the temporary file is removed, never renamed
            self._file.close()
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self._stack = None

    def _open(self) -> None:
        name = fmt.shard_name(self.split, len(self.shards))
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(written_atomically(self.folder / name, durable=True))
        self._file = open(tmp, "wb")  # closed in _close (renamed) or abort (removed)
        self._digest, self._count = hashlib.sha1(), 0

    def _close(self) -> None:
        self._file.close()
        self._stack.close()  # the rename: the shard is whole
        self.shards.append({"file": fmt.shard_name(self.split, len(self.shards)), "tokens": self._count,
                            "sha1": self._digest.hexdigest()})
        self.tokens += self._count
        self._stack = self._file = None


# ---------------------------------------------------------------------------------------------
# progress a person can follow


class Progress:
    def __init__(self, total_bytes: int, label: str, stream=sys.stderr):
        self.total, self.label, self.stream = max(total_bytes, 1), label, stream
        self.done, self.start, self.last = 0, time.perf_counter(), 0.0
        self.tty = stream.isatty()

    def advance(self, n_bytes: int) -> None:
        self.done += n_bytes
        now = time.perf_counter()
        if now - self.last >= (0.2 if self.tty else 5.0) or self.done >= self.total:
            self.last = now
            self.stream.write(("\r" if self.tty else "") + self.line() + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / max(elapsed, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"{self.label}: {self.done / 2**20:,.1f}/{self.total / 2**20:,.1f} MB "
                f"({100 * self.done / self.total:3.0f}%) {rate / 2**20:,.1f} MB/s eta {eta:,.0f}s")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


# ---------------------------------------------------------------------------------------------
# prepare


def make_tokenizer(choice: str, vocab_size: int | None, train_texts: Iterator[str]):
    if choice == "bytes":
        if vocab_size is not None:
            raise CorpusError("--vocab-size is for --tokenizer bpe; bytes always have 256 ids. Fix: drop --vocab-size.")
        return ByteTokenizer()
    if choice == "bpe":
        if vocab_size is None:
            raise CorpusError("--tokenizer bpe needs its size. Fix: add --vocab-size N (e.g. 1024 or 32768).")
        return HuggingFaceTokenizer.train_bpe(train_texts, vocab_size)
    if vocab_size is not None:
        raise CorpusError("--vocab-size is for --tokenizer bpe; a tokenizer file has its own. Fix: drop it.")
    return HuggingFaceTokenizer.from_file(choice)


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier corpus unless told to; with --overwrite, its meta.json goes first, so a
    prepare killed half-way never leaves the old meta.json describing new shards."""
    ours = [out / fmt.META_FILE, out / fmt.TOKENIZER_FILE, *out.glob("*.bin")] if out.is_dir() else []
    present = [p for p in ours if p.exists()]
    if present and not overwrite:
        raise CorpusError(f"{out} already holds a corpus ({present[0].name}). Fix: --overwrite to replace it, or "
                          "another --out.")
    for path in present:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def prepare(inputs: list[str], out: str | Path, tokenizer: str = "bytes", vocab_size: int | None = None,
            val_fraction: float = 0.05, shard_tokens: int = DEFAULT_SHARD_TOKENS, workers: int = 1,
            text_field: str = "text", dtype: str = "auto", overwrite: bool = False, log=print) -> dict:
    """Write `inputs` as token shards and meta.json into `out`; the meta."""
    if not 0.0 < val_fraction < 1.0:
        raise CorpusError(f"--val-fraction {val_fraction} must be in (0, 1). Fix: e.g. --val-fraction 0.05.")
    if dtype != "auto" and dtype not in fmt.DTYPES:
        raise CorpusError(f"--dtype {dtype}: use auto, {', '.join(fmt.DTYPES)}.")
    sources = find_sources(inputs)
    out = Path(out).expanduser()
    total_bytes, n_pieces = count_input(sources, text_field)
    if total_bytes == 0:
        raise CorpusError(f"The input ({', '.join(inputs)}) holds no text. Fix: pass non-empty files.")
    if n_pieces < 2:
        raise CorpusError(f"The input is {total_bytes} bytes in one piece: too small to hold out a val split. "
                          "Fix: a larger input.")

    def train_texts() -> Iterator[str]:
        return (piece for split, piece, _ in split_pieces(sources, text_field, val_fraction, total_bytes)
                if split == "train")

    started = time.perf_counter()
    if tokenizer == "bpe":
        log(f"bicameral-prepare: learning a BPE of {vocab_size} ids from the train split ...")
    tok = make_tokenizer(tokenizer, vocab_size, train_texts())
    if vocab_size is not None and tok.vocab_size < vocab_size:
        log(f"bicameral-prepare: the train split gave {tok.vocab_size} ids, not {vocab_size}: it has no more merges")
    dtype = fmt.smallest_dtype(tok.vocab_size) if dtype == "auto" else dtype
    if tok.vocab_size - 1 > np.iinfo(fmt.DTYPES[dtype]).max:
        raise CorpusError(f"--dtype {dtype} cannot hold the ids of a {tok.vocab_size}-token vocabulary. "
                          f"Fix: --dtype {fmt.smallest_dtype(tok.vocab_size)} (or --dtype auto).")
    check_out_dir(out, overwrite)

    writers = {split: ShardWriter(out, split, dtype, shard_tokens) for split in fmt.SPLITS}
    progress = Progress(total_bytes, f"encoding with {workers} worker{'s' * (workers > 1)}")
    encode_started = time.perf_counter()
    try:
        items = texts_to_encode(sources, text_field, val_fraction, total_bytes, writers)
        for split, ids, n_bytes in encoded(tok, chunks(items), workers):
            if len(ids) and int(ids.max()) >= tok.vocab_size:
                raise CorpusError(f"The tokenizer produced id {int(ids.max())}, outside its {tok.vocab_size} ids. "
                                  "Fix: use another tokenizer file.")
            writers[split].write(ids)
            writers[split].bytes += n_bytes
            progress.advance(n_bytes)
        splits = {split: writer.finish() for split, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        progress.close()
    encode_seconds = time.perf_counter() - encode_started

    entry = tok.save(out)
    digests = [s["sha1"] for split in fmt.SPLITS for s in splits[split]["shards"]]
    meta = {"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION, "tokenizer": entry,
            "vocab_size": tok.vocab_size, "dtype": dtype, "splits": splits,
            "content_sha1": hashlib.sha1("".join(digests).encode()).hexdigest(), "val_fraction": val_fraction,
            "sources": list(inputs), "created_by": f"bicameral-prepare {__version__}"}
    write_text_atomically(out / fmt.META_FILE, json.dumps(meta, indent=1) + "\n", durable=True)
    mb = total_bytes / 2**20
    log(f"bicameral-prepare: {splits['train']['tokens']:,} train / {splits['val']['tokens']:,} val tokens "
        f"({tok.meta()['kind']}, vocab {tok.vocab_size}, {dtype}) in "
        f"{sum(len(s['shards']) for s in splits.values())} shards; {mb:,.1f} MB encoded at "
        f"{mb / max(encode_seconds, 1e-9):,.1f} MB/s with {workers} worker{'s' * (workers > 1)} "
        f"({time.perf_counter() - started:,.0f}s in all) -> {out}")
    return meta


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bicameral-prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="text, JSONL or Parquet files or folders, or shakespeare (the embedded corpus)")
    parser.add_argument("--out", required=True, help="the shard folder to write")
    parser.add_argument("--tokenizer", default="bytes", help="bytes (default), bpe, or a tokenizer.json file")
    parser.add_argument("--vocab-size", type=positive_int, default=None, help="ids of the BPE (--tokenizer bpe)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="tail of the input held out (default 0.05)")
    parser.add_argument("--shard-tokens", type=positive_int, default=DEFAULT_SHARD_TOKENS, help="tokens per shard")
    parser.add_argument("--workers", type=positive_int, default=1, help="encoding processes (default 1)")
    parser.add_argument("--text-field", default="text", help="the text column of JSONL/Parquet rows")
    parser.add_argument("--dtype", default="auto",
                        help="auto (the smallest that holds the vocab), uint8, uint16 or uint32")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    args = parser.parse_args(argv)
    return prepare(args.inputs, args.out, args.tokenizer, args.vocab_size, args.val_fraction, args.shard_tokens,
                   args.workers, args.text_field, args.dtype, args.overwrite, log=lambda line: print(line, flush=True))


def cli() -> None:
    run_tool(main)


if __name__ == "__main__":
    cli()
