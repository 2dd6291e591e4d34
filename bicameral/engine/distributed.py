"""Data parallel training under torchrun: one process per GPU (or per CPU worker, with gloo).

Every rank trains on its own batches; DDP averages the gradients, so weights stay identical.
Every decision that must agree across ranks (the curriculum's score) is made on all-reduced
values, so every rank unlocks at the same step. Only rank 0 logs and writes checkpoints.
"""

import atexit
import datetime
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The average over ranks of a tensor (a no-op on one process)."""
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)  # gloo has no AVG
        return values / self.world_size

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE_PROCESS = Dist()


def init_distributed(use_cuda: bool, timeout_s: float) -> Dist:
    """Join the torchrun process group when launched by torchrun; a single process otherwise. A collective
    that waits `timeout_s` for a rank that hung or died raises (torch's default would wait 30 minutes)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return SINGLE_PROCESS
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if use_cuda:  # before the group forms, so NCCL binds each rank to its own GPU
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        device_id = torch.device("cuda", local_rank) if use_cuda else None
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=device_id,
                                timeout=datetime.timedelta(seconds=timeout_s))
        atexit.register(close_distributed)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank)


# how gloo and NCCL word a collective that a stopped, hung or dead rank never completed
PEER_FAILURE_SIGNS = ("Timed out", "timed out", "Connection closed by peer", "Connection reset by peer",
                      "NCCL", "gloo", "ProcessGroup")


def is_peer_failure(err: BaseException) -> bool:
    """True for the error of a collective that another rank failed to join."""
    backend_error = getattr(dist, "DistBackendError", ())
    return isinstance(err, backend_error) or (
        isinstance(err, RuntimeError) and any(sign in str(err) for sign in PEER_FAILURE_SIGNS))


def close_distributed() -> None:
    """Leave the process group at exit, so NCCL never warns of a group left open."""
    if dist.is_initialized():
        dist.destroy_process_group()


def weights_checksum(model: torch.nn.Module) -> str:
    """A short hash of every parameter's bytes: equal across ranks iff the weights are identical."""
    digest = hashlib.sha1()
    for p in model.parameters():
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
