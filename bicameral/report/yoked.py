"""Yoked controls: the unlocking alone, with the LR held equal.

A curriculum's run restarts its LR cycle at each unlock, so it trains at more learning rate than the
baseline, and an adaptive curriculum's unlock steps are known only once it has run. For each run of a
sweep that unlocked (variant v, seed k), its yoked control trains the same config and seed with the band
open from step 0 (curriculum=none) and restarts the LR at exactly the steps where run (v, k) restarted it.
The pair differs only in the unlocking; the report pairs them as v - yoked(v).

    python -m bicameral.report.yoked SWEEP_DIR -- OVERRIDES...  # the sweep (train.py -m OVERRIDES), its controls,
                                                               # then one report
    python -m bicameral.report.yoked SWEEP_DIR                 # the controls of a sweep that already ran

Hydra cannot add jobs to a sweep under way, so each control is a `train.py` run of its own (one after another,
or --jobs N at a time), in SWEEP_DIR/yoked/<the job dir it copies>. A finished control is kept; a stopped one
resumes.
"""

import argparse
import functools
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from bicameral.curriculum import NoCurriculum
from bicameral.report.names import (
    SEED_KEY,
    WANDB_GROUP_MAX,
    YOKED_KEY,
    override_key,
    sweep_id,
    sweep_tag,
    yoked_label,
)
from bicameral.report.runs import Run, load_run, load_runs, read_config
from bicameral.report.sweep_callback import log_to_wandb, wandb_settings
from bicameral.report.write import report_text, write_report
from bicameral.tools.cli import positive_int, program

TRAIN = [sys.executable, "-m", "bicameral.tools.train"]  # bicameral-train, from wherever the package is
YOKED_DIR = "yoked"
HYDRA_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}


@dataclass
class Control:
    reference: Run  # the run whose restarts it copies
    overrides: list[str]  # its command line, less the run dir
    run_dir: Path

    @property
    def command(self) -> list[str]:
        # one run in its own dir, even when the sweep's preset sets hydra.mode=MULTIRUN (+experiment=study3):
        # as a multirun, the control would land in a new sweep dir of its own, where the report never looks
        return [*TRAIN, *self.overrides, "hydra.mode=RUN", f"hydra.run.dir={quoted(str(self.run_dir))}"]


def shown(command: list[str]) -> str:
    """A train command as a user would type it: bicameral-train ..."""
    return shlex.join(["bicameral-train", *command[len(TRAIN):]])


def quoted(value: str) -> str:
    """A Hydra override value that may hold '=', ',' or spaces: a single-quoted string."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_curriculum_override(override: str) -> bool:
    key = override_key(override)
    return key == "curriculum" or key.startswith("curriculum.")


def yoked_overrides(run: Run, extra_curriculum_keys: list[str] = ()) -> list[str]:
    """The command line of run's yoked control: run's own overrides, with its curriculum replaced by none and
    the LR restarted at run's restart steps. extra_curriculum_keys: keys a preset sets on the curriculum that
    none does not take (e.g. +study=achievement_margin's margin), deleted."""
    dropped = {"schedule.restart_steps", YOKED_KEY}
    kept = [o for o in run.overrides or [] if not is_curriculum_override(o) and override_key(o) not in dropped]
    steps = ",".join(str(s) for s in run.restart_steps)
    return [*kept, "curriculum=none", *[f"~curriculum.{k}" for k in extra_curriculum_keys],
            f"schedule.restart_steps=[{steps}]", f"{YOKED_KEY}={quoted(run.relative_path)}"]


def wandb_overrides(run: Run, sweep_dir: Path) -> list[str]:
    """The control's W&B identity, as a sweep job's: its variant's group (so W&B draws its seeds as a band),
    its name, and the sweep's tag beside the run's own tags. None for a run that did not log to W&B."""
    settings = wandb_settings(read_config(run.path))
    if settings is None:
        return []
    variant = yoked_label(run.variant)
    tags = [*(settings.get("tags") or []), sweep_tag(sweep_id(sweep_dir))]
    return [f"trackers.wandb.group={quoted(f'{sweep_id(sweep_dir)}/{variant}'[:WANDB_GROUP_MAX])}",
            f"trackers.wandb.name={quoted(f'{variant},seed={run.seed}')}",
            f"trackers.wandb.tags=[{','.join(quoted(str(t)) for t in tags)}]"]


def searchpath_overrides(run: Run) -> list[str]:
    """The run's hydra.searchpath override, if it had one: a plug-in's config folder."""
    try:
        hydra = yaml.safe_load((run.path / ".hydra" / "hydra.yaml").read_text(encoding="utf-8"))["hydra"]
        return [o for o in hydra["overrides"]["hydra"] if str(o).startswith("hydra.searchpath")]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []


def extra_curriculum_keys(run: Run, overrides: list[str]) -> list[str]:
    """Curriculum keys that stay set once the curriculum is none, which none does not take: composed the way
    train.py composes, so a preset's own curriculum settings are found wherever they came from. The seed,
    the restarts and the reference do not touch the curriculum, so a variant's seeds compose once."""
    unrelated = {SEED_KEY, "schedule.restart_steps", YOKED_KEY}
    relevant = tuple(o for o in overrides if override_key(o) not in unrelated)
    return list(composed_curriculum_extras(relevant, tuple(searchpath_overrides(run))))


@functools.cache
def composed_curriculum_extras(overrides: tuple[str, ...], searchpath: tuple[str, ...]) -> tuple[str, ...]:
    from hydra import compose, initialize_config_module

    from bicameral.config import register_configs

    register_configs()  # the schemas train.py registers before it composes
    accepted = {f.name for f in fields(NoCurriculum) if f.init} | HYDRA_KEYS
    with initialize_config_module(config_module="bicameral.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, *searchpath])
    return tuple(sorted(set(cfg.curriculum) - accepted))


def plan(sweep_dir: Path, runs: list[Run]) -> list[Control]:
    """A control for each finished run that unlocked; none for yoked controls themselves."""
    controls = []
    for run in runs:
        if run.yoked_to is not None or run.status != "finished" or not run.unlocks:
            continue
        if run.overrides is None:
            raise ValueError(f"{run.path} has no .hydra/overrides.yaml, so its yoked control cannot be composed.")
        if "'" in run.relative_path:
            raise ValueError(f"{run.path}: a run dir with a quote in its name cannot be named in an override.")
        overrides = yoked_overrides(run)
        overrides = yoked_overrides(run, extra_curriculum_keys(run, overrides))
        overrides += wandb_overrides(run, sweep_dir) + searchpath_overrides(run)
        controls.append(Control(run, overrides, sweep_dir / YOKED_DIR / run.relative_path))
    return controls


def finished(run_dir: Path) -> bool:
    """Whether a control got to its last step, judged as the report judges every run."""
    return run_dir.is_dir() and load_run(run_dir, run_dir).status == "finished"


def run_controls(controls: list[Control], quiet: bool = False, jobs: int = 1) -> list[Control]:
    """Train each control that has not finished, `jobs` at a time; returns those that failed. With more than one
    at a time, their output goes only to each run dir's train.log, and the cores are shared out among them."""
    env = dict(os.environ)
    if jobs > 1:
        quiet = True
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))  # no oversubscription
    out = subprocess.DEVNULL if quiet else None
    pending, running, failed = list(enumerate(controls, 1)), {}, []
    while pending or running:
        while pending and len(running) < jobs:
            i, control = pending.pop(0)
            head = f"[yoked {i}/{len(controls)}] {control.reference.label}: band open from step 0, LR restarts at " \
                   f"{control.reference.restart_steps}"
            if finished(control.run_dir):
                print(f"{head}: done before, kept", flush=True)
                continue
            print(f"{head} -> {control.run_dir}", flush=True)
            proc = subprocess.Popen(control.command, env=env, stdout=out, stderr=out)
            running[proc] = (i, control, time.perf_counter())
        for proc in [p for p in running if p.poll() is not None]:
            i, control, start = running.pop(proc)
            code = proc.returncode
            status = "finished" if code == 0 and finished(control.run_dir) else f"failed (exit {code})"
            print(f"[yoked {i}/{len(controls)}] {status} in {time.perf_counter() - start:.0f}s", flush=True)
            if status != "finished":
                failed.append(control)
        if running:
            time.sleep(0.5)
    return failed


