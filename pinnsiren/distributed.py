"""Data-parallel training across processes launched by ``torchrun`` (or SLURM/mpirun).

A run is *distributed* when the launcher's environment says so:
``WORLD_SIZE`` > 1 together with ``RANK`` (``LOCAL_RANK`` and
``MASTER_ADDR``/``MASTER_PORT`` as ``torchrun`` sets them). Otherwise nothing
here does anything: no process group, no collective, the same numbers as a
plain single-process run.

When distributed, :class:`DataParallel` (used by :func:`pinnsiren.train.train`)

- initialises the default process group (``nccl`` for CUDA tensors with
  ``gloo`` beside it for CPU tensors when the run is on CUDA, ``gloo`` alone
  on CPU) and makes ``cuda`` mean ``cuda:LOCAL_RANK``;
- gives every rank its own collocation stream: rank 0 keeps the configured
  seed (so rank 0 draws exactly what a single-process run draws), rank
  ``r > 0`` uses :func:`seed_for_rank` (``numpy.random.SeedSequence([seed, r])``);
- broadcasts rank 0's parameters before the first step;
- after every backward pass averages the gradients of *all* trained tensors
  (network weights, a Problem's learnable parameters, extra parameters) and the
  logged loss terms over the ranks in one all-reduce, so every rank takes the
  same optimiser step (bit-identical parameters) and the history holds the
  loss of the union of the ranks' points;
- stores every rank's sampler state in the checkpoint (written by rank 0
  only) and, on resume, reads the checkpoint on rank 0 and broadcasts it.

With equal per-rank batches, the mean of the per-rank mean losses is the
mean loss over the union of all ranks' points, so a step of ``N`` ranks with
``n`` points each is (to rounding) a single-process step with ``N n`` points.

Only rank 0 writes files: :func:`is_writer` gates :mod:`pinnsiren.io`
(result files, checkpoints), :func:`pinnsiren.plotting.save_figure` and the
progress bars; the CLI mutes standard output on the other ranks.

Why an explicit all-reduce rather than ``DistributedDataParallel`` in the
trainer: DDP synchronises gradients from hooks that it arms in its own
``forward``; our derivative engine calls the network's layers directly (a
DDP-wrapped network is not a :class:`~pinnsiren.networks.Siren` to the jet
path, so it would silently fall back to nested autograd). :class:`LossModule`
shows the way that does work with DDP (the whole loss of a step is the DDP
forward, the jet path sees the bare network, one backward fires DDP's hooks);
tests/test_distributed.py checks that it gives the same gradients as the
explicit all-reduce. The trainer keeps the explicit all-reduce because it
also averages the logged loss terms (the L-BFGS line search needs the global
loss on every rank) and works for any way a step builds its gradients.
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "launched",
    "rank",
    "world_size",
    "local_rank",
    "is_writer",
    "seed_for_rank",
    "init",
    "shutdown",
    "setup_cli",
    "DataParallel",
    "LossModule",
]


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError as e:
        raise ValueError(f"environment variable {name}={v!r} is not an integer") from e


def launched() -> bool:
    """True when the environment describes a job of more than one process (``WORLD_SIZE`` > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    if _initialized():
        return torch.distributed.get_rank()
    return _env_int("RANK", 0) if launched() else 0


def world_size() -> int:
    """Number of processes in the job (1 when not distributed)."""
    if _initialized():
        return torch.distributed.get_world_size()
    return _env_int("WORLD_SIZE", 1) if launched() else 1


def local_rank() -> int:
    """Rank on this node (``LOCAL_RANK``; 0 when not distributed)."""
    return _env_int("LOCAL_RANK", 0) if launched() else 0


def is_writer() -> bool:
    """True on the process that writes files and shows progress (rank 0, or a plain run)."""
    return rank() == 0


def seed_for_rank(seed: int, r: int) -> int:
    """Seed of rank ``r``'s collocation stream: ``seed`` itself on rank 0, else a
    ``SeedSequence([seed, r])`` draw (distinct streams, no overlap of ``seed + r`` style)."""
    if r == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) % 2**63, int(r)]).generate_state(1, np.uint64)[0] % 2**63)


def _local_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and launched():
        return torch.device("cuda", local_rank() if dev.index is None else dev.index)
    return dev


