"""One configuration: dataclasses for data, model, loss and training; YAML/TOML in, resolved YAML out."""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from .files import read_parsed, write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # catalog name or path to a sequence-text file
    data_dir: str | None = None  # where catalog files are looked for first
    max_len: int = 50  # most recent items the encoder sees
    layout: Literal["user", "prefix"] = "user"  # one sample per user, or every prefix
    prefix_stride: int = 1  # "prefix" layout: window step for sequences longer than max_len
    min_length: int = 3  # users with fewer items are dropped (logged); 3 = train + valid + test
    head_fraction: float = 0.2  # share of users, by training length, labelled "head"
    synthetic_users: int = 2000  # size of the built-in synthetic dataset


@dataclass
class ModelConfig:
    encoder: Literal["sasrec", "bert4rec", "gru4rec", "caser", "pop", "mf"] = "sasrec"
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    inner: int = 256  # feed-forward width
    dropout: float = 0.5  # embeddings and hidden states
    attn_dropout: float = 0.5
    positions: Literal["end", "start"] = "end"  # count position ids from the last or first item
    pooling: Literal["last", "mean"] = "last"  # sequence representation for auxiliary losses
    # "iclrec": as the CL4SRec/ICLRec code's additive mask makes them, padding positions
    # before the first item attend to every position, and "mean"/"flat" pool all max_len
    # positions, padding included (sasrec only; a study setting, docs/reproduction.md)
    padding: Literal["ignored", "iclrec"] = "ignored"
    window: int = 5  # caser: the last L items each convolution sees
    vertical_filters: int = 4  # caser: n_v, each a weighted sum of the window's L embeddings
    horizontal_filters: int = 16  # caser: n_h per filter height 1..L

    def __post_init__(self) -> None:
        if self.padding == "iclrec" and self.encoder != "sasrec":
            raise ValueError(f"model.padding=iclrec needs model.encoder=sasrec, not {self.encoder}")


@dataclass
class LossConfig:
    next_item: Literal["bce", "bpr", "ce", "sampled_ce"] = "bce"
    negatives: int = 1  # per position for "bce"/"bpr"; shared per batch for "sampled_ce"
    mask_prob: float = 0.2  # bert4rec's masked-item task: share of training items masked


OPERATORS = ("crop", "mask", "reorder", "insert")


@dataclass
class AugmentConfig:
    """Augmentations of App. A; each view of each sequence gets one operator drawn uniformly."""

    operators: tuple[str, ...] = ("crop", "mask", "reorder")
    crop: float = 0.2  # share of the sequence kept
    # "keep": one contiguous run of that share is kept (the ICLRec code's crop); "remove":
    # a contiguous run of the rest is cut out and what precedes and follows it is kept (Eq. 16)
    crop_style: Literal["keep", "remove"] = "keep"
    mask: float = 0.7  # share of items replaced by the mask token
    reorder: float = 0.2  # share of the sequence (a contiguous run) shuffled
    insert: float = 0.2  # share of the length inserted, drawn from training items
    # what "mask" writes: a dedicated token, or the padding id as the CL4SRec/ICLRec code does
    mask_token: Literal["own", "padding"] = "own"


