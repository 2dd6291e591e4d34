"""The bicameral language model, and the transformer baseline it is compared with.

Each bicameral block mixes tokens with two hemispheres and a learned gate:
  - frequency path: a per-channel causal long convolution whose filter lives on the rfft grid
    and passes only bins below the current `cutoff` (the curriculum widens the band);
  - time path: causal attention over the last `time_window` tokens, always full detail;
  - gate: g = sigmoid(Linear(x)) per channel, output g * freq + (1 - g) * time.
The mean of g over tokens, channels and layers is the frequency hemisphere's share.
The transformer baseline (arch="transformer") has the same width, depth, embedding, MLP and
engine, with full causal attention as its only mixer.
"""

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from bicameral.model.config import ModelConfig
from bicameral.model.mixers import HAS_FREQUENCY_PATH, MIXERS


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, vocab)
    loss: torch.Tensor | None  # () mean next-token cross-entropy, nats
    freq_share: torch.Tensor  # () mean gate: the frequency hemisphere's share


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.down = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + Mixer(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.mixer_norm = nn.RMSNorm(cfg.d_model)
        self.mixer = MIXERS[cfg.arch](cfg)
        self.mlp_norm = nn.RMSNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mixed, freq_share = self.mixer(self.mixer_norm(x))
        x = x + mixed
        return x + self.mlp(self.mlp_norm(x)), freq_share


class LanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.arch not in MIXERS:
            raise ValueError(f"model.arch={cfg.arch!r} is unknown: use {' or '.join(MIXERS)}")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.embed.weight  # tied: fewer parameters, better small models
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # residual outputs scaled down with depth (GPT-2)
            if name.endswith("out_proj.weight") or name.endswith("mlp.down.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def n_bins(self) -> int:
        return self.cfg.n_bins

    @property
    def has_frequency_path(self) -> bool:
        return self.cfg.arch in HAS_FREQUENCY_PATH

    @property
    def cutoff(self) -> int:
        """The current cutoff, read from the band mask itself (so a loaded state dict carries it)."""
        if not self.has_frequency_path:
            return self.n_bins
        return int(self.blocks[0].mixer.freq.band_mask.sum().item())

    def set_cutoff(self, cutoff: int) -> None:
        """Pass frequency bins < cutoff in every layer (cutoff == n_bins: full resolution)."""
        if not 1 <= cutoff <= self.n_bins:
            raise ValueError(f"cutoff {cutoff} outside 1..{self.n_bins} for seq_len {self.cfg.seq_len}")
        if not self.has_frequency_path and cutoff != self.n_bins:
            raise ValueError(f"model.arch={self.cfg.arch} has no frequency path to cut off")
        if self.has_frequency_path:
            for block in self.blocks:
                block.mixer.freq.set_cutoff(cutoff)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        """idx (B, T) token ids with T <= seq_len; targets (B, T) or None."""
        if idx.shape[1] > self.cfg.seq_len:
            raise ValueError(f"sequence of {idx.shape[1]} tokens exceeds model.seq_len={self.cfg.seq_len}")
        x = self.embed(idx)  # (B, T, C)
        shares = []
        for block in self.blocks:
            x, share = block(x)
            shares.append(share)
        logits = self.lm_head(self.norm(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return ModelOutput(logits, loss, torch.stack(shares).mean())
