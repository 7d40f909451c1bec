"""Encoders: SASRec causality, the every-prefix property, padding invariance, pooling; GRU4Rec,
BPR-MF, BERT4Rec and Caser."""

from __future__ import annotations

import pytest
import torch

from s4rec.config import ModelConfig
from s4rec.model import BERT4Rec, Caser, GRU4Rec, SASRec, attention_mask, build_encoder, pool

N_ITEMS, MAX_LEN = 30, 20


def make_model(positions: str = "end", layers: int = 2, seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    cfg = ModelConfig(hidden=16, layers=layers, heads=2, inner=32, positions=positions)
    return SASRec(N_ITEMS, MAX_LEN, cfg).eval()


def padded(seq: list[int], width: int) -> torch.Tensor:
    return torch.tensor([[0] * (width - len(seq)) + seq])


SEQ = [5, 3, 17, 8, 22, 1, 30, 12]


@pytest.mark.parametrize("positions", ["end", "start"])
def test_causal(positions: str) -> None:
    model = make_model(positions)
    items = padded(SEQ, 10)
    changed = items.clone()
    changed[0, 6] = 9  # the 5th real item (padding occupies columns 0 and 1)
    with torch.no_grad():
        a, b = model(items), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=1e-6)
    assert (a[:, 6:] - b[:, 6:]).abs().amax(-1).min() > 1e-4  # later positions do change


def test_start_positions_prefix_equals_position_of_full_sequence() -> None:
    model = make_model("start")
    with torch.no_grad():
        full = model(padded(SEQ, 12))[0, 4:]  # real items start at column 4
        for t in range(1, len(SEQ) + 1):
            for width in {t, t + 3, MAX_LEN}:
                prefix = model(padded(SEQ[:t], width))[0, -1]
                torch.testing.assert_close(prefix, full[t - 1], rtol=0, atol=1e-5)


def test_start_positions_prefix_in_a_mixed_batch() -> None:
    model = make_model("start")
    batch = torch.cat([padded(SEQ, 9), padded(SEQ[:3], 9), padded(SEQ[:6], 9)])
    with torch.no_grad():
        h = model(batch)
    torch.testing.assert_close(h[1, -1], h[0, 3], rtol=0, atol=1e-5)
    torch.testing.assert_close(h[2, -1], h[0, 6], rtol=0, atol=1e-5)


def test_end_positions_do_not_have_the_prefix_property() -> None:
    model = make_model("end")
    with torch.no_grad():
        full = model(padded(SEQ, 8))[0, 3]
        prefix = model(padded(SEQ[:4], 8))[0, -1]
    assert (full - prefix).abs().max() > 1e-3


@pytest.mark.parametrize("positions", ["end", "start"])
def test_padding_width_invariance(positions: str) -> None:
    model = make_model(positions)
    with torch.no_grad():
        outs = [model(padded(SEQ[:6], w))[0, -1] for w in (6, 10, MAX_LEN)]
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(outs[0], outs[2], rtol=0, atol=1e-5)


