"""Names for runs, variants and sweeps: one home for the W&B identity of each job and the sweep's report.

A *variant* is the set of runs with the same overrides apart from `seed`: one curriculum (or one
threshold, one ablation...) over several seeds. Its label is what tells it apart from the other
variants of the sweep, without the preset (`+experiment=...`), which every run of a sweep shares:

    python train.py -m +experiment=smoke curriculum=achievement,none seed=0,1
    job overrides [+experiment=smoke, curriculum=none, seed=1]
      -> variant label "curriculum=none", run label "curriculum=none,seed=1"
      -> W&B group "<sweep id>/curriculum=none", tag "sweep=<sweep id>"
"""

import re
from collections.abc import Collection, Iterable
from pathlib import Path

SEED_KEY = "seed"
PRESET_KEY = "experiment"  # conf/experiment/: the sweep's recipe, not a difference between its runs
BASE_LABEL = "(base config)"  # a variant with no overrides of its own (a seeds-only sweep)
WANDB_TAG_MAX = 64  # W&B refuses longer tags
WANDB_GROUP_MAX = 128  # and longer groups
YOKED_KEY = "yoked_to"  # config key of a yoked control: the run dir (relative to the sweep) whose restarts it copies


def override_key(override: str) -> str:
    """The key an override sets: +study=freq_only -> study, ~trainer.ckpt -> trainer.ckpt."""
    return override.split("=", 1)[0].lstrip("+~")


def without(overrides: Iterable[str], keys: Collection[str]) -> list[str]:
    return [o for o in overrides if override_key(o) not in keys]


def run_label(overrides: Iterable[str]) -> str:
    """A run's overrides without the preset, sorted as Hydra names job dirs."""
    return ",".join(sorted(without(overrides, {PRESET_KEY}))) or BASE_LABEL


def variant_label(overrides: Iterable[str]) -> str:
    """A run's overrides without the preset and the seed: the same for every seed of one variant."""
    return ",".join(sorted(without(overrides, {PRESET_KEY, SEED_KEY}))) or BASE_LABEL


def sweep_id(sweep_dir: str | Path) -> str:
    """The sweep dir's last two parts: multirun/curriculum_comparison/2026-11-26_22-30-51 ->
    curriculum_comparison/2026-11-26_22-30-51; the default multirun/2026-11-26/12-00-00 -> 2026-11-26/12-00-00."""
    path = Path(sweep_dir).resolve()
    return f"{path.parent.name}/{path.name}"


def swept_keys(hydra_cfg) -> set[str] | None:
    """The keys a sweep varies, from its Hydra config: the command line's sweep overrides
    (curriculum=achievement,none; seed=range(3)) and the preset's hydra.sweeper.params.
    None when the config says nothing about it (not a multirun)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        task = list(hydra_cfg.overrides.task)
    except Exception:
        return None
    parsed = OverridesParser.create().parse_overrides(task)
    keys = {o.key_or_group for o in parsed if o.is_sweep_override()}
    params = hydra_cfg.get("sweeper", {}).get("params") or {}
    return keys | {override_key(str(k)) for k in params}


def job_overrides(task_overrides: Iterable[str], swept: Collection[str] | None) -> list[str]:
    """The overrides that set one job of a sweep apart: the swept ones (all of them when unknown)."""
    task = list(task_overrides)
    if not swept:
        return task
    return [o for o in task if override_key(o) in swept]


def wandb_identity(sweep_dir: str | Path, overrides: Iterable[str]) -> dict:
    """group (one per variant, so W&B draws its seeds as a band), name (the variant plus the seed) and the
    tag all runs of the sweep share (so they filter together)."""
    overrides = list(overrides)
    sweep = sweep_id(sweep_dir)
    return {
        "group": f"{sweep}/{variant_label(overrides)}"[:WANDB_GROUP_MAX],
        "name": run_label(overrides),
        "tag": sweep_tag(sweep),
    }


def sweep_tag(sweep: str) -> str:
    return f"sweep={sweep}"[:WANDB_TAG_MAX]


def yoked_label(variant: str) -> str:
    """The variant of the yoked controls of `variant`'s runs: yoked(curriculum=achievement)."""
    return f"yoked({variant})"


def artifact_name(sweep: str) -> str:
    """W&B artifact names take letters, digits, '-', '_' and '.':
    2026-11-26/12-00-00 -> comparison-2026-11-26_12-00-00."""
    return "comparison-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", sweep)


def run_tags(cfg, curriculum: str) -> list[str]:
    """W&B tags derived from the config, so runs filter by curriculum, threshold, arch and size."""
    c, m = cfg.curriculum, cfg.model
    tags = [f"curriculum={curriculum}", f"arch={m.arch}", f"size=d{m.d_model}x{m.n_layers}", f"seed={cfg.seed}"]
    if "unlock_threshold" in c:
        tags.append(f"threshold={c.unlock_threshold}")
    if cfg.get(YOKED_KEY):
        tags.append("yoked")
    return tags


def run_name(cfg, curriculum: str) -> str:
    """A readable W&B run name from the config: achievement-t3.2-bicameral-d128x4-seed0."""
    c, m = cfg.curriculum, cfg.model
    threshold = f"-t{c.unlock_threshold}" if "unlock_threshold" in c else ""
    return f"{curriculum}{threshold}-{m.arch}-d{m.d_model}x{m.n_layers}-seed{cfg.seed}"


def job_wandb_identity(hydra_cfg) -> dict:
    """wandb_identity for the multirun job Hydra is running now (hydra_cfg: HydraConfig.get()).

    The swept keys come from the sweep's multirun.yaml (the command line as typed, which the basic sweeper
    saves before the first job), else from the job's own hydra.sweeper.params (Optuna)."""
    from omegaconf import OmegaConf

    sweep_dir = Path(hydra_cfg.sweep.dir)
    try:
        swept = swept_keys(OmegaConf.load(sweep_dir / "multirun.yaml").hydra)
    except Exception:  # no multirun.yaml: another sweeper
        swept = swept_keys(hydra_cfg)
    return wandb_identity(sweep_dir, job_overrides(hydra_cfg.overrides.task, swept))
