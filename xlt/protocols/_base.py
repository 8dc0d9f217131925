"""What every protocol module shares: a part of a job's training data, and the target languages."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from xlt.config.schema import XltConfig


@dataclass(frozen=True)
class Part:
    """Rows of one language's split that a job trains on."""
    lang: str
    rows: Optional[int]  # how many (None: all), a random subset drawn with `seed`
    seed: int
    split: str = "train"
    # The field asking for exactly `rows` rows (few-shot's protocol.shots): fewer in the split is
    # an error naming it, not "take them all".
    exact: Optional[str] = None


def targets(cfg: XltConfig) -> List[str]:
    """The evaluation languages but the training one."""
    return [lang for lang in cfg.languages.eval if lang != cfg.data.train_language]


def source_part(cfg: XltConfig, lang: Optional[str] = None) -> Part:
    """A language's training split within `train.max_train_samples`, drawn with `train.seed`."""
    return Part(lang or cfg.data.train_language, cfg.train.max_train_samples, cfg.train.seed)


# What a protocol module does not define, it does as zero-shot does.

def eval_languages(cfg: XltConfig) -> List[str]:
    """The languages a job validates and tests on."""
    return list(cfg.languages.eval)


def dev_languages(cfg: XltConfig) -> List[str]:
    """The languages whose mean validation accuracy `train.select=dev` ranks rounds by."""
    return [cfg.data.train_language]


def expand(cfg: XltConfig) -> List[List[str]]:
    """The overrides of each job a sweep makes of this one (one job: [[]])."""
    return [[]]
