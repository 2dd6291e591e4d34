"""Components built from config: every built-in choice by name, any importable class by _target_,
and a bad component failing at start in one line naming the key and the fix."""

import math

import pytest
import torch

from bicameral.curriculum import Achievement, FixedThreshold, NoCurriculum, StepSchedule
from bicameral.engine.build import build_curriculum, build_optimizer, build_schedule
from bicameral.engine.run import train
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.optim import MuonAdamW, parameter_groups
from bicameral.schedule import Constant, CosineWithRestarts, LinearWithRestarts
from tests.conftest import MICRO, compose_config

CPU = torch.device("cpu")


make = compose_config


def tiny_model() -> LanguageModel:
    return LanguageModel(ModelConfig(seq_len=32, d_model=16, n_layers=2, n_heads=2, kernel_len=8, time_window=4))


@pytest.mark.parametrize("choice, cls", [("achievement", Achievement), ("fixed_threshold", FixedThreshold),
                                         ("none", NoCurriculum), ("step_schedule", StepSchedule)])
def test_each_curriculum_choice_builds_its_class(choice, cls):
    curriculum = build_curriculum(make(f"curriculum={choice}").curriculum, 1024)
    assert type(curriculum) is cls and curriculum.name == choice
    assert curriculum.levels == ([513] if choice == "none" else [128, 256, 512, 513])


@pytest.mark.parametrize("choice, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                         ("sgd", torch.optim.SGD), ("muon", MuonAdamW)])
def test_each_optimizer_choice_builds_its_class(choice, cls):
    optimizer = build_optimizer(make(f"optimizer={choice}").optimizer, tiny_model(), CPU)
    assert type(optimizer) is cls


def test_a_target_override_builds_that_class_never_silently_another():
    cfg = make("optimizer._target_=torch.optim.Adam")
    optimizer = build_optimizer(cfg.optimizer, tiny_model(), CPU)
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["betas"] == tuple(cfg.optimizer.betas)  # adamw's


def test_matrices_decay_and_the_rest_never_does():
    model = tiny_model()
    optimizer = build_optimizer(make().optimizer, model, CPU)
    decayed, kept = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and kept["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"])
    assert any("spectrum" in n for n in kept["param_names"]) and any("norm" in n for n in kept["param_names"])


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    optimizer = MuonAdamW(parameter_groups(tiny_model()))
    muon = [n for g in optimizer.muon.param_groups for n in g["param_names"]]
    adamw = [n for g in optimizer.adamw.param_groups for n in g["param_names"]]
    assert muon and all(("proj" in n or "qkv" in n or "mlp" in n) for n in muon)
    assert any(n.startswith("embed") for n in adamw) and any(".gate." in n for n in adamw)
    assert any("spectrum" in n for n in adamw) and any("norm" in n for n in adamw)
    assert not set(muon) & set(adamw)


@pytest.mark.parametrize("choice, cls", [("cosine_restarts", CosineWithRestarts),
                                         ("linear_restarts", LinearWithRestarts), ("constant", Constant)])
def test_each_schedule_choice_is_a_torch_scheduler(choice, cls):
    cfg = make(f"schedule={choice}")
    optimizer = build_optimizer(cfg.optimizer, tiny_model(), CPU)
    schedule = build_schedule(cfg.schedule, optimizer, total_steps=100)
    assert type(schedule) is cls and isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)
    assert schedule.get_last_lr()[0] == pytest.approx(cfg.optimizer.lr / cfg.schedule.warmup_steps)  # warmup step 0


def test_muon_trains_in_the_same_engine(tmp_path, corpus_cache):
    summary = train(make(*MICRO, "trackers=local", "optimizer=muon", "trainer.steps_per_epoch=40"), tmp_path)
    assert summary["final_val_loss"] < math.log(256) - 0.5  # a uniform guess over bytes is ln 256 = 5.55