@dataclass
class S4RecConfig:
    """Sec. 4: online clustering, intent contrastive learning, self-distillation, adversarial term."""

    alpha: float = 0.0  # weight of L_Clust (Eq. 4); the s4rec method sets the paper's 0.01
    beta1: float = 0.0  # weight of L_SCL (Eq. 10); paper 0.1
    beta2: float = 0.0  # weight of L_CKD (Eq. 12); paper 0.1
    lam: float = 0.0  # weight of L_Adv (Eq. 13); paper 1.0
    prototypes: int = 128  # K
    tau1: float = 0.1  # soft assignment temperature (Eq. 3)
    # Eq. 3's z . mu (and so Sinkhorn's scores): of unit vectors (SwAV's habit) or raw (the paper)
    cluster_similarity: Literal["cosine", "dot"] = "cosine"
    # h(u): the prototype of the Sinkhorn target q (argmax q) or of the model's own soft
    # assignment p (argmax p, Eq. 3; Sec. 4.2 builds on "the clustering assignments p_u")
    assignment: Literal["sinkhorn", "nearest"] = "sinkhorn"
    tau2: float = 1.0  # contrastive temperature (Eq. 9); Beauty validation (docs/reproduction.md)
    tau3: float = 1.0  # distillation temperature (Eq. 11); likewise
    similarity: Literal["cosine", "dot"] = "cosine"  # of L_SCL (Eq. 9); "dot": CL4SRec/ICLRec code
    intent_negatives: bool = True  # prototypes as extra negatives in L_SCL (off: CL4SRec's loss)
    contrast_on: Literal["sequence", "flat"] = "sequence"  # L_SCL on z, or on every position
    # "online": trainable prototypes + Sinkhorn; "kmeans": centroids refit at each epoch's start
    clustering: Literal["online", "kmeans"] = "online"
    kmeans_iters: int = 20  # Lloyd iterations per epoch ("kmeans")
    kmeans_restarts: int = 1  # keep the best of this many K-means runs
    kmeans_sample: int = 256  # fit on at most this many points per centroid (faiss's default)
    icl: float = 0.0  # weight of ICLRec's intent contrastive loss (views vs. their intent)
    icl_denoise: bool = True  # drop same-intent sequences from its negatives (ICLRec's --de_noise)
    icl_unit_intents: bool = False  # contrast with L2-normalised centroids (ICLRec's code does)
    sinkhorn_eps: float = 0.05
    sinkhorn_iters: int = 3
    freeze_prototypes_steps: int = 0  # optimiser steps before the prototypes start to move
    detach_teacher: bool = True  # stop gradients through the teacher distribution of Eq. 11
    distill_normalize: bool = True  # Eq. 11 on unit vectors; false: on raw mu and z (the paper)
    grl_scale: float = 1.0  # gradient reversal multiplier (Sec. 4.3)
    grl_warmup_steps: int = 0  # ramp the multiplier linearly from 0 over these steps (DANN-style)
    adv_normalize: bool = True  # the head/tail classifier sees L2-normalised z

    @property
    def enabled(self) -> bool:
        return any(w > 0 for w in (self.alpha, self.beta1, self.beta2, self.lam, self.icl))

    @property
    def needs_views(self) -> bool:
        return self.beta1 > 0 or self.beta2 > 0 or self.icl > 0

    @property
    def needs_clusters(self) -> bool:
        """Whether a batch needs intents: prototypes and each sequence's assignment h(u)."""
        intent_negatives = self.beta1 > 0 and self.intent_negatives
        return self.alpha > 0 or self.beta2 > 0 or self.icl > 0 or intent_negatives

    def __post_init__(self) -> None:
        if self.contrast_on == "flat" and self.beta1 > 0 and self.intent_negatives:
            raise ValueError(
                "s4rec.contrast_on=flat gives L_SCL (max_len * d)-dimensional views, which"
                " prototypes cannot be compared with: set s4rec.intent_negatives=false"
            )
        if self.clustering == "kmeans" and self.alpha > 0:
            raise ValueError(
                "s4rec.clustering=kmeans has no trainable prototypes for L_Clust: set s4rec.alpha=0"
            )


@dataclass
class TrainConfig:
    epochs: int = 300
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 40  # epochs without a better validation NDCG@20 before stopping
    seed: int = 42
    threads: int = 0  # torch threads; 0 leaves the default
    deterministic: bool = False
    eval_batch_users: int = 1024
    eval_item_chunk: int = 32768
    progress: bool = True
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N | mps
    # fp32 | bf16 (autocast, CPU or CUDA) | fp16 (CUDA, gradient scaler); losses stay fp32
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # a model for deployment: train on every interaction (nothing held out, no validation)
    # for exactly ``epochs`` epochs, e.g. a finished run's best epoch (--epochs-from)
    final: bool = False
    # the item table gets sparse gradients and a lazy Adam (torch's SparseAdam): a step
    # costs in proportion to the items it touches, not to the catalogue, and only those
    # rows move and decay their moments (dense Adam keeps moving every row). For large
    # catalogues with "bce", "bpr" or "sampled_ce"; a different optimiser, so other numbers
    sparse_items: bool = False


@dataclass
class EvalConfig:
    """The protocol shared by evaluate, predict, recommend and analysis: a metric is computed
    on exactly the list the system would show."""

    # never show a user the items already in their history, so a target the user had
    # before (repeat consumption) is a miss; false makes earlier items rankable everywhere
    exclude_history: bool = True


@dataclass(frozen=True)
class Bound:
    """The allowed values of a numeric setting: finite, from ``lo`` to ``hi``, each end
    closed (included) unless marked open."""

    lo: float
    hi: float = math.inf
    open_lo: bool = False
    open_hi: bool = False

    def admits(self, value: float) -> bool:
        above = value > self.lo if self.open_lo else value >= self.lo
        below = value < self.hi if self.open_hi else value <= self.hi
        return math.isfinite(value) and above and below

    def __str__(self) -> str:
        lo, hi = (int(x) if float(x).is_integer() else x for x in (self.lo, self.hi))
        if self.hi == math.inf:
            return f"{'>' if self.open_lo else '>='} {lo}"
        left, right = "(" if self.open_lo else "[", ")" if self.open_hi else "]"
        return f"in {left}{lo}, {hi}{right}"


