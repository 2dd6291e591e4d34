"""The runs of a sweep, read back from each job's files: what they trained, logged and unlocked.

A sweep dir is what `python train.py -m ...` leaves: one job dir per override combination, each holding
.hydra/{config,overrides}.yaml, metrics.jsonl and events.jsonl. A single run dir is a sweep of one.
A run is labelled by its overrides, less the preset and those every run shares; its *variant* is that
label minus seed=..., so the seeds of one variant aggregate (bicameral/report/names.py). A yoked control
(bicameral/report/yoked.py) joins the variant yoked(<its reference run's variant>).

    runs = load_runs(sweep_dir)

Reading results never imports code: a curriculum is named from the run's own records.
"""

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from bicameral import curriculum as builtin_curricula
from bicameral.curriculum import curriculum_name, snake_case
from bicameral.report.names import (
    SEED_KEY,
    YOKED_KEY,
    run_label,
    variant_label,
    without,
    yoked_label,
)

BASELINE_CURRICULUM = "none"  # full resolution from the start: what every curriculum is measured against


@dataclass
class Run:
    path: Path
    overrides: list[str] | None  # as given on the command line; None without .hydra/overrides.yaml
    label: str  # the overrides that set it apart, sorted and joined as Hydra names dirs: curriculum=achievement,seed=0
    variant: str  # the label minus seed=..., so seeds aggregate
    status: str  # finished | incomplete (logged, but stopped early or preempted) | failed
    error: str | None  # why it failed, when it said so
    curriculum: str | None
    arch: str
    threshold: float | None  # curriculum.unlock_threshold: the first bar of a score-driven curriculum
    seed: int | None
    d_model: int | None
    n_layers: int | None
    total_steps: int | None  # trainer.epochs * trainer.steps_per_epoch
    train: list[dict]
    val: list[dict]
    unlocks: list[dict]
    spikes: list[dict]  # events.jsonl kind "spike": one per measured unlock, at the unlock's step
    finish: dict | None
    relative_path: str  # the job dir relative to the sweep dir: how a yoked control names its reference run
    yoked_to: str | None  # a yoked control's reference run (its relative_path); None for any other run
    restart_steps: list[int]  # the LR cycle's restarts: at each unlock (trainer.restart_lr) and schedule.restart_steps
    peak_lr: float | None  # optimizer.lr: the unit of the LR area
    log_every: int | None

    @property
    def tokens(self) -> int | None:
        """Tokens trained on: at the last logged step."""
        return self.train[-1]["tokens"] if self.train else None

    @property
    def lr_area(self) -> float | None:
        """Sum over steps of the LR trained at, over the peak: from the finish record, else estimated from the LR
        logged at the end of each log window (held over that window)."""
        if self.finish and self.finish.get("lr_area") is not None:
            return self.finish["lr_area"]
        if not self.train or not self.peak_lr:
            return None
        steps = [0] + [r["step"] for r in self.train]
        return sum(r["lr"] * (b - a) for r, a, b in zip(self.train, steps, steps[1:])) / self.peak_lr

    @property
    def losses(self) -> tuple:
        """Every logged train and val loss by step: two runs with the same are the same run."""
        return (tuple((r["step"], r["loss"]) for r in self.train), tuple((r["step"], r["val_loss"]) for r in self.val))


# -----------------------------------------------------------------------------------------------
# Loading


def find_run_dirs(root: Path) -> list[Path]:
    """Job dirs at any depth under root (root itself for a single run).

    A job is a dir with metrics.jsonl, or with .hydra/overrides.yaml: Hydra writes that before the job
    starts, so a job that crashed before logging anything is still found.
    """
    found = {p.parent for p in root.rglob("metrics.jsonl")}
    found |= {p.parent.parent for p in root.rglob("overrides.yaml") if p.parent.name == ".hydra"}
    return sorted(found)


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file: none if it is missing; a last line cut short by a crash is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def by_step(rows: list[dict]) -> list[dict]:
    """One row per step, in step order. A resumed run appends to the same files and replays the steps
    after its last checkpoint: the later row is the one that counts."""
    return sorted({row["step"]: row for row in rows}.values(), key=lambda row: row["step"])


