"""The README's "Your own corpus" path end to end: prepare the embedded corpus with a BPE of 1024 tokens, train the
smoke preset on its shards, resume, then sample text that decodes and score it in bits per byte."""

import subprocess
import sys

import pytest

from bicameral.checkpoint.format import load_checkpoint
from bicameral.data.corpus import CorpusError
from bicameral.engine.run import train
from bicameral.tools import evaluate, sample
from tests.conftest import ROOT, micro_config, read_jsonl


@pytest.fixture(scope="module")
def bpe_shards(tmp_path_factory, corpus_cache):
    out = tmp_path_factory.mktemp("bpe")
    proc = subprocess.run([sys.executable, "-m", "bicameral.data.prepare", "shakespeare", "--tokenizer", "bpe",
                           "--vocab-size", "1024", "--out", str(out), "--overwrite"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def losses(run_dir) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "train"]


def test_a_bpe_corpus_trains_resumes_samples_and_scores(tmp_path, bpe_shards):
    data = ("data=tokens", f"data.path={bpe_shards}", "trainer.ckpt_every=10")
    whole = train(micro_config(*data), tmp_path / "whole")
    train(micro_config(*data), tmp_path / "run", stop_at=10)
    resumed = train(micro_config(*data), tmp_path / "run")
    assert losses(tmp_path / "run") == losses(tmp_path / "whole")
    assert resumed["final_val_loss"] == whole["final_val_loss"]

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    state = load_checkpoint(checkpoint)
    assert state["config"]["model"]["vocab_size"] == 1024  # from meta.json
    assert state["tokenizer"]["kind"] == "huggingface" and (tmp_path / "run" / "tokenizer.json").is_file()
    # a BPE token stands for several bytes: fewer bits per byte than nats per token over ln 2
    assert 0 < resumed["final_val_bits_per_byte"] < resumed["final_val_loss"] / 0.6931

    [text] = sample.main([str(checkpoint), "--prompt", "ROMEO:", "--tokens", "20", "--seed", "1"])
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:") + 20  # 20 tokens decode to more characters

    # the run's own val windows, scored by bicameral-eval as the trainer scored them
    scores = evaluate.main([str(checkpoint), "--shards", str(bpe_shards), "--batch-size", "4", "--batches", "2"])
    val = scores[f"{bpe_shards} (val)"]
    assert val["nats_per_token"] == pytest.approx(resumed["final_val_loss"], rel=1e-5)
    assert val["bits_per_byte"] == pytest.approx(resumed["final_val_bits_per_byte"], rel=1e-5)
    assert "order0_self" not in scores["python-docs"]  # byte yardsticks are for byte-level runs


def test_a_bpe_checkpoint_whose_tokenizer_was_changed_is_refused(tmp_path, bpe_shards):
    train(micro_config("data=tokens", f"data.path={bpe_shards}", "trainer.steps_per_epoch=5"), tmp_path)
    copy = tmp_path / "tokenizer.json"
    copy.write_text(copy.read_text() + "\n")  # any change: its hash no longer matches the checkpoint's
    with pytest.raises(CorpusError, match="tokenizer") as err:
        sample.main([str(tmp_path / "checkpoint.pt")])
    assert str(copy) in str(err.value) and "\n" not in str(err.value)
