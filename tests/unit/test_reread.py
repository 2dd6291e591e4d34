"""The earlier studies' 2x2 re-read: each factor's effect averaged over the other, seed by seed."""

import importlib.util
import json

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("reread_studies", ROOT / "experiments" / "reread_studies.py")
reread = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reread)


def run(study: str, seed: int, loss: float) -> dict:
    unlocks = [{"step": s} for s in (50, 100, 150)] if study in ("achievement", "unlock_only") else []
    return {"status": "finished", "overrides": [f"+study={study}", f"seed={seed}", "+experiment=study_controls"],
            "seed": seed, "final_val_loss": loss, "best_val_loss": loss, "arch": "bicameral", "unlocks": unlocks}


def test_the_two_by_two_separates_restarts_unlocking_and_their_interaction(tmp_path):
    # restarts -0.04, unlocking +0.01, interaction +0.002, and a seed offset that pairing removes
    runs = [run(study, seed, 1.8 + 0.05 * seed + restart * -0.04 + unlock * 0.01 + restart * unlock * 0.002)
            for seed in range(3)
            for study, restart, unlock in (("none", 0, 0), ("restarts_only", 1, 0), ("unlock_only", 0, 1),
                                           ("achievement", 1, 1))]
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps({"runs": runs}))
    text, effects = reread.factorial(path)
    assert effects["LR restarts"]["mean"] == pytest.approx(-0.04 + 0.001)
    assert effects["unlocking"]["mean"] == pytest.approx(0.01 + 0.001)
    assert effects["interaction"]["mean"] == pytest.approx(0.002)
    assert effects["LR restarts"]["n"] == 3 and "| LR restarts | 3 | -0.039" in text
