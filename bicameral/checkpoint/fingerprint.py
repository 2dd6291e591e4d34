"""A resume continues the same run: the same corpus, model and curriculum, or it does not start.

Each checkpoint records a fingerprint: the corpus's content hash and every model and curriculum
setting (plus the few others a resumed state depends on, such as when the curriculum is judged). A
resume whose fingerprint differs fails at start, naming the keys; any other setting (trainer.epochs,
the trackers, the log cadence once curriculum.judge_every is set, ...) may change, and each change is
logged.
"""

import logging

from bicameral.checkpoint.format import CheckpointError
from bicameral.curriculum import judging
from bicameral.data.datasets import Dataset

log = logging.getLogger("bicameral")

STATE_KEY = "fingerprint"  # a top-level entry of the checkpoint
MUST_MATCH_SECTIONS = ("model", "curriculum")
MUST_MATCH_KEYS = (
    "data.val_fraction",  # the split: val losses before and after would measure other text
    "optimizer._target_",  # the optimizer state only fits its own kind
)
FREE_KEYS = ("model.freq_impl", "model.time_impl")  # the same function, computed another way
# settings added since checkpoints were first written, with the value every run had before them
ADDED_KEYS = {"model.lean": []}
# how this process runs, not what the run is
PER_INVOCATION_KEYS = ("trainer.resume", "trainer.stop_at", "trainer.overwrite")


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"model": {"d_model": 32}} -> {"model.d_model": 32}; lists stay whole values."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def fingerprint(config: dict, corpus: str | None) -> dict:
    """The settings a checkpoint only fits, flat, plus the corpus hash (None when unknown)."""
    keys = {k: v for k, v in flatten(config).items()
            if (k.split(".")[0] in MUST_MATCH_SECTIONS or k in MUST_MATCH_KEYS) and k not in FREE_KEYS}
    return keys | judging_keys(config) | ({"corpus": corpus} if corpus is not None else {})


def judging_keys(config: dict) -> dict:
    """When the curriculum is judged, and over how many steps, as the run uses them: a default follows
    trainer.log_every, so a resume that changes only the log cadence would otherwise move the unlocks."""
    curriculum = config.get("curriculum") or {}
    every, window = judging(curriculum.get("judge_every"), curriculum.get("score_window"),
                            config["trainer"]["log_every"])
    return {"curriculum.judge_every": every, "curriculum.score_window": window}


def run_fingerprint(config: dict, data: Dataset) -> dict:
    """This run's fingerprint, with the dataset's content hash."""
    return fingerprint(config, data.fingerprint())


def _changes(old: dict, new: dict, keys) -> list[str]:
    missing = "(unset)"
    return [f"{k} {old.get(k, missing)} -> {new.get(k, missing)}" for k in keys if old.get(k) != new.get(k)]


def check_resume(path, state: dict, current: dict, config: dict) -> None:
    """Refuse a checkpoint of another seed, corpus, model or curriculum; log what else changed."""
    seed = state["config"].get("seed")
    if seed != config["seed"]:  # the checkpoint's RNG and data order win: another seed would not take effect
        raise CheckpointError(
            f"Checkpoint {path} was trained with seed={seed}, and a resume keeps its random state, so seed="
            f"{config['seed']} would not take effect. Fix: seed={seed} to continue it, or start seed={config['seed']} "
            "in another hydra.run.dir (trainer.overwrite=true starts over in this one)."
        )
    saved = state.get(STATE_KEY)
    if saved is None:  # written before fingerprints (and before _target_ nodes): only its model is checked
        saved = {k: v for k, v in fingerprint(state["config"], corpus=None).items() if k.startswith("model.")}
        current = {k: v for k, v in current.items() if k.startswith("model.")}
        log.warning(f"Checkpoint {path} records no fingerprint: its model is checked, not its corpus or curriculum")
    else:  # the judging as that run used it, also for checkpoints from before it was fingerprinted
        saved = saved | judging_keys(state["config"])
    saved = {k: v for k, v in ADDED_KEYS.items() if k in current} | saved  # an older checkpoint ran the default
    compared = sorted((set(saved) | set(current)) - ({"corpus"} if "corpus" not in saved else set()))
    differ = _changes(saved, current, compared)
    if differ:
        raise CheckpointError(
            f"Checkpoint {path} does not fit this config ({'; '.join(differ)}). Fix: resume with the settings "
            "it was trained with, or start this config in another hydra.run.dir."
        )
    old, new = flatten(state["config"]), flatten(config)
    others = sorted((set(old) | set(new)) - set(compared) - set(PER_INVOCATION_KEYS) - {"corpus", "seed"})
    allowed = _changes(old, new, others)
    if allowed:
        log.info(f"Resuming with changed settings (applied): {'; '.join(allowed)}")
