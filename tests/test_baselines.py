"""BERT4Rec's masked-item task and Caser/BERT4Rec end to end (the encoders: test_model.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from s4rec.data.dataset import left_padded
from s4rec.methods import apply_method
from s4rec.objectives import MaskedItemObjective, mask_items
from s4rec.pipeline import load_data
from s4rec.train import Trainer

MASK = 99


def test_mask_items_masks_items_only_and_at_least_one_per_row() -> None:
    torch.manual_seed(0)
    items = torch.tensor([[0, 0, 0, 4], [0, 2, 3, 4], [5, 6, 7, 8]]).repeat(500, 1)
    masked, at = mask_items(items, 0.3, MASK)
    assert not at[items == 0].any() and at.any(1).all()
    assert (masked[at] == MASK).all() and torch.equal(masked[~at], items[~at])
    # rows without a drawn mask get their last item masked, so the rate of the full rows
    # is 0.3 plus 0.7^4 / 4 from that rule
    rate = at[2::3].float().mean().item()
    assert rate == pytest.approx(0.3 + 0.7**4 / 4, abs=0.02)
    assert mask_items(items, 1.0, MASK)[1].equal(items != 0)


def test_masked_item_loss_by_hand(tmp_path: Path) -> None:
    """Cross-entropy over all items at the masked positions of each user's whole training
    sequence, recomputed from the data with the same random masks."""
    cfg = apply_method(tiny_config("data.synthetic_users=200"), "bert4rec")
    trainer = Trainer(cfg, tmp_path)
    obj, data = trainer.objective, trainer.data
    assert type(obj) is MaskedItemObjective
    batch = next(iter(trainer.loader))
    obj.eval()
    model, L = obj.model, cfg.data.max_len
    with torch.no_grad():
        torch.manual_seed(7)
        out = obj(batch)
        torch.manual_seed(7)
        losses = []
        for chunk in batch.chunks:
            end = data.train_end[chunk.users]
            start = torch.maximum(data.starts[chunk.users], end - L)
            width = min(chunk.items.shape[1] + 1, L)
            whole = left_padded(data.flat, start, end, width)
            masked, at = mask_items(whole, cfg.loss.mask_prob, model.mask_id)
            h = model.bidirectional(masked)[at]
            logits = h @ model.item_emb.weight[1 : data.n_items + 1].T
            losses.append(-logits.log_softmax(1).gather(1, whole[at][:, None] - 1).squeeze(1))
        expected = torch.cat(losses).mean()
    assert set(out.terms) == {"masked_item"}
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_bert4rec_needs_a_softmax_loss_and_no_s4rec_terms(tmp_path: Path) -> None:
    cfg = apply_method(tiny_config(), "bert4rec")
    data = load_data(cfg)
    with pytest.raises(ValueError, match="use 'ce' or 'sampled_ce'"):
        Trainer(cfg.override(["loss.next_item=bce"]), tmp_path, data)
    with pytest.raises(ValueError, match="not defined for bert4rec"):
        Trainer(cfg.override(["s4rec.beta1=0.1"]), tmp_path, data)
    with pytest.raises(ValueError, match="mask_prob"):
        cfg.override(["loss.mask_prob=0"])


@pytest.mark.slow
@pytest.mark.parametrize(("method", "epochs"), [("caser", 15), ("bert4rec", 8)])
def test_baseline_learns(method: str, epochs: int, tmp_path: Path) -> None:
    """Trained, the model ranks far better than untrained. Popularity is no bar at this
    size: BERT4Rec's test NDCG@10 is 0.048-0.060 over seeds 1, 2 and 42, popularity 0.055."""
    overrides = ("data.synthetic_users=800", f"train.epochs={epochs}", "train.batch_size=128")
    cfg = apply_method(tiny_config(*overrides), method)
    trainer = Trainer(cfg, tmp_path)
    untrained = trainer.evaluate("test")["all"]["NDCG@10"]
    results = trainer.fit()
    assert results["test"]["NDCG@10"] > 3 * untrained
