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
