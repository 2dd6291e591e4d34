"""Shard folders written byte by byte as each format lays them out, so the reader is tested against the formats
themselves, not against our own writer."""

import hashlib
import json

import numpy as np

from bicameral.data import shard_format as fmt


def write_ours(folder, splits: dict[str, list[np.ndarray]], vocab_size=256, dtype="uint16", tokenizer=None):
    """A bicameral shard folder as bicameral-prepare lays it out (meta.json last)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_splits, digests = {}, []
    for split, arrays in splits.items():
        shards = []
        for i, array in enumerate(arrays):
            name = fmt.shard_name(split, i)
            data = np.asarray(array, dtype=fmt.DTYPES[dtype]).tobytes()
            (folder / name).write_bytes(data)
            shards.append({"file": name, "tokens": len(array), "sha1": hashlib.sha1(data).hexdigest()})
            digests.append(shards[-1]["sha1"])
        total = sum(s["tokens"] for s in shards)
        meta_splits[split] = {"shards": shards, "tokens": total, "bytes": total, "documents": 1}
    meta = {"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION, "tokenizer": tokenizer or {"kind": "bytes"},
            "vocab_size": vocab_size, "dtype": dtype, "splits": meta_splits,
            "content_sha1": hashlib.sha1("".join(digests).encode()).hexdigest(), "val_fraction": 0.1,
            "sources": ["test"], "created_by": "test"}
    (folder / fmt.META_FILE).write_text(json.dumps(meta))
    return meta


def write_llmc(path, tokens: np.ndarray, version=1, magic=fmt.LLMC_MAGIC, count=None):
    header = np.zeros(fmt.LLMC_HEADER_INTS, dtype="<i4")
    header[:3] = [magic, version, len(tokens) if count is None else count]
    path.write_bytes(header.tobytes() + np.asarray(tokens, dtype=fmt.LLMC_VERSIONS.get(version, np.uint16)).tobytes())
