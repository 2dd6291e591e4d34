"""Token mixers: the bicameral gate over both hemispheres, the transformer baseline's full attention,
and the one-hemisphere ablations.
"""

from dataclasses import replace

import torch
import torch.nn as nn

from bicameral.model.attention import TimePath
from bicameral.model.config import ModelConfig
from bicameral.model.frequency import FrequencyPath

LEAN_OPTIONS = ("conv_input", "head_gate", "shared_out")


class BicameralMixer(nn.Module):
    """g * freq + (1 - g) * time. The default block gives each path its own projections and the gate a
    C x C matrix: 15 C^2 multiply-adds per token with the MLP, against the transformer's 12 C^2. A lean
    block (`model.lean`) drops some of them:
      - conv_input:  the conv reads the time path's values v instead of an in-projection of its own;
      - head_gate:   one gate per head, from a C x n_heads matrix;
      - shared_out:  one out-projection after gating, instead of one per path.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        lean = set(cfg.lean)
        self.conv_reads_v, self.shared_out = "conv_input" in lean, "shared_out" in lean
        self.head_dim = cfg.d_model // cfg.n_heads
        self.freq = FrequencyPath(cfg, in_proj=not self.conv_reads_v, out_proj=not self.shared_out)
        self.time = TimePath(cfg)
        # zero bias at init: an even 50/50 split
        self.gate = nn.Linear(cfg.d_model, cfg.n_heads if "head_gate" in lean else cfg.d_model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        g = torch.sigmoid(self.gate(x))  # (B, T, C), or (B, T, H) with head_gate: the frequency hemisphere's share
        share = g.detach().float().mean()  # every head covers as many channels: the same mean
        if g.shape[-1] != C:
            g = g.repeat_interleave(self.head_dim, dim=-1)  # (B, T, C): head h owns channels h*hd..(h+1)*hd
        q, k, v = self.time.project(x)  # (B, H, T, hd) each
        attended = self.time.attend(q, k, v)  # (B, T, C)
        u = v.transpose(1, 2).reshape(B, T, C) if self.conv_reads_v else self.freq.in_proj(x)
        convolved = self.freq.conv(u)  # (B, T, C)
        if self.shared_out:
            return self.time.out_proj(g * convolved + (1 - g) * attended), share
        return g * self.freq.out_proj(convolved) + (1 - g) * self.time.out_proj(attended), share


class AttentionMixer(nn.Module):
    """The transformer baseline's mixer: full causal attention, no frequency hemisphere."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn = TimePath(replace(cfg, time_window=None))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn(x), x.new_zeros((), dtype=torch.float32)  # all of it is the time hemisphere


class FrequencyOnlyMixer(nn.Module):
    """Ablation: the frequency path alone (no time path, no gate)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.freq = FrequencyPath(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.freq(x), x.new_ones((), dtype=torch.float32)


class TimeOnlyMixer(nn.Module):
    """Ablation: the windowed time path alone (no frequency path, no gate)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.time = TimePath(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.time(x), x.new_zeros((), dtype=torch.float32)


MIXERS = {
    "bicameral": BicameralMixer,
    "transformer": AttentionMixer,
    "freq_only": FrequencyOnlyMixer,
    "time_only": TimeOnlyMixer,
}


HAS_FREQUENCY_PATH = ("bicameral", "freq_only")
