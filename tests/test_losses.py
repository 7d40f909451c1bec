"""Next-item losses against hand computations, and the objective that feeds them."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from s4rec.config import Config, ModelConfig
from s4rec.data.dataset import LeaveOneOut, make_batch, training_samples
from s4rec.data.sequences import Sequences
from s4rec.encoding import encode
from s4rec.losses import BCENextItemLoss, BPRNextItemLoss, CENextItemLoss, SampledCENextItemLoss
from s4rec.model import SASRec
from s4rec.objectives import NextItemObjective


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bce_by_hand() -> None:
    pos = torch.tensor([2.0, -1.0])
    neg = torch.tensor([[0.5, -0.5], [1.0, 3.0]])
    rows = [
        -math.log(sigmoid(2.0)) - (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-0.5))) / 2,
        -math.log(sigmoid(-1.0)) - (math.log(1 - sigmoid(1.0)) + math.log(1 - sigmoid(3.0))) / 2,
    ]
    assert BCENextItemLoss()(pos, neg).item() == pytest.approx(sum(rows) / 2, rel=1e-6)


def test_bce_stable_for_large_scores() -> None:
    loss = BCENextItemLoss()(torch.tensor([-200.0]), torch.tensor([[200.0]]))
    assert loss.item() == pytest.approx(400.0)


def test_bpr_by_hand() -> None:
    pos = torch.tensor([2.0, -1.0])
    neg = torch.tensor([[0.5, -0.5], [1.0, 3.0]])
    pairs = [2.0 - 0.5, 2.0 + 0.5, -1.0 - 1.0, -1.0 - 3.0]
    expected = sum(-math.log(sigmoid(x)) for x in pairs) / 4
    assert BPRNextItemLoss()(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    assert BPRNextItemLoss()(torch.tensor([-200.0]), torch.tensor([[200.0]])).item() == (
        pytest.approx(400.0)
    )


def test_ce_by_hand() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    target = torch.tensor([1, 0])

    def nll(row: list[float], t: int) -> float:
        return -row[t] + math.log(sum(math.exp(v) for v in row))

    expected = (nll([1.0, 2.0, 0.5], 1) + nll([0.0, -1.0, 3.0], 0)) / 2
    assert CENextItemLoss()(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_sampled_ce_by_hand() -> None:
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.5, 2.0, -1.0], [1.0, 1.0, 1.0]])

    def nll(p: float, negs: list[float]) -> float:
        return -p + math.log(math.exp(p) + sum(math.exp(v) for v in negs))

    expected = (nll(1.0, [0.5, 2.0, -1.0]) + nll(0.0, [1.0, 1.0, 1.0])) / 2
    assert SampledCENextItemLoss()(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    valid = torch.tensor([[True, False, True], [True, True, False]])
    masked = (nll(1.0, [0.5, -1.0]) + nll(0.0, [1.0, 1.0])) / 2
    assert SampledCENextItemLoss()(pos, neg, valid).item() == pytest.approx(masked, rel=1e-6)
    neg2 = neg.clone()
    neg2[0, 1], neg2[1, 2] = 50.0, -7.0  # masked entries do not matter
    assert SampledCENextItemLoss()(pos, neg2, valid).item() == pytest.approx(masked, rel=1e-6)
    all_valid = torch.ones_like(valid)
    assert SampledCENextItemLoss()(pos, neg, all_valid).item() == pytest.approx(expected, rel=1e-6)


def tiny_setup(loss: str) -> tuple[NextItemObjective, LeaveOneOut]:
    torch.manual_seed(0)
    data = LeaveOneOut(Sequences.from_lists([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3], [2, 7, 1]]))
    cfg = Config().override(
        [f"loss.next_item={loss}", "model.dropout=0.0", "model.attn_dropout=0.0"]
    )
    model = SASRec(data.n_items, 5, ModelConfig(hidden=8, layers=1, heads=2, inner=16))
    return NextItemObjective(model, cfg), data


def test_objective_sampled_ce_masks_accidental_hits() -> None:
    objective, data = tiny_setup("sampled_ce")
    samples = training_samples(data, "user", 5)
    batch = make_batch(data, samples, torch.arange(len(samples)), 5)
    negatives = torch.tensor([2, 7, 5])
    batch = replace(batch, shared_negatives=negatives)
    objective.eval()
    with torch.no_grad():
        enc = encode(objective.model, batch, "last")
    emb = objective.model.item_emb.weight.detach()
    total = 0.0
    for h, t in zip(enc.hidden, enc.targets.tolist(), strict=True):
        negs = [n for n in negatives.tolist() if n != t]  # an accidental hit is left out
        logits = torch.stack([h @ emb[t], *[h @ emb[n] for n in negs]])
        total += float(-logits[0] + torch.logsumexp(logits, 0))
    assert 2 in enc.targets.tolist() or 5 in enc.targets.tolist()  # a hit really happens
    assert objective(batch).total.item() == pytest.approx(total / len(enc.targets), rel=1e-5)


def test_objective_ce_ranks_real_items_only() -> None:
    objective, data = tiny_setup("ce")
    samples = training_samples(data, "user", 5)
    batch = make_batch(data, samples, torch.arange(len(samples)), 5)
    objective.eval()
    enc = encode(objective.model, batch, "last")
    emb = objective.model.item_emb.weight[1 : data.n_items + 1]  # no padding, no mask token
    logits = enc.hidden @ emb.T
    expected = torch.nn.functional.cross_entropy(logits, enc.targets - 1)
    assert objective(batch).total.item() == pytest.approx(expected.item(), rel=1e-6)
    n_targets = int(sum(min(n - 3, 5) for n in (6, 4, 3)))
    assert len(enc.targets) == n_targets
