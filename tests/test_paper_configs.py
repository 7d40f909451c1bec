"""One path per published row: the CLI and the benchmark runner resolve the same
configuration by the same precedence rule, and it is the one the committed runs used."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest

from conftest import REPO
from s4rec import cli
from s4rec.config import Config, dotted, read_mapping
from s4rec.methods import configure
from s4rec.train import FREE

DATASETS = ("beauty", "sports", "toys", "ml-1m")
TABLE2 = ("pop", "bprmf", "gru4rec", "caser", "sasrec", "bert4rec", "cl4srec", "iclrec", "s4rec")
RESULTS = REPO / "benchmarks" / "results" / "runs"


@pytest.fixture(scope="module")
def train_run():  # the runner is a script, not part of the package
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield importlib.import_module("train_run")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def by_cli(dataset: str, method: str, *extra: str) -> Config:
    args = cli.parser().parse_args(
        ["train", "--dataset", dataset, "--method", method, "--config",
         str(REPO / "configs" / "paper" / f"{dataset}.yaml"), "--seed", "1", "--threads", "1",
         "--no-progress", "--out", "unused", *extra]
    )  # fmt: skip
    return cli.build_config(args)


def by_runner(train_run, dataset: str, method: str, sets: list[str] = ()) -> Config:
    args = argparse.Namespace(dataset=dataset, method=method, protocol="bce", seed=1,
                              threads=1, data_dir=None, set=list(sets), tag="", group="")  # fmt: skip
    return train_run.run_config(args)[1]


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("method", TABLE2)
def test_cli_and_runner_resolve_the_same_configuration(
    train_run, dataset: str, method: str
) -> None:
    assert by_cli(dataset, method).to_dict() == by_runner(train_run, dataset, method).to_dict()
    cli_set = by_cli(dataset, method, "--set", "train.lr=0.002")
    assert cli_set.to_dict() == by_runner(train_run, dataset, method, ["train.lr=0.002"]).to_dict()


def test_s4rec_on_beauty_keeps_its_batch_and_the_datasets_depth() -> None:
    cfg = by_cli("beauty", "s4rec")
    assert (cfg.train.batch_size, cfg.model.layers, cfg.s4rec.beta1) == (512, 1, 0.1)
    assert (by_cli("toys", "sasrec").model.layers, by_cli("toys", "sasrec").train.batch_size) == (
        3,
        256,
    )
    bert = by_cli("sports", "bert4rec")  # its preset's loss and dropout stand
    assert (bert.loss.next_item, bert.model.dropout, bert.model.layers) == ("ce", 0.1, 2)
    ml = by_cli("ml-1m", "cl4srec")  # the file's section for one method on its data
    assert (ml.s4rec.contrast_on, ml.model.pooling, by_cli("ml-1m", "iclrec").s4rec.beta1) == (
        "sequence", "mean", 0.0)  # fmt: skip


PUBLISHED = sorted(
    p for d in DATASETS for m in TABLE2 for p in RESULTS.glob(f"{d}-{m}-bce-s[0-9]*.json")
)


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_the_committed_runs_are_what_the_files_resolve_to(train_run, path: Path) -> None:
    """Each untagged published run was trained with exactly today's resolution of its
    (dataset, method), or, for S^4Rec, of the preset it had before issue 19: one command per
    row of the tables."""
    saved = json.loads(path.read_text())
    dataset, method = saved["dataset"], saved["method"]
    cfg = by_runner(train_run, dataset, method, [f"train.seed={saved['seed']}"])
    stored = Config.from_dict(saved["config"], where=str(path))
    ignore = (*FREE, "data.data_dir", "train.progress")
    changed = stored.changes(cfg, ignore=ignore)
    if not stored.s4rec.enabled:  # then no S^4Rec term, view or pooled z exists: inert keys
        changed = [c for c in changed if not c.startswith(("s4rec.", "augment.", "model.pooling"))]
    elif changed:  # or it was made with the s4rec preset of before issue 19, the file on top
        in_file = set(dotted(read_mapping(REPO / "configs" / "paper" / f"{dataset}.yaml")))
        earlier = importlib.import_module("common").S4REC_BEFORE_19  # beside train_run
        before = [s for s in earlier if s.split("=")[0] not in in_file]
        cfg = by_runner(train_run, dataset, method, [f"train.seed={saved['seed']}", *before])
        changed = stored.changes(cfg, ignore=ignore)
    assert changed == [], path.name


def test_a_methods_section_for_an_unknown_method_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("methods:\n  s4recc:\n    train:\n      lr: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown methods \['s4recc'\]"):
        configure("s4rec", tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("methods:\n  s4rec: 3\n")
    with pytest.raises(ValueError, match="must map method names to settings"):
        configure("s4rec", tmp_path / "c.yaml")
