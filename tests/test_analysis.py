"""Head-rate and NMI measurements, and representations of training sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import tiny_config
from s4rec.analysis import assign_clusters, head_rate_spread, head_rates, nmi
from s4rec.data.dataset import eval_inputs
from s4rec.encoding import encode_by_length, training_representations
from s4rec.train import Trainer


def test_nmi_by_hand() -> None:
    a = np.array([0, 0, 1, 1])
    assert nmi(a, np.array([5, 5, 2, 2])) == pytest.approx(1.0)  # same partition, renamed
    assert nmi(a, np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)  # independent
    # a = [0, 0, 1, 1], b = [0, 0, 0, 1]: H(a) = ln 2, H(b) = H(1/4), and
    # I = H(a) - H(a | b) = ln 2 - (3/4) H(1/3)
    h = lambda *p: -sum(x * math.log(x) for x in p)  # noqa: E731
    mi = math.log(2) - 0.75 * h(1 / 3, 2 / 3)
    expected = mi / ((math.log(2) + h(1 / 4, 3 / 4)) / 2)
    assert nmi(a, np.array([0, 0, 0, 1])) == pytest.approx(expected, rel=1e-12)
    assert nmi(np.array([0, 1, 0, 1]), a) == nmi(a, np.array([0, 1, 0, 1]))


def test_head_rates_by_hand() -> None:
    clusters = np.array([0, 0, 0, 2, 2, 5])
    is_head = np.array([True, False, False, True, True, False])
    rates, sizes = head_rates(clusters, is_head)
    assert rates.tolist() == pytest.approx([1 / 3, 1.0, 0.0])  # empty clusters 1, 3, 4 left out
    assert sizes.tolist() == [3, 2, 1]
    overall = 0.5
    by_hand = math.sqrt((3 * (1 / 3 - overall) ** 2 + 2 * 0.5**2 + 1 * 0.5**2) / 6)
    assert head_rate_spread(clusters, is_head) == pytest.approx(by_hand)


def test_head_rate_spread_is_zero_when_every_cluster_has_the_overall_rate() -> None:
    clusters = np.array([0, 0, 1, 1, 3, 3])
    is_head = np.array([True, False, False, True, True, False])
    assert head_rate_spread(clusters, is_head) == pytest.approx(0.0)


def test_assign_clusters_uses_cosine() -> None:
    z = torch.tensor([[10.0, 0.1], [0.1, -3.0]])
    prototypes = torch.tensor([[0.0, 1.0], [5.0, 0.0], [0.0, -0.1]])  # length must not matter
    assert assign_clusters(z, prototypes).tolist() == [1, 2]


def test_training_representations_encode_the_whole_training_sequence(tmp_path) -> None:
    cfg = tiny_config()
    trainer = Trainer(cfg, tmp_path)
    trainer.model.train()
    z = training_representations(trainer.model, trainer.data, cfg.data.max_len, "last", 7)
    assert trainer.model.training  # mode restored
    trainer.model.eval()
    users = torch.arange(trainer.data.n_users)
    with torch.no_grad():
        x = eval_inputs(trainer.data, "valid", users, cfg.data.max_len)
        expected = encode_by_length(trainer.model, x, "last")
    assert z.shape == (trainer.data.n_users, cfg.model.hidden)
    torch.testing.assert_close(z, expected, rtol=1e-5, atol=1e-6)
