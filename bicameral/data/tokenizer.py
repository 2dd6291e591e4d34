"""Byte-level tokenizer: any UTF-8 text, vocab 256, no vocab files."""

import numpy as np


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

    def save(self, folder) -> dict:
        return self.meta()


class HuggingFaceTokenizer:  # placeholder until the prepare branch lands
    @classmethod
    def from_file(cls, path):
        raise NotImplementedError


def load_tokenizer(entry: dict, folder):
    if entry.get("kind") == "bytes":
        return ByteTokenizer()
    raise NotImplementedError