@pytest.mark.parametrize("positions", ["end", "start"])
def test_batch_rows_are_independent(positions: str) -> None:
    model = make_model(positions)
    batch = torch.cat(
        [padded(SEQ, 10), padded([4, 4, 7], 10), torch.zeros(1, 10, dtype=torch.long)]
    )
    with torch.no_grad():
        together = model(batch)
        alone = model(batch[:1])
    torch.testing.assert_close(together[0], alone[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("positions", ["end", "start"])
def test_last_only_equals_the_last_position(positions: str, layers: int) -> None:
    model = make_model(positions, layers)
    batch = torch.cat(
        [padded(SEQ, 10), padded([4, 4, 7], 10), torch.zeros(1, 10, dtype=torch.long)]
    )
    with torch.no_grad():
        full, last = model(batch), model(batch, last_only=True)
    assert last.shape == (3, 1, 16)
    torch.testing.assert_close(last[:, 0], full[:, -1], rtol=0, atol=1e-5)
    # gradients reach the same parameters (every item embedding on the path, all blocks)
    model.train()
    model(batch, last_only=True).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fully_padded_rows_give_no_nan() -> None:
    model = make_model()
    batch = torch.cat([torch.zeros(2, 7, dtype=torch.long), padded(SEQ[:5], 7)])
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()
    model.train()
    h = model(batch)
    assert torch.isfinite(h).all()
    h.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_width_above_max_len_raises() -> None:
    with pytest.raises(ValueError, match="exceeds max_len"):
        make_model()(torch.ones(1, MAX_LEN + 1, dtype=torch.long))


def test_heads_must_divide_hidden() -> None:
    with pytest.raises(ValueError, match="divisible"):
        SASRec(N_ITEMS, MAX_LEN, ModelConfig(hidden=10, heads=3))


def test_position_ids() -> None:
    items = torch.tensor([[0, 0, 4, 5], [1, 2, 3, 4]])
    assert make_model("end").position_ids(items).tolist() == [[16, 17, 18, 19]] * 2
    assert make_model("start").position_ids(items).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]


def test_score_all_and_selected_items() -> None:
    model = make_model()
    h = torch.randn(3, 16)
    all_scores = model.score(h)
    assert all_scores.shape == (3, N_ITEMS + 2)
    one = model.score(h, torch.tensor([4, 0, 9]))
    torch.testing.assert_close(one, all_scores[[0, 1, 2], [4, 0, 9]])
    many = model.score(h, torch.tensor([[1, 2], [3, 4], [5, 6]]))
    torch.testing.assert_close(many, all_scores.gather(1, torch.tensor([[1, 2], [3, 4], [5, 6]])))
    assert model.mask_id == N_ITEMS + 1


def test_pool() -> None:
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]], [[7.0, 7.0], [7.0, 7.0], [2.0, 0.0]]]
    )
    items = torch.tensor([[0, 4, 5], [0, 0, 0]])
    assert pool(hidden, items, "last").tolist() == [[5.0, 9.0], [2.0, 0.0]]
    assert pool(hidden, items, "mean").tolist() == [[4.0, 6.5], [0.0, 0.0]]
    # flat: padding positions zeroed, left-padded to the width, rows concatenated
    assert pool(hidden, items, "flat", width=4).tolist() == [
        [0.0, 0.0, 0.0, 0.0, 3.0, 4.0, 5.0, 9.0],
        [0.0] * 8,
    ]
    assert pool(hidden, items, "flat").shape == (2, 6)
    with pytest.raises(ValueError, match="flat pooling to width 2: the batch has 3"):
        pool(hidden, items, "flat", width=2)  # cut the oldest position before
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, items, "max")


def test_pool_counting_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]])
    items = torch.tensor([[0, 4, 5]])
    assert pool(hidden, items, "mean", padding=True).tolist() == [[3.0, 5.0]]
    assert pool(hidden, items, "flat", padding=True).tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0, 9.0]]
    assert pool(hidden, items, "last", padding=True).tolist() == [[5.0, 9.0]]


