"""Token streams: one split of a corpus as a single sequence of token ids, in RAM or memory-mapped across shards.

A batch reads only its windows: a sharded stream never loads a shard whole, and every rank samples its own
windows from the same files. Memory stays flat whatever the corpus's size: a window's pages are read without
readahead and unmapped once copied (they stay in the page cache, shared, but leave the process's RSS).
"""

import mmap
import os

import numpy as np
import torch


def evenly_spaced(high: int, n: int) -> torch.Tensor:
    """n positions from 0 to high inclusive, evenly spaced: (n,) int64. Validation windows have always been
    placed by a float32 linspace, which is exact below 2**24 but rounds past `high` in a billion-token split;
    float64 there."""
    dtype = torch.float32 if high < 2**24 else torch.float64
    return torch.linspace(0, high, n, dtype=dtype).long()


class TokenStream:
    """A split's token ids, indexed 0..len-1 across however many arrays hold them."""

    def __len__(self) -> int:
        raise NotImplementedError

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        """The `length` tokens from each start: (B, length) int64."""
        raise NotImplementedError

    def head(self, n: int) -> torch.Tensor:
        """The first n tokens: (n,) int64."""
        return self.windows(torch.zeros(1, dtype=torch.long), n)[0]

    def max_id(self, n_windows: int = 64, length: int = 4096) -> int:
        """The largest id in `n_windows` evenly spaced windows: a cheap check that ids fit the vocabulary."""
        length = min(length, len(self))
        starts = evenly_spaced(len(self) - length, n_windows)
        return int(self.windows(starts, length).max())


class InMemoryTokens(TokenStream):
    """A split held as one tensor (the embedded corpus, a text file): small enough to load whole."""

    def __init__(self, tokens: torch.Tensor):
        self.tokens = tokens  # (N,) uint8 or wider

    def __len__(self) -> int:
        return len(self.tokens)

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        idx = starts[:, None] + torch.arange(length)  # (B, length)
        return self.tokens[idx].long()

    def max_id(self, n_windows: int = 64, length: int = 4096) -> int:
        return int(self.tokens.max())


class MappedShard:
    """One shard file's tokens, memory-mapped read-only after `offset` header bytes."""

    def __init__(self, path: str | os.PathLike, dtype, offset: int = 0):
        with open(path, "rb") as f:
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.map.madvise(mmap.MADV_RANDOM)  # a window is a page or two: readahead would map megabytes
        self.offset, self.dtype = offset, np.dtype(dtype).newbyteorder("<")
        self.tokens = np.frombuffer(self.map, dtype=self.dtype, offset=offset)  # (N,), no copy

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, span: slice) -> np.ndarray:
        """A copy of tokens[span], its pages unmapped from this process once read."""
        first, stop, _ = span.indices(len(self.tokens))
        window = self.tokens[first:stop].copy()
        begin = (self.offset + first * self.dtype.itemsize) // mmap.PAGESIZE * mmap.PAGESIZE
        self.map.madvise(mmap.MADV_DONTNEED, begin, self.offset + stop * self.dtype.itemsize - begin)
        return window


class ShardedTokens(TokenStream):
    """A split spread over shards, read as one sequence; a window may span two shards."""

    def __init__(self, shards: list):
        self.shards = shards  # each (N_i,) tokens: a MappedShard, or any array
        self.starts = np.cumsum([0] + [len(s) for s in shards])  # (S+1,) first global index of each shard

    def __len__(self) -> int:
        return int(self.starts[-1])

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens start..start+length-1, across shard boundaries."""
        if not 0 <= start <= len(self) - length:
            raise IndexError(f"tokens {start}..{start + length - 1} are outside 0..{len(self) - 1}")
        pieces, shard = [], int(np.searchsorted(self.starts, start, side="right")) - 1
        while length > 0:
            local = start - int(self.starts[shard])
            piece = self.shards[shard][local:local + length]
            pieces.append(piece)
            start, length, shard = start + len(piece), length - len(piece), shard + 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        rows = np.stack([self.read(int(s), length) for s in starts])  # (B, length), copied out of the maps
        return torch.from_numpy(rows.astype(np.int64))
