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


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("sasrec", "SASRec trained with the next-item loss only (L_SR, Eq. 1)."),
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