def init(device: str | torch.device = "cpu") -> bool:
    """Initialise the default process group when launched (idempotent).

    Returns True when this process is part of a distributed job. On CUDA the
    current device becomes ``cuda:LOCAL_RANK`` so that a plain ``"cuda"``
    anywhere in the pipeline means this rank's GPU.
    """
    if not launched():
        return False
    if not torch.distributed.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {name} is not set; launch with "
                             f"torchrun (or set RANK, MASTER_ADDR, MASTER_PORT for every process)")
    dev = _local_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use --device cpu")
        torch.cuda.set_device(dev)
    if not _initialized():
        backend = "cpu:gloo,cuda:nccl" if dev.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {}
        if dev.type == "cuda":
            kwargs["device_id"] = dev
        torch.distributed.init_process_group(backend=backend, rank=_env_int("RANK", 0),
                                             world_size=_env_int("WORLD_SIZE", 1), **kwargs)
        # a process group left to interpreter finalization can abort the process (gloo worker
        # threads still holding tensors): destroy it at exit while Python is fully alive
        atexit.register(shutdown)
        global _EXCEPTHOOK
        _EXCEPTHOOK, sys.excepthook = sys.excepthook, _note_failure  # the hook in place now is still called
    return True


def shutdown(clean: bool = True, timeout: float = 60.0) -> None:
    """Destroy the process group if one exists (end of a CLI command, and at exit).

    On a clean exit the ranks first meet at a barrier (at most ``timeout``
    seconds), so no rank tears its connections down while a peer may still be
    finishing its last collective; after an uncaught exception the group is
    destroyed at once (the peers may never arrive); so with ``clean=False``.
    """
    if not _initialized():
        return
    if clean and not _FAILED:
        try:
            torch.distributed.monitored_barrier(timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, ValueError):  # a peer gone or a backend without it: tear down regardless
            pass
    torch.distributed.destroy_process_group()


#: set once an uncaught exception reaches the interpreter (the barrier at exit is then skipped)
_FAILED = False
_EXCEPTHOOK = sys.excepthook


def _note_failure(*info: Any) -> None:
    global _FAILED
    _FAILED = True
    _EXCEPTHOOK(*info)


def setup_cli(device: str | torch.device = "cpu") -> None:
    """What the command line does first under a launcher: join the job, mute stdout on ranks > 0."""
    if init(device) and not is_writer():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


