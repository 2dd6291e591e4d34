"""Ablation models, sampling and held-out evaluation."""

import json
import math
import sys

import numpy as np
import pytest
import torch

from bicameral.checkpoint.format import load_checkpoint
from bicameral.curriculum import default_levels
from bicameral.data.streams import InMemoryTokens
from bicameral.engine.run import train
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.tools import evaluate, sample
from tests.conftest import micro_config

CFG = ModelConfig(seq_len=64, d_model=32, n_layers=2, n_heads=2, kernel_len=16, time_window=8)


@pytest.mark.parametrize("arch, share", [("freq_only", 1.0), ("time_only", 0.0)])
def test_ablations_are_causal_and_report_their_share(arch, share):
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(**{**vars(CFG), "arch": arch})).double().eval()
    idx = torch.randint(0, 256, (2, 64))
    changed = idx.clone()
    changed[:, 20:] = 7
    for cutoff in default_levels(64) if model.has_frequency_path else [model.n_bins]:
        model.set_cutoff(cutoff)
        with torch.no_grad():
            a, b = model(idx), model(changed)
        assert (a.logits[:, :20] - b.logits[:, :20]).abs().max() < 1e-10
        assert (a.logits[:, 20:] - b.logits[:, 20:]).abs().max() > 1e-3
        assert a.freq_share.item() == share
    assert model.has_frequency_path == (arch == "freq_only")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_cache):
    run_dir = tmp_path_factory.mktemp("run")
    summary = train(micro_config("curriculum.unlock_threshold=5.2"), run_dir)
    return run_dir / "checkpoint.pt", summary


def test_sampling_is_seeded_sized_and_keeps_the_trained_cutoff(trained):
    path, summary = trained
    args = [str(path), "--prompt", "ROMEO:", "--tokens", "40", "--samples", "2", "--seed", "3"]
    first, again = sample.main(args), sample.main(args)
    assert first == again and len(first) == 2 and first[0] != first[1]
    assert all(text.startswith("ROMEO:") for text in first)
    model = sample.load_model(load_checkpoint(path), torch.device("cpu"))
    assert model.cutoff == summary["final_cutoff"]
    greedy = sample.generate(model, torch.tensor([[82, 79]]), 80, temperature=0)  # longer than seq_len
    assert greedy.shape == (1, 82)


def test_evaluation_reports_both_corpora_in_nats_and_bits(trained):
    path, summary = trained
    results = evaluate.main([str(path), "--batch-size", "4", "--batches", "2"])  # the run's own val windows
    assert results["shakespeare-val"]["nats_per_byte"] == pytest.approx(summary["final_val_loss"], rel=1e-5)
    for r in results.values():
        assert r["bits_per_byte"] == pytest.approx(r["nats_per_byte"] / math.log(2))
    # prose about Python is harder for a model of Shakespeare's speech than Shakespeare's own
    assert results["python-docs"]["nats_per_byte"] > results["shakespeare-val"]["nats_per_byte"]


def test_evaluation_scores_a_users_own_text_file_or_folder(trained, tmp_path):
    path, _ = trained
    docs = tmp_path / "docs.txt"  # the very bytes of the built-in python-docs corpus
    docs.write_bytes(evaluate.python_docs_tokens().tobytes())
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("To be, or not to be, that is the question.\n" * 20)
    (folder / "b.md").write_text("Whether 'tis nobler in the mind to suffer.\n" * 20)
    results = evaluate.main([str(path), "--batch-size", "4", "--batches", "2", "--text", str(docs),
                             "--text", str(folder)])
    assert results[str(docs)] == results["python-docs"]  # same tokens, same windows
    assert results[str(folder)]["nats_per_byte"] != results["python-docs"]["nats_per_byte"]


def test_evaluation_of_a_text_too_short_for_one_window_names_the_fix(trained, tmp_path, capsys, monkeypatch):
    path, _ = trained
    short = tmp_path / "short.txt"
    short.write_text("ROMEO: hi")
    monkeypatch.setattr(sys, "argv", ["bicameral-eval", str(path), "--text", str(short)])
    with pytest.raises(SystemExit) as exit_info:
        evaluate.cli()
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith(f"error: --text {short} has 9 tokens: too short") and "Fix: pass a longer text" in message


def test_study_report_evaluates_and_samples_every_group(trained, tmp_path, capsys):
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("study_report", ROOT / "experiments" / "study_report.py")
    study_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study_report)
    path, summary = trained
    study_report.main([str(path.parent), "--out", str(tmp_path), "--tokens", "20", "--batches", "2"])
    report = (tmp_path / "study_eval.md").read_text()
    [row] = [line for line in report.splitlines() if line.startswith(f"| {path.parent.name} | 1 |")]
    assert len(row.split("|")) == 8  # variant, n, nats/byte on both corpora, then each minus the baseline
    assert "```\\nROMEO:" in report.replace("\n", "\\n")
    saved = json.loads((tmp_path / "study_eval.json").read_text())
    [run] = saved["runs"]  # each run's own values, so differences can be paired by seed
    assert run["label"] == path.parent.name and set(run) == {"label", "variant", "seed", "shakespeare-val",
                                                              "python-docs"}
    assert 0 < run["python-docs"]["nats_per_byte"] < 8


