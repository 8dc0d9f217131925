"""Pooled encoder features, and the model's own head applied to them.

Every supported head starts from one vector per text (`xlt.pooling`). Feature extraction
caches that vector (on disk, shared by jobs and epochs),
since the frozen encoder gives the same one at every step; `classify` then applies the
model's own head modules to it, the same parameters as in the uncached path.
"""
from __future__ import annotations

import hashlib
import json
import logging

import datasets
import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from xlt.cache import disk_cached
from xlt.console import on_terminal
from xlt.config import XltConfig
from xlt.data import EncodedData
from xlt.errors import ConfigError
from xlt.hub import ModelSource
from xlt.pooling import pool

FORMAT = 1  # bump when what is cached changes
log = logging.getLogger(__name__)


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


@torch.no_grad()
def _encode(model, ds: datasets.Dataset, tokenizer, pooling: str, batch_size: int, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    encoder = model.base_model.eval()
    device = next(encoder.parameters()).device
    order = np.argsort(ds["length"], kind="stable")  # length-sorted batches: little padding
    out = np.empty((len(ds), model.config.hidden_size), dtype=np.float32)
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in ds.column_names]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    log.info("%s: %d texts through the frozen encoder (cached for later epochs and jobs)", desc, len(ds))
    for start in tqdm(range(0, len(ds), batch_size), desc=desc, leave=False, disable=not on_terminal()):
        idx = order[start:start + batch_size]
        batch = tokenizer.pad(ds.select_columns(columns)[idx], return_tensors="pt").to(device)
        with autocast:
            states = pool(encoder(**batch).last_hidden_state, batch["attention_mask"], pooling)
        out[idx] = states.float().cpu().numpy()
    return out


def _model_id(cfg: XltConfig, source: ModelSource) -> str:
    if cfg.model.source == "tiny":  # a random encoder: its seed is part of its identity
        return json.dumps([source.identity, cfg.train.seed])
    return source.identity  # repo@commit, or the sha256 of a directory's weights


def cached_features(cfg: XltConfig, source: ModelSource, model, tokenizer, pooling: str, ds: datasets.Dataset,
                    desc: str) -> datasets.Dataset:
    """Pooled features of a tokenized split, from the shared cache when present."""
    identity = [FORMAT, _model_id(cfg, source), pooling, ds._fingerprint]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]

    def make() -> datasets.Dataset:
        features = _encode(model, ds, tokenizer, pooling, cfg.train.eval_batch_size, f"encoding {desc}")
        return datasets.Dataset.from_dict({"features": features, "labels": ds["label"]})

    return disk_cached(cfg.cache_dir / "features" / f"{desc}.{key}", make).with_format("torch")


def features_of(cfg: XltConfig, source: ModelSource, model, tokenizer, pooling: str,
                data: EncodedData) -> EncodedData:
    """Every split of a job as cached encoder features."""
    def each(split: str, by_lang: dict) -> dict:
        return {lang: cached_features(cfg, source, model, tokenizer, pooling, ds, f"{split}.{lang}")
                for lang, ds in by_lang.items()}

    train = cached_features(cfg, source, model, tokenizer, pooling, data.train,
                            f"train.{cfg.data.train_language}")
    return EncodedData(train=train, validation=each("validation", data.validation), test=each("test", data.test))
