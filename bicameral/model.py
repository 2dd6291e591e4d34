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
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from bicameral.spectral import band_mask, causal_conv, kernel_from_spectrum


@dataclass
class ModelConfig:
    arch: str = "bicameral"  # bicameral | transformer (the baseline) | freq_only | time_only (ablations)
    vocab_size: int = 256  # bytes: any UTF-8 text, no vocab files
    seq_len: int = 128  # 65 bins, levels [16, 32, 64, 65]; a longer context costs CPU time the loss does not repay
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    kernel_len: int = 64  # reach of the frequency path, in lags (bicameral only)
    time_window: int | None = 16  # the reference's --chunk; None = full causal attention (bicameral only)
    # auto = the faster on the device, as measured on an H200 (README, "Speed"): toeplitz and flex on
    # CUDA, the references fft and blocked on the CPU
    freq_impl: str = "auto"  # auto | fft (reference) | toeplitz (blockwise matmuls, for kernel_len <= seq_len/4)
    time_impl: str = "auto"  # auto | blocked (reference, SDPA on window blocks) | flex (flex_attention)
    mlp_ratio: int = 4
    dropout: float = 0.0

    @property
    def n_bins(self) -> int:
        """Bins of the sequence's rfft grid: 513 at seq_len 1024."""
        return self.seq_len // 2 + 1


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, vocab)
    loss: torch.Tensor | None  # () mean next-token cross-entropy, nats
    freq_share: torch.Tensor  # () mean gate: the frequency hemisphere's share


# ---------------------------------------------------------------------------------------------
# Frequency path


def effective_freq_impl(cfg: ModelConfig, device_type: str = "cpu") -> str:
    """The conv actually run on `device_type`: auto picks toeplitz on CUDA (its fwd+bwd measured 0.99x
    causal flash attention's time on an H200, the FFT's 1.68x) and fft on the CPU; toeplitz runs only
    while its (C, K, 2K) taps stay small, i.e. K <= seq_len / 4.

    Beyond that the taps grow as K^2 per channel (6.4 GB per layer at K=1024, C=768) while the
    FFT's cost barely moves, so a long reach runs on the FFT whatever freq_impl says.
    """
    impl = cfg.freq_impl
    if impl == "auto":
        impl = "toeplitz" if device_type == "cuda" else "fft"
    if impl == "toeplitz" and 4 * cfg.kernel_len > cfg.seq_len:
        return "fft"
    return impl


def effective_time_impl(cfg: ModelConfig, device_type: str = "cpu") -> str:
    """auto: flex on CUDA (0.81x causal flash attention's time on an H200), blocked on the CPU."""
    if cfg.time_impl == "auto":
        return "flex" if device_type == "cuda" else "blocked"
    return cfg.time_impl


