"""Each default is stated once, in Python: the dataclass schemas (data, model, trainer) and the arguments of
the `_target_` classes. A group option's YAML states only what it changes; a line that restates a default
is a second home for it, free to drift, and fails here."""

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from bicameral.config import TrainerConfig
from bicameral.model.config import ModelConfig
from bicameral.schemas import BUILT_IN, ENGINE_PASSES, signature_schema
from tests.conftest import ROOT, compose_config

CONF = ROOT / "conf"
BASES = {"base_model": ModelConfig, "base_trainer": TrainerConfig}
HYDRA_KEYS = {"defaults", "_target_", "_partial_"}
OPTIONS = sorted(p.relative_to(CONF) for group in ("data", "model", "trainer", "curriculum", "optimizer",
                                                   "schedule", "trackers") for p in (CONF / group).glob("*.yaml"))


def python_defaults(path: Path) -> dict | None:
    """The defaults an option starts from: its base dataclass, or its built-in class's schema."""
    for entry in yaml.safe_load((CONF / path).read_text()).get("defaults", []):
        if entry in BASES:
            return OmegaConf.to_container(OmegaConf.structured(BASES[entry]))
        if isinstance(entry, str) and entry.startswith("/schemas/"):
            group, name = entry.removeprefix("/schemas/").split("@")[0].split("/")
            return signature_schema(BUILT_IN[group][name], ENGINE_PASSES[group])
    return None


def same(a, b) -> bool:
    listed = (list, tuple)
    return list(a) == list(b) if isinstance(a, listed) and isinstance(b, listed) else a == b and type(a) is type(b)


@pytest.mark.parametrize("path", OPTIONS, ids=str)
def test_an_option_states_only_what_it_changes(path):
    stated = {k: v for k, v in (yaml.safe_load((CONF / path).read_text()) or {}).items() if k not in HYDRA_KEYS}
    defaults = python_defaults(path)
    if defaults is None:  # an option built on another option (transformer on tiny), or nodes of nodes (trackers)
        return
    restated = [f"{key}: {value}" for key, value in stated.items()
                if key in defaults and defaults[key] != "???" and same(value, defaults[key])]
    assert not restated, f"conf/{path} restates the default {', '.join(restated)}: drop the line"


def test_the_check_catches_a_restated_default(tmp_path, monkeypatch):
    """The rule above can fail: an option that repeats Achievement's min_steps_per_level is caught."""
    (tmp_path / "curriculum").mkdir()
    (tmp_path / "curriculum" / "restated.yaml").write_text(
        "defaults:\n  - /schemas/curriculum/achievement@_here_\n  - _self_\n\nunlock_threshold: 3.2\n"
        "min_steps_per_level: 50\n")
    monkeypatch.setattr(f"{__name__}.CONF", tmp_path)
    with pytest.raises(AssertionError, match="restates the default min_steps_per_level: 50"):
        test_an_option_states_only_what_it_changes(Path("curriculum/restated.yaml"))


def test_the_composed_defaults_are_the_classes_defaults():
    cfg = compose_config()
    assert cfg.trainer.steps_per_epoch == TrainerConfig.steps_per_epoch == 900
    assert cfg.model.seq_len == ModelConfig.seq_len == 128
    assert cfg.curriculum.min_steps_per_level == 50 and cfg.schedule.warmup_steps == 50
    assert compose_config("optimizer=muon").optimizer.adamw_lr == 1e-3  # as the README says
    # an override of a built-in option's setting needs no '+': the schema holds the key
    assert compose_config("optimizer.amsgrad=true").optimizer.amsgrad is True
