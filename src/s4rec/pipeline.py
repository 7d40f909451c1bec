"""Setting up a run's pieces: its data, its model, and the data a checkpoint was trained on.

Training, evaluation, analysis and inference all start here; none of them needs the trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .config import Config
from .data.binary import read_dataset
from .data.catalog import DatasetNotFound, load_sequences
from .data.dataset import LeaveOneOut
from .data.sequences import Sequences
from .model import Popularity, SequenceEncoder, build_encoder
from .runtime import setup_runtime

log = logging.getLogger(__name__)


def load_data(cfg: Config, path: str | Path | None = None) -> LeaveOneOut:
    """The leave-one-out split of ``cfg.data`` (or of the sequence file or binary dataset
    ``path``)."""
    if path is not None:
        seqs = read_dataset(path)
    else:
        seqs = load_sequences(
            cfg.data.dataset, cfg.data.data_dir, seed=0, synthetic_users=cfg.data.synthetic_users
        )
    hold_out = 0 if cfg.train.final else 2
    return LeaveOneOut(seqs, cfg.data.min_length, cfg.data.head_fraction, hold_out)


def note_repeats(cfg: Config, data: LeaveOneOut) -> None:
    """Log how many held-out items repeat an earlier one, and what the protocol makes of them."""
    seqs = data.seqs
    if seqs.held_out_repeats(cfg.data.min_length)["either"]:
        verdict = "misses" if cfg.eval.exclude_history else "ranked like other items"
        log.info(
            "%s: %s; they are %s (eval.exclude_history=%s)", seqs.source,
            seqs.held_out_repeats_text(cfg.data.min_length), verdict,
            str(cfg.eval.exclude_history).lower(),
        )  # fmt: skip


def build_model(cfg: Config, data: LeaveOneOut) -> SequenceEncoder:
    """The configured encoder, with what it takes from the data (users; popularity counts)."""
    model = build_encoder(data.n_items, cfg.data.max_len, cfg.model, data.n_users)
    if isinstance(model, Popularity):
        model.fit_counts(data.item_counts())
    return model


def fingerprint(seqs: Sequences) -> dict[str, Any]:
    """Sizes and a hash of the sequences and their raw ids (``Sequences.fingerprint``)."""
    return seqs.fingerprint()


def data_path(seqs: Sequences) -> str | None:
    """The absolute path of the file or binary dataset ``seqs`` was read from (None when
    generated)."""
    path = Path(seqs.source)
    return str(path.resolve()) if path.exists() else None


def data_record(seqs: Sequences) -> dict[str, Any]:
    """What a checkpoint keeps about its data: ``data_path`` and ``fingerprint``."""
    return {"path": data_path(seqs), "fingerprint": fingerprint(seqs)}


def check_data(state: dict[str, Any], data: LeaveOneOut, where: str) -> None:
    """An error unless ``data`` is what the checkpoint ``state`` was trained on; a checkpoint
    from before fingerprints is only checked for its item catalogue (with a warning)."""
    record = state.get("data") or {}
    saved, seqs = record.get("fingerprint"), data.seqs
    if saved is None:
        if list(state["item_ids"]) != list(seqs.item_ids):
            raise ValueError(f"{where}: trained on another item catalogue than {seqs.source}'s")
        log.warning("%s: an older checkpoint without a data fingerprint; assuming it was"
                    " trained on %s", where, seqs.source)  # fmt: skip
        return
    mine = fingerprint(seqs)
    if mine != saved:
        keys = [k for k in ("users", "items", "interactions") if saved[k] != mine[k]]
        sizes = [f"{k}: {saved[k]:,} then, {mine[k]:,} now" for k in keys]
        sizes = sizes or ["the same sizes, other sequences or ids"]
        then = record.get("path")
        was = f" (it was {then})" if then and then != data_path(seqs) else ""
        raise ValueError(
            f"{where}: {seqs.source} is not the data this model was trained on{was}; "
            + "; ".join(sizes)
        )


def trained_data(
    state: dict[str, Any], cfg: Config, where: str, data_dir: str | None = None
) -> LeaveOneOut:
    """The data the checkpoint ``state`` (configuration ``cfg``) was trained on, checked: the
    file it recorded when that still exists and no ``data_dir`` is given (any working
    directory then finds it), else the dataset of its configuration. Sets up the runtime."""
    setup_runtime(cfg)
    recorded = path = (state.get("data") or {}).get("path")
    if data_dir is not None:
        cfg.data.data_dir, path = data_dir, None
    elif path is not None and not Path(path).exists():
        path = None
    try:
        data = load_data(cfg, path)
    except DatasetNotFound as err:
        gone = f"{where} was trained on {recorded}, which is no longer there; " if recorded else ""
        raise DatasetNotFound(f"{gone}{err}") from None
    note_repeats(cfg, data)
    check_data(state, data, where)
    return data
