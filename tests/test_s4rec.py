"""S^4Rec components: Sinkhorn (Eq. 5-7), the four auxiliary losses (Eq. 4, 9-13), gradient
reversal, the joint objective (Eq. 14) and online clustering recovering planted intents."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from conftest import TINY_BATCH, tiny_config
from s4rec.analysis import assign_clusters, head_rate_spread, nmi
from s4rec.checkpoint import load_state
from s4rec.config import Config
from s4rec.data.dataset import Batch, LeaveOneOut
from s4rec.data.synthetic import make_synthetic
from s4rec.encoding import encode, encode_views, training_representations
from s4rec.kmeans import kmeans, nearest
from s4rec.losses import (
    ClusterLoss,
    DistillationLoss,
    HeadTailAdversarialLoss,
    SequenceContrastiveLoss,
    sinkhorn,
)
from s4rec.methods import apply_method
from s4rec.model import HeadTailClassifier, build_encoder, reverse_gradient
from s4rec.objectives import (
    NextItemObjective,
    S4RecObjective,
    build_objective,
    cluster_scores,
    reversal_scale,
)
from s4rec.pipeline import load_data
from s4rec.train import Trainer


def cosine_scores(b: int, k: int, d: int = 16, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(b, d, generator=g), dim=1)
    mu = F.normalize(torch.randn(k, d, generator=g), dim=1)
    return z @ mu.T


def assert_rows(q: Tensor, n_rows: int) -> None:
    assert torch.isfinite(q).all() and (q >= 0).all()
    assert (q.sum(1) * n_rows - 1).abs().max() < 1e-5


def assert_columns(q: Tensor, tol: float) -> None:
    assert (q.sum(0) * q.shape[1] - 1).abs().max() < tol


# ---------------------------------------------------------------- Sinkhorn (Eq. 5-7)


@pytest.mark.parametrize(("b", "k"), [(64, 8), (256, 128), (7, 16)])
def test_sinkhorn_marginals(b: int, k: int) -> None:
    scores = cosine_scores(b, k)
    q = sinkhorn(scores)  # SwAV defaults: eps 0.05, 3 iterations, rows normalised last
    assert q.shape == (b, k)
    assert_rows(q, b)
    q = sinkhorn(scores, iters=50)
    assert_rows(q, b)
    assert_columns(q, 1e-2)


def swav_iterate(scores: Tensor, eps: float, iters: int) -> Tensor:
    """SwAV's Sinkhorn-Knopp as written there (no shift), in float64."""
    q = torch.exp(scores.double() / eps)
    q /= q.sum()
    b, k = q.shape
    for _ in range(iters):
        q /= q.sum(0, keepdim=True) * k
        q /= q.sum(1, keepdim=True) * b
    return q


def test_sinkhorn_converges_to_the_swav_transport_plan() -> None:
    """The per-row max shift changes the early iterates, not the equipartition Q* (Eq. 7)."""
    scores = cosine_scores(64, 8, d=4)
    ours = sinkhorn(scores, eps=0.1, iters=300).double()
    assert torch.allclose(ours, swav_iterate(scores, 0.1, 300), rtol=1e-4, atol=1e-9)


def test_sinkhorn_huge_and_identical_scores_stay_finite() -> None:
    scores = cosine_scores(32, 8)
    for s in (scores * 1e4, -scores * 1e4):
        q = sinkhorn(s, iters=10)
        assert_rows(q, 32)
    same = scores[:1].expand(32, 8).contiguous()  # every sequence alike
    q = sinkhorn(same)
    assert_rows(q, 32)
    # identical rows can only be equipartitioned by spreading each row uniformly
    assert torch.allclose(q, torch.full_like(q, 1 / (32 * 8)), rtol=1e-5)
    # at 1e4 every row underflows to one-hot in fp32 (Q* would still be uniform): finite only
    assert_rows(sinkhorn(same * 1e4), 32)


def test_sinkhorn_dtype_and_no_grad() -> None:
    scores = cosine_scores(16, 4)
    for dtype in (torch.float64, torch.bfloat16, torch.float32):
        q = sinkhorn(scores.to(dtype))
        assert q.dtype == torch.float32
        assert_rows(q, 16)
    s = scores.clone().requires_grad_(True)
    q = sinkhorn(s)
    assert not q.requires_grad and q.grad_fn is None


