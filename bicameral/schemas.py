"""Config schemas derived from class signatures, so each default is stated once: in the class.

A built-in `_target_` option's YAML states only what that option changes; the keys it may set, with
their defaults, come from its class's keyword arguments, registered in Hydra's ConfigStore under
`schemas/<group>/<name>`. A YAML pulls its schema in first:

    defaults:
      - /schemas/trackers/wandb@wandb
      - _self_

so `trackers.wandb.mode=online` works without a `+`, a misspelt key fails at start naming it, and
a default changed in the class is the default everywhere.
"""

import inspect

from hydra.utils import get_object
from omegaconf import MISSING

# the built-in option of each group, as the public path of its class
BUILT_IN = {
    "data": {"shakespeare": "bicameral.data.Shakespeare", "text_file": "bicameral.data.TextFile",
             "tokens": "bicameral.data.TokenShards"},
    "curriculum": {"achievement": "bicameral.curriculum.Achievement",
                   "fixed_threshold": "bicameral.curriculum.FixedThreshold",
                   "none": "bicameral.curriculum.NoCurriculum",
                   "step_schedule": "bicameral.curriculum.StepSchedule"},
    "optimizer": {"adamw": "torch.optim.AdamW", "adam": "torch.optim.Adam", "sgd": "torch.optim.SGD",
                  "muon": "bicameral.optim.MuonAdamW"},
    "schedule": {"cosine_restarts": "bicameral.schedule.CosineWithRestarts",
                 "linear_restarts": "bicameral.schedule.LinearWithRestarts",
                 "constant": "bicameral.schedule.Constant"},
    "trackers": {"wandb": "bicameral.tracking.WandbTracker"},
}
# what the engine adds when it builds each: the model's seq_len; the levels (derived from model.seq_len unless
# the node sets them); the parameter groups; the optimizer and the run's total steps. Trackers take their
# settings alone.
ENGINE_PASSES = {
    "data": {"seq_len": ...},
    "curriculum": {"levels": None},
    "optimizer": {"params": ...},
    "schedule": {"optimizer": ..., "total_steps": ..., "last_epoch": ...},
    "trackers": None,
}


def signature_schema(target: str, engine_passes: dict | None = None) -> dict:
    """The keyword arguments of the class `target` names, with their defaults (`???`, which the option's
    YAML must set, where there is none). With `engine_passes`, the node is `_partial_`: the engine adds
    arguments when it builds it. Of those, the ones it passes only when the node leaves them out keep a key,
    with the given default (`levels: None`); the ones it always passes (given as `...`) have none.

    A plain node, not a typed one: a preset may set a key that another option does not take and delete it
    after (`curriculum=none ~curriculum.margin`), and `bicameral.engine.build` checks every value against the class
    when it is built, naming the key."""
    schema = {"_target_": target}
    if engine_passes is not None:
        schema["_partial_"] = True
    engine_passes = engine_passes or {}
    schema |= {name: default for name, default in engine_passes.items() if default is not ...}
    for param in inspect.signature(get_object(target)).parameters.values():
        if param.name in engine_passes or param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        default = MISSING if param.default is inspect.Parameter.empty else param.default
        schema[param.name] = list(default) if isinstance(default, tuple | set) else default
    return schema


def register_schemas(cs) -> None:
    """Every built-in option's schema, as `schemas/<group>/<option>` in Hydra's ConfigStore."""
    for group, targets in BUILT_IN.items():
        for name, target in targets.items():
            cs.store(group=f"schemas/{group}", name=name, node=signature_schema(target, ENGINE_PASSES[group]))
