"""Token batches: a deterministic train/val split, random training windows, fixed val windows."""

from dataclasses import dataclass

import numpy as np
import torch

from bicameral.data.corpus import CorpusError


@dataclass
class Split:
    train: torch.Tensor  # (N_train,) uint8
    val: torch.Tensor  # (N_val,) uint8


def split_tokens(tokens: np.ndarray, val_fraction: float, seq_len: int, name: str) -> Split:
    """The last `val_fraction` of the corpus is held out; both parts must fit one window."""
    if not 0.0 < val_fraction < 1.0:
        raise CorpusError(f"data.val_fraction={val_fraction} must be in (0, 1). Fix: e.g. data.val_fraction=0.05.")
    need = seq_len + 1
    n_val = max(int(len(tokens) * val_fraction), need)
    if len(tokens) - n_val < need:
        raise CorpusError(
            f"Corpus {name} has {len(tokens)} tokens: too short for seq_len={seq_len} "
            f"(needs at least {2 * need}: one window of seq_len+1 for train and one for val). "
            "Fix: use a longer text or a smaller model.seq_len."
        )
    t = torch.from_numpy(np.ascontiguousarray(tokens))
    return Split(train=t[:-n_val], val=t[-n_val:])


def windows(tokens: torch.Tensor, starts: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets at the given window starts: two (B, T) int64 tensors."""
    idx = starts[:, None] + torch.arange(seq_len + 1)  # (B, T+1)
    chunk = tokens[idx].long()
    return chunk[:, :-1], chunk[:, 1:]


class TrainBatches:
    """Uniformly random training windows from a seeded generator whose state is checkpointed."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, seq_len: int, seed: int):
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


def val_batches(tokens: torch.Tensor, batch_size: int, seq_len: int, n_batches: int):
    """The same evenly spaced windows every time, so val losses compare across steps and runs."""
    n = batch_size * n_batches
    starts = torch.linspace(0, len(tokens) - seq_len - 1, n).long()
    for chunk in starts.split(batch_size):
        yield windows(tokens, chunk, seq_len)