class FakeRanks:
    """A sum all-reduce between threads that call it in lockstep, like torch.distributed."""

    def __init__(self, n: int) -> None:
        self.slots: list[Tensor | None] = [None] * n
        self.barrier = threading.Barrier(n, timeout=30)
        self.calls = [0] * n

    def hook(self, rank: int) -> Callable[[Tensor], Tensor]:
        def all_reduce(t: Tensor) -> Tensor:
            self.calls[rank] += 1
            self.slots[rank] = t.clone()
            self.barrier.wait()
            total = sum(self.slots)  # the same order on every rank
            self.barrier.wait()  # nobody overwrites a slot before everyone has read it
            return total

        return all_reduce


def run_ranks(parts: list[Tensor], **kwargs) -> tuple[list[Tensor], FakeRanks]:
    ranks = FakeRanks(len(parts))
    out: list[Tensor | None] = [None] * len(parts)
    errors: list[BaseException] = []

    def work(r: int) -> None:
        try:
            out[r] = sinkhorn(parts[r], all_reduce=ranks.hook(r), **kwargs)
        except BaseException as err:  # surfaced below
            errors.append(err)
            ranks.barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out, ranks


@pytest.mark.parametrize("split", [(32, 32), (23, 41), (10, 20, 34)])
def test_sinkhorn_all_reduce_matches_the_global_batch(split: tuple[int, ...]) -> None:
    """Ranks that sum through ``all_reduce`` reproduce the single-process plan of the whole batch."""
    scores = cosine_scores(64, 8)
    parts = list(scores.split(list(split)))
    for iters in (3, 20):
        full = sinkhorn(scores, iters=iters)
        out, ranks = run_ranks(parts, iters=iters)
        assert len(set(ranks.calls)) == 1  # every rank made the same collective calls
        assert torch.allclose(torch.cat(out), full, rtol=1e-5, atol=1e-9)
        for q in out:
            assert_rows(q, 64)  # rows of each rank sum to 1 / global B
        # without the all-reduce each rank would equipartition its own rows only
        alone = torch.cat([sinkhorn(p, iters=iters) for p in parts])
        assert not torch.allclose(alone, full, rtol=1e-3)


# ---------------------------------------------------------------- gradient reversal (Sec. 4.3)


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, 3.0])
def test_reverse_gradient(scale: float) -> None:
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = reverse_gradient(x, scale)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -scale * w)


@pytest.mark.parametrize("normalize", [False, True])
def test_head_tail_classifier_is_linear_with_reversed_input_gradient(normalize: bool) -> None:
    torch.manual_seed(0)
    clf = HeadTailClassifier(5, normalize=normalize)
    z = torch.randn(6, 5, requires_grad=True)
    logits = clf(z, scale=0.7)
    assert logits.shape == (6, 2)
    seen = lambda x: F.normalize(x, dim=1) if normalize else x  # noqa: E731
    assert torch.allclose(logits, seen(z) @ clf.linear.weight.T + clf.linear.bias)
    target = torch.tensor([0, 1, 1, 0, 0, 1])
    F.cross_entropy(logits, target).backward()
    z2 = z.detach().clone().requires_grad_(True)
    weight = clf.linear.weight.detach().clone().requires_grad_(True)
    F.cross_entropy(seen(z2) @ weight.T + clf.linear.bias.detach(), target).backward()
    assert torch.allclose(clf.linear.weight.grad, weight.grad)  # the classifier minimises
    assert torch.allclose(z.grad, -0.7 * z2.grad)  # the encoder gets the reversed gradient


# ---------------------------------------------------------------- losses by hand


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_cluster_loss_by_hand() -> None:
    scores = [[0.9, -0.2, 0.1], [0.0, 0.5, -0.7]]
    target = [[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]]
    tau = 0.5
    expected = 0.0
    for s, q in zip(scores, target, strict=True):
        p = softmax([x / tau for x in s])
        expected -= sum(qk * math.log(pk) for qk, pk in zip(q, p, strict=True))
    got = ClusterLoss(tau)(torch.tensor(scores), torch.tensor(target))
    assert got.item() == pytest.approx(expected / 2, rel=1e-6)


