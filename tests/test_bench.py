"""The benchmark runs on CPU at a tiny size and reports every field the GPU table needs."""

import json
from dataclasses import replace

from bicameral.bench import main, model_flops_per_token
from bicameral.model import ModelConfig


def test_training_benchmark_reports_both_models_and_their_ratio(tmp_path):
    out = tmp_path / "bench.json"
    report = main(["--sizes", "tiny", "--seq-lens", "64", "--warmup", "1", "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["matmul_tflops"] > 0 and report["device"]
    rows = {(r["arch"], r["freq_impl"]): r for r in report["results"]}
    assert set(rows) == {("transformer", "fft"), ("bicameral", "fft"), ("bicameral", "toeplitz")}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and row["step_ms"] > 0 and 0 < row["mfu"] < 1
        assert "peak_memory_gb" in row and row["params"] > 0
    bicameral = rows[("bicameral", "fft")]
    ratio = bicameral["tokens_per_s"] / rows[("transformer", "fft")]["tokens_per_s"]
    assert abs(bicameral["vs_transformer"] - ratio) < 1e-9


def test_mixer_benchmark_times_each_mixer():
    report = main(["--mixers", "--sizes", "tiny", "--seq-lens", "64", "--warmup", "1", "--repeats", "2"])
    mixers = {r["mixer"]: r["fwd_bwd_ms"] for r in report["results"]}
    assert set(mixers) == {"freq/fft", "freq/toeplitz", "time/blocked", "attention/causal"}
    assert all(ms > 0 for ms in mixers.values())


def test_model_flops_grow_with_width_and_attention_span():
    small = ModelConfig(d_model=384, n_layers=6, seq_len=1024)
    assert model_flops_per_token(replace(small, arch="transformer")) > model_flops_per_token(
        replace(small, arch="transformer", seq_len=256))  # full attention: longer context, more work per token
    assert model_flops_per_token(replace(small, d_model=768)) > model_flops_per_token(small)
