"""Fine-tuning: the whole network trains (conf/technique/fine_tune.yaml)."""
from __future__ import annotations

from typing import List

from xlt.config import TechniqueConfig


def prepare(model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
    """Every parameter trains, as loaded."""


def caches_features(cfg: TechniqueConfig) -> bool:
    return False  # the encoder changes at every step
