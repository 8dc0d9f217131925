"""Few-shot transfer: the training language's rows plus `protocol.shots` rows of each target
language, drawn with `train.seed` from that language's training split (never from validation or
test), so that seeds differ in their shots as well (Lauscher et al., 2020; Zhao et al., 2021).
`protocol.shots=0` is zero-shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

from xlt.config.schema import ProtocolConfig, XltConfig
from xlt.core.errors import ConfigError
from xlt.protocols._base import Part, source_part, targets

NEEDS_TARGET = True
SELECTION = ("the training language's validation set: K target rows are too few to spare a target "
             "dev set, and selecting on a large one would be the oracle few-shot work warns against")


@dataclass
class Options(ProtocolConfig):
    shots: int = 10  # target-language training rows per evaluation language; a curve: protocol.shots=0,10,100


def check(cfg: XltConfig) -> None:
    if cfg.protocol.shots < 0:
        raise ConfigError("protocol.shots", f"is a number of rows per target language, >= 0; got {cfg.protocol.shots}")


def train_parts(cfg: XltConfig) -> List[Part]:
    shots = cfg.protocol.shots
    target_parts = [Part(lang, shots, cfg.train.seed, exact="protocol.shots") for lang in targets(cfg)]
    return [source_part(cfg)] + (target_parts if shots else [])
