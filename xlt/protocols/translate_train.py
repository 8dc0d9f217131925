"""Translate-train: for each target language, a model trained on that language's (machine-
translated) training split and tested on it. A sweep expands one job per target language of
`languages.eval` (`protocol.target`); XTREME reports the mean over them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from xlt.config.schema import ProtocolConfig, XltConfig
from xlt.core.errors import ConfigError
from xlt.protocols._base import Part, source_part, targets

NEEDS_TARGET = True
SELECTION = ("the target language's validation set: the job trains, selects and tests in that language "
             "alone, as zero-shot does in English")


@dataclass
class Options(ProtocolConfig):
    # The one target language a job trains and tests on; a sweep (-m) sets it, one job per target
    # language of languages.eval.
    target: Optional[str] = None


def check(cfg: XltConfig) -> None:
    target = cfg.protocol.target
    if target is not None and target not in targets(cfg):
        raise ConfigError("protocol.target", f"{target!r} is not a target language of languages.eval "
                                             f"({', '.join(targets(cfg))})")


def _target(cfg: XltConfig) -> str:
    if cfg.protocol.target is None:
        raise ConfigError("protocol.target", "translate_train trains one model per target language: give "
                                             "protocol.target=LANG, or run with -m for one job per language")
    return cfg.protocol.target


def train_parts(cfg: XltConfig) -> List[Part]:
    return [source_part(cfg, _target(cfg))]


def eval_languages(cfg: XltConfig) -> List[str]:
    return [_target(cfg)]


def dev_languages(cfg: XltConfig) -> List[str]:
    return [_target(cfg)]


def expand(cfg: XltConfig) -> List[List[str]]:
    if cfg.protocol.target is not None:
        return [[]]
    return [[f"protocol.target={lang}"] for lang in targets(cfg)]
