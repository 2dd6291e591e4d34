"""The data: corpora as token arrays, and the batches the engine trains and validates on.

  tokenizer.py  bytes: any UTF-8 text, vocab 256
  corpus.py     the embedded Shakespeare default, or any local UTF-8 text, cached as tokens
  batches.py    the train/val split, random training windows, fixed validation windows
"""