A = [[1.0, 0.0, 0.5], [0.2, -1.0, 0.3], [-0.4, 0.6, 1.0]]
B = [[0.8, 0.3, 0.4], [0.1, -0.7, 0.9], [-0.6, 0.2, 0.7]]
MU = [[1.0, 1.0, 0.0], [0.0, 1.0, -1.0], [0.3, -0.2, 0.9]]


def scl_by_hand(a, b, mu, assigned, tau, similarity="cosine") -> float:
    if similarity == "cosine":
        a, b, mu = [unit(v) for v in a], [unit(v) for v in b], [unit(v) for v in mu]
    total = 0.0
    for i in range(len(a)):
        pos = dot(a[i], b[i]) / tau
        neg = [dot(a[i], b[j]) / tau for j in range(len(a)) if j != i]
        neg += [dot(a[i], a[j]) / tau for j in range(len(a)) if j != i]
        neg += [dot(a[i], mu[k]) / tau for k in range(len(mu)) if k != assigned[i]]
        total += -pos + math.log(math.exp(pos) + sum(math.exp(x) for x in neg))
    return total / len(a)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_intent_contrastive_loss_by_hand(tau: float, similarity: str) -> None:
    loss = SequenceContrastiveLoss(tau, similarity)
    assigned = [2, 0, 2]
    args = (torch.tensor(MU), torch.tensor(assigned))
    one = loss.one_way(torch.tensor(A), torch.tensor(B), *args)
    by_hand = scl_by_hand(A, B, MU, assigned, tau, similarity)
    assert one.item() == pytest.approx(by_hand, rel=1e-5)
    both = loss(torch.tensor(A), torch.tensor(B), *args)
    expected = by_hand + scl_by_hand(B, A, MU, assigned, tau, similarity)
    assert both.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_intent_contrastive_loss_excludes_the_assigned_prototype(similarity: str) -> None:
    loss = SequenceContrastiveLoss(0.5, similarity)
    a, b = torch.tensor(A), torch.tensor(B)
    assigned = torch.tensor([1, 1, 1])
    base = loss(a, b, torch.tensor(MU), assigned)
    own, other = torch.tensor(MU), torch.tensor(MU)
    own[1] = torch.tensor([5.0, -3.0, 2.0])  # h(u) for every sequence: not a negative
    other[2] = torch.tensor([5.0, -3.0, 2.0])  # an intent negative
    assert loss(a, b, own, assigned).item() == pytest.approx(base.item(), rel=1e-6)
    assert abs(loss(a, b, other, assigned).item() - base.item()) > 1e-3
    # and no gradient reaches the excluded prototype
    mu = torch.tensor(MU, requires_grad=True)
    loss(a, b, mu, assigned).backward()
    assert mu.grad[1].abs().max() == 0 and mu.grad[[0, 2]].abs().max() > 0


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_contrastive_loss_without_prototypes_is_in_batch_infonce(similarity: str) -> None:
    """CL4SRec's loss: the same InfoNCE with only the in-batch views as negatives."""
    loss = SequenceContrastiveLoss(0.5, similarity)
    got = loss(torch.tensor(A), torch.tensor(B))
    expected = scl_by_hand(A, B, [], [], 0.5, similarity) + scl_by_hand(
        B, A, [], [], 0.5, similarity
    )
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_drops_same_group_negatives() -> None:
    """ICLRec's false-negative mitigation: sequences of the anchor's group are no negatives."""
    a, b = torch.tensor(A), torch.tensor(B)
    groups = torch.tensor([0, 1, 0])
    loss = SequenceContrastiveLoss(0.5, "dot")
    got = loss.one_way(a, b, groups=groups).item()
    expected = 0.0
    for i in range(3):
        pos = dot(A[i], B[i]) / 0.5
        others = [j for j in range(3) if groups[j] != groups[i]]
        neg = [dot(A[i], B[j]) / 0.5 for j in others] + [dot(A[i], A[j]) / 0.5 for j in others]
        expected += -pos + math.log(math.exp(pos) + sum(math.exp(x) for x in neg))
    assert got == pytest.approx(expected / 3, rel=1e-5)
    # one group per sequence: the plain loss
    assert loss.one_way(a, b, groups=torch.arange(3)).item() == pytest.approx(
        loss.one_way(a, b).item(), rel=1e-6
    )


