"""BitFit (Ben Zaken et al., 2022): only the encoder's bias terms and the head train
(conf/technique/bitfit.yaml). No dependency; its saved weights are those few parameters."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from xlt.config import TechniqueConfig, TrainingDefaults
from xlt.model.freezing import freeze_encoder


@dataclass
class Options(TechniqueConfig):
    # Biases alone need a far larger learning rate than the whole network; 2e-3 with batches of 16
    # learned in a pilot on 4,000 rows (BENCHMARKS.md: the techniques). Their weights are small: kept.
    train: TrainingDefaults = field(default_factory=lambda: TrainingDefaults(
        learning_rate=2e-3, batch_size=16, save="selected"))


def prepare(model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
    biases = [name for name, _ in model.named_parameters() if name.endswith(".bias")]
    freeze_encoder(model, newly_initialised, keep=biases)


def caches_features(cfg: TechniqueConfig) -> bool:
    return False  # the biases change the encoder's output at every step
