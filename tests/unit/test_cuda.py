"""What only a GPU can show: bf16 parity, one compiled graph across unlocks, fast paths, fused AdamW.

Skipped without CUDA; experiments/gpu_check.sh runs them on the card.
"""

from dataclasses import replace

import pytest
import torch

from bicameral.curriculum import default_levels
from bicameral.model.attention import flex_window_attention, sliding_window_attention
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.model.spectral import causal_conv

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CFG = ModelConfig(seq_len=1024, d_model=256, n_layers=2, n_heads=4, kernel_len=128, time_window=16)


def cuda_model(cfg=CFG, seed=0) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(cfg).cuda()


def batch(cfg=CFG, b=4) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, cfg.vocab_size, (b, cfg.seq_len + 1), device="cuda")
    return idx[:, :-1], idx[:, 1:]


@pytest.mark.parametrize("impl", [{}, {"freq_impl": "toeplitz"}, {"time_impl": "flex"}])
def test_bf16_autocast_matches_fp32(impl):
    model = cuda_model(replace(CFG, **impl)).eval()
    model.set_cutoff(CFG.n_bins // 4)
    x, y = batch()
    with torch.no_grad():
        ref = model(x, y)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x, y)
    rel = (low.logits.float() - ref.logits).norm() / ref.logits.norm()
    assert rel < 2e-2, f"bf16 logits off by {rel:.2e} relative"
    assert abs(low.loss.item() - ref.loss.item()) < 1e-2 * ref.loss.item()


@pytest.mark.parametrize("impl", [{}, {"freq_impl": "toeplitz"}, {"time_impl": "flex"}])
def test_compiled_training_keeps_one_graph_across_unlocks(impl):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = cuda_model(replace(CFG, **impl))
    compiled = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x, y = batch()
    losses = []
    for cutoff in default_levels(CFG.seq_len):
        model.set_cutoff(cutoff)
        for _ in range(2):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = compiled(x, y).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
def test_flex_matches_blocked_window_attention(dtype, tol):
    q, k, v = (torch.randn(2, 4, 1024, 64, device="cuda", dtype=dtype) for _ in range(3))
    flex, blocked = flex_window_attention(q, k, v, 16), sliding_window_attention(q, k, v, 16)
    assert ((flex.float() - blocked.float()).norm() / blocked.float().norm()) < tol


def test_toeplitz_matches_fft_conv():
    x = torch.randn(4, 1024, 256, device="cuda")
    k = torch.randn(256, 128, device="cuda") / 16
    ref = causal_conv(x.double(), k.double(), "fft")
    for impl in ("fft", "toeplitz"):
        assert ((causal_conv(x, k, impl).double() - ref).norm() / ref.norm()) < 1e-5, impl


def test_fused_adamw_matches_the_reference_step():
    from omegaconf import OmegaConf

    from bicameral.engine.build import build_optimizer

    cfg = OmegaConf.create({"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "betas": [0.9, 0.95],
                            "eps": 1e-8, "weight_decay": 0.1})
    models = [cuda_model(), cuda_model()]
    fused = build_optimizer(cfg, models[0], torch.device("cuda"))
    assert fused.defaults["fused"]
    decay = [p for n, p in models[1].named_parameters() if p.dim() == 2 and "spectrum" not in n]
    rest = [p for n, p in models[1].named_parameters() if not (p.dim() == 2 and "spectrum" not in n)]
    plain = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                              lr=1e-3, betas=(0.9, 0.95), foreach=False)  # the single-tensor reference
    x, y = batch()
    for model, optimizer in zip(models, (fused, plain)):
        for _ in range(3):
            model(x, y).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    b = dict(models[1].named_parameters())
    for name, p in models[0].named_parameters():
        assert torch.allclose(p, b[name], atol=1e-5), name