def read_config(run_dir: Path):
    """The job's composed config; an empty one if it is missing or unreadable (it only costs the run's details)."""
    try:
        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    except Exception:
        return OmegaConf.create()


def select(cfg, key: str):
    """cfg's value at key; None where it is absent, ??? or an interpolation that only resolves inside Hydra."""
    return OmegaConf.select(cfg, key, throw_on_missing=False, throw_on_resolution_failure=False)


def read_overrides(run_dir: Path) -> list[str] | None:
    """The job's command-line overrides (plain YAML: OmegaConf would try to resolve any ${...} in them)."""
    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in overrides] if isinstance(overrides, list) else None


def logged_error(run_dir: Path) -> str | None:
    """The one-line `error: ...` train.py logs for bad input, which stops a job before it logs anything else."""
    try:
        lines = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    errors = [line.split("error: ", 1)[1] for line in lines if "] error: " in line or line.startswith("error: ")]
    return errors[-1] if errors else None


def shared_overrides(override_lists: list[list[str] | None]) -> list[str]:
    """The overrides every run of a sweep has (e.g. trainer.steps_per_epoch=500 next to the swept keys): they tell
    runs apart no more than the config does. Nothing for a single run: it has no other run to be told from."""
    known = [set(o) for o in override_lists if o is not None]
    return sorted(set.intersection(*known)) if len(override_lists) > 1 and known else []


def run_status(finish: dict | None, last_event: dict | None, logged: bool, total_steps: int | None) -> str:
    """finished only if it got to its last step (trainer.stop_at also writes a finish row); failed if it said so or
    logged nothing; else incomplete (stopped early, preempted, or killed)."""
    if finish is not None and (total_steps is None or finish["step"] >= total_steps):
        return "finished"
    if (last_event or {}).get("kind") == "failed" or not logged:
        return "failed"
    return "incomplete"


def load_run(run_dir: Path, root: Path, shared: Collection[str] = (), cfg=None, overrides=None) -> Run:
    """Everything one job left behind, whatever state it stopped in; `shared` overrides are left out of its label.
    cfg and overrides: the job's, when the caller has read them already."""
    cfg = read_config(run_dir) if cfg is None else cfg
    overrides = read_overrides(run_dir) if overrides is None else overrides
    own = [o for o in overrides if o not in shared] if overrides is not None else None
    rows = read_jsonl(run_dir / "metrics.jsonl")
    events = read_jsonl(run_dir / "events.jsonl")
    train = by_step([r for r in rows if r.get("kind") == "train"])
    val = by_step([r for r in rows if r.get("kind") == "val"])
    finishes = [e for e in events if e.get("kind") == "finish"]
    finish = finishes[-1] if finishes else None  # a stopped, then resumed run has one per segment
    if finish is not None:  # its wall time is every segment's
        finish = {**finish, "wall_time_s": sum(f.get("wall_time_s") or 0.0 for f in finishes)}

    epochs, steps_per_epoch = select(cfg, "trainer.epochs"), select(cfg, "trainer.steps_per_epoch")
    total_steps = epochs * steps_per_epoch if isinstance(epochs, int) and isinstance(steps_per_epoch, int) else None
    status = run_status(finish, events[-1] if events else None, bool(train or val), total_steps)
    error = None
    if status == "failed":
        failed = [e for e in events if e.get("kind") == "failed"]
        error = failed[-1].get("error") if failed else logged_error(run_dir)

    relative = run_dir.relative_to(root).as_posix()
    name = root.name if relative == "." else relative
    curriculum = run_curriculum(cfg, finish)
    unlocks = by_step([e for e in events if e.get("kind") == "unlock"])
    restarts = [int(s) for s in select(cfg, "schedule.restart_steps") or []]
    if select(cfg, "trainer.restart_lr") is not False:  # unset in runs from before it existed: they restarted
        restarts += [u["step"] for u in unlocks]
    return Run(
        path=run_dir,
        overrides=overrides,
        label=run_label(own) if own else name,
        # without overrides.yaml nothing says which runs are seeds of one config: each is its own variant
        variant=variant_label(own) if own is not None else name,
        status=status,
        error=error,
        curriculum=curriculum,
        arch=select(cfg, "model.arch") or "bicameral",  # runs from before model.arch existed were bicameral
        threshold=select(cfg, "curriculum.unlock_threshold"),  # only curricula with a first bar have one
        seed=select(cfg, "seed"),
        d_model=select(cfg, "model.d_model"),
        n_layers=select(cfg, "model.n_layers"),
        total_steps=total_steps,
        train=train,
        val=val,
        unlocks=unlocks,
        spikes=by_step([e for e in events if e.get("kind") == "spike"]),
        finish=finish,
        relative_path=relative,
        yoked_to=select(cfg, YOKED_KEY),
        restart_steps=sorted(set(restarts)),
        peak_lr=select(cfg, "optimizer.lr"),
        log_every=select(cfg, "trainer.log_every"),
    )


