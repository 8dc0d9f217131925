"""Saved weights: the parameters a technique trains, in one safetensors file, and back.

The smallest form that reloads a frozen-encoder technique: the base checkpoint plus this file
give the trained model again (xlt.train.saved.load_saved).
"""
from __future__ import annotations

from pathlib import Path

TRAINABLE_FILE = "trainable.safetensors"


def save_trainable(model, directory: Path) -> None:
    """Write the parameters that train (`requires_grad`) to directory/trainable.safetensors."""
    from safetensors.torch import save_file

    state = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_file(state, str(Path(directory) / TRAINABLE_FILE))


def load_trainable(model, directory: Path) -> None:
    """Load directory/trainable.safetensors into a model prepared as the saving one was."""
    from safetensors.torch import load_file

    unexpected = model.load_state_dict(load_file(str(Path(directory) / TRAINABLE_FILE)), strict=False).unexpected_keys
    if unexpected:
        raise ValueError(f"{directory} holds weights this model lacks: {', '.join(unexpected[:3])}")
