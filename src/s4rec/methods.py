"""Methods are named configurations: a description and the settings they change, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, read_mapping, set_dotted


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # dotted key -> value


# S^4Rec and its Table 3 variants: Eq. 14's weights and App. B's batch size, with the
# configuration selected on Beauty validation (issue 19, docs/reproduction.md): Eq. 9-11 on
# raw vectors, as the paper writes them, and the ICLRec code's padding behaviour (padding
# before the first item attends to the whole sequence, the mask writes the padding id, and
# z is the mean of all max_len outputs)
S4REC = {"s4rec.alpha": 0.01, "s4rec.beta1": 0.1, "s4rec.beta2": 0.1, "s4rec.lam": 1.0,
         "train.batch_size": 512, "s4rec.similarity": "dot", "s4rec.distill_normalize": False,
         "model.padding": "iclrec", "augment.mask_token": "padding", "model.pooling": "mean"}  # fmt: skip

# L_SCL sums its two directions (Eq. 10); the CL4SRec/ICLRec code averages them, so its
# weight 0.1 is 0.05 here
CL4SREC = {"s4rec.beta1": 0.05, "s4rec.intent_negatives": False, "s4rec.similarity": "dot",
           "s4rec.tau2": 1.0, "s4rec.contrast_on": "flat"}  # fmt: skip

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("sasrec", "SASRec trained with the next-item loss only (L_SR, Eq. 1)."),
        Method(
            "s4rec",
            "S^4Rec: Eq. 14 with the paper's weights, batch 512, raw dot products in Eq. 9-11 "
            "and the ICLRec code's padding behaviour (z the mean of all max_len outputs), the "
            "configuration selected on Beauty validation.",
            S4REC,
        ),
        Method(
            "pop",
            "Popularity: every user gets the items ranked by training count (nothing trained).",
            {"model.encoder": "pop", "train.epochs": 0},
        ),
        Method(
            "bprmf",
            "BPR-MF (Rendle et al., UAI'09): user and item embeddings trained with BPR against "
            "one sampled negative per training interaction.",
            {"model.encoder": "mf", "loss.next_item": "bpr"},
        ),
        Method(
            "gru4rec",
            "GRU4Rec (Hidasi et al., ICLR'16): a GRU encoder trained with the next-item loss.",
            {"model.encoder": "gru4rec", "model.layers": 1},
        ),
        Method(
            "caser",
            "Caser (Tang & Wang, WSDM'18): horizontal and vertical convolutions over the last 5 "
            "items plus a user embedding, trained with the next-item loss.",
            {"model.encoder": "caser"},
        ),
        Method(
            "bert4rec",
            "BERT4Rec (Sun et al., CIKM'19): a bidirectional transformer trained to recover "
            "masked items (20% of each training sequence) with a softmax over all items; "
            "dropout 0.1 as in its paper.",
            {
                "model.encoder": "bert4rec",
                "loss.next_item": "ce",
                "model.dropout": 0.1,
                "model.attn_dropout": 0.1,
            },
        ),
        Method(
            "s4rec-no-csd",
            "S^4Rec without the contrastive + distillation module (Table 3).",
            {**S4REC, "s4rec.beta1": 0.0, "s4rec.beta2": 0.0},
        ),
        Method(
            "s4rec-no-gr",
            "S^4Rec without the gradient-reversal head/tail term (Table 3).",
            {**S4REC, "s4rec.lam": 0.0},
        ),
        Method(
            "cl4srec",
            "CL4SRec (Xie et al., ICDE'22) as the ICLRec code trains it: SASRec plus InfoNCE "
            "between two augmented views, in-batch negatives, dot products of the flattened "
            "outputs, temperature 1, weight 0.1 on the mean over both directions.",
            CL4SREC,
        ),
        Method(
            "iclrec",
            "ICLRec (Chen et al., WWW'22) as its official Beauty script trains it: per-epoch "
            "K-means (K = 256) of the mean-pooled training sequences; intent contrastive loss "
            "of each view against its sequence's L2-normalised centroid, without the "
            "false-negative mitigation (no --de_noise), plus CL4SRec's instance term; dot "
            "products, temperature 1, both weights 0.1 on means. Padding positions are "
            "ignored; model.padding=iclrec with augment.mask_token=padding adds the official "
            "code's padding behaviour (docs/reproduction.md).",
            {
                **CL4SREC,
                "model.pooling": "mean",
                "s4rec.clustering": "kmeans",
                "s4rec.prototypes": 256,
                "s4rec.icl": 0.05,
                "s4rec.icl_denoise": False,
                "s4rec.icl_unit_intents": True,
            },
        ),
        Method(
            "sr+csd",
            "SR+CSD (Table 3): S^4Rec's contrastive + distillation module with per-epoch "
            "K-means centroids in place of the online prototypes.",
            {**S4REC, "s4rec.alpha": 0.0, "s4rec.lam": 0.0, "s4rec.clustering": "kmeans"},
        ),
        Method(
            "sr+csd+gr",
            "SR+CSD+GR (Table 3; Table 5's S^4Rec with K-means): SR+CSD plus the head/tail "
            "adversarial term.",
            {**S4REC, "s4rec.alpha": 0.0, "s4rec.clustering": "kmeans"},
        ),
    ]
}


def apply_method(cfg: Config, name: str) -> Config:
    """``cfg`` with the method's settings applied and ``method`` set to ``name``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    raw = cfg.to_dict()
    raw["method"] = name
    for key, value in METHODS[name].settings.items():
        set_dotted(raw, key, value)
    return Config.from_dict(raw, where=f"method {name}")


def configure(method: str | None = None, file: str | Path | None = None,
              sets: Sequence[str] = ()) -> Config:  # fmt: skip
    """The one precedence rule of the CLI and every script: defaults < the method's preset
    < the configuration file < the file's ``methods.<method>`` section < ``sets``
    (``key=value``; the CLI's flags and ``--set``). The method is ``method``, else the
    file's ``method:``, else sasrec.

    A file states what differs from the defaults, so a method's own settings (S^4Rec's
    batch of 512, BERT4Rec's loss) stand unless the file changes them on purpose; its
    ``methods:`` section holds what one method needs differently on that file's data.
    """
    raw = read_mapping(file) if file else {}
    where = str(file) if file else "defaults"
    sections = raw.pop("methods", None) or {}
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        raise ValueError(f"{where}: 'methods' must map method names to settings")
    unknown = set(sections) - set(METHODS)
    if unknown:
        raise ValueError(f"{where}: 'methods' names unknown methods {sorted(unknown)}")
    name = method or raw.get("method") or "sasrec"
    merged = apply_method(Config(), name).to_dict()
    for layer in (raw, sections.get(name, {})):
        for section, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(section), dict):
                merged[section].update(value)
            else:
                merged[section] = value
    merged["method"] = name
    return Config.from_dict(merged, where=where).override(list(sets))
