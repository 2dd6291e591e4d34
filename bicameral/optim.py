"""Parameter groups for any optimizer, and Muon paired with AdamW.

`parameter_groups` is what the engine passes to every optimizer built from config: matrices
decay, everything else does not. Groups carry `param_names`, so an optimizer can tell the
parameters apart by role, as `MuonAdamW` does.
"""

from collections.abc import Callable, Iterable

import torch
from torch import nn

# 2-D parameters that are not hidden matrices: the token table (tied to the output head) and the
# gate, which sets the hemisphere share and is left to AdamW in the usual Muon recipe
NOT_HIDDEN = ("embed.", "lm_head.", ".gate.")


def parameter_groups(model: nn.Module) -> list[dict]:
    """Two groups: matrices (decayed at the optimizer's weight_decay) and the rest (never decayed).

    Norms, biases and the spectral filters are left alone: decay would also shrink the filter's
    locked bins while the curriculum holds them at zero.
    """
    decay, no_decay = {"params": [], "param_names": []}, {"params": [], "param_names": [], "weight_decay": 0.0}
    for name, p in model.named_parameters():
        group = decay if p.dim() == 2 and "spectrum" not in name else no_decay
        group["params"].append(p)
        group["param_names"].append(name)
    return [decay, no_decay]


def hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict]:
    """Each param group's settings (all but its parameters), as this run's config built them."""
    return [{k: v for k, v in group.items() if k not in ("params", "param_names")} for group in optimizer.param_groups]


def reapply_hyperparameters(optimizer: torch.optim.Optimizer, built: list[dict]) -> dict[str, tuple]:
    """After a checkpoint's optimizer state is loaded, give each param group back the settings this run's
    config built (`built`, from `hyperparameters` before the load): weight_decay, betas, eps, momentum...
    The moments are the checkpoint's. A new peak LR (`initial_lr`) rescales the group's current LR, so the
    schedule keeps its place. Returns {setting: (checkpoint's value, applied value)} for what changed."""
    changed = {}
    for group, settings in zip(optimizer.param_groups, built, strict=True):
        for key, value in settings.items():
            old = group.get(key)
            if key == "lr" or _same(old, value):
                continue  # the current LR is the schedule's, not a setting
            if key == "initial_lr" and old:
                group["lr"] *= value / old
            group[key] = value
            changed.setdefault(key, (old, value))
    return changed


def _same(a, b) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)  # a tuple saved may come back a list
    return a == b


def is_hidden_matrix(name: str, p: torch.Tensor) -> bool:
    """A 2-D weight inside the blocks: the projections, attention and MLP matrices."""
    return p.dim() == 2 and not any(part in f".{name}" for part in NOT_HIDDEN)


def split_groups(groups: Iterable[dict], keep: Callable[[str, torch.Tensor], bool]) -> tuple[list[dict], list[dict]]:
    """Each group split in two by `keep(name, param)`; empty halves are dropped."""
    kept, rest = [], []
    for group in groups:
        options = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        halves = ({**options, "params": [], "param_names": []}, {**options, "params": [], "param_names": []})
        for name, p in zip(group["param_names"], group["params"]):
            half = halves[0] if keep(name, p) else halves[1]
            half["params"].append(p)
            half["param_names"].append(name)
        kept += [halves[0]] if halves[0]["params"] else []
        rest += [halves[1]] if halves[1]["params"] else []
    return kept, rest


class MuonAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` for the hidden matrices, `torch.optim.AdamW` for everything else
    (embeddings, norms, biases, gates, spectral filters), as one optimizer.

    Its param_groups are the two inner optimizers' own groups, so an LR schedule scales both:
    Muon's groups peak at `lr`, AdamW's at `adamw_lr`.
    """

    def __init__(self, params: Iterable[dict], lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.1,
                 adamw_lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 fused: bool | None = None):
        hidden, rest = split_groups(params, is_hidden_matrix)
        self.muon = torch.optim.Muon(hidden, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.adamw = torch.optim.AdamW(rest, lr=adamw_lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                       fused=fused)
        defaults = {"lr": lr, "weight_decay": weight_decay}
        super().__init__(self.muon.param_groups + self.adamw.param_groups, defaults)
        # the inner optimizers own the groups (the same dicts) and the state
        self.param_groups = self.muon.param_groups + self.adamw.param_groups

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.muon.step(closure)
        self.adamw.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = self.muon.param_groups + self.adamw.param_groups
