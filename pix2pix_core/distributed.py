"""torchrun support: detect the process group from the environment, pick the device and backend.

`torchrun --nproc_per_node N -m pix2pix_core train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer then wraps its networks in DistributedDataParallel and only rank 0 writes files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Union

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn

from .errors import Pix2PixError


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
    """cuda, then Apple mps, then cpu (or the one asked for: Pix2PixError when it is unknown or absent)."""
    if preference != "auto":
        try:
            device = torch.device(preference)
        except (RuntimeError, TypeError):
            raise Pix2PixError(f"unknown device {str(preference)[:40]!r}: use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise Pix2PixError(f"device {preference}: no CUDA GPU is available here (use auto or cpu)")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise Pix2PixError(f"device {preference}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        mps = getattr(torch.backends, "mps", None)
        if device.type == "mps" and not (mps is not None and mps.is_available()):
            raise Pix2PixError(f"device {preference}: Apple's MPS is not available here (use auto or cpu)")
        return device
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


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose batch mean and variance are taken over all ranks' batches (gloo, CPU).

    torch.nn.SyncBatchNorm refuses CPU tensors, so `--sync-bn` under torchrun on CPU uses this: the same
    statistics, computed from per-channel sums all-reduced with the differentiable all_reduce (its
    backward all-reduces the gradients of the sums, which is what the global batch needs).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels, values = x.shape[1], x.float()  # statistics in fp32, also under bf16 autocast
        count = torch.full((1,), values.numel() // channels, dtype=torch.float32, device=x.device)
        sums = dist_nn.all_reduce(torch.cat([values.sum((0, 2, 3)), (values * values).sum((0, 2, 3)), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        var = (sums[channels:2 * channels] / total - mean * mean).clamp_min(0)  # biased, as BatchNorm
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * total / (total - 1).clamp_min(1), momentum)  # unbiased, as BatchNorm
        shape = (1, channels, 1, 1)
        out = (values - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm2d -> torch's SyncBatchNorm on CUDA (nccl), CPUSyncBatchNorm elsewhere (gloo).
    Weights and running statistics are kept; state_dict keys do not change, so checkpoints load
    into a plain model."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if type(module) is nn.BatchNorm2d:
        converted = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                     module.track_running_stats)
        converted.load_state_dict(module.state_dict())
        return converted.to(next(module.parameters(), module.running_mean).device)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


# ------------------------------------------------------------------------------- rank agreement
def gather_to_main(context: Context, value):
    """Every rank's `value` (a picklable object; tensors on the CPU) as a list on rank 0, None on the others.
    A collective: every rank calls it."""
    if not context.distributed:
        return [value]
    gathered = [None] * context.world_size if context.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def all_ranks_ok(context: Context, ok: Union[bool, torch.Tensor]) -> bool:
    """True only if `ok` holds on every rank: decisions that end a run must be taken by all ranks
    together, or the ones that carry on wait forever in their next collective."""
    flag = torch.as_tensor(ok, dtype=torch.float32, device=context.device).reshape(1)
    if context.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def mean_losses(context: Context, losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Losses averaged over all ranks (one all-reduce, one host sync), so rank 0 logs the global value
    and every rank sees the same NaN: a divergence on one rank stops all of them together."""
    stacked = torch.stack([value.float() for value in losses.values()])
    if context.distributed:
        dist.all_reduce(stacked)
        stacked /= context.world_size
    return dict(zip(losses, stacked.tolist()))