class DataParallel:
    """The trainer's view of the job. With one process every method is the identity.

    Parameters
    ----------
    device : str
        The configured device; under a launcher ``cuda`` becomes ``cuda:LOCAL_RANK``.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.active = init(device)
        self.device = _local_device(device) if self.active else torch.device(device)
        self.rank = rank()
        self.world_size = world_size()

    # -- sampling ----------------------------------------------------------
    def seed(self, seed: int) -> int:
        """This rank's sampler seed (``seed`` on rank 0 and in a plain run)."""
        return seed_for_rank(seed, self.rank) if self.active else seed

    # -- parameters and gradients -------------------------------------------
    def broadcast(self, params: Iterable[torch.Tensor], modules: Iterable[nn.Module] = ()) -> None:
        """Copy rank 0's parameters (and module buffers) to every rank."""
        if not self.active:
            return
        tensors = [p.data for p in params] + [b.data for m in modules for b in m.buffers()]
        with torch.no_grad():
            for t in tensors:
                torch.distributed.broadcast(t, src=0)

    def all_reduce(self, params: Sequence[torch.Tensor], terms: Mapping[str, torch.Tensor],
                   loss: torch.Tensor) -> tuple[Mapping[str, torch.Tensor], torch.Tensor]:
        """Average the gradients of ``params`` and the values of ``terms``/``loss`` over the ranks.

        One all-reduce of a float64 buffer per device. Returns the averaged
        (detached) terms and loss for logging; a plain run gets its own
        objects back unchanged. Every rank must call this with the same
        parameters in the same order.
        """
        if not self.active:
            return terms, loss
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for p in params:
            if p.is_complex():
                raise TypeError("distributed training of complex parameters is not supported")
            by_device.setdefault(p.device, []).append(p)
        names = list(terms)
        vals = torch.stack([terms[k].detach().reshape(()).to(torch.float64).cpu() for k in names]
                           + [loss.detach().reshape(()).to(torch.float64).cpu()])
        first = True
        for dev, ps in by_device.items():
            parts = [p.grad.reshape(-1).to(torch.float64) if p.grad is not None
                     else torch.zeros(p.numel(), dtype=torch.float64, device=dev) for p in ps]
            if first:
                parts.append(vals.to(dev))
            buf = torch.cat(parts)
            torch.distributed.all_reduce(buf)
            buf /= self.world_size
            off = 0
            for p in ps:
                n = p.numel()
                if p.grad is not None:
                    p.grad.copy_(buf[off:off + n].reshape(p.shape))
                off += n
            if first:
                vals = buf[off:].cpu()
                first = False
        if first:  # nothing to train: still agree on the loss
            torch.distributed.all_reduce(vals)
            vals /= self.world_size
        avg = {k: vals[i].to(terms[k].dtype) for i, k in enumerate(names)}
        return avg, vals[-1].to(loss.dtype)

    def agree(self, value: float, op: str = "mean") -> float:
        """One number every rank agrees on: the ranks' ``mean`` or ``max`` of ``value`` (a plain run: ``value``).

        For decisions that must not differ between ranks although their
        inputs do (a CPU budget spent, a fresh sample's loss).
        """
        if not self.active:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX if op == "max" else
                                     torch.distributed.ReduceOp.SUM)
        return float(t) / (1 if op == "max" else self.world_size)

    # -- checkpoints ---------------------------------------------------------
    def checkpoint_extras(self, gen: torch.Generator) -> dict[str, Any]:
        """Every rank's sampler state (a collective; rank 0 stores it). Empty in a plain run."""
        if not self.active:
            return {}
        state = gen.get_state()
        gathered = [torch.empty_like(state) for _ in range(self.world_size)]
        torch.distributed.all_gather(gathered, state)
        return {"generators": gathered, "world_size": self.world_size}

    def load(self, path: os.PathLike | str, map_location: torch.device) -> dict[str, Any] | None:
        """The checkpoint at ``path`` (None if absent), read on rank 0 and broadcast to all ranks.

        The file's bytes travel as a CPU tensor and every rank unpickles them
        with ``weights_only=True``, as a single process reads the file.
        """
        import io
        from pathlib import Path

        path = Path(path)
        if not self.active:
            return torch.load(path, map_location=map_location, weights_only=True) if path.exists() else None
        data = path.read_bytes() if self.rank == 0 and path.exists() else b""
        size = torch.tensor([len(data)], dtype=torch.int64)
        torch.distributed.broadcast(size, src=0)
        if int(size) == 0:
            return None
        buf = (torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.rank == 0
               else torch.empty(int(size), dtype=torch.uint8))
        torch.distributed.broadcast(buf, src=0)
        return torch.load(io.BytesIO(buf.numpy().tobytes()), map_location="cpu", weights_only=True)

    def generator_state(self, state: Mapping[str, Any], seed: int, step: int) -> torch.Tensor:
        """This rank's sampler state from a checkpoint.

        A checkpoint of a run with another number of ranks has no stream for
        some ranks: those are reseeded from ``(seed, rank, step)`` (with a
        warning; the run continues but is not the run it would have been).
        """
        if not self.active:
            return state["generator"]
        gens = state.get("generators")
        if gens is not None and len(gens) > self.rank and state.get("world_size") == self.world_size:
            return gens[self.rank]
        if self.rank == 0:
            warnings.warn(f"checkpoint was written by a run of {state.get('world_size', 1)} process(es), "
                          f"resuming with {self.world_size}: rank streams > 0 are reseeded", stacklevel=2)
            return state["generator"]
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([int(seed) % 2**63, self.rank, int(step)])
                          .generate_state(1, np.uint64)[0] % 2**63))
        return g.get_state()


class LossModule(nn.Module):
    """A step's losses as one module, for ``torch.nn.parallel.DistributedDataParallel``.

    ``LossModule(problem, model, extra)(step, generator)`` returns
    ``problem.losses(model, step, generator)``. Wrapped in DDP, the call is
    DDP's forward (it arms the gradient hooks), the derivative engine sees the
    bare network (jet path), and one backward of the summed terms fires the
    hooks that all-reduce every registered parameter — the network's and
    ``extra`` (a Problem's learnable parameters).
    """

    def __init__(self, problem: Any, model: nn.Module, extra: Iterable[nn.Parameter] = ()) -> None:
        super().__init__()
        self.problem = problem
        self.model = model
        self.extra = nn.ParameterList(list(extra))

    def forward(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self.problem.losses(self.model, step, generator)
