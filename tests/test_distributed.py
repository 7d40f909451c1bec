"""Data parallelism on CPU: 2 gloo processes on this machine against one process.

Workers are spawned with a loopback rendezvous and joined with a timeout, so a failure
shows up as a failed test, never as a hung CI. Dropout is off where results are compared.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from conftest import TINY_BATCH, run, tiny_config
from s4rec.config import Config
from s4rec.data.dataset import Batch, Chunk, TrainLoader, make_batch, training_samples
from s4rec.losses import SequenceContrastiveLoss, sinkhorn
from s4rec.methods import apply_method
from s4rec.model import build_encoder
from s4rec.objectives import build_objective
from s4rec.pipeline import load_data
from s4rec.runtime import CPU_CHUNK_COST, all_reduce_sum, gather_rows
from s4rec.train import Trainer

TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(fn: Callable, rank: int, world: int, port: int, args: tuple, out: Any) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=__import__("datetime").timedelta(seconds=60))
    try:  # plain bytes: no shared memory that must outlive this process
        out.put((rank, pickle.dumps(fn(*args))))
    except Exception:
        out.put((rank, pickle.dumps(RuntimeError(traceback.format_exc()))))
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable, *args: Any, world: int = 2) -> list[Any]:
    """``fn(*args)`` in ``world`` gloo processes; their return values in rank order."""
    ctx = mp.get_context("spawn")
    out, port = ctx.Queue(), free_port()
    procs = [
        ctx.Process(target=_worker, args=(fn, r, world, port, args, out)) for r in range(world)
    ]
    for p in procs:
        p.start()
    try:
        results = {r: pickle.loads(b) for r, b in (out.get(timeout=TIMEOUT_S) for _ in procs)}
        failed = [f"rank {r}: {v}" for r, v in results.items() if isinstance(v, RuntimeError)]
        assert not failed, "\n".join(failed)
    finally:
        for p in procs:  # done once both answered; a busy machine may take a while to exit
            p.join(TIMEOUT_S)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [results[r] for r in range(world)]


# ---------------------------------------------------------------- collectives


def _sinkhorn_and_contrast(scores: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> tuple:
    r, w = dist.get_rank(), dist.get_world_size()
    mine = torch.arange(len(scores)).tensor_split(w)[r]
    q = sinkhorn(scores[mine], 0.05, 3, all_reduce_sum)
    g1, first = gather_rows(z1[mine])
    g2, _ = gather_rows(z2[mine])
    loss = SequenceContrastiveLoss(0.5)(g1, g2, rows=slice(first, first + len(mine)))
    return q, float(loss), len(mine)


def test_sinkhorn_and_contrast_over_ranks_equal_one_process() -> None:
    g = torch.Generator().manual_seed(0)
    scores, z1, z2 = (torch.randn(9, 5, generator=g) for _ in range(3))  # 9 rows: 5 + 4
    parts = run_ranks(_sinkhorn_and_contrast, scores, z1, z2)
    assert torch.allclose(torch.cat([q for q, _, _ in parts]), sinkhorn(scores, 0.05, 3), atol=1e-7)
    whole = float(SequenceContrastiveLoss(0.5)(z1, z2))
    per_anchor = sum(loss * n for _, loss, n in parts) / len(scores)  # each rank: its anchors' mean
    assert per_anchor == pytest.approx(whole, rel=1e-6)


# ---------------------------------------------------------------- one optimiser step


def step_config(method: str, loss: str) -> Config:
    cfg = apply_method(tiny_config("data.synthetic_users=120", "model.dropout=0.0",
                                   "model.attn_dropout=0.0"), method)  # fmt: skip
    return cfg.override([TINY_BATCH, f"loss.next_item={loss}", "loss.negatives=3"])


def fixed_batch(cfg: Config, index: torch.Tensor, chunk_cost: int = CPU_CHUNK_COST) -> Batch:
    """Samples ``index`` with negatives and views that depend on the sample alone, so a
    rank's share of a batch carries exactly what the whole batch carries for those samples."""
    data = load_data(cfg)
    samples = training_samples(data, cfg.data.layout, cfg.data.max_len)
    batch = make_batch(data, samples, index, cfg.data.max_len, chunk_cost)
    chunks = []
    for c in batch.chunks:
        rows = index[c.rows]  # sample ids
        from_end = torch.arange(c.items.shape[1]).flip(0)  # the same in any chunk width
        key = rows[:, None] * 1009 + from_end  # (b, W)
        neg = (key[..., None] * 31 + torch.arange(3)) % data.n_items + 1  # (b, W, 3)
        masked = torch.where((key % 3 == 0) & (c.items != 0), data.n_items + 1, c.items)
        chunks.append(Chunk(c.rows, c.users, c.items, c.targets, neg, (c.items, masked)))
    return Batch(batch.users, chunks)


