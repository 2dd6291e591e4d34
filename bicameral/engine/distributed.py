"""Data parallel training under torchrun or SLURM: one process per GPU (or per CPU worker, with gloo).

torchrun exports RANK, WORLD_SIZE and LOCAL_RANK; SLURM's tasks (the submitit launcher's tasks_per_node and
nodes, or srun) have only SLURM_* variables, from which torch's are exported first, so they form one group too.

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


def export_slurm_tasks() -> None:
    """Several SLURM tasks and no torchrun: torch's variables (MASTER_ADDR/PORT from the job's first node and
    its id, RANK, WORLD_SIZE, LOCAL_RANK) from SLURM's, as submitit's TorchDistributedEnvironment derives them."""
    if "WORLD_SIZE" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")  # srun without the launcher: submitit asks which cluster
    from submitit.helpers import TorchDistributedEnvironment

    # a MASTER_PORT set by the job script is kept (submitit reads it); each rank picks its GPU by LOCAL_RANK
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def process_rank() -> int:
    """This process's rank before the group forms (0 when it is the only one): only rank 0 writes the run dir."""
    export_slurm_tasks()
    return int(os.environ.get("RANK", "0"))


def init_distributed(use_cuda: bool, timeout_s: float) -> Dist:
    """Join the process group of torchrun's or SLURM's processes; a single process otherwise. A collective
    that waits `timeout_s` for a rank that hung or died raises (torch's default would wait 30 minutes)."""
    export_slurm_tasks()
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
