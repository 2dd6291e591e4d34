"""model.freq_impl=triton: the fused causal conv against the FFT reference, in Triton's interpreter on the CPU
(tests/conftest.py switches it on), and built for sm_90 on the CPU to check that it fits on an H100/H200.

The interpreter is slow and computes bf16 tl.dot wrongly, so these run in float64 and float32 at small shapes;
tests/unit/test_cuda.py runs bf16 on a card.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from bicameral.curriculum import default_levels
from bicameral.model.config import ModelConfig
from bicameral.model.frequency import FrequencyPath
from bicameral.model.spectral import fft_causal_conv

triton_conv = pytest.importorskip("bicameral.model.triton_conv", reason="the triton extra is not installed")

# (B, T, C, K): T not a multiple of the block, K not a power of two, K spanning several tiles, K = 1, T < K
SHAPES = [(2, 40, 3, 8), (3, 50, 2, 20), (1, 300, 1, 100), (2, 10, 2, 1), (1, 7, 1, 7)]


def conv_and_grads(conv, x, k, dy):
    x, k = x.detach().requires_grad_(), k.detach().requires_grad_()
    y = conv(x, k)
    return (y, *torch.autograd.grad(y, (x, k), dy))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-C{}-K{}".format(*s))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_outputs_and_gradients_match_the_fft(shape, dtype, tol):
    B, T, C, K = shape
    torch.manual_seed(0)
    x, k, dy = torch.randn(B, T, C, dtype=dtype), torch.randn(C, K, dtype=dtype), torch.randn(B, T, C, dtype=dtype)
    fused = conv_and_grads(triton_conv.triton_causal_conv, x, k, dy)
    reference = conv_and_grads(fft_causal_conv, x.double(), k.double(), dy.double())
    for name, a, b in zip(("y", "dx", "dk"), fused, reference):
        assert a.dtype == dtype
        error = ((a.double() - b).norm() / b.norm()).item()
        assert error < tol, f"{name}: relative error {error:.1e}"


@pytest.mark.parametrize("cutoff", default_levels(64))
def test_causal_at_every_cutoff(cutoff):
    """In float64: changing inputs at positions >= t leaves every output before t as it was."""
    torch.manual_seed(0)
    path = FrequencyPath(ModelConfig(seq_len=64, d_model=4, n_heads=2, kernel_len=16)).double()
    path.set_cutoff(cutoff)
    kernel = path.kernel().detach()  # (C, K), band-limited to the cutoff
    x = torch.randn(2, 64, 4, dtype=torch.float64)
    for t in (1, 17, 40):
        changed = x.clone()
        changed[:, t:] = torch.randn_like(changed[:, t:])
        a, b = triton_conv.triton_causal_conv(x, kernel), triton_conv.triton_causal_conv(changed, kernel)
        assert torch.equal(a[:, :t], b[:, :t]), f"output before {t} saw the future at cutoff {cutoff}"
        assert not torch.equal(a[:, t:], b[:, t:])


def test_a_new_cutoff_launches_the_same_compiled_kernels():
    """Triton compiles one kernel per set of constexprs and argument dtypes: a cutoff changes neither (only the
    kernel's values), so an unlock never compiles anything. The model-level graph count is in test_model.py."""
    cfg = ModelConfig(seq_len=1024, d_model=8, n_heads=2, kernel_len=128)
    path = FrequencyPath(cfg)
    launches = set()
    for cutoff in default_levels(cfg.seq_len):
        path.set_cutoff(cutoff)
        kernel = path.kernel()
        launches.add((kernel.shape, kernel.dtype, tuple(triton_conv.launch_constants(kernel.shape[-1],
                                                                                     torch.bfloat16).items())))
    assert len(launches) == 1, launches


def test_the_model_trains_through_the_fused_conv():
    """A training step with freq_impl=triton moves the spectrum the way the FFT's gradient says."""
    from bicameral.model.lm import LanguageModel

    cfg = ModelConfig(seq_len=32, d_model=4, n_layers=1, n_heads=2, kernel_len=8, time_window=4)
    models = []
    for impl in ("fft", "triton"):
        torch.manual_seed(0)
        models.append(LanguageModel(replace(cfg, freq_impl=impl)).double())
    idx = torch.randint(0, 256, (2, 33))
    for model in models:
        model.set_cutoff(cfg.n_bins // 2)
        model(idx[:, :-1], idx[:, 1:]).loss.backward()
    grads = [m.blocks[0].mixer.freq.spectrum.grad for m in models]
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)


# -- built for Hopper on the CPU ---------------------------------------------------------------------------------

SM90_REGISTERS = 255  # per thread
SM90_SHARED = 227 * 1024  # bytes a block may use on an H100/H200


def test_kernels_build_for_sm90_within_registers_and_shared_memory():
    """Each kernel, in bf16 and fp32 at kernel_len 128, built for sm_90 without a GPU: no register spills."""
    # a process of its own: the interpreter this suite runs the kernels in cannot build them
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    out = subprocess.run([sys.executable, "-m", "bicameral.tools.kernel_resources", "--arch", "90"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {(r["kernel"], r["dtype"]) for r in rows} == {(k, d) for k in ("forward", "adjoint", "gram")
                                                          for d in ("bf16", "fp32")}
    for row in rows:
        assert row["registers"] <= SM90_REGISTERS, row
        assert row["stack_bytes"] == 0, f"registers spilled to the stack: {row}"
        assert row["shared_bytes"] <= SM90_SHARED, row
