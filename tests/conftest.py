"""What every test shares: the repo's paths, one way to compose a config, one way to read a record."""

import json
import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    # model.freq_impl=triton's kernels run in Triton's interpreter here; it must be on before triton is imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from bicameral.config import register_configs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")

register_configs()

# A model and run small enough for seconds on a 2-core CPU (conf/experiment/smoke.yaml).
MICRO = ["+experiment=smoke"]


def compose_config(*overrides: str):
    """The config `python train.py OVERRIDES` trains."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def micro_config(*overrides: str):
    """The smoke run without W&B, plus overrides: what most tests train."""
    return compose_config(*MICRO, "trackers=local", *overrides)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """A record file's rows."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(autouse=True)
def _quiet_offline_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory):
    """One converted Shakespeare cache for the whole session."""
    path = tmp_path_factory.mktemp("corpus_cache")
    os.environ["XDG_CACHE_HOME"] = str(path)
    return path