def test_intent_contrastive_loss_rejects_an_unknown_similarity() -> None:
    with pytest.raises(ValueError, match="similarity"):
        SequenceContrastiveLoss(1.0, "euclid")


@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("normalize", [True, False])
def test_distillation_loss_by_hand(tau: float, normalize: bool) -> None:
    """Eq. 11-12 on unit vectors, or on the raw vectors as the paper writes them."""
    teacher, student = MU, A
    prep = unit if normalize else list
    expected = 0.0
    for t, s in zip(teacher, student, strict=True):
        pt = softmax([x / tau for x in prep(t)])
        ps = softmax([x / tau for x in prep(s)])
        expected += sum(x * math.log(x / y) for x, y in zip(pt, ps, strict=True))
    got = DistillationLoss(tau, normalize=normalize)(torch.tensor(teacher), torch.tensor(student))
    assert got.item() == pytest.approx(expected / 3, rel=1e-5)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_cluster_scores_by_hand(similarity: str) -> None:
    """Eq. 3's z . mu: raw dot products, or cosines."""
    got = cluster_scores(torch.tensor(A), torch.tensor(MU), similarity)
    prep = unit if similarity == "cosine" else list
    for i, z in enumerate(A):
        for k, mu in enumerate(MU):
            assert got[i, k].item() == pytest.approx(dot(prep(z), prep(mu)), rel=1e-5)


def test_assignment_reads_the_sinkhorn_target_or_the_model() -> None:
    """h(u) = argmax q (equipartitioned) or argmax p: with every sequence nearest to one
    prototype, the Sinkhorn target spreads them over several and "nearest" does not."""
    cfg = tiny_config("s4rec.alpha=0.01", "s4rec.prototypes=4", "s4rec.tau1=0.1")
    h = {}
    for assignment in ("sinkhorn", "nearest"):
        c = cfg.override([f"s4rec.assignment={assignment}"])
        torch.manual_seed(0)
        obj = build_objective(build_encoder(50, 20, c.model), c, torch.zeros(8, dtype=torch.bool))
        with torch.no_grad():
            obj.prototypes.weight.copy_(torch.eye(4, c.model.hidden))
        z = torch.eye(1, c.model.hidden).repeat(8, 1) + 0.01 * torch.randn(8, c.model.hidden)
        h[assignment] = obj.intents(z, {})[1]
    assert h["nearest"].tolist() == [0] * 8
    assert len(set(h["sinkhorn"].tolist())) > 1


