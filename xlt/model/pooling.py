"""Which vector of an encoder's output the classification head reads.

`cls` is the first token's hidden state, what the Hugging Face heads read themselves; `mean`
is the masked mean of the last layer, what sentence encoders such as multilingual-e5 were
trained to produce. `model.pooling=auto` asks the checkpoint: a sentence-transformers model
names its pooling in `modules.json` and `<module>/config.json` (e.g. `1_Pooling`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Tuple

import torch

from xlt.config.schema import ModelConfig
from xlt.data.hub import ModelSource

log = logging.getLogger(__name__)
ST_POOLING = "sentence_transformers.models.Pooling"
# sentence-transformers modes xlt can apply, in the order it checks them.
_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def pool(states: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return states[:, 0]
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


def _checkpoint_json(source: ModelSource, filename: str) -> Optional[dict]:
    """A JSON file of the checkpoint (local directory or hub repo), None if it has none."""
    if source.revision is None:
        path = Path(source.path) / filename
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(source.path, filename, revision=source.revision)
    if isinstance(cached, str):
        return json.loads(Path(cached).read_text())
    if cached is not None:  # the cache knows the repo has no such file
        return None
    try:
        return json.loads(Path(hf_hub_download(source.path, filename, revision=source.revision)).read_text())
    except Exception:  # noqa: BLE001 - absent, or unreachable: the model loader reports the latter
        return None


def sentence_transformers_pooling(source: ModelSource) -> Optional[Tuple[str, dict]]:
    """(where, config) of the checkpoint's sentence-transformers pooling module, if any."""
    modules = _checkpoint_json(source, "modules.json") or []
    folders = [m.get("path", "") for m in modules if m.get("type") == ST_POOLING] or ["1_Pooling"]
    for folder in folders:
        where = f"{folder}/config.json"
        config = _checkpoint_json(source, where)
        if config is not None:
            return where, config
    return None


def resolve_pooling(cfg: ModelConfig, source: ModelSource) -> Tuple[str, str]:
    """(pooling, why) for `model.pooling`; `auto` is decided from the checkpoint."""
    if cfg.pooling != "auto":
        return cfg.pooling, f"model.pooling={cfg.pooling}"
    found = None if source.path is None else sentence_transformers_pooling(source)
    if found is None:
        return "cls", "no sentence-transformers pooling config: the architecture's own head input"
    where, config = found
    for key, pooling in _MODES.items():
        if config.get(key):
            return pooling, f"{where} sets {key}"
    modes = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    return "cls", f"{where} asks for {', '.join(modes) or 'nothing'}, which xlt does not apply: using cls"
