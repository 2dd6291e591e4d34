"""Token mixers: the bicameral gate over both hemispheres, the transformer baseline's full attention,
and the one-hemisphere ablations.
"""

from dataclasses import replace

import torch
import torch.nn as nn

from bicameral.model.attention import TimePath
from bicameral.model.config import ModelConfig
from bicameral.model.frequency import FrequencyPath


class BicameralMixer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.freq = FrequencyPath(cfg)
        self.time = TimePath(cfg)
        self.gate = nn.Linear(cfg.d_model, cfg.d_model)  # zero bias at init: an even 50/50 split

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.sigmoid(self.gate(x))  # (B, T, C) share of the frequency hemisphere
        return g * self.freq(x) + (1 - g) * self.time(x), g.detach().float().mean()


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
