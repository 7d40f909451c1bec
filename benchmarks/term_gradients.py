"""How hard does each S^4Rec term pull on the encoder? Per-term gradients at a run's best epoch.

    python benchmarks/term_gradients.py --data-dir ../shared/data \\
        --runs ~/.cache/s4rec/runs/repro/beauty-s4rec-bce-base-s1 ... [--batches 20]

For each run directory of ``benchmarks/train_run.py`` (its ``config.yaml`` and ``best.pt``:
encoder, prototypes and classifier at the selected epoch), takes the first ``--batches``
training batches of the run's own loader (its seed, augmentations and negatives), in training
mode, and differentiates each weighted term of Eq. 14 (L_SR, alpha L_Clust, beta1 L_SCL,
beta2 L_CKD, lambda L_Adv) separately with respect to the encoder's parameters: the item
table and the rest (position embeddings, attention and feed-forward blocks). Reports, as
medians over the batches, each term's gradient norm relative to L_SR's and the cosine between
the two: a term at a few percent of L_SR's pull barely acts; a cosine near 0 means the term
moves the encoder in directions next-item accuracy neither needs nor resists.
Writes benchmarks/results/summaries/<name>.json (``--name``, default term-gradients-beauty).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F

from common import commit, provenance, write_result
from s4rec.checkpoint import load_state
from s4rec.config import Config
from s4rec.train import Trainer


def flat_grads(
    loss: torch.Tensor, groups: dict[str, list[torch.nn.Parameter]]
) -> dict[str, torch.Tensor]:
    """The gradient of ``loss`` over each group of parameters, one vector per group (zeros
    where unused), from one backward pass."""
    params = [p for group in groups.values() for p in group]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    flat = iter((torch.zeros_like(p) if g is None else g).reshape(-1)
                for g, p in zip(grads, params, strict=True))  # fmt: skip
    return {name: torch.cat([next(flat) for _ in group]) for name, group in groups.items()}


def term_gradients(run_dir: Path, data_dir: str, batches: int) -> dict:
    """Per term and parameter group: median |grad| / |grad of L_SR| and cosine with it."""
    cfg = Config.load(run_dir / "config.yaml").override(
        [f"data.data_dir={data_dir}", "train.threads=1", "train.device=cpu", "train.progress=false"]
    )
    best = load_state(run_dir / "best.pt")
    with tempfile.TemporaryDirectory(prefix="s4rec-grad-") as tmp:
        trainer = Trainer(cfg, tmp)
    objective = trainer.objective
    model_state = {f"model.{k}": v for k, v in best["model"].items()}
    objective.load_state_dict({**model_state, **best["heads"]})  # every key, or an error
    objective.start_epoch(trainer.data, best["epoch"])  # K-means intents, where used
    objective.train()
    table = trainer.model.item_emb.weight
    groups = {"item table": [table],
              "rest of the encoder": [p for p in trainer.model.parameters() if p is not table]}  # fmt: skip
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    cosines: dict[tuple[str, str], list[float]] = defaultdict(list)
    for batch in islice(iter(trainer.loader), batches):
        out = objective(batch)
        sr = flat_grads(out.weighted["next_item"], groups)
        for name in set(out.weighted) - {"next_item"}:
            for group, g in flat_grads(out.weighted[name], groups).items():
                ratios[name, group].append(float(g.norm() / sr[group].norm()))
                cosines[name, group].append(float(F.cosine_similarity(g, sr[group], dim=0)))
    terms: dict[str, dict] = defaultdict(dict)
    for name, group in ratios:
        terms[name][group] = {
            "norm_vs_next_item": round(statistics.median(ratios[name, group]), 5),
            "cosine_with_next_item": round(statistics.median(cosines[name, group]), 4),
        }
    return {"run": run_dir.name, "best_epoch": best["epoch"], "valid": best["valid"],
            "weights": {k: getattr(cfg.s4rec, k) for k in ("alpha", "beta1", "beta2", "lam")},
            "terms": dict(terms)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", nargs="+", required=True, type=Path, help="run directories")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--name", default="term-gradients-beauty")
    args = ap.parse_args()
    code, begun = commit(), time.perf_counter()
    torch.set_num_threads(1)
    missing = [str(r) for r in args.runs if not (r / "best.pt").exists()]
    if missing:
        raise SystemExit(f"no best.pt in {', '.join(missing)}: train the run first")
    runs = []
    for run_dir in args.runs:
        runs.append(term_gradients(run_dir, args.data_dir, args.batches))
        print(run_dir.name, runs[-1]["terms"], flush=True)
    result = {
        "benchmark": "term_gradients",
        "batches": args.batches,
        "runs": runs,
        "notes": {
            "norm_vs_next_item": "median over batches of |grad of the weighted term| / "
            "|grad of L_SR|, over the group's parameters",
            "cosine_with_next_item": "median over batches of the cosine between the two",
        },
        **provenance(time.perf_counter() - begun, code),
    }
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