def weights_finite(context: Context, modules: Iterable[nn.Module]) -> bool:
    """True when every floating-point weight and buffer of `modules` is finite, on all ranks.

    Checked before each checkpoint: a step can turn weights to NaN while its loss (computed before
    the update) was still finite, and a NaN checkpoint must never replace the last good one.
    """
    tensors = [t for module in modules for t in module.state_dict().values() if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
    return all_ranks_ok(context, finite)


# ------------------------------------------------------------------------------- the loading phase
LOADED, STOPPED, FAILED = "loaded", "stopped", "failed"
_POLL_S = (0.05, 1.0)  # first and longest pause between looks at the other ranks, as the cache's lock wait


@dataclass
class LoadingOutcome:
    """How every rank leaves the loading phase, decided once for all: STOPPED as soon as one rank stops (a
    stop() from code, which reaches one process only), FAILED as soon as one rank's loading raises (a launcher
    other than a one-machine torchrun does not end the others), LOADED once the last one has loaded.

    Agreed through the process group's key-value store, not a collective: loading can take hours (a dataset
    cache build that the other ranks wait for), longer than a collective's timeout, and a rank that stops
    meanwhile must reach the others while they are still loading (they look between images and between
    tries of a cache's build lock), not once they are done. No store in a single process: it decides alone.
    """

    store: Optional[dist.Store] = None
    prefix: str = ""
    world_size: int = 1
    _next_look: float = field(default=0.0, init=False, repr=False)
    _seen: bool = field(default=False, init=False, repr=False)

    def stop_seen(self) -> bool:
        """Whether a rank has stopped: a loading rank's stop flag. While this rank loads, any outcome is a
        stop (LOADED needs this rank too); the store is asked at most every 50 ms, not for every image."""
        if self.store is None or self._seen or time.monotonic() < self._next_look:
            return self._seen
        self._next_look = time.monotonic() + _POLL_S[0]
        self._seen = self.store.check([self.prefix + "outcome"])
        return self._seen

    def stop(self) -> str:
        """This rank stops: STOPPED for all, unless every rank had loaded already (LOADED: the training loop's
        agreed stop ends the run then)."""
        return self._decide(STOPPED)

    def fail(self) -> None:
        """This rank's loading raised: FAILED for all, which end too instead of waiting for it for ever. A
        store that cannot be reached is left alone: the error this rank raises is the one to show."""
        try:
            self._decide(FAILED)
        except Exception:  # noqa: BLE001 - the store's own errors vary by store and torch version
            pass

    def loaded(self, stopping: Callable[[], bool]) -> str:
        """This rank has loaded: wait, without a timeout, for the outcome (a stop on this rank meanwhile,
        `stopping()`, is one)."""
        if self.store is None:
            return LOADED
        if self.store.add(self.prefix + "loaded", 1) == self.world_size:
            return self._decide(LOADED)
        pause = _POLL_S[0]
        while not self.store.check([self.prefix + "outcome"]):
            if stopping():
                return self.stop()
            time.sleep(pause)
            pause = min(2 * pause, _POLL_S[1])
        return self.store.get(self.prefix + "outcome").decode()

    def _decide(self, outcome: str) -> str:
        """The first decision stands (an atomic compare-and-set): the outcome every rank reads."""
        if self.store is None:
            return outcome
        return self.store.compare_set(self.prefix + "outcome", "", outcome).decode()


def loading_outcome(context: Context) -> LoadingOutcome:
    """The loading phase's LoadingOutcome; a collective (every rank calls it, before loading). Its keys are
    named by a token from rank 0: the store can outlive a process group (torchrun's agent holds it), and one
    process may train twice."""
    if not context.distributed:
        return LoadingOutcome()
    token = int.from_bytes(os.urandom(7), "big") if context.is_main else 0  # not torch's RNG: seeded runs
    shared = torch.tensor([token], dtype=torch.int64, device=context.device)
    dist.broadcast(shared, src=0)
    store = dist.distributed_c10d._get_default_store()  # the store of init_process_group; no public accessor
    return LoadingOutcome(store, f"pix2pix/loading/{int(shared.item()):x}/", context.world_size)


def teardown(context: Context, synchronize: bool = True) -> None:
    """Leave the process group; the barrier (all ranks done) only after a run that completed on this rank.

    After an error the other ranks may be waiting in a collective that this rank will never join; a
    barrier would then hang them all instead of letting torchrun see the failure and stop the job.
    """
    if context.distributed and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
