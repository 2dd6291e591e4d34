"""The comparison, written at the end of every sweep: a Hydra callback (conf/hydra/callbacks/sweep_report.yaml).

`on_multirun_end` writes the report into the sweep dir (bicameral/report/write.py), prints the variant,
paired and confound sections, and logs the files to W&B as an artifact of a small summary run (job_type
"report", tagged with the sweep), with the paired differences as a W&B Table. A report is never worth a
sweep: any error in it is one warning line.
"""

import logging
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bicameral.report.names import artifact_name, sweep_id, sweep_tag
from bicameral.report.runs import load_runs
from bicameral.report.tables import format_difference
from bicameral.report.write import FIGURE_FORMATS, report_text, write_report

log = logging.getLogger(__name__)
REPORT_FILES = ("comparison.md", "comparison.json", "runs.csv", *(f"comparison.{ext}" for ext in FIGURE_FORMATS))
PAIRED_COLUMNS = ["variant", "minus", "n", "metric", "mean difference", "ci95 low", "ci95 high", "p", "p (Holm)",
                  "test", "verdict", "shown as"]


class SweepReport(Callback):
    """Hydra's sweeper raises as soon as a job of the sweep failed, and then never calls on_multirun_end. So the
    jobs are counted as they end (in this process: the basic launcher's), and after the last one of a sweep with
    a failure the report is written from on_job_end instead."""

    def __init__(self, target_loss: float = 2.0, wandb: bool = True):
        self.target_loss = target_loss  # "steps to loss <= target" in the tables
        self.wandb = wandb  # also log the report to W&B when the sweep's runs log to W&B
        self.jobs: int | None = None  # how many the sweep launches, where that can be told in advance
        self.ended = 0
        self.failed = False
        self.reported = False
        self.multirun_config: DictConfig | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.multirun_config, self.jobs = config, count_jobs(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        self.ended += 1
        self.failed |= job_return.status == JobStatus.FAILED
        if self.failed and self.ended == self.jobs and self.multirun_config is not None:
            self.on_multirun_end(self.multirun_config)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.reported:  # already, after the last job of a sweep that had a failure
            return
        self.reported = True
        try:
            self.report(config)
        except Exception as err:  # the jobs' own results are all on disk: never fail the sweep over a report
            log.warning(f"Sweep report not written ({type(err).__name__}: {err}); the runs are intact. "
                        f"Rerun it with: python -m bicameral.report {config.hydra.sweep.dir}")

    def report(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        runs = load_runs(sweep_dir)
        if not runs:
            log.warning(f"Sweep report: no runs under {sweep_dir}")
            return
        report = write_report(runs, sweep_dir, sweep_dir, self.target_loss)
        print(f"\n{report['title']}\n\n{report_text(report, brief=True)}\n\n"
              f"Report: {sweep_dir / 'comparison.md'} (+ .json, runs.csv, .png/.pdf/.svg)", flush=True)
        settings = wandb_settings(config)
        if self.wandb and settings is not None:
            log_to_wandb(sweep_dir, report, settings)


def wandb_settings(config) -> DictConfig | dict | None:
    """The W&B tracker's settings in a run's config (`trackers.wandb`; `logger` in runs from before the trackers
    group), or None when the run did not log to W&B."""
    trackers = config.get("trackers") or {}
    settings = trackers.get("wandb")
    legacy = config.get("logger")
    if settings is None and legacy is not None and legacy.get("backend") == "wandb":
        settings = legacy
    return settings if settings is not None and settings.get("mode") != "disabled" else None


def log_to_wandb(sweep_dir: Path, report: dict, settings) -> None:
    """A summary run next to the sweep's runs: the report as an artifact, the figure and the variant table."""
    import wandb

    sweep = sweep_id(sweep_dir)
    run = wandb.init(project=settings.get("project"), entity=settings.get("entity"), mode=settings.get("mode"),
                     dir=str(sweep_dir),
                     group=sweep, job_type="report", name=f"{sweep} report", tags=[sweep_tag(sweep)],
                     config={"sweep": str(sweep_dir), "target_loss": report["target_loss"]},
                     settings=wandb.Settings(quiet=True))
    try:
        artifact = wandb.Artifact(artifact_name(sweep), type="report", description=report["title"])
        for name in REPORT_FILES:
            artifact.add_file(str(sweep_dir / name))
        run.log_artifact(artifact)
        metrics = ("final_val_loss", "best_val_loss", "final_val_bits_per_byte", "lr_area", "mean_spike",
                   "mean_recovery_steps")
        rows = [[v["variant"], v["finished"], v["runs"], *(stat_mean(v[m]) for m in metrics)]
                for v in report["variants"]]
        run.log({"comparison": wandb.Image(str(sweep_dir / "comparison.png")),
                 "variants": wandb.Table(columns=["variant", "finished", "runs", *metrics], data=rows),
                 "paired": wandb.Table(columns=PAIRED_COLUMNS, data=paired_rows(report))})
    finally:
        run.finish()
    if settings.get("mode") == "offline":
        print(f"W&B report run saved; upload it with the sweep's runs: wandb sync {sweep_dir}/wandb/offline-run-*")


def count_jobs(config: DictConfig) -> int | None:
    """The jobs a basic-sweeper multirun launches: its sweeper.params and command line, expanded as it does.
    None for another sweeper (Optuna decides as it goes) or anything that cannot be told without running it."""
    try:
        if "BasicSweeper" not in config.hydra.sweeper._target_:
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception:
        return None


def paired_rows(report: dict) -> list[list]:
    """The paired differences, against the baseline and against each yoked control, one row per metric."""
    rows = []
    for row in report["paired"] + report["unlocking"]:
        for metric in ("final_val_loss", "best_val_loss"):
            cell = row[metric]
            if cell is not None:
                rows.append([row["variant"], row["reference"], cell["n"], metric, cell["mean"], cell["low"],
                             cell["high"], cell["p"], cell.get("p_holm"), cell["test"], cell["verdict"],
                             format_difference(cell)])
    return rows


def stat_mean(stat: dict | None) -> float | None:
    return None if stat is None else stat["mean"]
