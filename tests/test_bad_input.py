"""Every bad input fails before training starts, with one line naming the problem and the fix."""

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from bicameral.checkpoint import save_checkpoint
from bicameral.errors import BicameralError
from bicameral.run import train
from tests.conftest import CONF_DIR, MICRO


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*MICRO, "logger=none", *overrides])


@pytest.mark.parametrize(
    "override, key",
    [
        ("model=huge", "model"),  # unknown config group option
        ("trainer.log_evry=5", "log_evry"),  # unknown key
        ("trainer.batch_size=four", "batch_size"),  # wrong type
    ],
)
def test_config_typos_fail_at_composition_naming_the_key(override, key):
    with pytest.raises((ConfigCompositionException, MissingConfigException, ValidationError)) as err:
        compose_cfg(override)
    assert key in str(err.value) + str(err.value.__cause__)


def corpus(tmp_path, content: bytes | None) -> str:
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    return f"data.path={path}"


BAD_VALUES = [
    (["optimizer.lr=0"], "optimizer.lr=0 must be > 0"),
    (["curriculum.unlock_threshold=high"], "curriculum.unlock_threshold='high' must be a number"),
    (["optimizer.lr=-1e-3"], "optimizer.lr=-0.001 must be > 0"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 must be >= 1"),
    (["trainer.steps_per_epoch=0"], "trainer.steps_per_epoch=0 must be >= 1"),
    (["trainer.epochs=-1"], "trainer.epochs=-1 must be >= 1"),
    (["trainer.accum_steps=0"], "trainer.accum_steps=0 must be >= 1"),
    (["curriculum.levels=[16,8,33]"], "must be strictly increasing"),
    (["curriculum.levels=[8,16,40]"], "40 exceeds the 33 rfft bins of seq_len=64"),
    (["curriculum.unlock_threshold=0"], "curriculum.unlock_threshold=0 must be > 0"),
    (["curriculum=fixed_threshold", "curriculum.thresholds=[2.0,-1.0,0.5]"], "thresholds must be > 0"),
    (["model.time_window=0"], "model.time_window=0 must be in 1..seq_len=64"),
    (["model.time_window=65"], "model.time_window=65 must be in 1..seq_len=64"),
    (["model.kernel_len=0"], "model.kernel_len=0 must be in 1..seq_len=64"),
    (["model.kernel_len=100"], "model.kernel_len=100 must be in 1..seq_len=64"),
    (["model.arch=transformer"], "has no frequency path. Fix: add curriculum=none"),
    (["model.seq_len=4000000"], "too short for seq_len=4000000"),  # seq_len larger than the corpus
]


@pytest.mark.parametrize("overrides, message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_values_fail_before_any_step(tmp_path, corpus_cache, overrides, message):
    with pytest.raises(BicameralError, match=message.replace(".", r"\.").replace("[", r"\[")) as err:
        train(compose_cfg(*overrides), tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "looks binary"),
        (b"To be, or not to be", "too short for seq_len=64"),
    ],
)
def test_bad_corpora_fail_naming_the_path(tmp_path, content, message):
    path_override = corpus(tmp_path, content)
    with pytest.raises(BicameralError, match=message) as err:
        train(compose_cfg("data=text_file", path_override), tmp_path / "run")
    assert str(tmp_path / "corpus.txt") in str(err.value)


def test_a_checkpoint_of_another_shape_fails_naming_it(tmp_path, corpus_cache):
    train(compose_cfg("trainer.steps_per_epoch=2"), tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoint.pt"
    with pytest.raises(BicameralError, match=f"Checkpoint {ckpt} does not fit this config .*trainer.resume=null"):
        train(compose_cfg("model.d_model=64", f"trainer.resume={ckpt}"), tmp_path / "b")


def test_a_foreign_checkpoint_fails_naming_it(tmp_path, corpus_cache):
    foreign = tmp_path / "foreign.pt"
    save_checkpoint({"state_dict": torch.zeros(1)}, foreign)
    with pytest.raises(BicameralError, match="foreign.pt is not a bicameral checkpoint"):
        train(compose_cfg(f"trainer.resume={foreign}"), tmp_path / "run")


def test_an_unwritable_output_dir_fails_at_start(tmp_path, corpus_cache):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(BicameralError, match=f"Output dir {blocker / 'run'} is not writable"):
        train(compose_cfg(), blocker / "run")
