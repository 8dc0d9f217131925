"""BitFit (Ben Zaken et al., 2022): only the encoder's bias terms and the head train
(conf/technique/bitfit.yaml). No dependency; its saved weights are those few parameters."""
from __future__ import annotations

from typing import List

from xlt.config import TechniqueConfig
from xlt.model.freezing import freeze_encoder


def prepare(model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
    biases = [name for name, _ in model.named_parameters() if name.endswith(".bias")]
    freeze_encoder(model, newly_initialised, keep=biases)


def caches_features(cfg: TechniqueConfig) -> bool:
    return False  # the biases change the encoder's output at every step