def run_curriculum(cfg, finish: dict | None) -> str | None:
    """The curriculum's name: from the run's summary, else from its config's class (or the `name` key that
    configs had before components were `_target_` nodes). Only the built-in classes are looked up, and
    nothing is imported: a results folder never runs the code its configs name."""
    if finish and finish.get("curriculum"):
        return finish["curriculum"]
    target = select(cfg, "curriculum._target_")
    if not target:
        return select(cfg, "curriculum.name")
    module, _, name = str(target).rpartition(".")
    builtin = getattr(builtin_curricula, name, None) if module == builtin_curricula.__name__ else None
    return curriculum_name(builtin) if isinstance(builtin, type) else snake_case(name)


def keep_presets_where_needed(runs: list[Run], shared: Collection[str]) -> None:
    """Labels leave the preset out; where that makes two different variants read the same (a folder holding two
    sweeps, each with a curriculum=none), those variants keep it."""
    keys = {}
    for run in runs:
        if run.overrides is not None:
            own = [o for o in run.overrides if o not in shared]
            keys.setdefault(run.variant, set()).add(",".join(sorted(without(own, {SEED_KEY}))))
    for run in runs:
        if len(keys.get(run.variant, ())) > 1:
            own = [o for o in run.overrides if o not in shared]
            run.label = ",".join(sorted(own))
            run.variant = ",".join(sorted(without(own, {SEED_KEY})))


def join_yoked_controls(runs: list[Run]) -> None:
    """A yoked control joins the variant yoked(<variant of the run it copies>), and is labelled by its seed."""
    by_path = {r.relative_path: r for r in runs}
    for run in runs:
        if run.yoked_to is None:
            continue
        reference = by_path.get(run.yoked_to)
        run.variant = yoked_label(reference.variant if reference else run.yoked_to)
        run.label = f"{run.variant},{SEED_KEY}={run.seed}"


def load_runs(root: str | Path) -> list[Run]:
    """Every run under root, sorted by variant, then seed."""
    root = Path(root)
    jobs = [(d, read_config(d), read_overrides(d)) for d in find_run_dirs(root)]  # each job's files read once
    # a yoked control's overrides differ by construction: they do not make the sweep's own labels longer
    shared = shared_overrides([overrides for _, cfg, overrides in jobs if select(cfg, YOKED_KEY) is None])
    runs = [load_run(d, root, shared, cfg, overrides) for d, cfg, overrides in jobs]
    keep_presets_where_needed([r for r in runs if r.yoked_to is None], shared)
    join_yoked_controls(runs)
    return sorted(runs, key=lambda r: (r.variant, r.seed if isinstance(r.seed, int) else -1, r.label))
