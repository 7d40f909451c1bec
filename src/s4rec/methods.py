"""Methods are named configurations: a description and the settings they change, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Config, set_dotted


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # dotted key -> value


PAPER_WEIGHTS = {"s4rec.alpha": 0.01, "s4rec.beta1": 0.1, "s4rec.beta2": 0.1, "s4rec.lam": 1.0}

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("sasrec", "SASRec trained with the next-item loss only (L_SR, Eq. 1)."),
        Method("s4rec", "S^4Rec: Eq. 14 with the paper's weights.", PAPER_WEIGHTS),
        Method(
            "s4rec-no-csd",
            "S^4Rec without the contrastive + distillation module (Table 3).",
            {**PAPER_WEIGHTS, "s4rec.beta1": 0.0, "s4rec.beta2": 0.0},
        ),
        Method(
            "s4rec-no-gr",
            "S^4Rec without the gradient-reversal head/tail term (Table 3).",
            {**PAPER_WEIGHTS, "s4rec.lam": 0.0},
        ),
        Method(
            "cl4srec",
            "CL4SRec (Xie et al., ICDE'22) as the ICLRec code trains it: SASRec plus InfoNCE "
            "between two augmented views, in-batch negatives, dot products of the flattened "
            "outputs, temperature 1, weight 0.1 on the mean over both directions.",
            {
                "s4rec.beta1": 0.05,
                "s4rec.intent_negatives": False,
                "s4rec.similarity": "dot",
                "s4rec.tau2": 1.0,
                "s4rec.contrast_on": "flat",
            },
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
