"""Open a folder of token shards, in any format of `shard_format`, as memory-mapped train and val streams.

Everything is checked before a step is trained, each problem in one line that names the file and the fix:
the folder, the shard sizes, the llm.c header, meta.json against its files, the dtype against the vocabulary,
and the ids in a sample of windows against the vocabulary.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bicameral.data import shard_format as fmt
from bicameral.data.corpus import CorpusError
from bicameral.data.streams import MappedShard, ShardedTokens

FORMATS = ("auto", "bicameral", "nanogpt", "llmc")
FINGERPRINT_BYTES = 1 << 16  # of a foreign shard, hashed at each end (with its size): hashing it whole takes minutes


@dataclass
class ShardSet:
    folder: Path
    format: str  # bicameral | nanogpt | llmc
    train: ShardedTokens
    val: ShardedTokens
    vocab_size: int | None  # None: the format does not say (nanoGPT, llm.c)
    tokenizer: dict | None  # meta.json's tokenizer entry; None: the format does not say
    fingerprint: str  # a content hash, recorded in checkpoints so a resume on other data is caught


def open_shards(path: str | Path | None, format: str = "auto", key: str = "data.path") -> ShardSet:
    """The shard set in folder `path`; `key` is the setting that named it, so each fix names it too."""
    if format not in FORMATS:
        raise CorpusError(f"data.format={format!r} is not a shard format. Fix: data.format=auto (or one of "
                          f"{', '.join(FORMATS[1:])}).")
    if not path:
        raise CorpusError(f"data=tokens needs a folder of token shards. Fix: {key}=DIR "
                          "(make one with bicameral-prepare).")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CorpusError(f"Shard folder {folder} does not exist. Fix: set {key} to a folder made by "
                          "bicameral-prepare, or one holding nanoGPT's train.bin/val.bin or llm.c shards.")
    if format == "auto":
        format = detect_format(folder, key)
    opener = {"bicameral": open_bicameral, "nanogpt": open_nanogpt, "llmc": open_llmc}[format]
    return opener(folder, key)


def detect_format(folder: Path, key: str) -> str:
    if (folder / fmt.META_FILE).is_file():
        return "bicameral"
    found = split_files(folder)
    if not found["train"] or not found["val"]:
        raise CorpusError(f"Shard folder {folder} holds no token shards (no {fmt.META_FILE}, no *train*.bin and "
                          f"*val*.bin). Fix: prepare one with bicameral-prepare INPUT --out {folder}, or set {key}.")
    return "llmc" if read_magic(found["train"][0]) == fmt.LLMC_MAGIC else "nanogpt"


def split_files(folder: Path) -> dict[str, list[Path]]:
    """The .bin files of each split, by name (train.bin, fineweb_train_000001.bin, ...), in sorted order."""
    bins = sorted(p for p in folder.glob("*.bin") if p.is_file())
    return {split: [p for p in bins if split in p.stem] for split in fmt.SPLITS}


def read_magic(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(4)
    return int(np.frombuffer(head, dtype="<i4")[0]) if len(head) == 4 else None


def mapped(path: Path, dtype, offset: int = 0) -> MappedShard:
    """A read-only map of the tokens in `path` after `offset` bytes; a size that is not whole tokens fails."""
    itemsize = np.dtype(dtype).itemsize
    body = path.stat().st_size - offset
    if body % itemsize:
        raise CorpusError(f"Shard {path} holds {body} bytes of tokens, not a whole number of {np.dtype(dtype).name} "
                          f"tokens ({itemsize} bytes each): it is truncated or of another dtype. "
                          "Fix: prepare it again.")
    if body == 0:
        raise CorpusError(f"Shard {path} holds no tokens. Fix: remove it, or prepare the corpus again.")
    return MappedShard(path, dtype, offset)


def sampled_fingerprint(paths: list[Path]) -> str:
    """Names, sizes and both ends of every file: cheap, and a changed or swapped shard changes it."""
    digest = hashlib.sha1()
    for path in paths:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            f.seek(max(size - FINGERPRINT_BYTES, 0))
            digest.update(f.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# the three formats


def open_bicameral(folder: Path, key: str) -> ShardSet:
    meta_path = folder / fmt.META_FILE
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta.get("format") != fmt.FORMAT_NAME:
            raise ValueError(f"format is {meta.get('format')!r}, not {fmt.FORMAT_NAME!r}")
        if meta.get("version") != fmt.FORMAT_VERSION:
            raise ValueError(f"version {meta.get('version')!r}; this bicameral reads version {fmt.FORMAT_VERSION}")
        dtype, vocab_size, splits = meta["dtype"], int(meta["vocab_size"]), meta["splits"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorpusError(f"{meta_path} cannot be read ({type(err).__name__}: {err}). "
                          f"Fix: prepare the corpus again with bicameral-prepare --out {folder} --overwrite.") from None
    if dtype not in fmt.DTYPES:
        raise CorpusError(f"{meta_path} names dtype {dtype!r}. Fix: prepare again (dtypes: {', '.join(fmt.DTYPES)}).")
    check_dtype_holds(dtype, vocab_size, meta_path)
    streams = {}
    for split in fmt.SPLITS:
        listed = splits.get(split, {}).get("shards", [])
        if not listed:
            raise CorpusError(f"{meta_path} lists no {split} shards. Fix: prepare the corpus again.")
        maps = []
        for shard in listed:
            path = folder / shard["file"]
            if not path.is_file():
                raise CorpusError(f"{meta_path} does not match its shards: {path.name} is missing. "
                                  "Fix: copy the whole folder, or prepare the corpus again.")
            tokens = mapped(path, fmt.DTYPES[dtype])
            if len(tokens) != shard["tokens"]:
                raise CorpusError(f"{meta_path} does not match its shards: {path.name} holds {len(tokens)} tokens, "
                                  f"meta.json says {shard['tokens']}. Fix: prepare the corpus again.")
            maps.append(tokens)
        streams[split] = ShardedTokens(maps)
    unlisted = sorted({p.name for p in folder.glob("*.bin")} - {s["file"] for sp in splits.values()
                                                                 for s in sp.get("shards", [])})
    if unlisted:
        raise CorpusError(f"{meta_path} does not match its shards: {', '.join(unlisted[:3])} are not in it. "
                          "Fix: remove them, or prepare the corpus again.")
    return ShardSet(folder, "bicameral", streams["train"], streams["val"], vocab_size, meta.get("tokenizer"),
                    str(meta.get("content_sha1", ""))[:12] or sampled_fingerprint(sorted(folder.glob("*.bin"))))


def open_nanogpt(folder: Path, key: str) -> ShardSet:
    """nanoGPT's train.bin / val.bin: raw uint16 token ids (its meta.pkl is a pickle and is never read)."""
    streams = {}
    for split in fmt.SPLITS:
        path = folder / f"{split}.bin"
        if not path.is_file():
            raise CorpusError(f"{folder} has no {path.name}: nanoGPT's format is train.bin and val.bin. "
                              f"Fix: set {key} to the folder that holds both.")
        if read_magic(path) == fmt.LLMC_MAGIC:
            raise CorpusError(f"{path} starts with llm.c's header, not nanoGPT's raw tokens. Fix: data.format=llmc.")
        streams[split] = ShardedTokens([mapped(path, np.uint16)])
    paths = [folder / "train.bin", folder / "val.bin"]
    return ShardSet(folder, "nanogpt", streams["train"], streams["val"], None, None, sampled_fingerprint(paths))


