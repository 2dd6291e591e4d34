"""Config composition through Hydra's compose API: groups, presets, and typos caught at start."""

import subprocess
import sys

import pytest

from bicameral.config import check_config
from bicameral.engine.build import build_curriculum
from bicameral.tools.train import renamed_overrides
from tests.conftest import ROOT, compose_config

make = compose_config


def test_defaults_are_the_cpu_achievement_run():
    cfg = make()
    assert cfg.curriculum._target_ == "bicameral.curriculum.Achievement" and cfg.curriculum.unlock_threshold == 3.2
    assert cfg.model.d_model == 128 and cfg.optimizer._target_ == "torch.optim.AdamW"
    assert cfg.schedule._target_ == "bicameral.schedule.CosineWithRestarts"
    assert list(cfg.trackers) == ["console", "jsonl", "wandb"] and cfg.trackers.wandb.mode == "offline"
    check_config(cfg)


def test_the_reference_experiment_reproduces_the_references_command():
    cfg = make("+experiment=reference")
    m, t = cfg.model, cfg.trainer
    assert (m.seq_len, m.kernel_len, m.time_window) == (1024, 128, 16)
    assert (t.batch_size, t.accum_steps, t.steps_per_epoch, t.epochs, t.log_every) == (4, 8, 1000, 50, 10)
    assert cfg.optimizer.lr == 2e-4 and t.ckpt == "bicameral_ckpt.pt" and cfg.schedule.warmup_steps == 0
    curriculum = build_curriculum(cfg.curriculum, m.seq_len)
    assert curriculum.name == "achievement" and curriculum.levels == [128, 256, 512, 513]


@pytest.mark.parametrize("curriculum", ["achievement", "fixed_threshold", "none", "step_schedule"])
@pytest.mark.parametrize("model", ["tiny", "small", "base"])
def test_every_group_option_composes(curriculum, model):
    cfg = make(f"curriculum={curriculum}", f"model={model}", "optimizer=sgd", "trackers=local")
    check_config(cfg)
    assert build_curriculum(cfg.curriculum, cfg.model.seq_len).levels[-1] == cfg.model.seq_len // 2 + 1


def test_fixed_threshold_is_the_old_system_and_sweeps_like_achievement():
    cfg = make("curriculum=fixed_threshold")
    assert build_curriculum(cfg.curriculum, 1024).thresholds == [3.0, 2.5, 2.0]
    cfg = make("curriculum=fixed_threshold", "curriculum.unlock_threshold=3.5", "curriculum.threshold_step=0.25")
    assert build_curriculum(cfg.curriculum, cfg.model.seq_len).thresholds == [3.5, 3.25, 3.0]
    cfg = make("curriculum=fixed_threshold", "curriculum.thresholds=[2.9,2.1,1.7]")
    assert build_curriculum(cfg.curriculum, cfg.model.seq_len).thresholds == [2.9, 2.1, 1.7]


def test_overrides_reach_any_value():
    cfg = make("curriculum.unlock_threshold=3.5", "trainer.log_every=5", "curriculum.levels=[8,32,65]")
    assert cfg.curriculum.unlock_threshold == 3.5 and cfg.trainer.log_every == 5
    assert build_curriculum(cfg.curriculum, cfg.model.seq_len).levels == [8, 32, 65]


STUDY = {  # variant: (arch, curriculum, restart_lr)
    "achievement": ("bicameral", "achievement", True),
    "fixed_threshold": ("bicameral", "fixed_threshold", True),
    "none": ("bicameral", "none", True),
    "step_schedule": ("bicameral", "step_schedule", True),
    "transformer": ("transformer", "none", True),
    "no_lr_restart": ("bicameral", "achievement", False),
    "freq_only": ("freq_only", "achievement", True),
    "time_only": ("time_only", "none", True),
}


@pytest.mark.parametrize("variant", STUDY)
@pytest.mark.parametrize("experiment_first", [True, False])  # a sweep may append +study before +experiment
def test_each_study_variant_trains_what_it_names(variant, experiment_first):
    overrides = ["+experiment=study", f"+study={variant}"]
    cfg = make(*(overrides if experiment_first else overrides[::-1]))
    check_config(cfg)
    curriculum = build_curriculum(cfg.curriculum, cfg.model.seq_len).name
    assert (cfg.model.arch, curriculum, cfg.trainer.restart_lr) == STUDY[variant]
    assert (cfg.model.d_model, cfg.trainer.steps_per_epoch) == (128, 400)  # one budget for every variant


