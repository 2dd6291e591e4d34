import os
from pathlib import Path

import pytest

from bicameral.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")

register_configs()

# A model and run small enough for seconds on a 2-core CPU (conf/experiment/smoke.yaml).
MICRO = ["+experiment=smoke"]


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
