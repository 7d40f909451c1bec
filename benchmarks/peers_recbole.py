"""RecBole's SASRec as a worker of benchmarks/peers.py: run by the RecBole virtual
environment's python, never imported by s4rec.

    ~/.cache/s4rec/venvs/recbole/bin/python benchmarks/peers_recbole.py SEQUENCE_FILE WORKDIR SETTINGS_JSON

It converts the sequence-text file (``user item item ...`` per line, in time order) into
RecBole's atomic ``.inter`` format under WORKDIR (timestamp = the item's position in its
line, so ``order: TO`` keeps the file's order), builds RecBole's leave-one-out split
(``split: {LS: valid_and_test}``, full ranking) and SASRec with CE loss, then answers
commands, one JSON object per line on stdin:

    {"cmd": "setup"}   load the data, build the model and trainer
    {"cmd": "train"}   one training epoch (``Trainer._train_epoch``), timed
    {"cmd": "eval"}    RecBole's full-ranking evaluation of all test users, timed
    {"cmd": "topk", "k": 20, "out": PATH}  each test user's top-k, written to PATH
    {"cmd": "quit"}    reply with the peak RSS and exit

Each reply is one line ``@@PEERS {json}`` on stdout (RecBole may print other lines).
Runs on one thread; WORKDIR is also RecBole's working directory (its log and
checkpoint folders land there).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from peers_worker import reply, rss_now, serve

DATASET = "peers"  # RecBole's dataset name: WORKDIR/peers/peers.inter


def write_inter(sequence_file: Path, workdir: Path) -> dict:
    """The sequence-text file as WORKDIR/peers/peers.inter: one row per interaction."""
    folder = workdir / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    rows = users = 0
    with sequence_file.open() as src, (folder / f"{DATASET}.inter").open("w") as dst:
        dst.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in src:
            tokens = line.split()
            if len(tokens) < 2:
                continue
            users += 1
            for position, item in enumerate(tokens[1:], start=1):
                dst.write(f"{tokens[0]}\t{item}\t{position}\n")
                rows += 1
    return {"users": users, "interactions": rows}


class Worker:
    def __init__(self, sequence_file: Path, workdir: Path, settings: dict) -> None:
        self.sequence_file, self.workdir, self.settings = sequence_file, workdir, settings
        self.epoch = 0

    def config_dict(self) -> dict:
        s = self.settings
        return {
            # data: the atomic file written above, leave-one-out in time order, full ranking
            "data_path": str(self.workdir),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            "TIME_FIELD": "timestamp",
            "user_inter_num_interval": "[0,inf)",
            "item_inter_num_interval": "[0,inf)",
            "MAX_ITEM_LIST_LENGTH": s["max_len"],
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "group_by": "user",
                "mode": "full",
            },
            # model: SASRec with softmax cross-entropy over all items
            "hidden_size": s["hidden"],
            "inner_size": s["inner"],
            "n_layers": s["layers"],
            "n_heads": s["heads"],
            "hidden_dropout_prob": s["dropout"],
            "attn_dropout_prob": s["attn_dropout"],
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "initializer_range": 0.02,
            "loss_type": "CE",
            "train_neg_sample_args": None,
            # training
            "epochs": s["epochs"],
            "train_batch_size": s["batch_size"],
            "eval_batch_size": s["eval_batch_size"],
            "learner": "adam",
            "learning_rate": s["lr"],
            "weight_decay": 0.0,
            "seed": s["seed"],
            "reproducibility": True,
            "metrics": ["Hit", "NDCG", "MRR"],
            "topk": [5, 10, 20],
            "valid_metric": "NDCG@10",
            # environment: CPU, no worker processes, quiet, files under WORKDIR
            "use_gpu": False,
            "gpu_id": "",
            "worker": 0,
            "show_progress": False,
            "state": "WARNING",
            "checkpoint_dir": str(self.workdir / "saved"),
            "save_dataset": False,
            "save_dataloaders": False,
            "log_wandb": False,
        }

    def setup(self) -> dict:
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.model.sequential_recommender import SASRec
        from recbole.trainer import Trainer
        from recbole.utils import init_seed

        # importing recbole.model.sequential_recommender runs SINE's module-level
        # torch.autograd.set_detect_anomaly(True), for every model: off unless asked for
        self.shipped_anomaly = torch.is_anomaly_enabled()
        torch.autograd.set_detect_anomaly(bool(self.settings.get("detect_anomaly", False)))
        torch.set_num_threads(1)
        start = time.perf_counter()
        converted = write_inter(self.sequence_file, self.workdir)
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        config = Config(model="SASRec", dataset=DATASET, config_dict=self.config_dict())
        init_seed(config["seed"], config["reproducibility"])
        torch.set_num_threads(1)
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = SASRec(config, train._dataset).to(config["device"])
        self.trainer = Trainer(config, model)
        self.config, self.dataset, self.model = config, dataset, model
        self.train, self.valid, self.test = train, valid, test
        setup_s = time.perf_counter() - start
        n_samples = len(train._dataset)
        return {
            "convert_seconds": round(convert_s, 3),
            "setup_seconds": round(setup_s, 3),
            "converted": converted,
            "users": int(dataset.user_num - 1),  # minus RecBole's padding token
            "items": int(dataset.item_num - 1),
            "train_samples": int(n_samples),
            "steps_per_epoch": len(train),
            "test_users": len(test._dataset),
            "device": str(config["device"]),
            "threads": torch.get_num_threads(),
            "rss_after_setup": rss_now(),
            "anomaly_detection_on_import": self.shipped_anomaly,
            "anomaly_detection": torch.is_anomaly_enabled(),
            "config": {k: _plain(config[k]) for k in sorted(self.config_dict()) if k in config},
        }

    def train_epoch(self, detect_anomaly: bool | None = None) -> dict:
        """One epoch; ``detect_anomaly`` sets autograd's anomaly detection for it (None: as set up)."""
        import torch

        before = torch.is_anomaly_enabled()
        if detect_anomaly is not None:
            torch.autograd.set_detect_anomaly(detect_anomaly)
        start = time.perf_counter()
        loss = self.trainer._train_epoch(self.train, self.epoch, show_progress=False)
        seconds = time.perf_counter() - start
        torch.autograd.set_detect_anomaly(before)
        self.epoch += 1
        # _train_epoch returns the sum over batches of each batch's mean loss
        return {"seconds": seconds, "loss": float(loss) / len(self.train), "epoch": self.epoch}

    def evaluate(self) -> dict:
        start = time.perf_counter()
        result = self.trainer.evaluate(self.test, load_best_model=False, show_progress=False)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "metrics": {k: float(v) for k, v in result.items()}}

    def topk(self, k: int, out: str) -> dict:
        """Each test user's top-k items (raw ids), as RecBole's full ranking scores them
        (padding excluded, history ranked like any item) and with the user's input sequence
        excluded too (s4rec's default protocol), plus the user's test target."""
        import torch

        model, dataset = self.model, self.test._dataset
        uid, iid = dataset.uid_field, dataset.iid_field
        history = self.histories()
        users, targets, ranked, excluded = [], [], [], []
        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            for interaction, _history, _pos_u, pos_i in self.test:
                scores = model.full_sort_predict(interaction)
                scores[:, 0] = float("-inf")
                ranked.append(scores.topk(k, dim=1).indices)
                seen = [history[u] for u in interaction[uid].tolist()]
                rows = torch.repeat_interleave(
                    torch.arange(len(seen)), torch.tensor([len(h) for h in seen])
                )
                scores[rows, torch.cat(seen)] = float("-inf")
                excluded.append(scores.topk(k, dim=1).indices)
                users.append(interaction[uid])
                targets.append(pos_i)
        seconds = time.perf_counter() - start

        def tokens(field: str, ids: torch.Tensor) -> list:
            return [str(t) for t in dataset.id2token(field, ids.numpy()).reshape(-1).tolist()]

        def lists(parts: list) -> list:
            ids = torch.cat(parts)
            flat = tokens(iid, ids.reshape(-1))
            return [flat[i * k : (i + 1) * k] for i in range(len(ids))]

        payload = {
            "users": tokens(uid, torch.cat(users)),
            "targets": tokens(iid, torch.cat(targets)),
            "k": k,
            "history_ranked": lists(ranked),
            "history_excluded": lists(excluded),
        }
        Path(out).write_text(json.dumps(payload))
        return {"seconds": seconds, "users": len(payload["users"]), "path": out}

    def histories(self) -> dict:
        """RecBole user id -> RecBole ids of every item before the user's test target (the
        whole history, also beyond max_len), from the sequence file."""
        import numpy as np
        import torch

        dataset = self.dataset
        out = {}
        with self.sequence_file.open() as src:
            for line in src:
                tokens = line.split()
                if len(tokens) < 3:
                    continue
                user = int(dataset.token2id(dataset.uid_field, tokens[0]))
                items = dataset.token2id(dataset.iid_field, tokens[1:-1])
                out[user] = torch.from_numpy(np.asarray(items, dtype=np.int64).reshape(-1))
        return out


def _plain(value):
    """A configuration value as JSON can hold it."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("recbole", "torch", "numpy", "scipy", "pandas", "scikit-learn", "tensorboard",
                 "thop", "colorlog", "colorama", "texttable", "tabulate", "psutil", "tqdm",
                 "pyyaml", "ray", "plotly"):  # fmt: skip
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    sequence_file, workdir, settings = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # RecBole writes log/ and log_tensorboard/ into the working directory
    reply({"ready": True, "rss_after_start": rss_now(), "versions": versions()})
    worker = Worker(sequence_file, workdir, settings)
    serve({
        "setup": lambda m: worker.setup(),
        "train": lambda m: worker.train_epoch(m.get("detect_anomaly")),
        "eval": lambda m: worker.evaluate(),
        "topk": lambda m: worker.topk(int(m["k"]), m["out"]),
    })  # fmt: skip


if __name__ == "__main__":
    main()
