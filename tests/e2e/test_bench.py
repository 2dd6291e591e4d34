"""The benchmark runs on CPU at a tiny size and reports every field the GPU table needs."""

import json
from dataclasses import replace

import pytest

from bicameral.model.config import ModelConfig
from bicameral.tools.bench import main, model_flops_per_token


def test_training_benchmark_reports_both_models_and_their_ratio(tmp_path):
    out = tmp_path / "bench.json"
    report = main(["--sizes", "tiny", "--seq-lens", "64", "--warmup", "1", "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["matmul_tflops"] > 0 and report["device"]
    # the transformer has no frequency path: one row, whatever its freq_impl label
    rows = {(r["arch"], r["freq_impl"] if r["arch"] == "bicameral" else None): r for r in report["results"]}
    assert set(rows) == {("transformer", None), ("bicameral", "fft"), ("bicameral", "toeplitz")}
    assert rows[("bicameral", "toeplitz")]["freq_impl_run"] == "fft"  # kernel_len 64 > seq_len/4: taps too big
    for (arch, _), row in rows.items():
        assert row["tokens_per_s"] > 0 and row["step_ms"] > 0
        # against the matmul rate measured in the same run (on a busy CPU it can even exceed 1)
        flops = model_flops_per_token(ModelConfig(arch=arch, seq_len=64, d_model=128, n_layers=4, n_heads=4,
                                                  kernel_len=64, time_window=16))
        expected = flops * row["tokens_per_s"] / (report["matmul_tflops"] * 1e12)
        assert abs(row["mfu_of_measured_matmul"] - expected) < 1e-9 * expected
        assert "peak_memory_gb" in row and row["params"] > 0
    bicameral = rows[("bicameral", "fft")]
    ratio = bicameral["tokens_per_s"] / rows[("transformer", None)]["tokens_per_s"]
    assert abs(bicameral["vs_transformer"] - ratio) < 1e-9


def test_mixer_benchmark_times_each_mixer():
    report = main(["--mixers", "--sizes", "tiny", "--seq-lens", "64,256", "--warmup", "1", "--repeats", "2"])
    for seq_len, toeplitz in ((64, []), (256, ["freq/toeplitz"])):  # toeplitz only while kernel_len <= seq_len/4
        mixers = {r["mixer"]: r["fwd_bwd_ms"] for r in report["results"] if r["seq_len"] == seq_len}
        assert set(mixers) == {"freq/fft", *toeplitz, "time/blocked", "attention/causal"}
        assert all(ms > 0 for ms in mixers.values())
        causal = [r for r in report["results"] if r["seq_len"] == seq_len and r["mixer"] == "attention/causal"]
        assert causal[0]["vs_causal_attention"] == 1.0


def test_model_flops_grow_with_width_and_attention_span():
    small = ModelConfig(d_model=384, n_layers=6, seq_len=1024)
    assert model_flops_per_token(replace(small, arch="transformer")) > model_flops_per_token(
        replace(small, arch="transformer", seq_len=256))  # full attention: longer context, more work per token
    assert model_flops_per_token(replace(small, d_model=768)) > model_flops_per_token(small)


def test_model_flops_count_each_arch_by_its_own_mixer():
    base = ModelConfig(d_model=384, n_layers=6, seq_len=1024, time_window=16)
    flops = {arch: model_flops_per_token(replace(base, arch=arch))
             for arch in ("freq_only", "time_only", "transformer", "bicameral")}
    d, L = base.d_model, base.n_layers
    assert flops["time_only"] - flops["freq_only"] == 6 * L * 2 * d * d + 12 * L * d * 16  # qkv+out vs in/out
    assert flops["bicameral"] - flops["time_only"] == 6 * L * 3 * d * d  # freq in/out and the gate
    # full causal (a query at position t sees t + 1 keys: (T + 1) / 2 on average) against the window
    assert flops["transformer"] - flops["time_only"] == 12 * L * d * ((1024 + 1) / 2 - 16)
    # no attention in freq_only: its work per token does not grow with the context
    assert model_flops_per_token(replace(base, arch="freq_only", seq_len=4096)) == flops["freq_only"]
    # a bicameral model with full causal attention (time_window=None) attends to (T + 1) / 2 keys on average
    assert model_flops_per_token(replace(base, time_window=None)) - flops["bicameral"] == 12 * L * d * (512.5 - 16)


def test_each_benchmarked_model_compiles_on_a_fresh_dynamo(monkeypatch):
    """Many models in one process would pass dynamo's recompile limit and silently run eager."""
    import torch

    from bicameral.tools import bench

    calls = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: calls.append("reset"))
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(("compile", kw)) or module)
    for _ in range(2):
        bench.compiled(torch.nn.Linear(2, 2))
    assert calls == ["reset", ("compile", {"dynamic": False})] * 2


def test_profile_lists_the_ops_with_the_most_self_time(tmp_path):
    out = tmp_path / "profile.json"
    report = main(["--profile", "2", "--sizes", "tiny", "--seq-lens", "64", "--batch-size", "2", "--warmup", "1",
                   "--freq-impls", "fft", "--out", str(out)])
    rows = report["results"]
    assert json.loads(out.read_text())["results"] == rows and 0 < len(rows) <= 15
    shares = [row["share"] for row in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    ops = {row["op"] for row in rows}
    assert "aten::mm" in ops and "aten::_fft_r2c" in ops  # the matmuls, and the frequency path's FFTs
    assert all(row["freq_impl"] == "fft" and row["calls_per_step"] > 0 for row in rows)


def test_profiled_kernels_are_grouped_by_family():
    from bicameral.tools.bench import kernel_family

    names = {  # kernel names as the CUDA profiler reports them on an H100/H200, and aten ops on the CPU
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64": "GEMM", "nvjet_tst_128x256_64x4": "GEMM",
        "aten::mm": "GEMM", "pytorch_flash::flash_fwd_kernel": "attention", "triton_tem_fused_0": "attention",
        "toeplitz_conv_kernel": "Triton, ours", "window_gram_kernel": "Triton, ours", "regular_fft_factor": "FFT",
        "triton_poi_fused_add_mul_0": "copy/elementwise", "Memcpy HtoD (Pinned -> Device)": "copy/elementwise",
        "void at::native::vectorized_elementwise_kernel<4>": "copy/elementwise",
        "ncclKernel_AllReduce": "communication", "some_custom_kernel": "other",
    }
    assert {name: kernel_family(name) for name in names} == names


def test_an_unknown_lean_option_is_one_line_before_any_timing(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--sizes", "tiny", "--seq-lens", "64", "--lean", "conv_input+shared_output"])
    assert stopped.value.code == 2
    assert "--lean conv_input+shared_output names ['shared_output']: use any of conv_input, head_gate, shared_out" \
        in capsys.readouterr().err
