"""Running inside a torchrun job: the process group, who writes, and how work is split.

ganaug uses PyTorch's distributed engine as it is. Launched by ``torchrun`` (or any
launcher that sets its ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``), the first call to :func:`context` joins the default process group:
gloo for CPU tensors, NCCL for CUDA ones (``"cpu:gloo,cuda:nccl"`` when CUDA is there,
so the same job can hold both). A process group that the caller initialised already is
used as it is. Without a launcher, every function here is the one-process case and costs
nothing.

The rules every module follows (docs/distributed.md):

* Rank 0 (:func:`is_main`) alone writes files, logs and progress bars.
* Work that must come out the same on every rank (seeds, stop decisions, losses) is
  agreed by a collective here, never by each rank on its own.
* A collective that fails because another rank died becomes :class:`RankFailure`, whose
  message says what happened and how to continue.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ._io import RankFailure

__all__ = ["Context", "RankFailure", "all_ranks_succeed", "any_rank", "barrier", "broadcast", "check_same",
           "context", "data_fingerprint", "failures_of_peers", "is_main", "launched", "local_gradients",
           "mean_over_ranks", "node_leader_first", "parallel", "rank_device", "shard", "sync_state",
           "training_scope"]

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where this process stands in its job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process: collectives are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether a launcher such as torchrun started this process as one of several."""
    return _env_int("WORLD_SIZE", 1) > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"The environment variable {name}={value!r} is not a number; torchrun sets it, "
                         "so launch with torchrun or unset it.") from None


def context() -> Context:
    """This process's place in the job; joins the default process group from torchrun's
    environment the first time it is needed (see the module docstring)."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    if not launched():
        return Context()
    if not dist.is_available():
        raise RuntimeError("This PyTorch build has no torch.distributed; install a build with it to use torchrun.")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"WORLD_SIZE is set but {name} is not; launch with torchrun (or set all of RANK, "
                             "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT).")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0) % torch.cuda.device_count())
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    atexit.register(_leave)
    return context()


def _leave() -> None:
    # PyTorch asks that a process group be destroyed before exit (NCCL warns otherwise).
    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and outside a distributed job): the process that writes."""
    return context().is_main


