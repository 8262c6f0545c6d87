"""torchrun support: detect the process group from the environment, pick the device and backend.

`torchrun --nproc_per_node N -m pix2pix_core train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer then wraps its networks in DistributedDataParallel and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """cuda, then Apple mps, then cpu (or the one asked for)."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup(preference: str = "auto") -> Context:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device=pick_device(preference))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world_size, local_rank, device)


def teardown(context: Context, synchronize: bool = True) -> None:
    """Leave the process group; the barrier (all ranks done) only after a run that completed on this rank.

    After an error the other ranks may be waiting in a collective that this rank will never join; a
    barrier would then hang them all instead of letting torchrun see the failure and stop the job.
    """
    if context.distributed and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