def test_iclrec_padding_attends_to_every_position() -> None:
    """model.padding=iclrec changes the padding rows only: each now attends to the whole
    row, future items included, as under the ICLRec code's additive mask."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=16, layers=2, heads=2, inner=32, padding="iclrec")
    quirk = SASRec(N_ITEMS, MAX_LEN, cfg).eval()
    plain = make_model(layers=2)
    plain.load_state_dict(quirk.state_dict())
    items = padded(SEQ, 12)  # columns 0-3 are padding
    changed = items.clone()
    changed[0, -1] = 9  # the last item
    with torch.no_grad():
        a, b, ref = quirk(items), quirk(changed), plain(items)
    torch.testing.assert_close(a[:, 4:], ref[:, 4:], rtol=0, atol=1e-6)  # items: unchanged
    assert (a[0, :4] - ref[0, :4]).abs().amax(-1).min() > 1e-4
    assert (a[0, :4] - b[0, :4]).abs().amax(-1).min() > 1e-6  # padding sees the last item
    assert quirk.reads_padding and not plain.reads_padding
    with pytest.raises(ValueError, match="padding=iclrec needs"):
        ModelConfig(encoder="gru4rec", padding="iclrec")


def test_iclrec_mask_matches_the_additive_mask() -> None:
    """With iclrec, softmax over the allowed keys equals softmax under the ICLRec code's
    additive mask, (1 - key is an item * j <= i) * -10000, for rows of leading padding,
    of id-0 (masked) positions before and after the first item, and of items."""
    torch.manual_seed(0)
    items = torch.tensor(
        [[0, 0, 4, 0, 7, 0, 0, 9], [0, 0, 0, 2, 3, 5, 6, 1], [0, 6, 0, 0, 0, 0, 0, 0]]
    )
    B, W = items.shape
    scores = torch.randn(B, W, W, dtype=torch.float64)  # exact enough beside -10000
    keys = (items > 0).double()[:, None, :] * torch.ones(W, W, dtype=torch.float64).tril()
    reference = (scores + (1 - keys) * -10000.0).softmax(-1)
    ours = scores.masked_fill(~attention_mask(items > 0, causal=True, iclrec=True), float("-inf"))
    torch.testing.assert_close(ours.softmax(-1), reference)
    # padding ignored: a position that sees no item sees only itself
    plain = attention_mask(items > 0, causal=True)
    assert plain[0, 1].tolist() == [False, True] + [False] * 6
    assert plain[0, 3].tolist() == [False, False, True, True] + [False] * 4


def test_iclrec_masked_position_after_an_item_sees_only_the_past() -> None:
    """A masked (id 0) position after the first item attends causally, so a later item
    cannot change it; a leading padding position sees the whole row."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=16, layers=2, heads=2, inner=32, padding="iclrec")
    model = SASRec(N_ITEMS, MAX_LEN, cfg).eval()
    items = padded([5, 0, 17, 0, 22, 1], 10)  # columns 0-3 padding, 5 and 7 masked
    changed = items.clone()
    changed[0, -1] = 9
    with torch.no_grad():
        a, b = model(items), model(changed)
    torch.testing.assert_close(a[0, 4:9], b[0, 4:9], rtol=0, atol=0)
    assert (a[0, :4] - b[0, :4]).abs().amax(-1).min() > 1e-6


# ---------------------------------------------------------------- GRU4Rec


def make_gru(layers: int = 1, seed: int = 0) -> GRU4Rec:
    torch.manual_seed(seed)
    cfg = ModelConfig(encoder="gru4rec", hidden=16, layers=layers, dropout=0.0)
    return GRU4Rec(N_ITEMS, MAX_LEN, cfg).eval()


@pytest.mark.parametrize("layers", [1, 2])
def test_gru4rec_prefix_property_and_padding_invariance(layers: int) -> None:
    """Position t sees items 1..t only, whatever the padding in front."""
    model = make_gru(layers)
    with torch.no_grad():
        full = model(padded(SEQ, 12))  # (1, 12, d), SEQ at columns 4..11
        for t in range(1, len(SEQ) + 1):
            prefix = model(padded(SEQ[:t], t + 3))[0, -1]
            torch.testing.assert_close(prefix, full[0, 3 + t], rtol=0, atol=1e-5)
        changed = padded(SEQ, 12)
        changed[0, 8] = 9  # the 5th item
        after = model(changed)
    torch.testing.assert_close(full[0, :8], after[0, :8], rtol=0, atol=1e-6)
    assert (full[0, 8:] - after[0, 8:]).abs().amax(-1).min() > 1e-5


