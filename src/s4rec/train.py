"""The training loop: Adam, early stopping on validation NDCG@20, atomic checkpoints, exact resume."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from .checkpoint import load_state, save_atomic
from .config import Config
from .data.dataset import LeaveOneOut, Split, TrainLoader, training_samples
from .evaluate import evaluate, protocol
from .files import append_line, write_text_atomic
from .objectives import build_objective
from .pipeline import build_model, check_data, data_record, load_data, note_repeats
from .rundir import claim, locked, trim_metrics
from .runtime import (
    all_reduce_sum,
    autocast,
    barrier,
    check_precision,
    chunk_cost,
    gather_objects,
    grad_scaler,
    make_optimizer,
    prefetched,
    rank,
    resolve_device,
    rng_state,
    set_rng_state,
    setup_runtime,
    start_process_group,
    world_size,
    wrap_for_training,
)

log = logging.getLogger(__name__)

SELECT_METRIC = "NDCG@20"
PREFETCH = 2  # batches built ahead while an accelerator computes (none on a CPU: no spare core)


# settings a run may change between sessions: its budget, and those that change speed only
FREE = ("train.epochs", "train.patience", "train.threads", "train.progress",
        "train.eval_batch_users", "train.eval_item_chunk", "train.device")  # fmt: skip


@dataclass
class Progress:
    """Everything that must survive an interruption besides model and optimiser."""

    epoch: int = 0  # epochs completed
    best_score: float = float("-inf")
    best_epoch: int = 0
    train_seconds: float = 0.0  # training and validation, all epochs so far
    seconds_to_best: float = 0.0  # the same, up to the end of the best epoch


class Trainer:
    """Fits a model on a leave-one-out split and writes RUN_DIR (config, log, checkpoints, results).

    ``data`` (default: ``load_data(cfg)``) is the split to train on, already loaded; the run
    records ``cfg.data`` as its dataset, so it should be the data ``cfg.data`` names."""

    def __init__(self, cfg: Config, out_dir: str | Path, data: LeaveOneOut | None = None) -> None:
        if data is not None and data.final != cfg.train.final:
            held = "holds nothing out" if data.final else "holds out validation and test"
            raise ValueError(f"train.final={str(cfg.train.final).lower()} but the data given"
                             f" {held}: build it with load_data(cfg)")  # fmt: skip
        setup_runtime(cfg)
        self.device = resolve_device(cfg.train.device)
        check_precision(self.device, cfg.train.precision)
        self.rank, self.world = rank(), world_size()
        if cfg.train.batch_size % self.world:
            raise ValueError(
                f"train.batch_size={cfg.train.batch_size} is the global batch: it must divide"
                f" by the number of processes ({self.world})"
            )
        if cfg.train.sparse_items and self.world > 1:
            raise ValueError("train.sparse_items runs in one process only, not under torchrun")
        start_process_group(self.device)  # under torchrun; nothing otherwise
        self.cfg = cfg
        self.out = Path(out_dir)
        self.data = data if data is not None else load_data(cfg)
        self.data_record = data_record(self.data.seqs)  # kept in checkpoints, checked on use
        self.model = build_model(cfg, self.data)
        self.objective = build_objective(self.model, cfg, torch.from_numpy(self.data.is_head))
        self.objective.to(self.device)  # the encoder too: it is part of the objective
        if cfg.train.epochs > 0 and not any(p.requires_grad for p in self.objective.parameters()):
            raise ValueError(
                f"method {cfg.method} has nothing to train: set train.epochs=0 (its default)"
            )
        # DDP under torchrun
        self.step_module = wrap_for_training(
            self.objective, self.device, self.objective.may_skip_parameters
        )
        self.scaler = grad_scaler(self.device, cfg.train.precision)
        self.optimizer = make_optimizer(
            self.model, list(self.objective.parameters()), self.device, cfg.train.lr,
            cfg.train.weight_decay, cfg.train.sparse_items,
        )  # fmt: skip
        # the epoch's sample order is shared by all ranks; each rank draws its own negatives
        # and views (in one process both come from one generator, as they always have)
        self.order_generator = torch.Generator().manual_seed(cfg.train.seed)
        self.generator = self.order_generator
        if self.world > 1:
            self.generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + self.rank)
        samples = training_samples(
            self.data, cfg.data.layout, cfg.data.max_len, cfg.data.prefix_stride
        )
        self.loader = TrainLoader(
            self.data, samples, cfg.train.batch_size, cfg.data.max_len,
            cfg.loss.next_item, cfg.loss.negatives, self.generator,
            cfg.augment if cfg.s4rec.needs_views else None,
            order_generator=self.order_generator, shard=(self.rank, self.world),
            chunk_cost=chunk_cost(self.device),
        )  # fmt: skip
        self.progress = Progress()
        self.main = self.rank == 0
        self.cluster_seconds = 0.0  # of the last epoch's start_epoch()
        self.data_seconds = 0.0  # of the last epoch: waiting for batches (built, then moved)

    # -- checkpoints -------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "format": "s4rec/1",
            "config": self.cfg.to_dict(),
            "n_items": self.data.n_items,
            "n_users": self.data.n_users,
            "item_ids": list(self.data.seqs.item_ids),
            "item_counts": self.data.item_counts(),  # training popularity: empty histories
            "data": self.data_record,
            "final": self.cfg.train.final,  # trained on everything, for deployment
        }

    def _save_config(self) -> None:
        where = f"{self.device}, precision {self.cfg.train.precision}, world size {self.world}"
        self.cfg.save(self.out / "config.yaml", f"s4rec train: {where}")

    def _save_last(self) -> None:
        """Rank 0 writes ``last.pt``, with every rank's random state (called on all ranks)."""
        mine = {"generator": self.generator.get_state(), **rng_state(self.device)}
        ranks = gather_objects(mine)
        state = {
            **self._meta(),
            "model": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **mine,  # rank 0's, the only one in one process
            "order_generator": self.order_generator.get_state(),
            "world_size": self.world,
            "ranks": ranks if self.world > 1 else [],
            "scaler": self.scaler.state_dict(),
            "progress": vars(self.progress).copy(),
        }
        if self.main:
            save_atomic(state, self.out / "last.pt")

    def _heads(self) -> dict[str, torch.Tensor]:
        """The objective's own state (prototypes, classifier, ...) without the encoder's copy."""
        return {k: v for k, v in self.objective.state_dict().items() if not k.startswith("model.")}

    def _save_best(self, valid: dict[str, float]) -> None:
        state = {
            **self._meta(),
            "model": self.model.state_dict(),  # the encoder, all that inference needs
            "heads": self._heads(),  # prototypes and classifier, for analysis
            "epoch": self.progress.epoch,
            "valid": valid,
        }
        save_atomic(state, self.out / "best.pt")

    def _resume(self) -> None:
        state = load_state(self.out / "last.pt")
        check_data(state, self.data, str(self.out / "last.pt"))
        if state.get("world_size", 1) != self.world:
            raise ValueError(
                f"{self.out / 'last.pt'} was written by {state.get('world_size', 1)} process(es);"
                f" resume it with as many (this is {self.world}): each one's random state is in it"
            )
        saved = Config.from_dict(state["config"], where=str(self.out / "last.pt"))
        changed = saved.changes(self.cfg, ignore=FREE)  # options added since take defaults
        if changed:
            raise ValueError(
                f"{self.out / 'last.pt'} was written with another configuration "
                f"({'; '.join(changed)}); not resuming"
            )
        free = saved.changes(self.cfg)
        if free:
            log.info("%s: continuing with %s", self.out, "; ".join(free))
            if self.main:
                self._save_config()
        missing, unexpected = self.objective.load_state_dict(state["model"], strict=False)
        unexpected = [k for k in unexpected if k != "centroids"]  # saved by earlier versions
        if missing or unexpected:
            raise ValueError(
                f"{self.out / 'last.pt'} does not fit this model: missing {missing},"
                f" unexpected {unexpected}; not resuming"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        mine = state["ranks"][self.rank] if self.world > 1 else state
        self.generator.set_state(mine["generator"])
        set_rng_state(mine, self.device)
        if self.world > 1:
            self.order_generator.set_state(state["order_generator"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.progress = Progress(**state["progress"])
        if self.main:  # drop lines of epochs after the checkpoint
            trim_metrics(self.out / "metrics.jsonl", self.progress.epoch)
        log.info("resumed %s after epoch %d", self.out, self.progress.epoch)

    # -- loop --------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        """One pass over the training samples; returns the mean of each loss term.

        The objective's per-epoch work (K-means intents) runs first; its wall time is kept
        in ``cluster_seconds``, and the time spent waiting for batches in ``data_seconds``.
        Loss terms stay on the device until the epoch ends: no step waits for the device.
        """
        start = time.perf_counter()
        self.objective.start_epoch(self.data, self.progress.epoch)
        self.cluster_seconds = time.perf_counter() - start
        self.objective.train()
        sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        bar = tqdm(
            prefetched(self.loader, PREFETCH if self.device.type != "cpu" else 0),
            total=len(self.loader), desc=f"epoch {self.progress.epoch + 1}", leave=False,
            disable=not (self.cfg.train.progress and self.main and sys.stderr.isatty()),
            dynamic_ncols=True,
        )  # fmt: skip
        self.data_seconds, waiting = 0.0, time.perf_counter()
        for batch in bar:
            batch = batch.to(self.device)
            self.data_seconds += time.perf_counter() - waiting
            with autocast(self.device, self.cfg.train.precision):
                out = self.step_module(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for name, value in out.terms.items():
                sums[name] += value
            if not bar.disable:  # the one per-step read of a device value: for the display
                bar.set_postfix(loss=f"{out.total.item():.4f}")
            waiting = time.perf_counter()
        return {name: float(total) / len(self.loader) for name, total in sums.items()}

    def _check_finite(self, losses: dict[str, float], epoch: int) -> None:
        """Stop a run whose loss diverged (NaN or inf) before the epoch is evaluated or saved,
        so ``last.pt`` and ``best.pt`` keep the last good epoch; every rank stops together."""
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if not all_reduce_sum(torch.tensor(float(len(bad)), device=self.device)):
            return
        terms = ", ".join(f"{name} {value}" for name, value in bad.items()) or "on another rank"
        kept = f"keeps epoch {epoch - 1}" if epoch > 1 else "has no trained epoch"
        raise ValueError(
            f"{self.out}: training diverged in epoch {epoch} (loss {terms}); the run directory"
            f" {kept}: lower train.lr (now {self.cfg.train.lr:g}) and train again (--overwrite)"
        )

    def evaluate(self, split: Split) -> dict[str, dict[str, float]]:
        """Metrics under the run's protocol (``eval``): model selection and results agree."""
        return evaluate(self.model, self.data, split, self.cfg)

    def fit(self, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
        """Train until ``epochs`` or early stopping, then evaluate the best checkpoint once on
        test. The run directory is locked meanwhile (by rank 0); ``resume`` continues from its
        ``last.pt``, and a run's files already there are an error unless ``overwrite``."""
        with locked(self.out) if self.main else contextlib.nullcontext():
            if self.main:
                claim(self.out, resume, overwrite)
            barrier()  # rank 0 has claimed the directory
            self._announce()
            if resume and (self.out / "last.pt").exists():
                self._resume()
            elif self.main:
                self._save_config()
                write_text_atomic(self.out / "metrics.jsonl", "")
            return self._loop()

    def _announce(self) -> None:
        """The run's first log line: data, device, threads, run directory."""
        seqs, threads = self.data.seqs, torch.get_num_threads()
        log.info(
            "training %s on %s: %s users, %s items, %s interactions; %s, %d thread%s,"
            " precision %s, world size %d; run directory %s", self.cfg.method, seqs.source,
            f"{seqs.n_users:,}", f"{seqs.n_items:,}", f"{len(seqs.values):,}", self.device,
            threads, "s" if threads > 1 else "", self.cfg.train.precision, self.world, self.out,
        )  # fmt: skip
        note_repeats(self.cfg, self.data)

    def _loop(self) -> dict[str, Any]:
        t, p = self.cfg.train, self.progress
        while p.epoch < t.epochs and p.epoch - p.best_epoch < t.patience:
            start = time.perf_counter()
            losses = self.train_epoch()
            train_s = time.perf_counter() - start
            self._check_finite(losses, p.epoch + 1)
            valid = {} if t.final else self.evaluate("valid")["all"]  # final: the last is best
            p.epoch += 1
            p.train_seconds += time.perf_counter() - start
            improved = t.final or valid[SELECT_METRIC] > p.best_score
            if improved:
                p.best_score, p.best_epoch = valid.get(SELECT_METRIC, p.best_score), p.epoch
                p.seconds_to_best = p.train_seconds
            if self.main:  # best, then the log line, then last.pt: resume never skips a line
                if improved:
                    self._save_best(valid)
                record = {
                    "epoch": p.epoch, "loss": losses, "valid": valid, "train_seconds": round(train_s, 3),
                    "eval_seconds": round(time.perf_counter() - start - train_s, 3),
                    "cluster_seconds": round(self.cluster_seconds, 3),  # part of train_seconds
                    "data_seconds": round(self.data_seconds, 3),  # the same
                }  # fmt: skip
                append_line(self.out / "metrics.jsonl", json.dumps(record))
            self._save_last()  # every rank: it gathers their random states
            if self.main:
                terms = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                score = f"valid {SELECT_METRIC} {valid[SELECT_METRIC]:.4f}" if valid else "final"
                log.info(
                    "epoch %d  %s  %s%s  (%.1fs, %.0f%% waiting for data, + %.1fs eval)",
                    p.epoch, terms, score, " *" if improved and valid else "", train_s,
                    100 * self.data_seconds / max(train_s, 1e-9), record["eval_seconds"],
                )  # fmt: skip
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Reload the best checkpoint, evaluate validation and test, write results.json.

        With no epoch trained (``train.epochs=0``, e.g. popularity) the model as built is the best.
        A final model (``train.final``) is the last epoch's and has nothing held out to evaluate.
        """
        if self.cfg.train.final:
            if self.main and not (self.out / "best.pt").exists():  # epochs=0
                self._save_best({})
            return self._write_results({"final": True})
        if not (self.out / "best.pt").exists():
            as_built = self.evaluate("valid")["all"]
            if self.main:
                self._save_best(as_built)
        barrier()  # rank 0 has written best.pt
        best = load_state(self.out / "best.pt")
        self.model.load_state_dict(best["model"])
        valid, test = self.evaluate("valid"), self.evaluate("test")
        return self._write_results({
            "best_epoch": self.progress.best_epoch,
            "seconds_to_best": round(self.progress.seconds_to_best, 2),
            "valid": valid["all"],
            "test": test["all"],
            "test_by_group": {"head": test["head"], "tail": test["tail"]},
            "eval_protocol": protocol(self.cfg, self.data),
        })  # fmt: skip

    def _write_results(self, outcome: dict[str, Any]) -> dict[str, Any]:
        """``results.json``: what was trained, where, and ``outcome`` (written by rank 0)."""
        results = {
            "method": self.cfg.method,
            "dataset": self.cfg.data.dataset,
            "seed": self.cfg.train.seed,
            "loss": self.cfg.loss.next_item,
            "epochs": self.progress.epoch,
            "train_seconds": round(self.progress.train_seconds, 2),
            **outcome,
            "users": {"all": self.data.n_users, "head": int(self.data.is_head.sum())},
            "device": str(self.device),
            "precision": self.cfg.train.precision,
            "world_size": world_size(),
        }
        if self.main:
            write_text_atomic(self.out / "results.json", json.dumps(results, indent=2) + "\n")
        return results
