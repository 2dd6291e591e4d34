"""Training on token shards: the embedded corpus written as shards trains exactly as it does from RAM, a shard run
resumes exactly, a model too small for the data's vocabulary fails before any step, and a plug-in Dataset trains."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from bicameral.checkpoint.format import load_checkpoint
from bicameral.data.datasets import Dataset, Shakespeare
from bicameral.data.streams import InMemoryTokens
from bicameral.engine.run import train
from bicameral.errors import BicameralError
from tests.conftest import micro_config, read_jsonl
from tests.shard_files import write_llmc, write_ours

SEQ_LEN = 64  # the smoke preset's


@pytest.fixture(scope="module")
def shakespeare_shards(tmp_path_factory, corpus_cache):
    """The embedded corpus's own train/val split, as our shards (uint8, train in two shards) and as llm.c's."""
    split = Shakespeare(SEQ_LEN)
    train, val = split.train.tokens.numpy(), split.val.tokens.numpy()
    ours = tmp_path_factory.mktemp("ours")
    write_ours(ours, {"train": [train[:1_000_000], train[1_000_000:]], "val": [val]}, dtype="uint8")
    llmc = tmp_path_factory.mktemp("llmc")
    write_llmc(llmc / "corpus_train_000000.bin", train)
    write_llmc(llmc / "corpus_val_000000.bin", val)
    return ours, llmc


def losses(run_dir) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "train"]


def test_shards_of_the_embedded_corpus_train_exactly_as_the_corpus_in_ram(tmp_path, shakespeare_shards):
    ours, llmc = shakespeare_shards
    in_ram = train(micro_config(), tmp_path / "ram")
    from_ours = train(micro_config("data=tokens", f"data.path={ours}"), tmp_path / "ours")
    from_llmc = train(micro_config("data=tokens", f"data.path={llmc}", "data.vocab_size=256"), tmp_path / "llmc")
    assert losses(tmp_path / "ram") == losses(tmp_path / "ours") == losses(tmp_path / "llmc")
    assert in_ram["final_val_loss"] == from_ours["final_val_loss"] == from_llmc["final_val_loss"]
    # bytes: one byte per token, so bits per byte is nats per token over ln 2
    assert from_ours["final_val_bits_per_byte"] == pytest.approx(from_ours["final_val_loss"] / np.log(2))
    assert from_llmc["final_val_bits_per_byte"] is None  # llm.c shards name no tokenizer


def test_a_shard_run_resumes_exactly(tmp_path, shakespeare_shards):
    ours, _ = shakespeare_shards
    data = ("data=tokens", f"data.path={ours}", "trainer.steps_per_epoch=30", "trainer.ckpt_every=10")
    train(micro_config(*data), tmp_path / "whole")
    stopped = train(micro_config(*data), tmp_path / "resumed", stop_at=10)
    resumed = train(micro_config(*data), tmp_path / "resumed")
    assert (stopped["step"], resumed["step"]) == (10, 30)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "whole")


@pytest.mark.parametrize("overrides, message", [
    (["model.vocab_size=64"], "model.vocab_size=64 is smaller than the data's vocabulary (256 ids), so some tokens "
                              "have no embedding. Fix: drop model.vocab_size; it follows the data."),
    (["data=tokens"], "data=bicameral.data.TokenShards needs data.path. Fix: add data.path=<value>."),
    (["data=tokens", "data.path={ours}", "data.vocab_size=300"],
     "data.vocab_size=300, but {ours}'s tokenizer has 256 ids. Fix: drop data.vocab_size"),
    (["data=tokens", "data.path={ours}", "data.format=parquet"], "data.format='parquet' is not a shard format."),
], ids=["model vocab too small", "no path", "vocab against meta", "unknown format"])
def test_bad_data_settings_fail_in_one_line_before_any_step(tmp_path, shakespeare_shards, overrides, message):
    ours, _ = shakespeare_shards
    with pytest.raises(BicameralError) as err:
        train(micro_config(*(o.format(ours=ours) for o in overrides)), tmp_path)
    assert message.format(ours=ours) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_model_vocab_larger_than_the_data_is_padding_and_says_so(tmp_path, corpus_cache, caplog):
    caplog.set_level("INFO", logger="bicameral")
    train(micro_config("model.vocab_size=320", "trainer.steps_per_epoch=5"), tmp_path)
    assert "model.vocab_size=320 exceeds the data's 256 ids: 64 rows are padding that no token uses" in caplog.text


class Cycle(Dataset):
    """A plug-in dataset: the ids 0..period-1 over and over, a sequence any model learns to continue."""

    def __init__(self, seq_len: int, period: int = 7, tokens: int = 20_000):
        ids = torch.arange(tokens) % period
        self.name, self.vocab_size, self.tokenizer = f"cycle of {period}", period, None
        self.train, self.val = InMemoryTokens(ids[: tokens - 2000]), InMemoryTokens(ids[-2000:])
        self.check_fits(seq_len)

    def fingerprint(self) -> str:
        return f"cycle-{self.vocab_size}"


def test_a_plug_in_dataset_trains_with_the_vocabulary_it_names(tmp_path, corpus_cache):
    cfg = micro_config("trainer.steps_per_epoch=40")
    with open_dict(cfg):
        cfg.data = OmegaConf.create({"_target_": f"{__name__}.Cycle", "_partial_": True, "period": 7})
    summary = train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["model"]["vocab_size"] == 7
    assert summary["final_val_loss"] < 0.5 and summary["final_val_bits_per_byte"] is None  # it learnt the cycle
