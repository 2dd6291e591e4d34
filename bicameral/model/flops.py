"""Multiply-adds per token of a model's forward pass, by where they are spent, and the FLOP ceiling one
model has against another: the tokens/s ratio that perfect kernels (every FLOP at the same rate) would give.

Counted, per token and block: every matmul (C x C' costs C * C'); attention's QK^T and AV over the keys a
query actually sees (t + 1 on average (T + 1) / 2 under full causal attention, the window under a windowed
one); the frequency path's conv at its kernel_len taps per channel. Embedding lookups, norms, softmax and
elementwise ops are left out: they are memory-bound, not FLOP-bound. A training step costs about 3x the
forward for every term alike, so the ratios hold for training.
"""

from dataclasses import replace

from bicameral.model.config import ModelConfig


def multiply_adds_per_token(cfg: ModelConfig) -> dict[str, float]:
    """{part: multiply-adds per token of one forward pass}, summed over the blocks (and the output head)."""
    C, L = cfg.d_model, cfg.n_layers
    lean = set(cfg.lean)
    mlp = 2 * cfg.mlp_ratio * C * C
    qkv_out = 4 * C * C
    full_attention = 2 * C * (cfg.seq_len + 1) / 2  # QK^T and AV over (T + 1) / 2 keys on average
    if cfg.arch == "transformer":
        per_block = {"matmul": qkv_out + mlp, "attention": full_attention, "conv": 0.0}
    else:
        window = cfg.time_window
        # a window as long as the context is full causal attention (the time path runs it as such)
        attention = full_attention if window is None or window >= cfg.seq_len else 2 * C * window
        freq_proj = (0 if "conv_input" in lean else C * C) + (0 if "shared_out" in lean else C * C)
        gate = C * (cfg.n_heads if "head_gate" in lean else C)
        time = qkv_out if cfg.arch in ("bicameral", "time_only") else 0
        uses_freq = cfg.arch in ("bicameral", "freq_only")
        per_block = {
            "matmul": mlp + time + (freq_proj if uses_freq else 0) + (gate if cfg.arch == "bicameral" else 0),
            "attention": attention if time else 0.0,
            "conv": C * cfg.kernel_len if uses_freq else 0.0,
        }
    out = {part: L * value for part, value in per_block.items()}
    out["head"] = C * cfg.vocab_size
    return out


def total(cfg: ModelConfig) -> float:
    return sum(multiply_adds_per_token(cfg).values())


def flop_ceiling(cfg: ModelConfig, baseline: ModelConfig | None = None) -> float:
    """cfg's tokens/s over the baseline's if both ran every FLOP at the same rate; baseline defaults to the
    transformer of cfg's size and sequence length."""
    baseline = baseline if baseline is not None else replace(cfg, arch="transformer", lean=[])
    return total(baseline) / total(cfg)
