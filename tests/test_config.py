"""Configuration: YAML/TOML files, --set overrides, type checks, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from s4rec.config import AugmentConfig, Config, ModelConfig, TrainConfig, read_mapping
from s4rec.methods import apply_method


def test_defaults() -> None:
    cfg = Config()
    assert cfg.method == "sasrec" and cfg.data.dataset == "synthetic"
    assert cfg.train == TrainConfig()
    assert cfg.loss.next_item == "bce" and cfg.model.positions == "end"


def test_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "data:\n  max_len: 30\n  data_dir: null\nmodel:\n  hidden: 32\ntrain:\n  lr: 0.002\n  deterministic: true\n"
    )
    cfg = Config.load(path)
    assert cfg.data.max_len == 30 and cfg.model.hidden == 32
    assert cfg.train.lr == 0.002 and cfg.train.deterministic is True
    assert cfg.model.layers == 2  # untouched keys keep their defaults
    (tmp_path / "run.yml").write_text(path.read_text())
    assert Config.load(tmp_path / "run.yml") == cfg


def test_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('method = "sasrec"\n[loss]\nnext_item = "ce"\n[train]\nepochs = 7\nlr = 5e-4\n')
    cfg = Config.load(path)
    assert cfg.loss.next_item == "ce" and cfg.train.epochs == 7 and cfg.train.lr == 5e-4


def test_empty_yaml_is_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert Config.load(path) == Config()
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        read_mapping(path)


def test_int_is_accepted_as_float(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 1\n")
    lr = Config.load(path).train.lr
    assert lr == 1.0 and isinstance(lr, float)


def test_scientific_notation_float(tmp_path: Path) -> None:
    """``lr: 1e-3`` is what everyone writes; PyYAML reads it as a string."""
    assert Config().override(["train.lr=1e-3"]).train.lr == pytest.approx(0.001)
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 1e-4\n")
    assert Config.load(path).train.lr == pytest.approx(1e-4)


def test_unknown_keys_raise_helpful_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) \['learning_rate'\].*known: .*'lr'"
    ) as e:
        Config.load(path)
    assert str(path) in str(e.value)
    path.write_text("optimiser:\n  lr: 0.1\n")
    with pytest.raises(ValueError, match="optimiser"):
        Config.load(path)
    path.write_text("train: 3\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        Config.load(path)


def test_set_overrides() -> None:
    base = Config()
    cfg = base.override(
        [
            "train.epochs=5",
            "model.positions=start",
            "data.data_dir=/tmp/x",
            "train.progress=false",
        ]
    )
    assert cfg.train.epochs == 5 and cfg.model.positions == "start"
    assert cfg.data.data_dir == "/tmp/x" and cfg.train.progress is False
    assert base.train.epochs == 300  # the original is not modified
    assert cfg.override(["data.data_dir=null"]).data.data_dir is None


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.epochs=abc", "^--set: train.epochs: expected an integer, got 'abc'$"),
        ("train.epochs=", "^--set: train.epochs: expected an integer, got no value$"),
        ("train.epochs=1.5", "expected an integer"),
        ("train.epochs=true", "expected an integer"),
        ("train.lr=fast", "expected a number"),
        ("train.progress=3", "expected true/false"),
        ("loss.next_item=hinge", "not one of"),
        ("model.positions=middle", "not one of"),
        ("data.dataset=[1, 2]", "expected a string"),
    ],
)
def test_set_type_checks(assignment: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config().override([assignment])


def test_set_unknown_and_malformed() -> None:
    with pytest.raises(ValueError, match=r"unknown configuration key 'train\.lrate'; known: .*lr"):
        Config().override(["train.lrate=0.1"])
    with pytest.raises(ValueError, match="unknown configuration section 'trian'"):
        Config().override(["trian.lr=0.1"])
    with pytest.raises(ValueError, match="expected key=value"):
        Config().override(["train.lr"])
    with pytest.raises(ValueError, match="unknown configuration section 'lr'"):
        Config().override(["train.lr.x=1"])
    with pytest.raises(ValueError, match="give a list of key=value strings"):
        Config().override("train.lr=0.1")  # one string is not a list of them
    with pytest.raises(ValueError, match="only eval"):
        Config().for_trained_model(["train.lr=0.1"])
    with pytest.raises(ValueError, match="give a list of key=value strings"):
        Config().for_trained_model("eval.exclude_history=false")
    with pytest.raises(ValueError, match="chosen with --method"):  # a name alone trains nothing
        Config().override(["method=s4rec"])


def test_a_config_built_in_python_is_checked_as_a_file_is() -> None:
    with pytest.raises(ValueError, match=r"^Config: train: expected a TrainConfig, got 5$"):
        Config(train=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Config: model\.encoder: 'x' is not one of"):
        Config(model=ModelConfig(encoder="x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Config: train\.epochs: expected an integer, got '5'$"):
        Config(train=TrainConfig(epochs="5"))  # type: ignore[arg-type]
    cfg = Config(train=TrainConfig(lr=1), augment=AugmentConfig(operators=["crop"]))  # type: ignore[arg-type]
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)  # normalised as from_dict
    assert cfg.augment.operators == ("crop",)


def test_changes_lists_differing_dotted_keys() -> None:
    a = Config()
    b = a.override(["train.lr=0.01", "model.layers=3", "train.epochs=9"])
    assert a.changes(b) == [
        "model.layers: 2 -> 3",
        "train.epochs: 300 -> 9",
        "train.lr: 0.001 -> 0.01",
    ]
    assert a.changes(b, ignore=("train.epochs", "model.layers")) == ["train.lr: 0.001 -> 0.01"]
    assert a.changes(a) == []


def test_round_trip(tmp_path: Path) -> None:
    cfg = Config().override(
        ["train.lr=0.0025", "data.layout=prefix", "loss.negatives=100", "data.data_dir=/d"]
    )
    cfg.save(tmp_path / "config.yaml")
    again = Config.load(tmp_path / "config.yaml")
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_apply_method() -> None:
    cfg = apply_method(Config().override(["train.epochs=3"]), "sasrec")
    assert cfg.method == "sasrec" and cfg.train.epochs == 3
    with pytest.raises(ValueError, match=r"unknown method 'nope'; available: .*sasrec"):
        apply_method(Config(), "nope")
