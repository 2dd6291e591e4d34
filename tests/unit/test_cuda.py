"""What only a GPU can show: bf16 parity, one compiled graph across unlocks, fast paths, fused AdamW.

Skipped without CUDA; experiments/gpu_check.sh runs them on the card. Each implementation is named outright
(auto would pick the same pair for every case) and the test checks that it is the one that ran.
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


# (freq_impl, time_impl): each frequency path with the reference time path, and flex with the reference conv
IMPLS = [("fft", "blocked"), ("toeplitz", "blocked"), ("triton", "blocked"), ("fft", "flex")]
IMPL_IDS = ["+".join(pair) for pair in IMPLS]


def model_with(freq_impl: str, time_impl: str) -> LanguageModel:
    model = cuda_model(replace(CFG, freq_impl=freq_impl, time_impl=time_impl))
    mixer = model.blocks[0].mixer
    assert (mixer.freq.cuda_impl, mixer.time.cuda_impl) == (freq_impl, time_impl)  # no silent fallback
    return model


def batch(cfg=CFG, b=4) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, cfg.vocab_size, (b, cfg.seq_len + 1), device="cuda")
    return idx[:, :-1], idx[:, 1:]


@pytest.mark.parametrize("impls", IMPLS, ids=IMPL_IDS)
def test_bf16_autocast_matches_fp32(impls):
    model = model_with(*impls).eval()
    model.set_cutoff(CFG.n_bins // 4)
    x, y = batch()
    with torch.no_grad():
        ref = model(x, y)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x, y)
    rel = (low.logits.float() - ref.logits).norm() / ref.logits.norm()
    assert rel < 2e-2, f"bf16 logits off by {rel:.2e} relative"
    assert abs(low.loss.item() - ref.loss.item()) < 1e-2 * ref.loss.item()


@pytest.mark.parametrize("impls", IMPLS, ids=IMPL_IDS)
def test_compiled_training_keeps_one_graph_across_unlocks(impls):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = model_with(*impls)
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


def test_every_conv_matches_the_fft_in_fp32():
    x = torch.randn(4, 1024, 256, device="cuda")
    k = torch.randn(256, 128, device="cuda") / 16
    ref = causal_conv(x.double(), k.double(), "fft")
    for impl in ("fft", "toeplitz", "triton"):
        assert ((causal_conv(x, k, impl).double() - ref).norm() / ref.norm()) < 1e-5, impl


def test_the_fused_conv_in_bf16_matches_the_fft_with_its_gradients():
    """bf16 inputs, fp32 kernel and accumulation, as under autocast: what the interpreter cannot check."""
    torch.manual_seed(0)
    x = torch.randn(4, 1024, 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = (torch.randn(256, 128, device="cuda") / 16).requires_grad_()
    dy = torch.randn(4, 1024, 256, device="cuda", dtype=torch.bfloat16)
    y = causal_conv(x, k, "triton")
    dx, dk = torch.autograd.grad(y, (x, k), dy)
    ref_x, ref_k = x.detach().double().requires_grad_(), k.detach().double().requires_grad_()
    ref = causal_conv(ref_x, ref_k, "fft")
    ref_dx, ref_dk = torch.autograd.grad(ref, (ref_x, ref_k), dy.double())
    for name, a, b in (("y", y, ref), ("dx", dx, ref_dx), ("dk", dk, ref_dk)):
        assert ((a.double() - b).norm() / b.norm()) < 2e-2, name


def test_a_new_cutoff_compiles_no_new_triton_kernel():
    model = model_with("triton", "blocked")
    x, y = batch()
    from bicameral.model import triton_conv

    def compiled_kernels() -> int:  # Triton's per-device cache: (compiled kernels by key, ...)
        device = torch.cuda.current_device()
        return sum(len(kernel.device_caches[device][0])
                   for kernel in (triton_conv.toeplitz_conv_kernel, triton_conv.window_gram_kernel))

    counts = []
    for cutoff in default_levels(CFG.seq_len):
        model.set_cutoff(cutoff)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(x, y).loss.backward()
        counts.append(compiled_kernels())
    assert counts[0] > 0 and len(set(counts)) == 1, counts


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
