"""Checkpoint files: written atomically, read without executing code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .config import Config
from .files import atomic_file
from .model import SequenceEncoder, build_encoder
from .runtime import resolve_device


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` with torch.save to a temporary file, then rename it over ``path``."""
    with atomic_file(path, "wb") as f:
        torch.save(state, f)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code runs); clear errors for bad files."""
    path = Path(path)
    if path.is_dir():
        model = f"; its model is {path / 'best.pt'}" if (path / "best.pt").is_file() else ""
        raise ValueError(f"{path}: a directory, not a checkpoint{model}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip (or, long ago, a pickle)
        if path.suffix == ".onnx":
            what = "an ONNX graph? serve it with --onnx"
        else:
            what = "not a torch file" if head else "the file is empty"
        raise ValueError(f"{path}: not an s4rec checkpoint ({what})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable s4rec checkpoint ({_why(err)})") from None
    if not isinstance(state, dict) or state.get("format") != "s4rec/1":
        raise ValueError(f"{path}: not an s4rec checkpoint (missing format tag 's4rec/1')")
    return state


def _why(err: Exception) -> str:
    """torch's reason in one line, without its advice to load with ``weights_only=False``."""
    text = str(err)
    if "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        what = f" ({found.group(1)})" if found else ""
        return f"it holds a Python object{what} that only running code could rebuild"
    first = text.strip().splitlines()[0] if text.strip() else "empty or cut short"
    return f"{type(err).__name__}: {first}"


def load_model(
    path: str | Path, sets: Sequence[str] = (), device: str = "cpu"
) -> tuple[Config, SequenceEncoder, list[str]]:
    """The configuration (with ``eval.*`` overrides ``sets``), the trained encoder (eval mode,
    on ``device``, whichever device it was trained on) and the raw item ids of a checkpoint."""
    return model_from_state(load_state(path), str(path), sets, device)


def model_from_state(
    state: dict[str, Any], where: str, sets: Sequence[str] = (), device: str = "cpu"
) -> tuple[Config, SequenceEncoder, list[str]]:
    """``load_model`` for a checkpoint already read with ``load_state``: ``best.pt`` or a
    training checkpoint ``last.pt``, whose encoder weights are taken from the objective's."""
    cfg = Config.from_dict(state["config"], where=where).for_trained_model(list(sets))
    model = build_encoder(state["n_items"], cfg.data.max_len, cfg.model, state.get("n_users", 0))
    weights = state["model"]
    if "progress" in state:  # a training checkpoint (last.pt) holds the whole objective
        weights = {
            k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")
        }
    model.load_state_dict(weights)
    return cfg, model.to(resolve_device(device)).eval(), list(state["item_ids"])