def open_llmc(folder: Path, key: str) -> ShardSet:
    """llm.c / modded-nanogpt shards: a 256 x int32 header (magic, version, token count), then the tokens."""
    found = split_files(folder)
    streams = {}
    for split in fmt.SPLITS:
        if not found[split]:
            raise CorpusError(f"{folder} has no *{split}*.bin shard. Fix: set {key} to a folder with both splits.")
        streams[split] = ShardedTokens([llmc_tokens(path) for path in found[split]])
    return ShardSet(folder, "llmc", streams["train"], streams["val"], None, None,
                    sampled_fingerprint(found["train"] + found["val"]))


def llmc_tokens(path: Path) -> np.ndarray:
    header_bytes = fmt.LLMC_HEADER_INTS * 4
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(header_bytes), dtype="<i4")
    if len(header) < 3 or header[0] != fmt.LLMC_MAGIC:
        found = int(header[0]) if len(header) else None
        raise CorpusError(f"Shard {path} has header magic {found}, not llm.c's {fmt.LLMC_MAGIC}: it is not an llm.c "
                          "shard, or it is damaged. Fix: data.format=nanogpt for raw uint16 tokens, or make it again.")
    version, count = int(header[1]), int(header[2])
    if version not in fmt.LLMC_VERSIONS:
        raise CorpusError(f"Shard {path} has header version {version}; llm.c's are 1 (uint16) and 2 (uint32). "
                          "Fix: make the shard again with llm.c's writer.")
    tokens = mapped(path, fmt.LLMC_VERSIONS[version], offset=header_bytes)
    if len(tokens) != count:
        raise CorpusError(f"Shard {path} holds {len(tokens)} tokens, its header says {count}: it is truncated. "
                          "Fix: copy or make it again.")
    return tokens


# ---------------------------------------------------------------------------------------------
# the vocabulary


def check_dtype_holds(dtype: str, vocab_size: int, source: Path) -> None:
    if vocab_size - 1 > np.iinfo(fmt.DTYPES[dtype]).max:
        raise CorpusError(f"{source}: dtype {dtype} cannot hold the ids of a {vocab_size}-token vocabulary. "
                          f"Fix: prepare again with --dtype {fmt.smallest_dtype(vocab_size)} (or --dtype auto).")


def check_ids_fit(shards: ShardSet, vocab_size: int, key: str) -> None:
    """Ids at or above vocab_size in a sample of each split's windows fail here, not as an index error mid-run."""
    for split in fmt.SPLITS:
        top = getattr(shards, split).max_id()
        if top >= vocab_size:
            raise CorpusError(f"{shards.folder} holds token id {top} in its {split} split, but the vocabulary has "
                              f"{vocab_size} ids (0..{vocab_size - 1}). Fix: set {key} to the tokenizer's vocab size "
                              f"(at least {top + 1}), or prepare the shards again.")
