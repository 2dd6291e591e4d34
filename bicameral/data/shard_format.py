"""The on-disk token shard formats: bicameral's own (what `bicameral-prepare` writes) and the two it reads.

bicameral's own, a folder:

    meta.json            what the shards hold (below); written last, so a folder without it is not a corpus
    train_000000.bin     raw little-endian token ids of meta["dtype"], no header; documents joined by "\\n\\n"
    val_000000.bin       the held-out tail of the input, in the same form
    tokenizer.json       a Hugging Face `tokenizers` file, when the tokenizer is not bytes

    meta.json = {
      "format": "bicameral-shards", "version": 1,
      "tokenizer": {"kind": "bytes"}
                 | {"kind": "huggingface", "file": "tokenizer.json", "sha1": <hex of the file's bytes>},
      "vocab_size": int, "dtype": "uint8" | "uint16" | "uint32",
      "splits": {"train": {"shards": [{"file": "train_000000.bin", "tokens": int, "sha1": hex}, ...],
                           "tokens": int, "bytes": int, "documents": int},
                 "val": {...}},                   # bytes: UTF-8 bytes of the text that went in
      "content_sha1": hex,                        # sha1 of every shard's sha1 hex, train then val, in order
      "val_fraction": float, "sources": [str, ...], "created_by": "bicameral-prepare <version>"}

nanoGPT's: `train.bin` and `val.bin`, raw uint16, no header (its meta.pkl is a pickle and is never read).

llm.c / modded-nanogpt's: a 256 x int32 header (magic 20240520, version 1 = uint16 tokens or 2 = uint32,
token count), then the tokens; files named `*train*.bin` / `*val*.bin`.
"""

import numpy as np

META_FILE = "meta.json"
FORMAT_NAME = "bicameral-shards"
FORMAT_VERSION = 1
TOKENIZER_FILE = "tokenizer.json"
SPLITS = ("train", "val")
DOCUMENT_SEPARATOR = "\n\n"  # between documents, for every tokenizer: the same text, whatever encodes it

DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32}

LLMC_MAGIC = 20240520
LLMC_HEADER_INTS = 256  # int32: [magic, version, n_tokens, 0...]
LLMC_VERSIONS = {1: np.uint16, 2: np.uint32}


def shard_name(split: str, index: int) -> str:
    return f"{split}_{index:06d}.bin"


def smallest_dtype(vocab_size: int) -> str:
    """The narrowest dtype whose ids reach vocab_size - 1."""
    for name, dtype in DTYPES.items():
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return name
    raise ValueError(f"vocab_size={vocab_size} exceeds uint32")