class FrequencyPath(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.seq_len, self.kernel_len = cfg.seq_len, cfg.kernel_len
        self.impl, self.cuda_impl = effective_freq_impl(cfg), effective_freq_impl(cfg, "cuda")  # CPU, CUDA
        self.in_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.spectrum = nn.Parameter(self._init_spectrum(cfg))  # (C, n_bins, 2) real view of complex W
        # a buffer updated in place: a new cutoff never recompiles a compiled model
        self.register_buffer("band_mask", band_mask(cfg.n_bins, cfg.n_bins))

    @staticmethod
    def _init_spectrum(cfg: ModelConfig) -> torch.Tensor:
        # start from random exponentially decaying kernels of unit norm within the reach
        lags = torch.arange(cfg.kernel_len)
        decay = torch.exp(-lags / (cfg.kernel_len / 4))
        k = torch.randn(cfg.d_model, cfg.kernel_len) * decay  # (C, K)
        k = k / k.norm(dim=-1, keepdim=True)
        return torch.view_as_real(torch.fft.rfft(k, n=cfg.seq_len)).contiguous()

    def set_cutoff(self, cutoff: int) -> None:
        self.band_mask.copy_(band_mask(len(self.band_mask), cutoff))

    def full_kernel(self) -> torch.Tensor:
        """(C, seq_len): the band-limited kernel before the reach limit."""
        return kernel_from_spectrum(torch.view_as_complex(self.spectrum), self.band_mask, self.seq_len, self.seq_len)

    def kernel(self) -> torch.Tensor:
        """(C, kernel_len): the kernel actually applied."""
        return self.full_kernel()[:, : self.kernel_len]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        impl = self.cuda_impl if x.is_cuda else self.impl
        return self.out_proj(causal_conv(self.in_proj(x), self.kernel(), impl))


# ---------------------------------------------------------------------------------------------
# Time path


def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
    angles = torch.outer(torch.arange(seq_len).float(), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (..., hd) by position: attention then sees relative offsets.

    cos and sin (T, hd/2) are laid out to broadcast against x's position axis, e.g. (T, 1, 1, hd/2)
    for x (B, T, 2, H, hd)."""
    # rotated in fp32 at least: bf16 angles and products would blur positions far into the sequence
    dtype = torch.promote_types(x.dtype, torch.float32)
    x1, x2 = x.to(dtype).unflatten(-1, (-1, 2)).unbind(-1)  # (B, H, T, hd/2) each
    cos, sin = cos.to(dtype), sin.to(dtype)
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2).to(x.dtype)


def sliding_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Causal attention where position t sees keys t-window+1..t; (B, H, T, hd) each.

    The sequence is cut into blocks of `window` queries; each block attends to its own keys and
    the previous block's, under a band mask. Cost grows as T * window, not T^2, in dense
    (window x 2*window) matmuls.
    """
    B, H, T, hd = q.shape
    W = window
    n = -(-T // W)  # blocks
    pad = n * W - T

    def blocks(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, hd) -> (B, H, n, W, hd)
        return F.pad(x, (0, 0, 0, pad)).view(B, H, n, W, hd)

    def with_previous(x: torch.Tensor) -> torch.Tensor:  # (B, H, n, W, hd) -> (B, H, n, 2W, hd)
        previous = F.pad(x, (0, 0, 0, 0, 1, 0))[:, :, :-1]  # block c-1, zeros before block 0
        return torch.cat((previous, x), dim=3)

    # heads and blocks share one batch dim, and the mask is 4-D too: SDPA's fused kernels take 4-D
    # inputs only (5-D inputs or a 3-D mask fall back to the math kernel, which also upcasts bf16)
    qb = blocks(q).flatten(1, 2)  # (B, H*n, W, hd)
    kb, vb = with_previous(blocks(k)).flatten(1, 2), with_previous(blocks(v)).flatten(1, 2)  # (B, H*n, 2W, hd)
    query = torch.arange(W, device=q.device)[:, None] + W  # query i of a block, in slot units
    lag = query - torch.arange(2 * W, device=q.device)  # (W, 2W) query position - key position
    mask = ((lag >= 0) & (lag < W)).expand(n, W, 2 * W).clone()  # (n, W, 2W)
    mask[0, :, :W] = False  # block 0 has no previous block
    mask = mask.expand(1, H, n, W, 2 * W).reshape(1, H * n, W, 2 * W)  # (1, H*n, W, 2W), batch broadcast
    y = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask)  # (B, H*n, W, hd)
    return y.reshape(B, H, n * W, hd)[:, :, :T]  # a fused kernel may hand back another memory layout


_band_masks: dict = {}  # (T, window, device) -> flex_attention BlockMask, built once per shape (eager only)
_compiled_flex = None  # flex_attention compiled once per process: eager flex materialises the full scores


def _band_block_mask(T: int, window: int, device: torch.device):
    from torch.nn.attention.flex_attention import create_block_mask

    def band(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

    return create_block_mask(band, None, None, T, T, device=device)


def flex_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """sliding_window_attention through flex_attention: block-sparse kernels on GPU; (B, H, T, hd) each."""
    global _compiled_flex
    from torch.nn.attention.flex_attention import flex_attention

    T = q.shape[2]
    if torch.compiler.is_compiling():
        # inside a compiled model: traced along, never reading the cache (a dict would become a guard
        # and recompile the model whenever it grows)
        return flex_attention(q, k, v, block_mask=_band_block_mask(T, window, q.device))
    key = (T, window, q.device)
    if key not in _band_masks:
        _band_masks[key] = _band_block_mask(T, window, q.device)
    if q.device.type != "cuda":  # CPU: eager flex is fine at the sizes run there, and needs no compiler
        return flex_attention(q, k, v, block_mask=_band_masks[key])
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex(q, k, v, block_mask=_band_masks[key])


class TimePath(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads, self.window = cfg.n_heads, cfg.time_window
        self.impl, self.cuda_impl = effective_time_impl(cfg), effective_time_impl(cfg, "cuda")  # CPU, CUDA
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        cos, sin = rotary_tables(cfg.seq_len, cfg.d_model // cfg.n_heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads)
        cos, sin = self.rope_cos[:T, None, None], self.rope_sin[:T, None, None]  # (T, 1, 1, hd/2)
        # q and k rotated in one pass over their (B, T, 2, H, hd) slice: half the elementwise ops
        q, k = apply_rotary(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # (B, H, T, hd) each
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, hd)
        if self.window is None or self.window >= T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif (self.cuda_impl if x.is_cuda else self.impl) == "flex":
            y = flex_window_attention(q, k, v, self.window)
        else:
            y = sliding_window_attention(q, k, v, self.window)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


# ---------------------------------------------------------------------------------------------
# Gate, block, model


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