AT_LEAST_0, AT_LEAST_1, POSITIVE, SHARE = Bound(0), Bound(1), Bound(0, open_lo=True), Bound(0, 1)

# every int and float setting, with the values its use admits (tests check none is missing)
BOUNDS: dict[str, Bound] = {
    **dict.fromkeys(["data.max_len", "data.prefix_stride", "data.synthetic_users",
                     "model.hidden", "model.layers", "model.heads", "model.inner", "model.window",
                     "model.vertical_filters", "model.horizontal_filters", "loss.negatives",
                     "s4rec.prototypes", "s4rec.kmeans_restarts", "s4rec.kmeans_sample",
                     "s4rec.sinkhorn_iters", "train.batch_size", "train.eval_batch_users",
                     "train.eval_item_chunk",
                     "train.patience"], AT_LEAST_1),  # patience 0 would train no epoch
    **dict.fromkeys(["s4rec.alpha", "s4rec.beta1", "s4rec.beta2", "s4rec.lam", "s4rec.icl",
                     "s4rec.grl_scale", "s4rec.grl_warmup_steps", "s4rec.freeze_prototypes_steps",
                     "s4rec.kmeans_iters",  # 0: k-means++ seeds only
                     "train.epochs", "train.weight_decay",
                     "train.threads"], AT_LEAST_0),  # threads 0: torch's default
    **dict.fromkeys(["s4rec.tau1", "s4rec.tau2", "s4rec.tau3", "s4rec.sinkhorn_eps",
                     "train.lr"], POSITIVE),
    **dict.fromkeys(["data.head_fraction", "augment.crop", "augment.mask", "augment.reorder",
                     "augment.insert"], SHARE),
    "data.min_length": Bound(3),  # a training, a validation and a test item
    "model.dropout": Bound(0, 1, open_hi=True),
    "model.attn_dropout": Bound(0, 1, open_hi=True),
    "loss.mask_prob": Bound(0, 1, open_lo=True),  # every row masks at least its last item
    "train.seed": Bound(0, 2**32 - 1),
}  # fmt: skip


def check_settings(cfg: Config) -> None:
    """Every setting of ``BOUNDS`` within its bound, and the settings that depend on each
    other consistent; a ValueError names the first that is not."""
    flat = dotted(cfg.to_dict())
    for key, bound in BOUNDS.items():
        if not bound.admits(flat[key]):
            what = bound if math.isfinite(flat[key]) else "a finite number"
            raise ValueError(f"{key}: {flat[key]!r} is not {what}")
    m, d, ops = cfg.model, cfg.data, cfg.augment.operators
    if m.encoder in ("sasrec", "bert4rec") and m.hidden % m.heads:
        raise ValueError(f"model.hidden: {m.hidden} is not divisible by model.heads={m.heads}")
    if m.encoder == "pop" and cfg.train.epochs > 0:
        raise ValueError(
            f"train.epochs: {cfg.train.epochs} is not 0 (model.encoder=pop trains nothing)"
        )
    if d.layout == "prefix" and d.prefix_stride > d.max_len:
        raise ValueError(
            f"data.prefix_stride: {d.prefix_stride} is not <= data.max_len={d.max_len}"
        )
    if not ops or set(ops) - set(OPERATORS):
        raise ValueError(f"augment.operators: {list(ops)} is not a non-empty subset of {OPERATORS}")
    if cfg.train.sparse_items:
        if cfg.loss.next_item == "ce":
            raise ValueError(
                "train.sparse_items: the full softmax (loss.next_item=ce) scores every item,"
                " so every row gets a gradient: use sampled_ce, bce or bpr"
            )
        if cfg.train.weight_decay:
            raise ValueError("train.sparse_items: the lazy Adam has no weight decay: set"
                             " train.weight_decay=0")  # fmt: skip


# settings that change where and how fast a trained model runs, never what it computes
RUNTIME = ("train.threads", "train.device", "train.progress", "train.precision",
           "train.eval_batch_users", "train.eval_item_chunk")  # fmt: skip


