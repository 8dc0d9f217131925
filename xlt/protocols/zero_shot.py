"""Zero-shot transfer (the default): train on the training language only, test every language.

XTREME's main protocol: no target-language row is looked at, for training or for selection.
"""
from __future__ import annotations

from typing import List

from xlt.config.schema import XltConfig
from xlt.protocols._base import Part, source_part

NEEDS_TARGET = False
SELECTION = "the training language's validation set: zero-shot looks at no target-language data"


def train_parts(cfg: XltConfig) -> List[Part]:
    return [source_part(cfg)]
