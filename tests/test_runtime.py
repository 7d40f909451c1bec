"""Device and precision: resolving ``train.device``, bf16 training, losses in fp32, and a
checkpoint from one device evaluated on another.

Set ``S4REC_TEST_DEVICE=cuda`` to run the device-parametrised tests on a GPU as well.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_BATCH, run, tiny_config
from s4rec.checkpoint import load_model
from s4rec.evaluate import Ranker, evaluate
from s4rec.losses import CENextItemLoss, SequenceContrastiveLoss
from s4rec.methods import apply_method
from s4rec.pipeline import load_data
from s4rec.runtime import autocast, check_precision, prefetched, resolve_device
from s4rec.train import Trainer

DEVICES = [
    "cpu",
    *([os.environ["S4REC_TEST_DEVICE"]] if os.environ.get("S4REC_TEST_DEVICE") else []),
]


def test_auto_and_cpu_devices() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("banana", "is not a device"), ("cuda:99", "cuda"), ("xla", "not supported")],
)
def test_unusable_device_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        resolve_device("cuda")
    with pytest.raises(SystemExit) as e:
        run("train", "--dataset", "synthetic", "--device", "cuda", "--out", str(tmp_path))
    assert e.value.code == 2
    assert "no CUDA device is visible" in capsys.readouterr().err


def test_fp16_needs_cuda() -> None:
    check_precision(torch.device("cpu"), "bf16")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        check_precision(torch.device("cpu"), "fp16")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(tiny_config("train.precision=fp16", "train.device=cpu"), "unused")


def test_losses_stay_fp32_under_autocast() -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(6, 9, generator=g), torch.randint(0, 9, (6,), generator=g)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    with autocast(torch.device("cpu"), "bf16"):
        ce = CENextItemLoss()(logits.bfloat16(), target)
        scl = SequenceContrastiveLoss(0.5)(a, b)  # its matmuls would run in bf16 under autocast
    assert ce.dtype == scl.dtype == torch.float32
    assert ce == CENextItemLoss()(logits.bfloat16().float(), target)
    assert scl == SequenceContrastiveLoss(0.5)(a, b)


@pytest.mark.parametrize("method", ["sasrec", "s4rec"])
def test_bf16_trains_on_cpu(tmp_path: Path, method: str) -> None:
    cfg = apply_method(tiny_config("train.precision=bf16", "train.device=cpu"), method)
    cfg = cfg.override([TINY_BATCH, "train.epochs=1"])
    results = Trainer(cfg, tmp_path).fit()
    log = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert all(torch.isfinite(torch.tensor(v)) for v in log["loss"].values())
    assert results["precision"] == "bf16" and results["device"] == "cpu"
    assert results["world_size"] == 1


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_evaluates_on_any_device(tmp_path: Path, device: str) -> None:
    cfg = tiny_config(f"train.device={device}", "train.epochs=2")
    results = Trainer(cfg, tmp_path).fit()
    assert results["device"].startswith(device)
    data = load_data(cfg)
    _, on_cpu, _ = load_model(tmp_path / "best.pt", device="cpu")
    assert evaluate(on_cpu, data, "test", cfg)["all"] == pytest.approx(results["test"], abs=1e-6)
    _, there, _ = load_model(tmp_path / "best.pt", device=device)
    assert torch.equal(Ranker(there, data).ranks("test"), Ranker(on_cpu, data).ranks("test"))


# ---------------------------------------------------------------- batches built ahead


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_prefetched_yields_everything_in_order(ahead: int) -> None:
    assert list(prefetched(iter(range(50)), ahead)) == list(range(50))


def test_prefetched_raises_the_producers_error() -> None:
    def broken():
        yield 1
        raise ValueError("bad batch 2")

    got = []
    with pytest.raises(ValueError, match="bad batch 2"):
        for x in prefetched(broken(), 2):
            got.append(x)
    assert got == [1]


def test_prefetched_stops_its_producer_when_the_consumer_stops() -> None:
    made = []

    def endless():
        for i in itertools.count():
            made.append(i)
            yield i

    stream = prefetched(endless(), 2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()  # joins the producer: this returns only once it has stopped
    n = len(made)
    time.sleep(0.3)
    assert len(made) == n <= 3 + 2 + 1
    assert not any(t.name == "s4rec-prefetch" for t in threading.enumerate())
