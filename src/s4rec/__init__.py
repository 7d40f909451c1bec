"""s4rec: S^4Rec, SASRec and the baselines of sequential recommendation, with full-ranking
evaluation."""

from typing import TYPE_CHECKING, Any

from .config import Config, DataConfig, LossConfig, ModelConfig, TrainConfig
from .data.dataset import LeaveOneOut
from .data.sequences import Sequences
from .evaluate import Ranker, evaluate, metrics_from_ranks
from .inference import Recommender
from .model import BERT4Rec, Caser, GRU4Rec, SASRec, SequenceEncoder, build_encoder, pool

if TYPE_CHECKING:
    from .train import Trainer

__all__ = [
    "BERT4Rec",
    "Caser",
    "Config",
    "DataConfig",
    "GRU4Rec",
    "LeaveOneOut",
    "LossConfig",
    "ModelConfig",
    "Ranker",
    "Recommender",
    "SASRec",
    "SequenceEncoder",
    "Sequences",
    "TrainConfig",
    "Trainer",
    "build_encoder",
    "evaluate",
    "metrics_from_ranks",
    "pool",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``s4rec.Trainer`` on first use: serving, inference and reports never load the trainer."""
    if name == "Trainer":
        from .train import Trainer

        return Trainer
    raise AttributeError(f"module 's4rec' has no attribute {name!r}")
