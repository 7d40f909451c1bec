"""train.sparse_items: sparse item-table gradients under a lazy Adam, checkpointed and resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import popularity_ndcg, tiny_config
from s4rec.checkpoint import load_state
from s4rec.runtime import make_optimizer
from s4rec.train import Trainer

SPARSE = ("loss.next_item=sampled_ce", "loss.negatives=64", "train.sparse_items=true")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.item_emb = nn.Embedding(10, 4, padding_idx=0)
        self.out = nn.Linear(4, 1)

    def loss(self, items: list[int]) -> torch.Tensor:
        return self.out(self.item_emb(torch.tensor(items))).square().sum()


def two_steps(sparse: bool) -> tuple[torch.Tensor, torch.Tensor, Tiny]:
    """Rows 1 and 2 get a gradient in the first step only; the table after each step."""
    model = Tiny()
    opt = make_optimizer(model, list(model.parameters()), torch.device("cpu"), 0.1, 0.0, sparse)
    tables = []
    for items in ([1, 2], [3]):
        opt.zero_grad(set_to_none=True)
        model.loss(items).backward()
        assert model.item_emb.weight.grad is not None
        assert model.item_emb.weight.grad.is_sparse == sparse
        opt.step()
        tables.append(model.item_emb.weight.detach().clone())
    return tables[0], tables[1], model


def test_only_the_rows_a_step_touched_move() -> None:
    first, second, _ = two_steps(sparse=True)
    assert torch.equal(first[[0, 1, 2, 4]], second[[0, 1, 2, 4]])  # untouched in step 2
    assert not torch.equal(first[3], second[3])
    first, second, _ = two_steps(sparse=False)  # dense Adam: momentum moves rows 1 and 2 on
    assert not torch.equal(first[1], second[1]) and not torch.equal(first[2], second[2])
    assert torch.equal(first[4], second[4])  # never had a gradient: no moment to move it


def test_the_dense_parameters_step_as_with_adam() -> None:
    _, _, sparse = two_steps(sparse=True)
    _, _, dense = two_steps(sparse=False)
    assert torch.equal(sparse.out.weight, dense.out.weight)
    assert torch.equal(sparse.out.bias, dense.out.bias)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("loss.next_item=ce",), "sampled_ce, bce or bpr"),
        (("loss.next_item=bce", "train.weight_decay=0.1"), "train.weight_decay=0"),
    ],
)
def test_refused_where_it_cannot_work(sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_config("train.sparse_items=true", *sets)


class Interrupted(Exception):
    pass


def test_trains_and_resumes_exactly(tmp_path: Path) -> None:
    cfg = tiny_config(*SPARSE, "data.synthetic_users=400", "train.epochs=3")
    full = Trainer(cfg, tmp_path / "full")
    results = full.fit()
    assert results["test"]["NDCG@10"] > popularity_ndcg(full.data, "test", 10)

    part = Trainer(cfg, tmp_path / "part", full.data)
    forward, calls = part.objective.forward, {"n": 0}

    def crashing(batch):  # the second batch of epoch 2
        calls["n"] += 1
        if calls["n"] == len(part.loader) + 2:
            raise Interrupted
        return forward(batch)

    part.objective.forward = crashing  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        part.fit()
    Trainer(cfg, tmp_path / "part", full.data).fit(resume=True)
    a, b = (load_state(tmp_path / run / "last.pt") for run in ("full", "part"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert len(a["optimizer"]["parts"]) == 2
