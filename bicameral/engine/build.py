"""Builders: config sections -> the things the engine needs.

Optimizer, LR schedule and curriculum are whatever class their node's `_target_` names, built by
`hydra.utils.instantiate` with what only the run knows passed in at call time (parameter groups,
levels from seq_len, the optimizer and total steps). Before anything is built, the node is
checked against the class: a target that does not import, keys the class does not take, or a
class of the wrong kind fail in one line naming the key and the fix.
"""

import inspect
import logging
import types
import typing
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from bicameral.config import ConfigError
from bicameral.curriculum import Curriculum, resolve_levels
from bicameral.data.datasets import Dataset
from bicameral.errors import BicameralError
from bicameral.model.config import ModelConfig
from bicameral.model.lm import LanguageModel
from bicameral.optim import parameter_groups

log = logging.getLogger("bicameral")

HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")
KIND_WORDS = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}


def build_data(node: DictConfig, seq_len: int) -> Dataset:
    """The dataset the `data` node names, checked to hold a window of seq_len."""
    return build_component(node, "data", Dataset, seq_len=seq_len)


def fit_vocabulary(model: DictConfig, data: Dataset) -> None:
    """model.vocab_size follows the data's; a model too small for the data's ids fails here, before any work."""
    if model.vocab_size is None:
        model.vocab_size = data.vocab_size
    elif model.vocab_size < data.vocab_size:
        raise ConfigError(f"model.vocab_size={model.vocab_size} is smaller than the data's vocabulary "
                          f"({data.vocab_size} ids), so some tokens have no embedding. "
                          "Fix: drop model.vocab_size; it follows the data.")
    elif model.vocab_size > data.vocab_size:
        log.info(f"model.vocab_size={model.vocab_size} exceeds the data's {data.vocab_size} ids: "
                 f"{model.vocab_size - data.vocab_size} rows are padding that no token uses")


def build_model(cfg: DictConfig) -> LanguageModel:
    return LanguageModel(ModelConfig(**OmegaConf.to_container(cfg, resolve=True)))


def build_curriculum(node: DictConfig, seq_len: int) -> Curriculum:
    """The curriculum, its levels derived from seq_len (or checked, when the node sets them)."""
    levels = node.get("levels")
    levels = OmegaConf.to_object(levels) if OmegaConf.is_config(levels) else levels
    return build_component(node, "curriculum", Curriculum, levels=resolve_levels(levels, seq_len))


def build_optimizer(node: DictConfig, model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer over `parameter_groups(model)`; fused kernels on CUDA where the class has them."""
    runtime = {}
    takes = signature_keys(target_of(node, "optimizer")) or set()  # None: **kwargs, whose keys are unknown
    if device.type == "cuda" and node.get("fused") is None and "fused" in takes:
        runtime["fused"] = True
    return build_component(node, "optimizer", torch.optim.Optimizer, parameter_groups(model), **runtime)


def build_schedule(node: DictConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """The LR schedule over `optimizer`, spanning every step of the run."""
    return build_component(node, "schedule", torch.optim.lr_scheduler.LRScheduler, optimizer,
                           total_steps=total_steps)


def qualified_name(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def target_of(node: DictConfig, key: str):
    """The class (or factory) that `<key>._target_` names, or a one-line ConfigError."""
    target = node.get("_target_") if node is not None else None
    if not target:
        raise ConfigError(f"{key} has no _target_. Fix: pick one with {key}=<name>, or set {key}._target_=<class>.")
    try:
        return get_object(target)
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(
            f"{key}._target_={target} does not import ({type(cause).__name__}: {str(cause).splitlines()[0]}). "
            "Fix: check the spelling, or put its module on PYTHONPATH."
        ) from None


def signature_keys(target) -> set[str] | None:
    """The keyword arguments `target` takes; None when it takes any (**kwargs)."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_types(node: DictConfig, key: str, target) -> None:
    """Values whose parameter is annotated as a plain number, flag or string must be one."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    for name in node:
        if name in HYDRA_KEYS or name not in params:
            continue
        value, wanted = node[name], plain_types(params[name].annotation)
        if wanted and value is not None and not isinstance(value, wanted):
            raise ConfigError(f"{key}.{name}={value!r} must be {KIND_WORDS[wanted[-1]]}. "
                              f"Fix: e.g. {key}.{name}={default_of(params[name])}.")


def plain_types(annotation) -> tuple[type, ...]:
    """(int, float) for `float` or `float | None`; () for anything richer, which the class checks itself."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (
        annotation,)
    members = tuple(m for m in members if m is not type(None))
    if len(members) != 1 or members[0] not in (int, float, bool, str):
        return ()
    return (int, float) if members[0] is float else members


def default_of(param: inspect.Parameter) -> str:
    return "<value>" if param.default is inspect.Parameter.empty or param.default is None else repr(param.default)


def build_component(node: DictConfig, key: str, base: type, *args, **runtime):
    """instantiate(node) with `args`/`runtime` passed at call time, checked to be a `base`."""
    target = target_of(node, key)
    name = node._target_
    if isinstance(target, type) and not issubclass(target, base):
        raise ConfigError(f"{key}._target_={node._target_} is not a {qualified_name(base)}. Fix: {fix_for(base)}")
    accepted = signature_keys(target)
    if accepted is not None:
        rejected = [k for k in node if k not in HYDRA_KEYS and k not in accepted]
        if rejected:
            drop = " ".join(f"~{key}.{k}" for k in rejected)
            raise ConfigError(
                f"{name} does not take {', '.join(f'{key}.{k}' for k in rejected)}. Fix: drop them with {drop}, "
                f"or set {key}=<a config for {name}>."
            )
    unset = [k for k in node if k not in HYDRA_KEYS and OmegaConf.is_missing(node, k)]
    if unset:
        raise ConfigError(f"{key}={name} needs {', '.join(f'{key}.{k}' for k in unset)}. "
                          f"Fix: add {' '.join(f'{key}.{k}=<value>' for k in unset)}.")
    check_types(node, key, target)
    try:
        factory = instantiate(node, _partial_=True, _convert_="all")
        built = factory(*args, **runtime)
    except BicameralError:
        raise
    except (InstantiationException, TypeError, ValueError) as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key}: {name} rejected its settings ({str(cause).splitlines()[0]}). "
                          f"Fix: correct the {key}.* values.") from None
    if not isinstance(built, base):
        raise ConfigError(f"{key}._target_={node._target_} built a {qualified_name(built)}, not a "
                          f"{qualified_name(base)}. Fix: {fix_for(base)}")
    return built


def fix_for(base: type) -> str:
    if base is Curriculum:
        return "subclass bicameral.curriculum.Curriculum and implement ready(step, score) -> bool."
    if base is Dataset:
        return "subclass bicameral.data.Dataset (see bicameral/data/datasets.py)."
    if base is torch.optim.Optimizer:
        return "name a torch.optim.Optimizer subclass, e.g. optimizer._target_=torch.optim.AdamW."
    return f"name a {qualified_name(base)} subclass."
