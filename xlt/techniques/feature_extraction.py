"""Feature extraction: the pretrained encoder is frozen and only the head trains
(conf/technique/feature_extraction.yaml), on features cached once unless
`technique.cache_features=false` (the slow path, for comparison)."""
from __future__ import annotations

from typing import List

from xlt.config import TechniqueConfig
from xlt.model.freezing import freeze_encoder


def prepare(model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
    freeze_encoder(model, newly_initialised)


def caches_features(cfg: TechniqueConfig) -> bool:
    return cfg.cache_features  # the frozen encoder gives the same vector at every step