def run_sweep(sweep_dir: Path, overrides: list[str], quiet: bool = False) -> int:
    """The sweep itself, as `train.py -m` runs it, into sweep_dir; its own end-of-sweep report is left out, since
    the report comes once the controls have run."""
    command = [*TRAIN, "-m", *overrides, f"hydra.sweep.dir={quoted(str(sweep_dir))}",
               "~hydra.callbacks.sweep_report"]
    print(f"Sweep: {shown(command)}", flush=True)
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(command, stdout=out, stderr=out).returncode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=program("bicameral.report.yoked"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path, help="the sweep's dir; then, after --, a sweep to run into it first, "
                   "with the overrides train.py -m takes")
    p.add_argument("--dry-run", action="store_true", help="print the controls' commands, run nothing")
    p.add_argument("--quiet", action="store_true", help="no training output, only the progress lines and the report")
    p.add_argument("--jobs", type=positive_int, default=1, help="controls trained at a time (default 1); with more, "
                   "each one's output goes to its train.log and the cores are shared out")
    p.add_argument("--target-loss", type=float, default=2.0)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser().parse_args(argv[:split]), argv[split + 1:]
    sweep_dir = args.sweep_dir.resolve()
    code = 0
    if overrides:
        if sweep_dir.exists() and any(sweep_dir.iterdir()):
            print(f"error: {args.sweep_dir} already holds runs. Fix: name a new dir for the sweep, or drop the "
                  "overrides to add yoked controls to the sweep already there.", file=sys.stderr)
            return 2
        code = run_sweep(sweep_dir, overrides, args.quiet)  # a failed job still leaves the others to yoke
    elif not sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory. Fix: pass a sweep dir, or a new one followed by "
              "-- and the sweep's overrides.", file=sys.stderr)
        return 2
    try:
        controls = plan(sweep_dir, load_runs(sweep_dir))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        for control in controls:
            print(shown(control.command))
        return code
    if not controls:
        print(f"No run under {args.sweep_dir} unlocked, so there is nothing to yoke.", flush=True)
    failed = run_controls(controls, args.quiet, args.jobs)
    runs = load_runs(sweep_dir)
    report = write_report(runs, sweep_dir, sweep_dir, args.target_loss)
    print(f"\n{report['title']}\n\n{report_text(report, brief=True)}\n\nReport: {sweep_dir / 'comparison.md'}",
          flush=True)
    settings = wandb_settings(read_config(runs[0].path)) if runs else None
    if settings is not None:
        log_to_wandb(sweep_dir, report, settings)
    return 1 if failed or code else 0


if __name__ == "__main__":
    sys.exit(main())
