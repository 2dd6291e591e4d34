import pytest
import torch
import torch.nn.functional as F

from bicameral.curriculum import default_levels
from bicameral.model.attention import sliding_window_attention
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.model.spectral import band_leak, causal_conv, fft_size

CFG = ModelConfig(seq_len=64, d_model=32, n_layers=2, n_heads=4, kernel_len=24, time_window=8)


def make_model(cfg=CFG, seed=0) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(cfg).double().eval()


@pytest.mark.parametrize("cutoff", default_levels(CFG.seq_len))
@pytest.mark.parametrize("t", [1, 17, 40, 63])
def test_causal_at_every_cutoff(cutoff, t):
    """Changing tokens at positions >= t leaves logits at positions < t unchanged (float64).

    FFT round-off touches every output at ~1e-16, so "unchanged" is 1e-10; a leak of the
    future (a circular conv, a wrong mask) moves logits by ~1e-2.
    """
    model = make_model()
    model.set_cutoff(cutoff)
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    changed = idx.clone()
    changed[:, t:] = torch.randint(0, 256, (2, CFG.seq_len - t))
    with torch.no_grad():
        a, b = model(idx).logits, model(changed).logits
    assert (a[:, :t] - b[:, :t]).abs().max() < 1e-10
    assert (a[:, t:] - b[:, t:]).abs().max() > 1e-3  # the change is visible from t on


@pytest.mark.parametrize("t", [1, 17, 40, 63])
def test_transformer_baseline_is_causal(t):
    model = make_model(ModelConfig(arch="transformer", seq_len=64, d_model=32, n_layers=2, n_heads=4))
    idx = torch.randint(0, 256, (2, 64))
    changed = idx.clone()
    changed[:, t:] = torch.randint(0, 256, (2, 64 - t))
    with torch.no_grad():
        a, b = model(idx).logits, model(changed).logits
    assert (a[:, :t] - b[:, :t]).abs().max() < 1e-10
    assert (a[:, t:] - b[:, t:]).abs().max() > 1e-3
    assert not model.has_frequency_path and model(idx).freq_share == 0
    with pytest.raises(ValueError, match="no frequency path"):
        model.set_cutoff(8)


def test_causal_conv_matches_direct_sum():
    torch.manual_seed(0)
    x = torch.randn(2, 50, 3, dtype=torch.float64)
    k = torch.randn(3, 7, dtype=torch.float64)
    direct = torch.zeros_like(x)
    for t in range(50):
        for j in range(min(7, t + 1)):
            direct[:, t] += k[:, j] * x[:, t - j]
    assert torch.allclose(causal_conv(x, k), direct, atol=1e-12)