def _one_step(
    cfg: Config, index: torch.Tensor, chunk_cost: int = CPU_CHUNK_COST
) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    data = load_data(cfg)
    model = build_encoder(data.n_items, cfg.data.max_len, cfg.model, data.n_users)
    objective = build_objective(model, cfg, torch.from_numpy(data.is_head))
    module = objective
    if dist.is_initialized():
        module = torch.nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
        index = index.tensor_split(dist.get_world_size())[dist.get_rank()]
    opt = torch.optim.SGD(objective.parameters(), lr=0.5)
    module(fixed_batch(cfg, index, chunk_cost)).total.backward()
    opt.step()
    return {k: v.detach().clone() for k, v in objective.state_dict().items()}


def _steps(cfgs: list[Config], index: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    return [_one_step(cfg, index) for cfg in cfgs]


def test_one_step_on_two_ranks_equals_one_process() -> None:
    cfgs = [
        step_config(m, loss) for m, loss in [("sasrec", "bce"), ("sasrec", "ce"), ("s4rec", "bce")]
    ]
    index = torch.randperm(100, generator=torch.Generator().manual_seed(1))[:33]  # 17 + 16
    ranks = run_ranks(_steps, cfgs, index)  # one spawn for the three configurations
    for cfg, on_0, on_1 in zip(cfgs, *ranks, strict=True):
        single = _one_step(cfg, index)
        for name, value in single.items():
            where = f"{cfg.method}/{cfg.loss.next_item}: {name}"
            assert torch.equal(on_0[name], on_1[name]), where  # DDP kept the ranks in sync
            assert torch.allclose(on_0[name].float(), value.float(), atol=1e-5), where


def test_one_step_is_the_same_in_one_chunk_or_many() -> None:
    """Chunking a batch by length (and looking all its items up at once) changes the work,
    never the result."""
    index = torch.randperm(100, generator=torch.Generator().manual_seed(2))[:40]
    for method, loss in [("sasrec", "bce"), ("sasrec", "ce"), ("s4rec", "bce"), ("gru4rec", "bpr")]:
        cfg = step_config(method, loss)
        assert (
            len(fixed_batch(cfg, index, 0).chunks) > 3 > len(fixed_batch(cfg, index, 10**9).chunks)
        )
        one, many = _one_step(cfg, index, 10**9), _one_step(cfg, index, 0)
        for name, value in one.items():
            assert torch.allclose(value.float(), many[name].float(), atol=1e-6), (method, name)


def _train_epochs(cfgs: list[Config], out: str) -> list[bool]:
    for i, cfg in enumerate(cfgs):
        trainer = Trainer(cfg, f"{out}/{i}")
        trainer.train_epoch()
        trainer.train_epoch()
    return [t.may_skip_parameters for t in (Trainer(c, f"{out}/x").objective for c in cfgs)]


def test_terms_that_are_off_or_frozen_leave_no_parameter_waiting(tmp_path: Path) -> None:
    """DDP fails at the second step if a parameter it waits for gets no gradient: each
    variant trains two epochs on two ranks, looking for unused parameters only if needed."""
    variants = [("s4rec", []), ("s4rec-no-gr", []), ("sr+csd+gr", []), ("cl4srec", []),
                ("s4rec", ["s4rec.freeze_prototypes_steps=2"]),
                ("s4rec", ["s4rec.alpha=0", "s4rec.beta1=0"])]  # fmt: skip
    cfgs = [
        apply_method(tiny_config("data.synthetic_users=150"), m).override([TINY_BATCH, *sets])
        for m, sets in variants
    ]
    skips = run_ranks(_train_epochs, cfgs, str(tmp_path))[0]
    assert skips == [False, False, False, False, True, True]


# ---------------------------------------------------------------- torchrun, end to end


def torchrun(*argv: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "s4rec", *argv]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


TINY_RUN = ["--dataset", "synthetic", "--no-progress", "--threads", "1",
            "--set", "data.synthetic_users=300", "--set", "model.hidden=16",
            "--set", "model.layers=1", "--set", "train.batch_size=64"]  # fmt: skip


@pytest.mark.parametrize("method", ["sasrec", "s4rec"])
def test_torchrun_writes_one_run_that_one_process_reproduces(
    tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = torchrun(
        "train", "--method", method, "--epochs", "2", "--json", "--out", str(tmp_path), *TINY_RUN
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"epochs"') == 1  # rank 0 alone prints the results
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["world_size"] == 2 and results["epochs"] == 2
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    run("evaluate", str(tmp_path / "best.pt"), "--device", "cpu", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["test"]["all"] == results["test"] and out["valid"]["all"] == results["valid"]


def test_resume_needs_the_same_world_size(tmp_path: Path) -> None:
    done = torchrun("train", "--epochs", "1", "--out", str(tmp_path), *TINY_RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    with pytest.raises(SystemExit):
        run("train", "--epochs", "2", "--out", str(tmp_path), "--resume", *TINY_RUN)
    resumed = torchrun("train", "--epochs", "2", "--out", str(tmp_path), "--resume", *TINY_RUN)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "results.json").read_text())["epochs"] == 2


def test_indivisible_global_batch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")  # checked before any process group is joined
    with pytest.raises(ValueError, match=r"must divide by the number of processes \(2\)"):
        Trainer(tiny_config("train.batch_size=63"), "unused")


def test_shards_split_each_global_batch_and_know_its_size() -> None:
    cfg = tiny_config()
    data = load_data(cfg)
    samples = training_samples(data, "user", cfg.data.max_len)

    def loader(shard: tuple[int, int]) -> TrainLoader:
        g = torch.Generator().manual_seed(7)
        return TrainLoader(data, samples, 64, cfg.data.max_len, "bce", 1, g, shard=shard,
                           order_generator=torch.Generator().manual_seed(3))  # fmt: skip

    whole, halves = list(loader((0, 1))), zip(loader((0, 2)), loader((1, 2)), strict=True)
    for full, (a, b) in zip(whole, halves, strict=True):
        assert torch.equal(torch.cat([a.users, b.users]).sort().values, full.users.sort().values)
        trained = [sum(int((c.targets != 0).sum()) for c in x.chunks) for x in (full, a, b)]
        assert full.global_positions == a.global_positions == trained[0] == trained[1] + trained[2]
        assert a.global_samples == b.global_samples == len(full) == len(a) + len(b)
        # dealt by length: the two shares differ by at most one sequence's positions
        assert abs(len(a) - len(b)) <= 1 and abs(trained[1] - trained[2]) <= cfg.data.max_len


DYING_RANK = """
import os
from s4rec.config import Config
from s4rec.train import Trainer
cfg = Config().override({sets!r})
trainer = Trainer(cfg, {out!r})  # both ranks join the process group
if os.environ["RANK"] == "1":
    os._exit(3)  # dies before the first step; rank 0 then waits on it in a collective
trainer.fit()
"""


def test_a_dying_rank_stops_the_run(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    sets = [a for a in TINY_RUN[6:] if a != "--set"] + ["data.dataset=synthetic", "train.epochs=50"]
    script.write_text(DYING_RANK.format(sets=sets, out=str(tmp_path / "run")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script)]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode != 0
    assert "exitcode  : 3" in done.stderr  # torchrun names the rank that failed and how
    assert time.perf_counter() - start < 60
