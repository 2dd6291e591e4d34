"""Tokenizers: bytes (vocab 256, no files) or a Hugging Face `tokenizers` file (e.g. a byte-level BPE that
bicameral-prepare trains on the corpus).

Each gives `encode`, `decode`, `token_bytes()` (the UTF-8 bytes each id stands for, so a loss per token becomes
bits per byte, which compares across tokenizers) and `meta()`, the entry that meta.json and checkpoints record.
A tokenizer file is JSON, checked against the hash recorded beside it; no pickle is ever loaded.
"""

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bicameral.data.shard_format import TOKENIZER_FILE
from bicameral.errors import CorpusError
from bicameral.files import written_atomically


class TokenizerError(CorpusError):
    """A tokenizer that cannot be loaded or does not match what recorded it."""


class ByteTokenizer:
    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        """UTF-8 bytes as a uint8 array of token ids."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, ids) -> str:
        """Token ids back to text; a sequence cut inside a multi-byte character decodes to U+FFFD."""
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self) -> np.ndarray:
        return np.ones(self.vocab_size, dtype=np.int64)

    def meta(self) -> dict:
        return {"kind": "bytes"}

    def save(self, folder: str | Path) -> dict:
        return self.meta()  # nothing to write: bytes need no file


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise TokenizerError("A BPE or tokenizer.json needs the 'tokenizers' package. "
                             "Fix: pip install 'bicameral[data]'.") from None
    return tokenizers


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class HuggingFaceTokenizer:
    """A `tokenizers.Tokenizer`, kept with the JSON it was loaded from (what a run dir and a shard folder keep)."""

    def __init__(self, tokenizer, json_text: str):
        self.tokenizer, self.json_text = tokenizer, json_text
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.sha1 = hashlib.sha1(json_text.encode("utf-8")).hexdigest()

    @classmethod
    def from_file(cls, path: str | Path) -> "HuggingFaceTokenizer":
        path = Path(path).expanduser()
        try:
            text = path.read_text("utf-8")
            return cls(_tokenizers().Tokenizer.from_str(text), text)
        except TokenizerError:
            raise
        except Exception as err:  # missing, unreadable, not JSON, not a tokenizer: tokenizers says which
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise TokenizerError(f"Tokenizer file {path} does not load ({detail}). "
                                 "Fix: point at a Hugging Face tokenizer.json, or prepare with --tokenizer bpe."
                                 ) from None

    @classmethod
    def from_json(cls, text: str) -> "HuggingFaceTokenizer":
        return cls(_tokenizers().Tokenizer.from_str(text), text)

    @classmethod
    def train_bpe(cls, texts: Iterable[str], vocab_size: int) -> "HuggingFaceTokenizer":
        """A byte-level BPE learnt from `texts`: every byte has an id, so any text encodes, and decodes back."""
        tk = _tokenizers()
        alphabet = tk.pre_tokenizers.ByteLevel.alphabet()
        if vocab_size <= len(alphabet):
            raise TokenizerError(f"--vocab-size {vocab_size} leaves no room for merges over the {len(alphabet)} "
                                 f"byte ids. Fix: --vocab-size {len(alphabet) + 1} or more (e.g. 1024, 32768).")
        tokenizer = tk.Tokenizer(tk.models.BPE())
        tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer, tokenizer.to_str())

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tokenizer.encode_batch(texts)]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_bytes(self) -> np.ndarray:
        """(vocab_size,) the UTF-8 bytes each id stands for; 0 for special tokens, which stand for no text."""
        byte_level = "ByteLevel" in type(self.tokenizer.decoder).__name__ if self.tokenizer.decoder else False
        alphabet = set(_tokenizers().pre_tokenizers.ByteLevel.alphabet()) if byte_level else set()
        special = {t.content for t in self.tokenizer.get_added_tokens_decoder().values() if t.special}
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for token, i in self.tokenizer.get_vocab(with_added_tokens=True).items():
            if token in special:
                continue
            if byte_level and set(token) <= alphabet:  # one character of the byte alphabet per byte
                counts[i] = len(token)
            else:
                counts[i] = len(self.decode([i]).encode("utf-8"))
        return counts

    def meta(self) -> dict:
        return {"kind": "huggingface", "file": TOKENIZER_FILE, "sha1": self.sha1}

    def save(self, folder: str | Path) -> dict:
        """tokenizer.json in `folder` (atomically), and the entry naming it."""
        with written_atomically(Path(folder) / TOKENIZER_FILE) as tmp:
            tmp.write_text(self.json_text, encoding="utf-8")
        return self.meta()


def load_tokenizer(entry: dict, folder: str | Path):
    """The tokenizer a meta.json or checkpoint entry names, its file in `folder` checked against the hash."""
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind == "bytes":
        return ByteTokenizer()
    if kind != "huggingface":
        raise TokenizerError(f"Unknown tokenizer {entry!r} recorded for {folder}. "
                             "Fix: prepare the corpus again with bicameral-prepare.")
    name = entry.get("file")
    if not isinstance(name, str) or Path(name).name != name:
        raise TokenizerError(f"The tokenizer entry for {folder} names {name!r}, not a file in that folder. "
                             "Fix: prepare the corpus again with bicameral-prepare.")
    path = Path(folder) / name
    if not path.is_file():
        raise TokenizerError(f"Tokenizer file {path} is missing. Fix: copy it back beside the shards or checkpoint "
                             "(it is part of them), or prepare the corpus again.")
    tokenizer = HuggingFaceTokenizer.from_file(path)
    if entry.get("sha1") and tokenizer.sha1 != entry["sha1"]:
        raise TokenizerError(f"Tokenizer file {path} is not the tokenizer its ids were made with (its sha1 "
                             f"{tokenizer.sha1[:12]} differs from the recorded {str(entry['sha1'])[:12]}). "
                             "Fix: restore the original file, or prepare the corpus again.")
    return tokenizer
