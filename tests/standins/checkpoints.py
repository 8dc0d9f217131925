"""Tiny random checkpoints saved as their hub repos are, for loading tests."""
from __future__ import annotations

from pathlib import Path


def tiny_checkpoint(into: Path, kind: str = "bert", seed: int = 0) -> Path:
    """A tiny random checkpoint saved from the class its hub repo uses, with a tokenizer."""
    import torch
    from transformers import (
        BertConfig,
        BertForPreTraining,
        DistilBertConfig,
        DistilBertForMaskedLM,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
    )

    from xlt.model.loading import build_tiny_tokenizer

    tok = build_tiny_tokenizer(300)
    shape = dict(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=160)
    torch.manual_seed(seed)
    if kind == "bert":
        model = BertForPreTraining(BertConfig(**shape, pad_token_id=tok.pad_token_id))
    elif kind == "xlmr":
        model = XLMRobertaForMaskedLM(XLMRobertaConfig(**shape, pad_token_id=tok.pad_token_id))
    else:
        model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=16, n_layers=1, n_heads=2,
                                                       hidden_dim=32, max_position_embeddings=160,
                                                       pad_token_id=tok.pad_token_id))
    model.save_pretrained(into)
    tok.save_pretrained(into)
    return into


def saved_encoder(tmp_path, kind):
    """A tiny checkpoint saved from the class its hub repo was saved from (tests/standins/), loaded
    as xlt loads a local model: (classifier, names of the newly initialised parameters)."""
    return load_local(tiny_checkpoint(tmp_path / kind, kind))


def load_local(path):
    from xlt.config import ModelConfig
    from xlt.data.hub import model_source
    from xlt.model.loading import load_model

    from conftest import LABELS

    cfg = ModelConfig(name=path.name, source="local", path=str(path))
    return load_model(cfg, model_source(cfg), None, LABELS)
