"""What a yoked control trains, decided without training: its command line, a preset's curriculum keys
dropped, finished controls kept."""

import sys
from pathlib import Path

import pytest

from bicameral.curriculum import NoCurriculum
from bicameral.engine.build import build_curriculum
from bicameral.report import yoked
from bicameral.report.runs import Run
from tests.conftest import compose_config


def reference_run(overrides: list[str], path: Path = Path("sweep/job")) -> Run:
    return Run(path=path, overrides=overrides, label="job", variant="v", status="finished", error=None,
               curriculum="achievement", arch="bicameral", threshold=3.2, seed=1, d_model=32, n_layers=2,
               total_steps=20, train=[], val=[], unlocks=[{"step": 5}], spikes=[], finish=None,
               relative_path="+study=achievement_margin,seed=1", yoked_to=None, restart_steps=[5, 10, 15],
               peak_lr=3e-3, log_every=1)


def test_the_control_keeps_everything_but_the_curriculum_and_restarts_where_its_run_did():
    run = reference_run(["+experiment=smoke", "+study=achievement_margin", "seed=1", "curriculum.max_steps_per_level=5",
                         "schedule.restart_steps=[7]", "trainer.steps_per_epoch=20"])
    overrides = yoked.yoked_overrides(run, yoked.extra_curriculum_keys(run, yoked.yoked_overrides(run)))
    assert overrides == ["+experiment=smoke", "+study=achievement_margin", "seed=1", "trainer.steps_per_epoch=20",
                         "curriculum=none", "~curriculum.margin", "schedule.restart_steps=[5,10,15]",
                         "yoked_to='+study=achievement_margin,seed=1'"]
    # it composes as train.py composes it, and builds the baseline curriculum with the run's seed and restarts
    cfg = compose_config(*overrides)
    assert isinstance(build_curriculum(cfg.curriculum, cfg.model.seq_len), NoCurriculum)
    assert (cfg.seed, list(cfg.schedule.restart_steps), cfg.yoked_to) == (1, [5, 10, 15], run.relative_path)


def test_a_finished_control_is_kept_and_not_trained_again(tmp_path, capsys):
    done = tmp_path / "yoked" / "job"
    done.mkdir(parents=True)
    (done / "events.jsonl").write_text('{"kind": "finish", "step": 20}\n')
    control = yoked.Control(reference_run([]), ["seed=1"], done)
    assert yoked.run_controls([control]) == []  # nothing failed, and nothing ran: no train.py, no run dir files
    assert "done before, kept" in capsys.readouterr().out
    assert sorted(p.name for p in done.iterdir()) == ["events.jsonl"]


@pytest.mark.parametrize("config", [
    "trackers:\n  wandb:\n    mode: offline\n    tags: [mine]\n",
    "logger:\n  backend: wandb\n  mode: offline\n  tags: [mine]\n",  # a run from before the trackers group
])
def test_the_control_joins_its_variants_w_and_b_group_and_the_sweeps_tag(tmp_path, config):
    job = tmp_path / "multirun" / "demo" / "curriculum=achievement,seed=1"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(config)
    run = reference_run(["curriculum=achievement", "seed=1"], path=job)
    run.variant = "curriculum=achievement"
    overrides = yoked.wandb_overrides(run, tmp_path / "multirun" / "demo")
    assert overrides == ["trackers.wandb.group='multirun/demo/yoked(curriculum=achievement)'",
                         "trackers.wandb.name='yoked(curriculum=achievement),seed=1'",
                         "trackers.wandb.tags=['mine','sweep=multirun/demo']"]
    # the quoted values parse as Hydra reads a command line
    wandb = compose_config("+experiment=smoke", *overrides).trackers.wandb
    assert (wandb.group, list(wandb.tags)) == ("multirun/demo/yoked(curriculum=achievement)",
                                               ["mine", "sweep=multirun/demo"])


def test_a_control_of_a_run_without_w_and_b_has_no_w_and_b_identity(tmp_path):
    job = tmp_path / "multirun" / "demo" / "curriculum=achievement,seed=1"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("trackers:\n  console: {}\n  jsonl: {}\n")
    run = reference_run(["curriculum=achievement", "seed=1"], path=job)
    run.variant = "curriculum=achievement"
    assert yoked.wandb_overrides(run, tmp_path / "multirun" / "demo") == []


class Rendezvous(yoked.Control):
    """A control whose command finishes only when every control of its batch has started: it proves they ran
    side by side (run one after another, the first would wait out its 20 s and fail)."""

    def __init__(self, run_dir: Path, others: list[Path]):
        super().__init__(reference_run([]), [], run_dir)
        self.others = others

    @property
    def command(self) -> list[str]:
        script = ("import sys, time, pathlib\n"
                  "me, others = pathlib.Path(sys.argv[1]), [pathlib.Path(p) for p in sys.argv[2:]]\n"
                  "me.mkdir(parents=True); (me / 'started').touch()\n"
                  "deadline = time.monotonic() + 20\n"
                  "while not all((o / 'started').exists() for o in others):\n"
                  "    if time.monotonic() > deadline: sys.exit(1)\n"
                  "    time.sleep(0.05)\n"
                  "(me / 'events.jsonl').write_text('{\"kind\": \"finish\", \"step\": 20}\\n')\n")
        return [sys.executable, "-c", script, str(self.run_dir), *map(str, self.others)]


def test_jobs_trains_that_many_controls_at_a_time(tmp_path, capsys):
    dirs = [tmp_path / "yoked" / f"job{i}" for i in range(2)]
    controls = [Rendezvous(d, dirs) for d in dirs]
    assert yoked.run_controls(controls, jobs=2) == []
    assert capsys.readouterr().out.count("finished in") == 2


def test_a_control_of_a_preset_that_sweeps_is_one_run_in_its_own_dir(tmp_path):
    """+experiment=study3 sets hydra.mode=MULTIRUN: its control must still train once, where the report looks."""
    from hydra import compose, initialize_config_module
    from hydra.types import RunMode

    run = reference_run(["+experiment=study3", "+study=achievement", "seed=1"])
    control = yoked.Control(run, yoked.yoked_overrides(run), tmp_path / "yoked" / "job")
    with initialize_config_module(config_module="bicameral.conf", version_base="1.3"):
        cfg = compose("config", overrides=control.command[len(yoked.TRAIN):], return_hydra_config=True)
    assert cfg.hydra.mode == RunMode.RUN and cfg.hydra.run.dir == str(tmp_path / "yoked" / "job")
