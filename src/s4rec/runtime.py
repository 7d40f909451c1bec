"""Where a run computes: its device, its precision and its process group.

The one place that knows about CUDA, autocast and torchrun. The trainer, the evaluator,
the losses and inference ask it; no other file branches on them.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from .config import Config

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = "auto, cpu, cuda, cuda:N or mps"


def rank() -> int:
    """This process's rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its machine under torchrun (0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """Processes training one model (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup_runtime(cfg: Config) -> None:
    """Threads, seeds and determinism, before anything random happens."""
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    torch.use_deterministic_algorithms(cfg.train.deterministic)


def rng_state(device: torch.device) -> dict[str, Tensor]:
    """The state of the global generators a run draws from (dropout, masking): the CPU's,
    and on CUDA the GPU's."""
    state = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore ``rng_state``: resuming on the device a run was saved on is exact."""
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def resolve_device(spec: str = "auto") -> torch.device:
    """The device of ``train.device`` / ``--device``: ``auto`` (cuda when available, else
    cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Under torchrun, ``cuda`` is this
    process's GPU (``cuda:LOCAL_RANK``). A device this machine lacks is an error."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {spec!r} is not a device: use {DEVICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {spec!r}: no CUDA device is visible to this torch {torch.__version__}"
                " (a CPU build, or no GPU); use --device cpu"
            )
        index = local_rank() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {spec!r}: cuda:{index} does not exist ({torch.cuda.device_count()} visible)"
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {spec!r}: MPS is not available on this machine")
    if device.type not in ("cpu", "mps"):
        raise ValueError(f"device {spec!r} is not supported: use {DEVICES}")
    return device


def check_precision(device: torch.device, precision: str) -> None:
    """An error for a precision the device cannot train in."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision {precision!r} is not one of {PRECISIONS}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"train.precision=fp16 needs a CUDA device (it trains with a gradient scaler);"
            f" on {device.type} use bf16 or fp32"
        )


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for a forward pass: matrix products in bf16 / fp16, while losses
    (see ``in_fp32``), Sinkhorn and metrics stay in fp32. ``fp32``: no autocast."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (a pass-through for fp32 and bf16)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


CPU_CHUNK_COST = 256


def chunk_cost(device: torch.device) -> int:
    """What one more encoder call costs, in padded positions, when a batch is split into
    chunks by length (``width_buckets``). On a CPU, a few hundred positions of a 64-wide
    SASRec: the Python and dispatch of a pass, forward and backward (measured at batch 128
    and 256 on Beauty, one thread: 256 beat 32-128 and 512-2048). On an accelerator a
    position costs almost nothing and a pass is kernel launches: a batch is one chunk."""
    return CPU_CHUNK_COST if device.type == "cpu" else 1 << 30


T = TypeVar("T")
_DONE = object()  # the producer's last item


def prefetched(items: Iterable[T], ahead: int) -> Iterator[T]:
    """``items``, produced by a background thread up to ``ahead`` ahead of the consumer
    (``ahead`` 0: in this thread). The trainer uses it on accelerators, where building
    the next batch on the CPU then overlaps the device's work on this one; an error in
    the producer is raised here, and a consumer that stops early stops the producer."""
    if ahead <= 0:
        yield from items
        return
    out: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:  # False once the consumer has stopped
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    worker = threading.Thread(target=produce, daemon=True, name="s4rec-prefetch")
    worker.start()
    try:
        while (item := out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def adam(params: Any, device: torch.device, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with its fused kernel where torch has one (CPU, CUDA): one pass over each
    parameter instead of a dozen, which counts when the step itself is small."""
    fused = device.type in ("cpu", "cuda") or None
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)


