"""A trained model as an ONNX graph that runs without PyTorch (``pip install -e ".[export]"``).

The graph takes left-padded histories (B, H) of internal item ids (0 = padding; the model
reads the last ``max_len``) and returns the top-k scores and item ids per history, with
padding, the mask token and (under the run's protocol) the history itself excluded, as
``Recommender`` ranks. Every export ends with a parity check against the eager model. The file carries what serving needs besides the graph (``s4rec.*`` metadata:
the raw item ids, training counts, k and the protocol), for ``Recommender.from_onnx``.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .files import atomic_file
from .inference import Recommender, special_items, top_k_after

PARITY_TOLERANCE = 1e-4


class TopK(nn.Module):
    """history (B, H) -> scores (B, k), items (B, k): ``top_k_after``, as a module to trace."""

    blocked: Tensor

    def __init__(self, rec: Recommender, k: int, exclude_seen: bool) -> None:
        super().__init__()
        if rec.model is None:
            raise ValueError("a recommender read from ONNX has no model to export")
        self.model, self.k, self.exclude_seen = rec.model, k, exclude_seen
        self.register_buffer("blocked", special_items(len(rec.item_ids)))

    def forward(self, history: Tensor) -> tuple[Tensor, Tensor]:
        return top_k_after(self.model, history, self.k, self.exclude_seen, self.blocked)


def sample_histories(n_items: int, max_len: int, seed: int = 0) -> list[Tensor]:
    """Left-padded batches of random histories, shorter and longer than ``max_len``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for batch, width in ((1, 1), (4, max_len // 2 + 1), (7, max_len), (3, max_len + 9)):
        h = torch.randint(1, n_items + 1, (batch, width), generator=g)
        h[0, : width // 2] = 0  # one row shorter than the batch
        batches.append(h)
    return batches


def export_onnx(checkpoint: str | Path, out: str | Path, k: int = 100) -> dict[str, float]:
    """Write ``checkpoint``'s model as ONNX to ``out`` (atomically) and check it against the
    eager model; returns the parity measured. A model the exporter cannot express, or one
    whose graph disagrees, is a ValueError and leaves no file."""
    import onnx  # the export extra
    import onnxruntime as ort

    rec = Recommender.load(checkpoint)
    n_items = len(rec.item_ids)
    graph = TopK(rec, min(k, n_items), rec.cfg.eval.exclude_history).eval()
    max_len = graph.model.max_len
    example = sample_histories(n_items, max_len)[1]
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
            torch.onnx.export(  # the TorchScript exporter (dynamo=False) writes to a file object
                graph, (example,), buffer,  # type: ignore[arg-type]
                input_names=["history"], output_names=["scores", "items"],
                dynamic_axes={"history": {0: "batch", 1: "length"}}, dynamo=False,
            )  # fmt: skip
        session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    except Exception as err:  # the exporter's or runtime's message says what it cannot express
        raise ValueError(
            f"{checkpoint}: a {rec.cfg.model.encoder} model cannot be exported to ONNX"
            f" ({type(err).__name__}: {str(err).strip().splitlines()[0][:200]})"
        ) from None
    worst = 0.0
    for history in sample_histories(n_items, max_len, seed=1):
        scores, items = session.run(None, {"history": history.numpy()})
        with torch.no_grad():
            want_scores, want_items = (t.numpy() for t in graph(history))
        if scores.shape != want_scores.shape:  # e.g. a batch size frozen into the graph
            raise ValueError(
                f"{checkpoint}: the ONNX graph of a {rec.cfg.model.encoder} model returns shape"
                f" {scores.shape} where the model returns {want_scores.shape}; not written"
            )
        finite = np.isfinite(want_scores)
        same = np.array_equal(items[finite], want_items[finite])
        gap = float(np.abs(scores[finite] - want_scores[finite]).max(initial=0.0))
        worst = max(worst, gap)
        if not same or gap > PARITY_TOLERANCE:
            raise ValueError(
                f"{checkpoint}: the ONNX graph disagrees with the model (same top-k: {same},"
                f" largest score difference {gap:.2e}); not written"
            )
    proto = onnx.load_from_string(buffer.getvalue())
    cfg = rec.cfg
    about = {"method": cfg.method, "dataset": cfg.data.dataset, "items": n_items,
             "max_len": max_len, "final": cfg.train.final, "k": graph.k,
             "exclude_seen": graph.exclude_seen}  # fmt: skip
    counts = [] if rec.item_counts is None else rec.item_counts.tolist()
    onnx.helper.set_model_props(proto, {"s4rec.about": json.dumps(about),
                                        "s4rec.item_ids": json.dumps(rec.item_ids),
                                        "s4rec.item_counts": json.dumps(counts)})  # fmt: skip
    with atomic_file(out, "wb") as f:
        f.write(proto.SerializeToString())
    return {"max_score_difference": worst, "k": graph.k, "items": n_items}
