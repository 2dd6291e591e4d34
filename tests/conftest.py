import os
from pathlib import Path

import pytest

from bicameral.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")

register_configs()

# A model and run small enough for seconds on a 2-core CPU.
MICRO = [
    "model.seq_len=64", "model.d_model=32", "model.n_layers=2", "model.n_heads=2",
    "model.kernel_len=16", "model.time_window=8",
    "trainer.batch_size=4", "trainer.log_every=5", "trainer.val_every=20", "trainer.val_batches=2",
    "optimizer.lr=3e-3", "optimizer.warmup_steps=5",
]


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