class SparseTableAdam(torch.optim.Optimizer):
    """Adam for the dense parameters and torch's SparseAdam (lazy: only the rows a step
    touched move) for embedding tables with sparse gradients, stepped as one optimiser."""

    def __init__(self, dense: list[Tensor], tables: list[Tensor], device: torch.device,
                 lr: float) -> None:  # fmt: skip
        self.parts = [adam(dense, device, lr, 0.0), torch.optim.SparseAdam(tables, lr=lr)]
        # the union of the parts' groups, for whoever walks them (the gradient scaler)
        super().__init__([g for o in self.parts for g in o.param_groups], {})
        self.param_groups = [g for o in self.parts for g in o.param_groups]

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [o.state_dict() for o in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for o, s in zip(self.parts, state_dict["parts"], strict=True):
            o.load_state_dict(s)


def make_optimizer(model: torch.nn.Module, params: Any, device: torch.device, lr: float,
                   weight_decay: float, sparse_items: bool) -> torch.optim.Optimizer:  # fmt: skip
    """The training optimiser of ``params``: Adam, or with ``sparse_items`` the lazy Adam
    for ``model.item_emb`` (switched to sparse gradients here) beside Adam for the rest."""
    if not sparse_items:
        return adam(params, device, lr, weight_decay)
    table = model.get_submodule("item_emb")
    assert isinstance(table, torch.nn.Embedding)
    table.sparse = True
    dense = [p for p in params if p is not table.weight]
    return SparseTableAdam(dense, [table.weight], device, lr)


Forward = TypeVar("Forward", bound=Callable[..., Tensor])


def in_fp32(forward: Forward) -> Forward:
    """Decorate a loss's ``forward``: it runs outside autocast on fp32 copies of its
    floating-point inputs, so softmax, log-softmax and their sums keep full precision."""

    @functools.wraps(forward)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Tensor:
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        device_type = tensors[0].device.type if tensors else "cpu"
        up = lambda a: a.float() if isinstance(a, Tensor) and a.is_floating_point() else a  # noqa: E731
        with torch.autocast(device_type, enabled=False):
            return forward(self, *map(up, args), **{k: up(v) for k, v in kwargs.items()})

    return wrapped  # type: ignore[return-value]


def start_process_group(device: torch.device, timeout_s: float = 300.0) -> None:
    """Join torchrun's process group (nccl on CUDA, gloo otherwise), once; nothing without
    torchrun. A collective that waits ``timeout_s`` on a rank that died raises instead of
    hanging (torchrun also stops the other ranks when one fails)."""
    if world_size() > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))


def distributed() -> bool:
    """Whether this process trains one model together with others."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(x: Tensor) -> Tensor:
    """The sum of ``x`` over all ranks (``x`` itself in one process); no gradient."""
    if distributed():
        x = x.detach().clone()
        dist.all_reduce(x)
    return x


def share_of_global(n_local: int, n_global: int | None, device: torch.device) -> float:
    """``n_local * world / n_global``: the factor that turns this rank's mean over its
    ``n_local`` rows into its part of the mean over all ranks' rows, once DDP averages the
    gradients; 1 in one process. ``n_global`` None: summed over the ranks (a collective)."""
    if not distributed():
        return 1.0
    if n_global is None:
        n_global = int(all_reduce_sum(torch.tensor([n_local], device=device)))
    return n_local * dist.get_world_size() / n_global


class _GatherRows(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient for a rank's rows back into it."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # (m, ...) -> (world, m, ...)
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather_rows(x: Tensor) -> tuple[Tensor, int]:
    """All ranks' rows of ``x`` (n_r, ...) concatenated in rank order, with gradient to each
    rank's own rows, and the offset of this rank's rows; ``(x, 0)`` in one process. Ranks
    may hold different numbers of rows (an epoch's last batch)."""
    if not distributed():
        return x, 0
    counts = torch.zeros(dist.get_world_size(), dtype=torch.long, device=x.device)
    counts[dist.get_rank()] = len(x)
    sizes = all_reduce_sum(counts).tolist()
    padded = torch.nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (0, max(sizes) - len(x)))
    parts = _GatherRows.apply(padded)  # (world, max n_r, ...)
    rows = torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])
    return rows, sum(sizes[: dist.get_rank()])


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable, small), in rank order; ``[obj]`` in one process."""
    if not distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait until every rank is here (e.g. until rank 0 has written a checkpoint)."""
    if distributed():
        dist.barrier()


def wrap_for_training(
    module: torch.nn.Module, device: torch.device, may_skip_parameters: bool
) -> torch.nn.Module:
    """``module`` as DistributedDataParallel under torchrun (gradients averaged over ranks
    in backward), else itself. ``may_skip_parameters``: a step may leave some parameters
    unused (a loss term switched off or frozen), so DDP looks for them. Buffers are not
    broadcast: every rank keeps them equal by construction."""
    if not distributed():
        return module
    ids = [device.index] if device.type == "cuda" else None
    with warnings.catch_warnings():  # torch 2.13 renames the option; older ones lack the new name
        warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated", FutureWarning)
        return torch.nn.parallel.DistributedDataParallel(
            module, device_ids=ids, find_unused_parameters=may_skip_parameters,
            broadcast_buffers=False, gradient_as_bucket_view=True,
        )  # fmt: skip
