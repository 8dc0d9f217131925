"""Translate-train-all: one model on the training splits of every evaluation language (English
and the translated ones), each within `train.max_train_samples`: the budget applies per language.
"""
from __future__ import annotations

from typing import List

from xlt.config.schema import XltConfig
from xlt.protocols._base import Part, source_part

NEEDS_TARGET = True
SELECTION = ("the mean validation accuracy over every evaluation language: the model trains on all of "
             "them, so none is held out")


def train_parts(cfg: XltConfig) -> List[Part]:
    return [source_part(cfg, lang) for lang in cfg.languages.eval]


def dev_languages(cfg: XltConfig) -> List[str]:
    return list(cfg.languages.eval)
