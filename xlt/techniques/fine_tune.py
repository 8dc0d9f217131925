"""Fine-tuning: the whole network trains (conf/technique/fine_tune.yaml), with the training
budget every technique starts from (`TrainingDefaults`: learning rate 5e-5, 3 epochs, batches of 32)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from xlt.config import TechniqueConfig


def prepare(model, newly_initialised: List[str], cfg: TechniqueConfig) -> None:
    """Every parameter trains, as loaded."""


def caches_features(cfg: TechniqueConfig) -> bool:
    return False  # the encoder changes at every step


def save_weights(model, directory: Path) -> None:
    """The whole model, as transformers saves it: `AutoModelForSequenceClassification.from_pretrained`
    reads the directory (the tokenizer is the base model's)."""
    model.save_pretrained(directory)


def load_weights(model, directory: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(Path(directory) / "model.safetensors")), strict=False)
