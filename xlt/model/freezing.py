"""Which parameters train: freeze the pretrained encoder, leave the head and anything new.

The rule: freeze exactly the encoder parameters that were loaded from the checkpoint.
Everything the checkpoint did not provide trains, so the head is right for every architecture:
BERT's pretrained pooler stays frozen, a pooler missing from the checkpoint (e.g.
multilingual-e5) trains instead of staying random, DistilBERT's `pre_classifier` and XLM-R's
dense head layer train.
"""
from __future__ import annotations

from typing import Iterable, List


def freeze_encoder(model, newly_initialised: Iterable[str], keep: Iterable[str] = ()) -> List[str]:
    """Freeze the pretrained encoder but the parameters whose names start with one of `keep`;
    return the names of the parameters left trainable."""
    prefix = model.base_model_prefix + "."
    new, keep = set(newly_initialised), tuple(keep)
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith(prefix) or name in new or name.startswith(keep)
        if param.requires_grad:
            trainable.append(name)
    return trainable


def count_parameters(model) -> dict:
    """{'trainable': N, 'total': M} parameters of `model`."""
    params = list(model.parameters())
    return {"trainable": sum(p.numel() for p in params if p.requires_grad), "total": sum(p.numel() for p in params)}
