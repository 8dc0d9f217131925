"""The classification head on one pooled vector per text: the model's own head modules.

`PooledClassifier` runs the encoder, pools (xlt.model.pooling) and applies the head: the path
for any pooling. `CachedHead` applies the same head modules to cached features (xlt.model.features),
so both paths train the same parameters.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from xlt.core.errors import ConfigError
from xlt.model.pooling import pool


def classify(model, pooled: torch.Tensor) -> torch.Tensor:
    """Logits from pooled states, through the model's own classification head."""
    kind = model.config.model_type
    if kind == "distilbert":
        hidden = nn.functional.relu(model.pre_classifier(pooled))
        return model.classifier(model.dropout(hidden))
    if kind in ("roberta", "xlm-roberta", "camembert"):
        return model.classifier(pooled.unsqueeze(1))  # the head reads position 0
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None and hasattr(model, "classifier") and hasattr(model, "dropout"):
        return model.classifier(model.dropout(pooler(pooled.unsqueeze(1))))
    raise ConfigError("technique.cache_features", f"no cached head for model type {kind!r}; "
                                                  "set technique.cache_features=false")


def _loss(logits: torch.Tensor, labels: torch.Tensor | None) -> SequenceClassifierOutput:
    loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
    return SequenceClassifierOutput(loss=loss, logits=logits)


class PooledClassifier(nn.Module):
    """Encoder, `pool`, then the model's head: the uncached path for any pooling."""

    def __init__(self, model, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        states = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return _loss(classify(self.model, pool(states.last_hidden_state, attention_mask, self.pooling)), labels)


class CachedHead(nn.Module):
    """The classifier's head, fed cached encoder features instead of token ids."""

    def __init__(self, model):
        super().__init__()
        self.model = model  # the encoder's weights ride along, frozen and unused

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None):
        return _loss(classify(self.model, features), labels)
