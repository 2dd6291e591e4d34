"""The time hemisphere: causal attention over the last `time_window` tokens, always at full detail,
and the rotary embeddings every attention mixer uses.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from bicameral.model.config import ModelConfig


def effective_time_impl(cfg: ModelConfig, device_type: str = "cpu") -> str:
    """auto: flex on CUDA (0.81x causal flash attention's time on an H200), blocked on the CPU."""
    if cfg.time_impl == "auto":
        return "flex" if device_type == "cuda" else "blocked"
    return cfg.time_impl


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

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> q, k, v (B, H, T, hd) each, q and k rotated."""
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads)
        cos, sin = self.rope_cos[:T, None, None], self.rope_sin[:T, None, None]  # (T, 1, 1, hd/2)
        # q and k rotated in one pass over their (B, T, 2, H, hd) slice: half the elementwise ops
        q, k = apply_rotary(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)  # (B, H, T, hd) each
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, hd)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q, k, v (B, H, T, hd) -> (B, T, C): the heads' outputs side by side, before the out-projection."""
        B, H, T, hd = q.shape
        if self.window is None or self.window >= T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif (self.cuda_impl if q.is_cuda else self.impl) == "flex":
            y = flex_window_attention(q, k, v, self.window)
        else:
            y = sliding_window_attention(q, k, v, self.window)
        return y.transpose(1, 2).reshape(B, T, H * hd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        return self.out_proj(self.attend(*self.project(x)))