def test_gru4rec_batch_rows_last_only_and_empty_rows() -> None:
    model = make_gru()
    batch = torch.cat(
        [padded(SEQ, 10), padded([4, 4, 7], 10), torch.zeros(1, 10, dtype=torch.long)]
    )
    with torch.no_grad():
        together = model(batch)
        alone = model(batch[1:2])
        last = model(batch, last_only=True)
    torch.testing.assert_close(together[1], alone[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(last[:, 0], together[:, -1])
    assert torch.isfinite(together).all()
    with pytest.raises(ValueError, match="exceeds max_len"):
        model(torch.ones(1, MAX_LEN + 1, dtype=torch.long))


def test_build_encoder_by_name() -> None:
    assert (
        type(build_encoder(N_ITEMS, MAX_LEN, ModelConfig(encoder="gru4rec", hidden=8))) is GRU4Rec
    )
    assert type(build_encoder(N_ITEMS, MAX_LEN, ModelConfig(hidden=8, heads=2))) is SASRec


def test_matrix_factorization_scores_known_users_only() -> None:
    cfg = ModelConfig(encoder="mf", hidden=8)
    model = build_encoder(N_ITEMS, MAX_LEN, cfg, n_users=5).eval()
    items = torch.cat([padded(SEQ, 10), padded([4, 4, 7], 10)])
    h = model(items, users=torch.tensor([3, 1]))
    assert h.shape == (2, 10, 8)
    torch.testing.assert_close(h[0, 0], h[0, -1])  # the same state at every position
    torch.testing.assert_close(h[1, -1], model.user_emb.weight[1])
    assert model(items, last_only=True, users=torch.tensor([3, 1])).shape == (2, 1, 8)
    with pytest.raises(ValueError, match="known users only"):
        model(items)


def make_bert(seed: int = 0) -> BERT4Rec:
    torch.manual_seed(seed)
    cfg = ModelConfig(encoder="bert4rec", hidden=16, layers=2, heads=2, inner=32)
    return build_encoder(N_ITEMS, MAX_LEN, cfg).eval()


def test_bert4rec_is_bidirectional_and_predicts_at_an_appended_mask() -> None:
    model = make_bert()
    items = padded(SEQ, 10)
    later = items.clone()
    later[0, -1] = 2  # change the newest item
    both = model.bidirectional(torch.cat([items, later]))
    assert not torch.allclose(both[0, 3], both[1, 3])  # an early position sees a later item
    mask = torch.full((1, 1), model.mask_id)
    expected = model.bidirectional(torch.cat([items, mask], 1))[:, -1]
    out = model(items)
    assert out.shape == (1, 10, 16)
    torch.testing.assert_close(out[:, -1], expected)
    torch.testing.assert_close(model(items, last_only=True)[:, -1], expected)
    torch.testing.assert_close(model(padded(SEQ, 14))[:, -1], expected, rtol=0, atol=1e-5)
    full = torch.arange(1, MAX_LEN + 1)[None]  # at max_len the oldest item makes room
    torch.testing.assert_close(
        model(full)[:, -1], model.bidirectional(torch.cat([full[:, 1:], mask], 1))[:, -1]
    )


def make_caser(seed: int = 0) -> Caser:
    torch.manual_seed(seed)
    cfg = ModelConfig(encoder="caser", hidden=4, window=3, vertical_filters=2, horizontal_filters=3)
    return build_encoder(N_ITEMS, MAX_LEN, cfg, n_users=4).eval()


def caser_by_hand(model: Caser, window: list[int], user: int) -> torch.Tensor:
    """Caser's hidden state for one window of L item ids, one filter and one number at a time."""
    e = model.input_emb.weight[torch.tensor(window)]  # (L, d)
    L, d = e.shape
    features = []
    for n in range(model.vertical.out_channels):  # vertical: a weighted sum of the L rows
        w = model.vertical.weight[n, 0, :, 0]
        features += [
            sum(w[i] * e[i, j] for i in range(L)) + model.vertical.bias[n] for j in range(d)
        ]
    for conv in model.horizontal:  # horizontal: h x d filters slid over time, max-pooled
        h = conv.weight.shape[2]
        for n in range(conv.out_channels):
            acts = [
                ((conv.weight[n, 0] * e[t : t + h]).sum() + conv.bias[n]).relu()
                for t in range(L - h + 1)
            ]
            features.append(max(acts))
    z = (model.fc.weight @ torch.stack(features) + model.fc.bias).relu()
    return torch.cat([z, model.user_emb.weight[user]])


@torch.no_grad()
def test_caser_equals_a_hand_computation_and_sees_only_its_window() -> None:
    model = make_caser()
    items = padded(SEQ, 10)
    users = torch.tensor([2])
    h = model(items, users=users)
    assert h.shape == (1, 10, 8)
    torch.testing.assert_close(h[0, -1], caser_by_hand(model, SEQ[-3:], 2))
    torch.testing.assert_close(h[0, 2], caser_by_hand(model, [0, 0, SEQ[0]], 2))  # first item
    torch.testing.assert_close(model(items, last_only=True, users=users)[:, 0], h[:, -1])
    older = items.clone()
    older[0, -4] = 2  # one item before the newest window
    torch.testing.assert_close(model(older, users=users)[0, -1], h[0, -1])
    with pytest.raises(ValueError, match="known users only"):
        model(items)
