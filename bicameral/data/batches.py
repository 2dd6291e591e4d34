"""Token batches: random training windows from a checkpointed generator, and fixed validation windows."""

import torch

from bicameral.data.streams import TokenStream, evenly_spaced


def windows(tokens: TokenStream, starts: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets at the given window starts: two (B, T) int64 tensors."""
    chunk = tokens.windows(starts, seq_len + 1)  # (B, T+1)
    return chunk[:, :-1], chunk[:, 1:]


class TrainBatches:
    """Uniformly random training windows from a seeded generator whose state is checkpointed."""

    def __init__(self, tokens: TokenStream, batch_size: int, seq_len: int, seed: int):
        self.tokens, self.batch_size, self.seq_len = tokens, batch_size, seq_len
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        high = len(self.tokens) - self.seq_len  # last start whose window still has a target
        starts = torch.randint(0, high, (self.batch_size,), generator=self.generator)
        return windows(self.tokens, starts, self.seq_len)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def val_batches(tokens: TokenStream, batch_size: int, seq_len: int, n_batches: int):
    """The same evenly spaced windows every time, so val losses compare across steps and runs."""
    n = batch_size * n_batches
    starts = evenly_spaced(len(tokens) - seq_len - 1, n)
    for chunk in starts.split(batch_size):
        yield windows(tokens, chunk, seq_len)
