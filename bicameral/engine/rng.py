"""Every random number generator's state as tensors and plain types, so a checkpoint loads with
`torch.load(weights_only=True)` and a resume draws the very numbers an uninterrupted run would.

    {"torch": ByteTensor,                     # CPU generator (dropout on CPU, default draws)
     "cuda": ByteTensor | None,               # this process's own CUDA device only
     "numpy": {"keys": int64 tensor (624,), "pos": int, "has_gauss": int, "cached_gaussian": float},
     "python": {"version": int, "state": int64 tensor (625,), "gauss_next": float | None}}
"""

import random

import numpy as np
import torch


def capture(device: torch.device) -> dict:
    """The RNG states this process draws from, on `device` (its own GPU, never the other visible ones)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()  # the legacy global: always MT19937
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
    }


def restore(state: dict, device: torch.device) -> None:
    """Set every generator `capture` recorded; the CUDA state goes to this process's own device."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    numpy_state = state["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()), python_state["gauss_next"]))


def from_pickled(old: dict) -> dict:
    """The states of a checkpoint written before this format (numpy arrays, tuples, every GPU's state):
    used once by `python -m bicameral.checkpoint upgrade`. Only rank 0 wrote checkpoints, on cuda:0."""
    _, keys, pos, has_gauss, cached_gaussian = old["numpy"]
    version, internal, gauss_next = old["python"]
    cuda = old.get("cuda")
    return {
        "torch": old["torch"],
        "cuda": cuda[0] if cuda else None,
        "numpy": {"keys": torch.from_numpy(np.asarray(keys).astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
    }
