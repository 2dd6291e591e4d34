"""The data: corpora as token streams, the tokenizers that make them, and the batches the engine trains on.

  datasets.py      the `data:` component: Shakespeare (default), TextFile, TokenShards, or a plug-in Dataset
  tokenizer.py     bytes (vocab 256, no files) or a Hugging Face tokenizer.json (e.g. a BPE trained by prepare)
  corpus.py        the embedded Shakespeare and local UTF-8 text, as byte arrays (cached)
  prepare.py       bicameral-prepare: text, JSONL or Parquet -> token shards and meta.json, streamed
  inputs.py        what prepare reads: documents from files, JSONL/Parquet (via `datasets`) or the embedded corpus
  shard_format.py  the shard formats: ours, nanoGPT's raw uint16, llm.c's header
  shards.py        a shard folder -> memory-mapped train and val streams, checked
  streams.py       token streams in RAM or across memory-mapped shards, read a window at a time
  batches.py       random training windows, fixed validation windows
"""

from bicameral.data.datasets import Dataset, Shakespeare, TextFile, TokenShards

__all__ = ["Dataset", "Shakespeare", "TextFile", "TokenShards"]