def rank_device(device: torch.device) -> torch.device:
    """``device``, with a CUDA device without an index made this process's GPU (``cuda:LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", _env_int("LOCAL_RANK", 0) % max(torch.cuda.device_count(), 1))
    return device


def shard(n_items: int, job: Context | None = None) -> range:
    """This rank's contiguous block of ``range(n_items)``: blocks in rank order, sizes differing by at most one."""
    job = job or context()
    return range(n_items * job.rank // job.world_size, n_items * (job.rank + 1) // job.world_size)


def _collective_device() -> torch.device:
    # The device a small control tensor goes through: NCCL takes only CUDA tensors.
    backend = str(dist.get_backend()) if dist.is_initialized() else ""
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


@contextlib.contextmanager
def failures_of_peers(what: str, hint: str = "") -> Iterator[None]:
    """Turn the error of a collective whose peer died into :class:`RankFailure`, naming ``what``
    was under way and ``hint`` (how to continue)."""
    try:
        yield
    except RankFailure as exc:
        if hint and hint not in str(exc):  # raised by a collective inside, which did not know how to continue
            raise RankFailure(f"{exc} {hint}") from exc.__cause__
        raise
    except (RuntimeError, ConnectionError) as exc:
        if not (dist.is_initialized() and _is_communication_error(exc)):
            raise
        job = context()
        raise RankFailure(
            f"Rank {job.rank} of {job.world_size}: another process of this distributed job stopped or lost "
            f"contact while {what} ({type(exc).__name__}: {_first_sentence(exc)}). "
            f"{hint}".strip()
        ) from exc


def _first_sentence(exc: BaseException) -> str:
    # gloo's messages run on with advice about debugging the remote worker.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text.split(". ")[0].rstrip(".")


def _is_communication_error(exc: BaseException) -> bool:
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    # gloo raises a plain RuntimeError when a peer's socket closes ("Connection closed by
    # peer", "Connection reset by peer"); a misconfiguration is not mistaken for a dead peer.
    text = str(exc).lower()
    return any(words in text for words in ("connection closed", "connection reset", "by peer", "broken pipe",
                                           "timed out"))


def barrier(what: str = "waiting for the other processes") -> None:
    """Wait until every rank is here (a no-op in one process)."""
    if context().active:
        with failures_of_peers(what):
            dist.barrier()


@contextlib.contextmanager
def node_leader_first(what: str) -> Iterator[None]:
    """Local rank 0 of each node runs the block first (e.g. writes a cache); the node's
    other ranks wait for it, then run it (and find the work done)."""
    job = context()
    if not job.active:
        yield
    elif job.local_rank == 0:
        with all_ranks_succeed(what):
            yield
    else:
        with all_ranks_succeed(what):
            pass  # wait for the leaders (RankFailure if one failed)
        yield


def broadcast(value: T, what: str = "sharing a value") -> T:
    """Rank 0's ``value`` (any picklable object), on every rank."""
    if not context().active:
        return value
    box = [value]
    with failures_of_peers(what):
        dist.broadcast_object_list(box, src=0, device=_collective_device())
    return box[0]


def any_rank(flag: bool, what: str = "agreeing whether to stop") -> bool:
    """True on every rank if ``flag`` is true on any of them."""
    if not context().active:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    with failures_of_peers(what):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


@contextlib.contextmanager
def all_ranks_succeed(what: str) -> Iterator[None]:
    """The block succeeds on every rank or fails on every rank: an error here is re-raised
    after telling the others, and an error elsewhere raises :class:`RankFailure` here."""
    if not context().active:
        yield
        return
    try:
        yield
    except BaseException:
        with contextlib.suppress(RankFailure):
            any_rank(True, what)
        raise
    if any_rank(False, what):
        job = context()
        raise RankFailure(f"Rank {job.rank} of {job.world_size}: another rank failed while {what}; nothing was "
                          "published (that rank's error says why).")


def mean_over_ranks(t: torch.Tensor, what: str = "averaging over the processes") -> torch.Tensor:
    """The mean of ``t`` over the ranks (``t`` itself in one process); ``t`` is left unchanged."""
    if not context().active:
        return t
    out = t.detach().clone()
    with failures_of_peers(what):
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / context().world_size


def check_same(value: str, what: str) -> None:
    """ValueError on every rank unless ``value`` is the same on all of them (e.g. a data fingerprint)."""
    job = context()
    if not job.active:
        return
    values: list[Any] = [None] * job.world_size
    with failures_of_peers(f"comparing the {what}"):
        dist.all_gather_object(values, value)
    differ = [r for r, v in enumerate(values) if v != values[0]]
    if differ:
        raise ValueError(f"The {what} differs between rank 0 and rank(s) {differ}; every process of a distributed "
                         "job must be given the same (same path, same files on every node).")


def data_fingerprint(*tensors: torch.Tensor) -> str:
    """A SHA-256 of the tensors' shapes, dtypes and bytes (to check that every rank read the same data)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class _DataParallel(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that shows the wrapped network's ``config``, as the trainer reads it."""

    @property
    def config(self) -> Any:
        return self.module.config


def parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel in a job of several processes (``module``
    itself otherwise). Gradients are averaged over the ranks in the backward pass, and rank
    0's buffers (BatchNorm statistics, spectral norm's power-iteration vectors) are sent to
    every rank before each forward pass, so the ranks hold the same network throughout."""
    if not context().active:
        return module
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # Gradients as views into DDP's buckets: no copy into the buckets per step.
    return _DataParallel(module, device_ids=ids, gradient_as_bucket_view=True)


def sync_state(*modules: nn.Module | None, parameters: bool = False) -> None:
    """Give every rank rank 0's buffers of ``modules`` (and, with ``parameters``, its
    parameters). DistributedDataParallel sends buffers before each forward pass, but the
    last pass of an epoch updates BatchNorm's running statistics with each rank's own share
    of the batch; and what each rank computed alone (pretraining, standing statistics on a
    GPU, whose kernels need not be deterministic) may differ in the last bits."""
    if not context().active:
        return
    with failures_of_peers("sharing the networks' state"), torch.no_grad():
        for module in (m for m in modules if m is not None):
            for tensor in [*module.buffers(), *(module.parameters() if parameters else ())]:
                dist.broadcast(tensor, src=0)


def local_gradients(module: nn.Module) -> contextlib.AbstractContextManager:
    """Inside, a backward pass through ``module`` (DistributedDataParallel, or its compiled view)
    leaves its gradients on each rank without averaging them (``no_sync``)."""
    no_sync = getattr(module, "no_sync", None)
    return no_sync() if no_sync is not None else contextlib.nullcontext()


@contextlib.contextmanager
def training_scope(modules: Sequence[nn.Module], *, sync_batchnorm: bool = False) -> Iterator[None]:
    """Where ``modules`` train under :func:`parallel`.

    With ``sync_batchnorm``, in a job of several processes, every BatchNorm layer is a
    :class:`torch.nn.SyncBatchNorm` inside that shares its parameters and running
    statistics, so batch statistics are those of the global batch; on exit the original
    layers are back (checkpoints and sampling never see SyncBatchNorm). PyTorch's
    SyncBatchNorm runs on GPUs only: asked for with CPU tensors it is a ValueError.
    DDP's warning that a gradient's strides differ from its bucket's is silenced: it comes
    from convolutions over one input channel, whose weight gradient autograd lays out with
    other, equivalent strides (a copy per step, nothing else).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        with _synchronised_batchnorm(modules, sync_batchnorm and context().active):
            yield


@contextlib.contextmanager
def _synchronised_batchnorm(modules: Sequence[nn.Module], enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    swapped = [(parent, name, child) for module in modules for parent in module.modules()
               for name, child in parent.named_children()
               if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm)]
    # Checked before any layer is swapped, so that a refusal leaves the networks as they were.
    if any(next(child.parameters(), child.running_mean).device.type == "cpu" for *_, child in swapped):
        raise ValueError("sync_batchnorm needs GPUs (PyTorch's SyncBatchNorm runs on CUDA only); on "
                         "the CPU leave it off: each process then normalises its own share of a batch.")
    try:
        for parent, name, child in swapped:
            setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