@dataclass
class Config:
    method: str = "sasrec"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    s4rec: S4RecConfig = field(default_factory=S4RecConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        _check_types(self)  # built in Python, not through from_dict: the same checks
        if self.augment.mask_token == "padding" and self.model.encoder != "sasrec":
            raise ValueError(
                f"augment.mask_token=padding needs model.encoder=sasrec, not {self.model.encoder}"
            )
        check_settings(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path, comment: str = "") -> None:
        """Write YAML atomically, with ``comment`` as ``#`` lines above it."""
        head = "".join(f"# {line}\n" for line in comment.splitlines())
        write_text_atomic(path, head + yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> Config:
        return _build(cls, raw, where)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read YAML (``.yaml``/``.yml``) or TOML (``.toml``)."""
        return cls.from_dict(read_mapping(path), where=str(path))

    def override(self, assignments: list[str]) -> Config:
        """Apply ``section.key=value`` strings (``value`` parsed as YAML), returning a new config."""
        if isinstance(assignments, str):
            raise ValueError(f"--set {assignments!r}: give a list of key=value strings")
        raw = self.to_dict()
        for item in assignments:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r}: expected key=value, e.g. train.lr=0.001")
            if key.strip() == "method":  # a method is its settings, not a name
                raise ValueError(f"--set {item!r}: a method is chosen with --method (in Python,"
                                 " s4rec.methods.configure), which applies its settings")  # fmt: skip
            set_dotted(raw, key.strip(), yaml.safe_load(value))
        return Config.from_dict(raw, where="--set")

    def for_trained_model(self, assignments: list[str]) -> Config:
        """``override`` limited to what may change once a model is trained: the ``eval.*``
        protocol and the ``RUNTIME`` settings (``evaluate``, ``predict``, ``recommend`` and
        ``analyze`` take these)."""
        if isinstance(assignments, str):
            raise ValueError(f"--set {assignments!r}: give a list of key=value strings")
        frozen = [a for a in assignments
                  if not (a.strip().startswith("eval.") or a.partition("=")[0].strip() in RUNTIME)]  # fmt: skip
        if frozen:
            raise ValueError(f"--set {frozen[0]!r}: only eval.* settings can change after"
                             f" training (and the runtime settings {', '.join(RUNTIME)})")  # fmt: skip
        return self.override(assignments)

    def changes(self, other: Config, ignore: tuple[str, ...] = ()) -> list[str]:
        """``key: mine -> other's`` for every dotted key whose value differs, except ``ignore``."""
        mine, theirs = dotted(self.to_dict()), dotted(other.to_dict())
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine
                if k not in ignore and mine[k] != theirs[k]]  # fmt: skip


def _shown(value: object) -> str:
    """A value as an error quotes it: ``--set key=`` (YAML null) is "no value"."""
    return "no value" if value is None else repr(value)


def dotted(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping flattened to ``{"a.b": value}``."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML or (``.toml``) TOML file's top-level mapping; errors name the file."""
    path = Path(path)
    toml = path.suffix == ".toml"
    try:
        raw = read_parsed(path, tomllib.loads if toml else yaml.safe_load)
        if raw is not None and not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
    except ValueError:
        if toml or not _is_toml(path):
            raise
        raise ValueError(f"{path}: this is TOML: name the file {path.stem}.toml") from None
    return raw or {}


def _is_toml(path: Path) -> bool:
    try:
        return bool(tomllib.loads(path.read_text(encoding="utf-8")))
    except ValueError:
        return False


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw['a']['b'] = value`` for ``key == 'a.b'``, creating nothing unknown."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"unknown configuration section {part!r} in {key!r}")
        node = node[part]
    if leaf not in node:
        raise ValueError(f"unknown configuration key {key!r}; known: {', '.join(node)}")
    node[leaf] = value


def _build(cls: type, raw: dict[str, Any], where: str, section: str = "") -> Any:
    """``cls`` from the mapping ``raw`` (``section`` of the source ``where``), every value
    checked against its type hint; errors read ``where: section.key: what is wrong``."""
    here = f"{where}: {section}" if section else where
    if not isinstance(raw, dict):
        raise ValueError(f"{here}: expected a mapping for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(
            f"{here}: unknown key(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(names)}"
        )
    kwargs = {}
    for name, value in raw.items():
        hint, key = hints[name], f"{section}.{name}" if section else name
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, where, key)
        else:
            kwargs[name] = _coerce(value, hint, f"{where}: {key}")
    return cls(**kwargs)


def _check_types(cfg: Config) -> None:
    """Every section of ``cfg`` of its dataclass and every value checked (and normalised:
    lists to tuples, integers to floats) against its type hint, as ``_build`` does."""
    hints = typing.get_type_hints(Config)
    for f in fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            setattr(cfg, f.name, _coerce(value, hint, f"Config: {f.name}"))
            continue
        if not isinstance(value, hint):
            raise ValueError(f"Config: {f.name}: expected a {hint.__name__}, got {value!r}")
        inner = typing.get_type_hints(hint)
        for g in fields(value):
            where = f"Config: {f.name}.{g.name}"
            setattr(value, g.name, _coerce(getattr(value, g.name), inner[g.name], where))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint (int, float, str, bool, Literal, Optional)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"{where}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError("; ".join(errors))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {_shown(value)}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_coerce(v, item, where) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected true/false, got {_shown(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected an integer, got {_shown(value)}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-3 (no decimal point) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: expected a number, got {_shown(value)}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where}: expected a string, got {_shown(value)}")
    raise TypeError(f"{where}: unsupported type hint {hint!r}")