EXTENDING = ROOT / "experiments" / "extending"  # the README's plug-in curriculum, used by the second study
CONTROLS = {  # variant: (arch, curriculum, restart_lr, schedule restart steps, curriculum settings)
    "none": ("bicameral", "none", True, [], {}),
    "achievement": ("bicameral", "achievement", True, [], {"min_steps_per_level": 50, "margin": 0.0}),
    "restarts_only": ("bicameral", "none", True, [50, 100, 150], {}),
    "unlock_only": ("bicameral", "step_schedule", False, [], {"unlock_steps": [50, 100, 150]}),
    "achievement_min25": ("bicameral", "achievement", True, [], {"min_steps_per_level": 25}),
    "achievement_min100": ("bicameral", "achievement", True, [], {"min_steps_per_level": 100}),
    "achievement_margin": ("bicameral", "achievement", True, [], {"margin": 0.02, "min_steps_per_level": 50}),
    "plateau": ("bicameral", "plateau", True, [], {"patience": 50, "min_improvement": 0.03}),
    "freq_only": ("freq_only", "achievement", True, [], {}),
}


@pytest.mark.parametrize("variant", CONTROLS)
def test_each_second_study_variant_trains_what_it_names(variant, monkeypatch):
    monkeypatch.syspath_prepend(str(EXTENDING))  # PYTHONPATH=experiments/extending, as the preset's command says
    cfg = make("+experiment=study_controls", f"+study={variant}", f"hydra.searchpath=[file://{EXTENDING / 'my_conf'}]")
    check_config(cfg)
    curriculum = build_curriculum(cfg.curriculum, cfg.model.seq_len)
    arch, name, restart_lr, restart_steps, settings = CONTROLS[variant]
    assert (cfg.model.arch, curriculum.name, cfg.trainer.restart_lr) == (arch, name, restart_lr)
    assert list(cfg.schedule.restart_steps) == restart_steps
    assert {key: getattr(curriculum, key) for key in settings} == settings
    m, t = cfg.model, cfg.trainer
    assert (m.seq_len, m.d_model, t.batch_size, t.steps_per_epoch) == (256, 128, 16, 400)  # the first study's


def test_the_long_second_study_triples_the_tokens_and_keeps_the_unlock_steps():
    short, long = make("+experiment=study_controls", "+study=restarts_only"), make(
        "+experiment=study_controls_long", "+study=restarts_only")
    assert long.trainer.steps_per_epoch == 3 * short.trainer.steps_per_epoch
    assert (long.trainer.batch_size, long.model.seq_len) == (short.trainer.batch_size, short.model.seq_len)
    assert list(long.schedule.restart_steps) == list(short.schedule.restart_steps) == [50, 100, 150]


def test_reference_gpu_is_the_reference_with_the_same_tokens_per_step_in_one_batch():
    reference, gpu = make("+experiment=reference"), make("+experiment=reference_gpu")
    tokens = [c.trainer.batch_size * c.trainer.accum_steps * c.model.seq_len for c in (reference, gpu)]
    assert tokens[0] == tokens[1] == 32 * 1024 and gpu.trainer.accum_steps == 1
    assert (gpu.optimizer.lr, gpu.trainer.epochs, gpu.model.kernel_len) == (2e-4, 50, 128)


@pytest.mark.parametrize("old, new", [("seed", "reference"), ("seed_gpu", "reference_gpu")])
def test_the_old_preset_names_compose_the_same_config(old, new):
    assert make(f"+experiment={old}") == make(f"+experiment={new}")


def test_the_old_preset_name_says_the_new_one(tmp_path):
    # a bad value stops the run right after the line, before any work
    proc = subprocess.run([sys.executable, "train.py", "+experiment=seed", "trainer.batch_size=0", "logger=none",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "+experiment=seed is now +experiment=reference (the same config); the old name will go." in proc.stdout
    assert ("logger=none is now trackers=local (the logger group is named trackers); the old form will go."
            in proc.stderr)
    assert proc.returncode == 2


@pytest.mark.parametrize("old, new", [
    (["logger=none"], ["trackers=local"]),
    (["logger=none,wandb", "seed=1"], ["trackers=local,wandb", "seed=1"]),
    (["logger.backend=none"], ["trackers=local"]),
    (["logger.mode=online", "logger.entity=me"], ["trackers.wandb.mode=online", "trackers.wandb.entity=me"]),
])
def test_the_logger_groups_overrides_become_the_trackers(old, new):
    renamed, notes = renamed_overrides(old)
    assert renamed == new and len(notes) == sum(o.lstrip("~+").startswith("logger") for o in old)
    assert all(make(o) for o in new if "," not in o)  # the new forms compose (a sweep is one job at a time)
