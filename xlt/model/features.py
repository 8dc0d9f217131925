"""Cached encoder features: the pooled vector of every text, computed once by a frozen encoder.

Every supported head starts from one vector per text (xlt.model.pooling). A technique whose
encoder never changes (feature extraction) caches that vector on disk, shared by jobs and
epochs; `xlt.model.heads.CachedHead` then applies the model's own head modules to it.
"""
from __future__ import annotations

import hashlib
import json
import logging

import datasets
import numpy as np
import torch

from xlt.config.schema import XltConfig
from xlt.core.console import on_terminal
from xlt.data.cache import disk_cached
from xlt.data.hub import ModelSource
from xlt.data.splits import EncodedData
from xlt.model.pooling import pool
from xlt.protocols import train_parts

FORMAT = 2  # bump when what is cached changes
log = logging.getLogger(__name__)


@torch.no_grad()
def _run_encoder(model, ds: datasets.Dataset, tokenizer, pooling: str, batch_size: int, desc: str) -> np.ndarray:
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
        features = _run_encoder(model, ds, tokenizer, pooling, cfg.train.eval_batch_size, f"encoding {desc}")
        rows = {"row": ds["row"]} if "row" in ds.column_names else {}  # evaluation rows' file order
        return datasets.Dataset.from_dict({"features": features, "labels": ds["label"], **rows})

    return disk_cached(cfg.cache_dir / "features" / f"{desc}.{key}", make).with_format("torch")


def features_of(cfg: XltConfig, source: ModelSource, model, tokenizer, pooling: str,
                data: EncodedData) -> EncodedData:
    """Every split of a job as cached encoder features."""
    def each(split: str, by_lang: dict) -> dict:
        return {lang: cached_features(cfg, source, model, tokenizer, pooling, ds, f"{split}.{lang}")
                for lang, ds in by_lang.items()}

    train = cached_features(cfg, source, model, tokenizer, pooling, data.train,
                            "train." + "+".join(dict.fromkeys(part.lang for part in train_parts(cfg))))
    return EncodedData(train=train, validation=each("validation", data.validation), test=each("test", data.test))