def direct_causal_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The definition, as a loop: y[:, t] = sum_j k[:, j] * x[:, t - j]."""
    y = torch.zeros_like(x)
    for t in range(x.shape[1]):
        for j in range(min(k.shape[1], t + 1)):
            y[:, t] += k[:, j] * x[:, t - j]
    return y


def test_fft_size_is_the_smallest_7_smooth_length():
    def smooth(m):
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 1200):
        m = fft_size(n)
        assert m >= n and smooth(m) and not any(smooth(j) for j in range(n, m)), n
    assert fft_size(1024 + 128 - 1) == 1152  # vs 2048 as a power of two


@pytest.mark.parametrize("T, K", [(13, 3), (50, 7), (64, 24), (37, 37), (100, 12)])
def test_fft_conv_at_7_smooth_sizes_matches_the_direct_sum(T, K):
    """Odd and non-power-of-two FFT sizes (15, 56, 90, 75, 112) stay exact in float64."""
    torch.manual_seed(T)
    x, k = torch.randn(2, T, 3, dtype=torch.float64), torch.randn(3, K, dtype=torch.float64)
    assert (causal_conv(x, k, "fft") - direct_causal_conv(x, k)).abs().max() < 1e-12


@pytest.mark.parametrize("cutoff", [1, 8, 16, 32, 33])
def test_cutoff_removes_bins_from_kernel_spectrum(cutoff):
    freq = make_model().blocks[0].mixer.freq
    freq.set_cutoff(cutoff)
    spectrum = torch.fft.rfft(freq.full_kernel(), n=CFG.seq_len)  # (C, n_bins)
    weights = torch.view_as_complex(freq.spectrum)
    assert spectrum[:, cutoff:].abs().sum() < 1e-10  # nothing passes above the cutoff
    # bins inside the band pass unchanged (DC and Nyquist bins are real by construction)
    inside = slice(1, min(cutoff, CFG.n_bins - 1))
    assert torch.allclose(spectrum[:, inside], weights[:, inside], atol=1e-12)


@pytest.mark.parametrize("seq_len", [64, 63])
def test_band_leak_is_the_energy_share_above_the_cutoff_by_parseval(seq_len):
    torch.manual_seed(0)
    kernel = torch.randn(3, 16, dtype=torch.float64)  # (C, K)
    full = torch.fft.fft(kernel, n=seq_len).abs().square()  # (C, seq_len): the whole two-sided spectrum
    frequency = torch.fft.fftfreq(seq_len, d=1 / seq_len).abs()  # bin index of each side's entry
    for cutoff in (1, 8, 20, seq_len // 2 + 1):
        expected = full[:, frequency >= cutoff].sum(-1) / full.sum(-1)
        torch.testing.assert_close(band_leak(kernel, cutoff, seq_len), expected)


def test_band_leak_is_zero_before_the_reach_limit_and_grows_as_the_band_narrows():
    model = LanguageModel(ModelConfig(seq_len=256, d_model=32, n_layers=1, n_heads=2, kernel_len=64)).double()
    freq = model.blocks[0].mixer.freq
    leaks = []
    for cutoff in default_levels(256)[:-1]:
        model.set_cutoff(cutoff)
        with torch.no_grad():
            assert band_leak(freq.full_kernel(), cutoff, 256).max() < 1e-12  # band-limited before the cut
            leaks.append(band_leak(freq.kernel(), cutoff, 256).mean().item())  # the cut spreads some above
    assert 0 < leaks[-1] < leaks[0] < 0.2


def test_set_cutoff_updates_the_buffer_in_place():
    model = make_model()
    mask = model.blocks[0].mixer.freq.band_mask
    ptr = mask.data_ptr()
    model.set_cutoff(8)
    assert mask.data_ptr() == ptr and mask.sum() == 8 and model.cutoff == 8
    with pytest.raises(ValueError, match="outside 1..33"):
        model.set_cutoff(34)


def test_low_cutoff_smooths_the_kernel():
    freq = make_model().blocks[0].mixer.freq
    roughness = []
    for cutoff in (4, 33):
        freq.set_cutoff(cutoff)
        k = freq.full_kernel()
        roughness.append((k.diff(dim=-1).pow(2).sum() / k.pow(2).sum()).item())
    assert roughness[0] < roughness[1]


def test_gradients_reach_both_paths_and_the_gate():
    torch.manual_seed(0)
    model = LanguageModel(CFG)
    model.set_cutoff(16)
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    model(idx, idx.roll(-1, 1)).loss.backward()
    mixer = model.blocks[0].mixer
    for name, p in [("spectrum", mixer.freq.spectrum), ("freq in", mixer.freq.in_proj.weight),
                    ("time qkv", mixer.time.qkv.weight), ("gate", mixer.gate.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # bins above the cutoff are locked: no gradient reaches them
    assert mixer.freq.spectrum.grad[:, 16:].abs().max() == 0


@pytest.mark.parametrize("T, window", [(64, 8), (50, 8), (13, 5), (8, 8)])
def test_sliding_window_matches_band_masked_attention(T, window):
    q, k, v = (torch.randn(2, 3, T, 4, dtype=torch.float64) for _ in range(3))
    lag = torch.arange(T)[:, None] - torch.arange(T)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=(lag >= 0) & (lag < window))
    assert torch.allclose(sliding_window_attention(q, k, v, window), reference, atol=1e-12)


def test_full_causal_time_path_and_hemisphere_share():
    cfg = ModelConfig(seq_len=32, d_model=16, n_layers=1, n_heads=2, kernel_len=8, time_window=None)
    model = make_model(cfg)
    idx = torch.randint(0, 256, (1, 32))
    out = model(idx, idx)
    assert out.logits.shape == (1, 32, 256) and out.loss.ndim == 0
    assert 0.0 < out.freq_share.item() < 1.0


def test_sizes_match_their_names():
    from bicameral.engine.build import build_model
    from tests.conftest import compose_config

    counts, shapes = {}, {}
    for size in ("tiny", "small", "transformer", "transformer_small", "transformer_base", "base"):
        cfg = compose_config(f"model={size}")
        counts[size] = build_model(cfg.model).num_params() if size != "base" else None
        shapes[size] = (cfg.model.d_model, cfg.model.n_layers, cfg.model.seq_len)
    assert counts["tiny"] < 3e6 and 10e6 <= counts["small"] <= 20e6
    # the baseline matches each size in width, depth and context
    assert shapes["transformer"] == shapes["tiny"] and shapes["transformer_small"] == shapes["small"]
    assert shapes["transformer_base"] == shapes["base"] == (768, 12, 1024)
    assert counts["transformer"] < counts["tiny"]  # attention alone: fewer mixer weights


@pytest.mark.parametrize("freq_impl", ["fft", "toeplitz", "triton"])
def test_changing_the_cutoff_never_recompiles(freq_impl):
    """The mask is a buffer updated in place, so a compiled model keeps its one graph across unlocks."""
    from dataclasses import replace

    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    narrow = {"d_model": 8, "n_heads": 2} if freq_impl == "triton" else {}  # the interpreter: a program per channel
    model = LanguageModel(replace(CFG, freq_impl=freq_impl, kernel_len=16, **narrow))  # toeplitz needs K <= T/4
    assert model.blocks[0].mixer.freq.impl == freq_impl
    compiled = torch.compile(model, backend="eager")  # dynamo's tracing and guards, no codegen
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    outputs = []
    for cutoff in default_levels(CFG.seq_len):
        model.set_cutoff(cutoff)
        outputs.append(compiled(idx).logits)
    assert counters["stats"]["unique_graphs"] == 1
    assert not torch.allclose(outputs[0], outputs[-1])  # the new cutoff did take effect


@pytest.mark.parametrize("T", [64, 50, 13])
def test_toeplitz_conv_matches_the_fft_reference(T):
    x = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 16, dtype=torch.float64, requires_grad=True)
    fast, ref = causal_conv(x, k, "toeplitz"), causal_conv(x, k, "fft")
    assert (fast - ref).abs().max() < 1e-12
    grads = [torch.autograd.grad(y.pow(2).sum(), (x, k)) for y in (fast, ref)]
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(*grads))


def test_toeplitz_conv_error_in_float32_is_float32_sized():
    x, k = torch.randn(4, 256, 32, dtype=torch.float64), torch.randn(32, 64, dtype=torch.float64) / 8
    ref = causal_conv(x, k, "fft")
    fast = causal_conv(x.float(), k.float(), "toeplitz").double()
    assert ((fast - ref).norm() / ref.norm()).item() < 1e-5


def test_flex_time_path_matches_the_reference():
    q, k, v = (torch.randn(2, 2, 48, 8) for _ in range(3))
    from bicameral.model.attention import flex_window_attention

    assert torch.allclose(flex_window_attention(q, k, v, 8), sliding_window_attention(q, k, v, 8), atol=1e-5)


@pytest.mark.parametrize("impl", [{"freq_impl": "toeplitz"}, {"freq_impl": "triton"}, {"time_impl": "flex"}])
def test_fast_paths_keep_the_model_causal_and_equal(impl):
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = replace(CFG, kernel_len=16)  # toeplitz needs K <= T/4
    if impl.get("freq_impl") == "triton":  # Triton's interpreter runs one program per channel, slowly
        cfg = replace(cfg, d_model=8, n_heads=2)
    reference = LanguageModel(cfg).double().eval()
    fast = LanguageModel(replace(cfg, **impl)).double().eval()
    assert fast.blocks[0].mixer.freq.impl == impl.get("freq_impl", "fft")
    fast.load_state_dict(reference.state_dict())
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    for cutoff in default_levels(CFG.seq_len):
        reference.set_cutoff(cutoff)
        fast.set_cutoff(cutoff)
        changed = idx.clone()
        changed[:, 30:] = 0
        with torch.no_grad():
            a, b, c = reference(idx).logits, fast(idx).logits, fast(changed).logits
        tol = 1e-10 if "freq_impl" in impl else 1e-5  # flex_attention computes in float32
        assert (a - b).abs().max() < tol
        assert (b[:, :30] - c[:, :30]).abs().max() < tol


def test_toeplitz_falls_back_to_fft_when_its_taps_would_be_large():
    from dataclasses import replace

    from bicameral.model.frequency import effective_freq_impl

    assert effective_freq_impl(replace(CFG, freq_impl="toeplitz", kernel_len=16)) == "toeplitz"  # K = T/4
    assert effective_freq_impl(replace(CFG, freq_impl="toeplitz", kernel_len=17)) == "fft"
    assert LanguageModel(replace(CFG, freq_impl="toeplitz", kernel_len=64)).blocks[0].mixer.freq.impl == "fft"


def test_flex_path_compiles_to_one_graph_across_calls_and_cutoffs():
    """The BlockMask cache is never read inside a compiled model, so it cannot become a guard."""
    from dataclasses import replace

    import torch._dynamo
    from torch._dynamo.utils import counters

    import bicameral.model.attention as attention_module

    torch._dynamo.reset()
    counters.clear()
    attention_module._band_masks.clear()
    model = LanguageModel(replace(CFG, time_impl="flex"))
    compiled = torch.compile(model, backend="eager", dynamic=False)
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    with torch.no_grad():
        eager = model(idx).logits  # fills the cache outside the compiled region
        counters.clear()  # eager flex traces a graph of its own; count only the model's
        outs = [compiled(idx).logits for _ in range(2)]
        model.set_cutoff(8)
        outs.append(compiled(idx).logits)
    assert counters["stats"]["unique_graphs"] == 1
    assert torch.allclose(outs[0], eager, atol=1e-5) and not torch.allclose(outs[0], outs[-1])


def test_blocked_time_path_hands_sdpa_4d_inputs(monkeypatch):
    """SDPA's fused kernels take (B, H, T, hd) and a 4-D mask only; 5-D inputs or a 3-D mask fall
    back to the math kernel."""
    calls = []
    sdpa = F.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        calls.append((q.dim(), k.dim(), v.dim(), kwargs["attn_mask"].dim()))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    q, k, v = (torch.randn(2, 3, 40, 4) for _ in range(3))
    sliding_window_attention(q, k, v, 8)
    assert calls == [(4, 4, 4, 4)]


def test_blocked_time_path_runs_the_fused_cpu_kernel_forward_and_backward():
    from torch.profiler import profile

    q, k, v = (torch.randn(2, 3, 40, 4, requires_grad=True) for _ in range(3))
    with profile() as prof:
        sliding_window_attention(q, k, v, 8).sum().backward()
    kernels = {event.key for event in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in kernels
    assert "aten::_scaled_dot_product_flash_attention_for_cpu_backward" in kernels
    assert "aten::_scaled_dot_product_attention_math" not in kernels


def test_rotary_in_bf16_is_rounded_once_from_fp32():
    """bf16 in, bf16 out, but rotated in fp32: within one bf16 rounding of the exact rotation."""
    from bicameral.model.attention import apply_rotary, rotary_tables

    torch.manual_seed(0)
    cos, sin = rotary_tables(4096, 64)
    x = torch.randn(1, 2, 4096, 64).bfloat16()
    out = apply_rotary(x, cos, sin)
    exact = apply_rotary(x.double(), cos.double(), sin.double())
    assert out.dtype == torch.bfloat16
    assert ((out.double() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()  # bf16 rounds to 8 bits


def test_auto_picks_the_measured_faster_paths_per_device():
    from dataclasses import replace

    from bicameral.model.attention import effective_time_impl
    from bicameral.model.frequency import effective_freq_impl

    cfg = replace(CFG, kernel_len=16)  # K = T/4: toeplitz allowed
    assert (effective_freq_impl(cfg), effective_time_impl(cfg)) == ("fft", "blocked")  # the CPU references
    assert (effective_freq_impl(cfg, "cuda"), effective_time_impl(cfg, "cuda")) == ("toeplitz", "flex")
    assert effective_freq_impl(replace(cfg, kernel_len=17), "cuda") == "fft"  # taps too big for toeplitz
    assert effective_freq_impl(replace(cfg, freq_impl="fft"), "cuda") == "fft"  # an explicit choice stands


# -- the lean block options ------------------------------------------------------------------------------------

LEAN = [["conv_input"], ["head_gate"], ["shared_out"], ["conv_input", "head_gate", "shared_out"]]


@pytest.mark.parametrize("lean", LEAN, ids="+".join)
def test_a_lean_block_stays_causal_and_drops_the_weights_it_names(lean):
    from dataclasses import replace

    torch.manual_seed(0)
    model = LanguageModel(replace(CFG, lean=lean)).double().eval()
    C, H, L = CFG.d_model, CFG.n_heads, CFG.n_layers
    dropped = ("conv_input" in lean) * C * C + ("shared_out" in lean) * C * C
    dropped += ("head_gate" in lean) * (C - H) * (C + 1)  # a C x H gate and its H biases
    assert LanguageModel(CFG).num_params() - model.num_params() == L * dropped
    idx = torch.randint(0, 256, (2, CFG.seq_len))
    changed = idx.clone()
    changed[:, 30:] = 0
    for cutoff in default_levels(CFG.seq_len):
        model.set_cutoff(cutoff)
        with torch.no_grad():
            a, b = model(idx).logits, model(changed).logits
        # the FFT's rounding spreads over every output; a leak of the future would be ~1e-2
        assert (a[:, :30] - b[:, :30]).abs().max() < 1e-10, f"a lean block saw the future at cutoff {cutoff}"
    out = model(idx, idx)
    out.loss.backward()
    assert 0 < out.freq_share < 1
    assert all(p.grad is not None for p in model.parameters())  # every weight it keeps is used


def test_the_flop_counter_names_the_blocks_matmuls():
    """Per token and block: 15 C^2 for today's bicameral block, 12 C^2 for the transformer's, 12 C^2 + C*H lean."""
    from dataclasses import replace

    from bicameral.model.flops import flop_ceiling, multiply_adds_per_token

    cfg = ModelConfig(seq_len=1024, d_model=384, n_layers=1, n_heads=6, kernel_len=128)
    C = cfg.d_model
    assert multiply_adds_per_token(cfg)["matmul"] == 15 * C * C
    assert multiply_adds_per_token(replace(cfg, arch="transformer"))["matmul"] == 12 * C * C
    lean = replace(cfg, lean=["conv_input", "head_gate", "shared_out"])
    assert multiply_adds_per_token(lean)["matmul"] == 12 * C * C + C * cfg.n_heads
    assert multiply_adds_per_token(replace(cfg, arch="transformer"))["attention"] == C * (1024 + 1)
    assert flop_ceiling(cfg) < 1 < flop_ceiling(lean) < flop_ceiling(replace(lean, seq_len=4096))
