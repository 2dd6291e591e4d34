"""The torch device a setting names: one rule for the trainer and every command-line tool."""

import torch

from bicameral.errors import BicameralError


def pick_device(name: str, local_rank: int = 0, key: str = "trainer.device") -> torch.device:
    """`auto`: this rank's GPU when CUDA is present, else the CPU; any other name as torch reads it. A name
    that asks for CUDA where there is none fails in one line naming `key`, the setting it came from."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BicameralError(f"{key}={name} but CUDA is not available. Fix: {key}=auto or cpu.")
    return device