def test_distillation_loss_zero_and_teacher_gradient() -> None:
    loss = DistillationLoss(0.5)
    t = torch.tensor(MU)
    assert loss(t, t.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert loss(t, 3 * t).item() == pytest.approx(0.0, abs=1e-7)  # compared after L2 norm
    for detach in (True, False):
        teacher = torch.tensor(MU, requires_grad=True)
        student = torch.tensor(A, requires_grad=True)
        DistillationLoss(0.5, detach_teacher=detach)(teacher, student).backward()
        assert student.grad.abs().max() > 0
        if detach:
            assert teacher.grad is None
        else:
            assert teacher.grad.abs().max() > 0


def test_head_tail_adversarial_loss_by_hand() -> None:
    logits = [[0.3, -1.2], [2.0, 0.5], [-0.1, 0.4]]
    is_head = [True, False, True]
    expected = -sum(math.log(softmax(row)[int(h)]) for row, h in zip(logits, is_head, strict=True))
    got = HeadTailAdversarialLoss()(torch.tensor(logits), torch.tensor(is_head))
    assert got.item() == pytest.approx(expected / 3, rel=1e-6)


# ---------------------------------------------------------------- the joint objective (Eq. 14)


def s4rec_config(method: str, *overrides: str) -> Config:
    """The method on tiny synthetic data, with the tiny batch (methods set the paper's 512)."""
    cfg = apply_method(tiny_config("data.synthetic_users=200"), method)
    return cfg.override([TINY_BATCH, *overrides])


@pytest.fixture(scope="module")
def data_200():
    return load_data(s4rec_config("s4rec"))


def first_batch(trainer: Trainer) -> Batch:
    return next(iter(trainer.loader))


@pytest.mark.parametrize(
    ("method", "terms", "views"),
    [
        ("s4rec", {"next_item", "cluster", "contrastive", "distill", "adversarial"}, True),
        ("s4rec-no-csd", {"next_item", "cluster", "adversarial"}, False),
        ("s4rec-no-gr", {"next_item", "cluster", "contrastive", "distill"}, True),
        ("cl4srec", {"next_item", "contrastive"}, True),
        ("iclrec", {"next_item", "contrastive", "intent"}, True),
        ("sr+csd", {"next_item", "contrastive", "distill"}, True),
        ("sr+csd+gr", {"next_item", "contrastive", "distill", "adversarial"}, True),
    ],
)
def test_methods_log_their_terms(method, terms, views, data_200, tmp_path: Path) -> None:
    cfg = s4rec_config(method)
    trainer = Trainer(cfg, tmp_path, data_200)
    assert type(trainer.objective) is S4RecObjective
    assert (trainer.loader.augment is not None) == views
    batch = first_batch(trainer)
    assert all((c.views is not None) == views for c in batch.chunks)
    out = trainer.objective(batch)
    assert set(out.terms) == terms
    s = cfg.s4rec
    weight = {"next_item": 1.0, "cluster": s.alpha, "contrastive": s.beta1, "distill": s.beta2}
    weight["adversarial"], weight["intent"] = s.lam, s.icl
    expected = float(sum(weight[name] * value for name, value in out.terms.items()))
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert set(out.weighted) == terms  # each weighted term, in the graph (term_gradients.py)
    for name, part in out.weighted.items():
        assert part.requires_grad
        assert part.item() == pytest.approx(weight[name] * out.terms[name].item(), rel=1e-5)


def test_cl4srec_is_the_instance_contrastive_loss_on_flattened_views(
    data_200, tmp_path: Path
) -> None:
    cfg = s4rec_config("cl4srec")
    trainer = Trainer(cfg, tmp_path, data_200)
    obj, batch = trainer.objective, first_batch(trainer)
    obj.eval()
    with torch.no_grad():
        out = obj(batch)
        z1, z2 = encode_views(obj.model, batch, ("flat",))["flat"]
        expected = SequenceContrastiveLoss(1.0, "dot")(z1, z2)
    assert z1.shape == (len(batch), cfg.data.max_len * cfg.model.hidden)
    assert out.terms["contrastive"] == pytest.approx(expected.item(), rel=1e-5)
    assert out.total.item() == pytest.approx(
        out.terms["next_item"].item() + 0.05 * expected.item(), rel=1e-5
    )


def test_iclrec_padding_reads_full_width_passes(data_200, tmp_path: Path) -> None:
    """model.padding=iclrec + augment.mask_token=padding, the ICLRec code's views: every
    pooled representation comes from a max_len-wide pass and counts the padding positions,
    while the next-item positions equal those of the trimmed pass."""
    sets = ["model.padding=iclrec", "augment.mask_token=padding", "s4rec.prototypes=8"]
    trainer = Trainer(s4rec_config("iclrec", *sets), tmp_path, data_200)
    trainer.train_epoch()  # the K-means step and one epoch run
    obj, batch = trainer.objective, first_batch(trainer)
    views = [v for c in batch.chunks for v in c.views]
    assert any((v == 0)[(v != 0).long().cummax(1).values.bool()].any() for v in views)  # masked
    obj.eval()
    L = obj.model.max_len
    with torch.no_grad():
        enc = encode(obj.model, batch, "mean")
        c = batch.chunks[0]
        wide = F.pad(c.items, (L - c.items.shape[1], 0))
        h = obj.model(wide)
        rows = c.rows
        torch.testing.assert_close(enc.sequence[rows], h.mean(1))
        at = c.targets != 0
        torch.testing.assert_close(enc.hidden[: int(at.sum())], h[:, -c.items.shape[1] :][at])
        flat = encode_views(obj.model, batch, ("flat",))["flat"][0]
        view = F.pad(c.views[0], (L - c.views[0].shape[1], 0))
        torch.testing.assert_close(flat[rows], obj.model(view).flatten(1))
    with pytest.raises(ValueError, match="mask_token=padding needs"):
        s4rec_config("gru4rec", "augment.mask_token=padding")


@pytest.mark.parametrize(
    ("method", "denoise", "unit"),
    [("iclrec", False, True), ("iclrec", True, False), ("sr+csd", True, False)],
)
def test_kmeans_intents_are_refreshed_each_epoch_and_used(
    method, denoise, unit, data_200, tmp_path: Path
) -> None:
    """Per-epoch K-means of all training sequences; h(u) = nearest centroid; same terms."""
    sets = [f"s4rec.icl_denoise={denoise}", f"s4rec.icl_unit_intents={unit}"]
    cfg = s4rec_config(method, "s4rec.prototypes=8", *sets)
    trainer = Trainer(cfg, tmp_path, data_200)
    obj = trainer.objective
    assert obj.centroids.abs().sum() == 0
    z = training_representations(obj.model, data_200, cfg.data.max_len, cfg.model.pooling)
    trainer.train_epoch()
    first = obj.centroids.clone()
    trainer.progress.epoch += 1  # as fit() counts
    trainer.train_epoch()  # K-means again on the trained encoder
    assert not torch.equal(first, obj.centroids) and trainer.cluster_seconds > 0
    # the centroids are K-means of what the encoder produced when the epoch started
    g = torch.Generator().manual_seed(cfg.train.seed * 100_003 + 0)
    fit = kmeans(z, 8, cfg.s4rec.kmeans_iters, 1, g)
    torch.testing.assert_close(first, fit.centroids)
    batch = first_batch(trainer)
    obj.eval()
    with torch.no_grad():
        out = obj(batch)
        zb = encode(obj.model, batch, cfg.model.pooling).sequence
        h = nearest(zb, obj.centroids)[0]
        views = encode_views(obj.model, batch, ("flat", cfg.model.pooling))
        z1, z2 = views[cfg.model.pooling]
        c, g = obj.centroids[h], (h if denoise else None)
        u = F.normalize(c, dim=1) if unit else c
        loss = SequenceContrastiveLoss(cfg.s4rec.tau2, cfg.s4rec.similarity)
        if method == "iclrec":
            expected = {
                "contrastive": loss(*views["flat"]),
                "intent": (loss(z1, u, None, None, g) + loss(z2, u, None, None, g)) / 2,
            }
        else:
            dist = DistillationLoss(cfg.s4rec.tau3, normalize=cfg.s4rec.distill_normalize)
            expected = {
                "contrastive": loss(z1, z2, obj.centroids, h),
                "distill": dist(c, z1) + dist(c, z2),
            }
    for name, value in expected.items():
        assert out.terms[name] == pytest.approx(value.item(), rel=1e-4), name


def test_flat_views_cannot_meet_prototypes() -> None:
    with pytest.raises(ValueError, match="intent_negatives=false"):
        s4rec_config("s4rec", "s4rec.contrast_on=flat")
    with pytest.raises(ValueError, match="alpha=0"):
        s4rec_config("s4rec", "s4rec.clustering=kmeans")


def test_sasrec_builds_the_next_item_objective(data_200, tmp_path: Path) -> None:
    trainer = Trainer(s4rec_config("sasrec"), tmp_path, data_200)
    assert type(trainer.objective) is NextItemObjective and trainer.loader.augment is None
    assert set(trainer.objective(first_batch(trainer)).terms) == {"next_item"}


def test_objective_terms_are_the_loss_objects_on_its_pieces(data_200, tmp_path: Path) -> None:
    """Recompute every term from the encoder, the prototypes and h(u) = argmax of Q."""
    cfg = s4rec_config("s4rec", "s4rec.tau1=0.2", "s4rec.tau2=0.5", "s4rec.tau3=0.7")
    trainer = Trainer(cfg, tmp_path, data_200)
    obj = trainer.objective
    batch = first_batch(trainer)
    obj.eval()  # no dropout, so two passes agree
    with torch.no_grad():
        out = obj(batch)
        z = encode(obj.model, batch, cfg.model.pooling).sequence
        mu = obj.prototypes.weight
        scores = F.normalize(z, dim=1) @ F.normalize(mu, dim=1).T
        q = sinkhorn(scores, cfg.s4rec.sinkhorn_eps, cfg.s4rec.sinkhorn_iters)
        h = q.argmax(1)
        z1, z2 = encode_views(obj.model, batch, (cfg.model.pooling,))[cfg.model.pooling]
        is_head = torch.from_numpy(data_200.is_head)[batch.users]
        distill = DistillationLoss(0.7, normalize=cfg.s4rec.distill_normalize)
        expected = {
            "cluster": ClusterLoss(0.2)(scores, q * len(q)),
            "contrastive": SequenceContrastiveLoss(0.5, cfg.s4rec.similarity)(z1, z2, mu, h),
            "distill": distill(mu[h], z1) + distill(mu[h], z2),
            "adversarial": HeadTailAdversarialLoss()(
                obj.classifier.linear(F.normalize(z, dim=1)), is_head
            ),
        }
    for name, value in expected.items():
        assert out.terms[name] == pytest.approx(value.item(), rel=1e-4), name
    assert int(obj.steps) == 0  # evaluation passes are not optimiser steps


def test_prototypes_frozen_for_the_first_steps(data_200, tmp_path: Path) -> None:
    cfg = s4rec_config("s4rec", "s4rec.freeze_prototypes_steps=2", "train.batch_size=32")
    trainer = Trainer(cfg, tmp_path, data_200)
    obj, opt = trainer.objective, trainer.optimizer
    obj.train()
    before = obj.prototypes.weight.detach().clone()
    encoder = obj.model.item_emb.weight.detach().clone()
    history = []
    for step, batch in enumerate(trainer.loader):
        out = obj(batch)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()
        assert int(obj.steps) == step + 1
        history.append(obj.prototypes.weight.detach().clone())
        if step == 3:
            break
    assert torch.equal(history[0], before) and torch.equal(history[1], before)
    assert not torch.equal(history[2], before) and not torch.equal(history[3], history[2])
    assert not torch.equal(obj.model.item_emb.weight, encoder)  # the encoder trained meanwhile


def test_gradient_reversal_warms_up_linearly() -> None:
    s = Config().override(["s4rec.grl_warmup_steps=4", "s4rec.grl_scale=2.0"]).s4rec
    assert [reversal_scale(s, step) for step in range(6)] == pytest.approx([0.5, 1, 1.5, 2, 2, 2])
    assert reversal_scale(Config().s4rec, 0) == 1.0


class Interrupted(Exception):
    pass


def test_steps_survive_a_resume(data_200, tmp_path: Path, monkeypatch) -> None:
    """Killed after epoch 1: the step count (and so the freeze schedule) comes back exactly."""
    cfg = s4rec_config("s4rec", "train.epochs=2", "s4rec.freeze_prototypes_steps=5")
    full = Trainer(cfg, tmp_path / "full", data_200)
    full.fit()
    n = len(full.loader)
    assert n < 5 < 2 * n  # the prototypes start moving in epoch 2
    assert int(full.objective.steps) == 2 * n
    save_last = Trainer._save_last

    def crash_after_epoch_one(self: Trainer) -> None:
        save_last(self)
        raise Interrupted

    monkeypatch.setattr(Trainer, "_save_last", crash_after_epoch_one)
    with pytest.raises(Interrupted):
        Trainer(cfg, tmp_path / "cut", data_200).fit()
    monkeypatch.undo()
    state = load_state(tmp_path / "cut" / "last.pt")["model"]
    assert int(state["steps"]) == n and "is_head" not in state
    resumed = Trainer(cfg, tmp_path / "cut", data_200)
    resumed.fit(resume=True)
    assert int(resumed.objective.steps) == 2 * n
    a = load_state(tmp_path / "full" / "last.pt")["model"]
    b = load_state(tmp_path / "cut" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- planted intents


INTENT_USERS = 1000


def assignments(trainer: Trainer, prototypes: Tensor) -> np.ndarray:
    """h(u) of every user's training sequence."""
    cfg = trainer.cfg
    z = training_representations(trainer.model, trainer.data, cfg.data.max_len, cfg.model.pooling)
    return assign_clusters(z, prototypes)


@pytest.mark.slow
def test_online_clustering_recovers_planted_intents(tmp_path: Path) -> None:
    """Prototypes learnt by S^4Rec without GR (Table 3's "w/o GR") align with planted intents.

    Eq. 14 at the paper's weights with lambda = 0 (method s4rec-no-gr), K = 8 = the number of
    planted intents, 15 epochs on 1000 users. The head/tail term is left out: it trades some
    intent purity for even head rates (next test). At seed 0: NMI 0.37 after training, 0.04
    at initialisation, 0.02 with shuffled intents, 0.29 for random prototypes on the trained
    encoder; benchmarks/intent_probe.py --coupling 0 gives the spread over five seeds.
    """
    cfg = apply_method(
        tiny_config(f"data.synthetic_users={INTENT_USERS}", "s4rec.prototypes=8", "train.seed=0"),
        "s4rec-no-gr",
    ).override([TINY_BATCH])
    intents = make_synthetic(n_users=INTENT_USERS, seed=0).intents  # what load_data generated
    trainer = Trainer(cfg, tmp_path, load_data(cfg))
    assert trainer.data.n_users == INTENT_USERS
    h0 = assignments(trainer, trainer.objective.prototypes.weight.detach())
    for _ in range(15):
        trainer.train_epoch()
    h = assignments(trainer, trainer.objective.prototypes.weight.detach())
    y = intents
    learned, at_init = nmi(h, y), nmi(h0, y)
    rng = np.random.default_rng(0)
    chance = max(nmi(h, rng.permutation(y)) for _ in range(20))
    g = torch.Generator().manual_seed(0)
    dim = cfg.model.hidden
    random_protos = np.mean(
        [nmi(assignments(trainer, torch.randn(8, dim, generator=g)), y) for _ in range(10)]
    )
    print(
        f"NMI learned {learned:.3f} init {at_init:.3f} chance {chance:.3f} random {random_protos:.3f}"
    )
    assert chance < 0.05
    assert learned > 0.25 and learned > 5 * chance and learned > 3 * at_init
    assert learned > random_protos + 0.03  # the prototypes, not just the encoder, learnt


@pytest.mark.slow
def test_adversarial_term_evens_out_the_head_rate_across_clusters(tmp_path: Path) -> None:
    """Fig. 3's claim on data where head users gather in some intents (length_coupling 0.5).

    The same 15 epochs as above, with and without lambda L_Adv, at seeds 0-2: the mean
    size-weighted spread of the clusters' head rates must shrink. The size of the effect
    varies from seed to seed (benchmarks/intent_probe.py, seeds 0-4: 0.10-0.16 without the
    term, 0.05-0.11 with it, lower at every seed), so one seed is not enough to show it.
    """
    synth = make_synthetic(n_users=INTENT_USERS, seed=0, length_coupling=0.5)
    data = LeaveOneOut(synth.sequences)
    spread: dict[float, list[float]] = {0.0: [], 1.0: []}
    for seed in (0, 1, 2):
        for lam in spread:
            cfg = apply_method(tiny_config("s4rec.prototypes=8", f"train.seed={seed}"), "s4rec")
            cfg = cfg.override([TINY_BATCH, f"s4rec.lam={lam}"])
            trainer = Trainer(cfg, tmp_path / f"{seed}-{lam}", data)
            for _ in range(15):
                trainer.train_epoch()
            clusters = assignments(trainer, trainer.objective.prototypes.weight.detach())
            spread[lam].append(head_rate_spread(clusters, data.is_head))
    print(f"head-rate spreads without GR {spread[0.0]}, with GR {spread[1.0]}")
    assert np.mean(spread[1.0]) < 0.7 * np.mean(spread[0.0])
