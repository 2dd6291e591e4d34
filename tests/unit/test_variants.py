"""Names for the runs of a sweep: variants, labels, the sweep's id and each job's W&B identity."""

from omegaconf import OmegaConf

from bicameral.report.names import job_overrides, run_label, swept_keys, variant_label, wandb_identity


def hydra_node(task: list[str], params: dict | None = None):
    return OmegaConf.create({"overrides": {"task": task}, "sweeper": {"params": params}})


def test_the_swept_keys_come_from_the_command_line_and_the_presets_sweeper_params():
    cli = hydra_node(["+experiment=smoke", "curriculum=achievement,none", "seed=range(3)", "trainer.epochs=2"])
    assert swept_keys(cli) == {"curriculum", "seed"}
    study = hydra_node(["+experiment=study"], {"+study": "none,freq_only", "seed": "0,1,2"})
    assert swept_keys(study) == {"study", "seed"}


def test_a_job_is_named_by_what_the_sweep_varies_without_the_preset():
    swept = {"curriculum", "seed"}
    job = job_overrides(["+experiment=smoke", "curriculum=none", "seed=1", "trainer.epochs=2"], swept)
    assert job == ["curriculum=none", "seed=1"]
    assert (run_label(job), variant_label(job)) == ("curriculum=none,seed=1", "curriculum=none")
    # without knowing what was swept, every override but the preset names it
    assert run_label(job_overrides(["+experiment=smoke", "seed=0", "trainer.epochs=2"], None)) == (
        "seed=0,trainer.epochs=2")
    assert variant_label(["+experiment=smoke", "seed=0"]) == "(base config)"  # a seeds-only sweep


def test_seeds_of_a_variant_share_a_group_and_the_sweep_a_tag(tmp_path):
    sweep = tmp_path / "multirun" / "curriculum_comparison" / "2026-11-26_22-30-51"
    ids = [wandb_identity(sweep, [f"curriculum={c}", f"seed={s}"]) for c in ("achievement", "none") for s in (0, 1)]
    assert [i["group"] for i in ids] == ["curriculum_comparison/2026-11-26_22-30-51/curriculum=achievement"] * 2 + [
        "curriculum_comparison/2026-11-26_22-30-51/curriculum=none"] * 2
    assert [i["name"] for i in ids] == ["curriculum=achievement,seed=0", "curriculum=achievement,seed=1",
                                        "curriculum=none,seed=0", "curriculum=none,seed=1"]
    assert {i["tag"] for i in ids} == {"sweep=curriculum_comparison/2026-11-26_22-30-51"}

    # W&B refuses tags over 64 characters and groups over 128
    long = wandb_identity(tmp_path / ("x" * 80) / "y", ["curriculum.levels=[" + ",".join(["1"] * 80) + "]"])
    assert len(long["tag"]) == 64 and len(long["group"]) == 128