def test_kernel_leak_measures_each_level_just_before_it_unlocks(tmp_path, corpus_cache):
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("kernel_leak", ROOT / "experiments" / "kernel_leak.py")
    kernel_leak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel_leak)
    report = kernel_leak.main(["--seeds", "0,1", "--stop-at", "20", "--out", str(tmp_path), "--",
                               "+experiment=smoke", "curriculum=step_schedule", "curriculum.unlock_steps=[5,10,15]"])
    trained = [row for row in report["levels"] if row["trained"]]
    assert [(row["cutoff"], sorted(set(row["steps"]))) for row in trained] == [(8, [5]), (16, [10]), (32, [15])]
    assert all(0 < leak < 1 for row in report["levels"] for leak in row["leaks"]) and len(trained[0]["leaks"]) == 2
    # a narrower band leaks a larger share of the truncated kernel's energy
    assert trained[0]["mean"] > trained[1]["mean"] > trained[2]["mean"]
    assert "| trained | 8 | 5 |" in (tmp_path / "kernel_leak.md").read_text()


def test_evaluation_scores_the_whole_text_by_default():
    """Every non-overlapping window once: 7 windows of 64 in 500 tokens (the 8th would lack a target),
    in batches of 3, 3 and 1, averaged by window, the same as scoring the 7 windows one by one."""
    torch.manual_seed(0)
    model = LanguageModel(CFG).eval()
    tokens = torch.randint(0, 256, (500,), dtype=torch.uint8)
    batches = list(evaluate.whole_text_batches(InMemoryTokens(tokens), 3, 64))
    assert [len(x) for x, _ in batches] == [3, 3, 1]
    assert torch.equal(batches[0][0][1], tokens[64:128].long()) and torch.equal(batches[0][1][1], tokens[65:129].long())
    with torch.no_grad():
        one_by_one = [model(tokens[s:s + 64][None].long(), tokens[s + 1:s + 65][None].long()).loss.item()
                      for s in range(0, 448, 64)]
    scored = evaluate.score(model, InMemoryTokens(tokens), torch.ones(256, dtype=torch.long), 3, None)
    assert scored.nats_per_token == pytest.approx(sum(one_by_one) / 7, rel=1e-6)
    assert scored.targets == scored.bytes == 7 * 64


def test_evaluation_never_follows_paths_in_the_checkpoint(trained, tmp_path):
    """A checkpoint is data: its data.cache_dir is not written to, and its data.path (a FIFO here, which would
    hang a reader) is not opened; the run's held-out split is rebuilt only for the embedded corpus."""
    import os

    from bicameral.checkpoint.format import save_checkpoint

    path, _ = trained
    state = load_checkpoint(path)
    elsewhere = tmp_path / "not" / "here"
    state["config"]["data"]["cache_dir"] = str(elsewhere)
    save_checkpoint(state, tmp_path / "cache.pt")
    results = evaluate.evaluate(str(tmp_path / "cache.pt"), batch_size=4, n_batches=1)
    assert "shakespeare-val" in results and not elsewhere.exists()

    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    state["config"]["data"] = {"_target_": "bicameral.data.TextFile", "path": str(fifo), "val_fraction": 0.05}
    save_checkpoint(state, tmp_path / "fifo.pt")
    results = evaluate.evaluate(str(tmp_path / "fifo.pt"), batch_size=4, n_batches=1)
    assert set(results) == {"python-docs"}  # and it returned: the FIFO was never opened


def test_order0_yardstick_is_the_byte_entropy_worked_by_hand():
    # "aab" fitted on itself: counts a=2+1, b=1+1, and 254 more bytes at 1, over 259; scored a, a, b
    expected = -(2 * math.log(3 / 259) + math.log(2 / 259)) / 3
    text = np.frombuffer(b"aab", dtype=np.uint8)
    assert evaluate.order0_nats(text, text) == pytest.approx(expected)


def test_each_score_stands_beside_its_order0_yardsticks(trained, capsys):
    path, _ = trained
    results = evaluate.main([str(path), "--batch-size", "4", "--batches", "2"])
    docs, val = results["python-docs"], results["shakespeare-val"]
    # byte frequencies of Shakespeare fit Shakespeare's val better than the docs, and the docs' own fit them best
    assert val["order0_train"] < docs["order0_train"] and docs["order0_self"] < docs["order0_train"]
    assert "order-0 yardsticks: the text's own bytes" in capsys.readouterr().out
