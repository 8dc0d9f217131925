"""Feature extraction: the pretrained encoder is frozen and only the head trains
(conf/technique/feature_extraction.yaml), on features cached once unless
`technique.cache_features=false` (the slow path, for comparison)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from xlt.config import TechniqueConfig, TrainingDefaults
from xlt.model.freezing import freeze_encoder


@dataclass
class Options(TechniqueConfig):
    # Run the frozen encoder once and train the head on cached features; false runs the encoder
    # at every step (the slow path, for comparison).
    cache_features: bool = True
    # A head alone needs a far larger learning rate and many more epochs than a whole network
    # (5e-5 for 3 epochs leaves it at chance); cached features make the epochs nearly free.
    # The head's weights are a few hundred KB: kept.
    train: TrainingDefaults = field(default_factory=lambda: TrainingDefaults(
        learning_rate=1e-3, epochs=10, save="selected"))


def prepare(model, newly_initialised: List[str], cfg: Options) -> None:
    freeze_encoder(model, newly_initialised)


def caches_features(cfg: Options) -> bool:
    return cfg.cache_features  # the frozen encoder gives the same vector at every step
