"""The protocols layer: what a cross-lingual protocol means for a job, one module each
(zero_shot, translate_train, translate_train_all, few_shot; conf/protocol/NAME.yaml).

A protocol module follows `xlt.config.plugins.TransferProtocol` and owns its options (`Options`, a
dataclass extending `ProtocolConfig`) and their checks (`check(cfg)`). It says which rows a job
trains on (`train_parts`), which languages it validates and tests (`eval_languages`), which
validation set selects its weights (`dev_languages`, with the reason in `SELECTION`), and what jobs
a sweep makes of it (`expand`). Everything that reads data asks here, so the files a job reads
(`splits_read`) are the ones pinned, fetched, hashed and checked. Code asks the protocol's module,
never its name. Pure config logic: no datasets, no torch.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import List, Tuple

from omegaconf import DictConfig

from xlt.config import plugins
from xlt.config.files import LOCAL_SUFFIX, data_dir_of, local_file
from xlt.config.schema import XltConfig
from xlt.config.validate import validate
from xlt.core.errors import ConfigError
from xlt.protocols import _base
from xlt.protocols._base import Part, targets
from xlt.tasks import metric_of

__all__ = ["Part", "check", "dev_languages", "eval_languages", "expand", "local_files",
           "protocol_of", "selection", "selection_languages", "splits_read", "targets", "train_parts",
           "validate_job"]


def protocol_of(cfg: XltConfig) -> ModuleType:
    """The module of a job's protocol: `protocol.module`, else xlt/protocols/NAME.py."""
    return plugins.load("protocol", cfg.protocol)


def _ask(cfg: XltConfig, what: str):
    """The protocol's answer, or zero-shot's (xlt.protocols._base) where it gives none."""
    module = protocol_of(cfg)
    return (getattr(module, what) if hasattr(module, what) else getattr(_base, what))(cfg)


def train_parts(cfg: XltConfig) -> List[Part]:
    return _ask(cfg, "train_parts")


def eval_languages(cfg: XltConfig) -> List[str]:
    return _ask(cfg, "eval_languages")


def dev_languages(cfg: XltConfig) -> List[str]:
    return _ask(cfg, "dev_languages")


def expand(cfg: XltConfig) -> List[List[str]]:
    """The overrides of each job a sweep makes of this one; a protocol that makes none is an error
    (translate-train with no target language), not a sweep that runs nothing."""
    jobs = _ask(cfg, "expand")
    if not jobs:
        source = cfg.data.train_language
        raise ConfigError("languages.eval", f"protocol {cfg.protocol.name} makes no job of languages.eval="
                                            f"[{','.join(cfg.languages.eval)}]: it needs a target language beside "
                                            f"{source}, e.g. languages.eval=[{source},de]")
    return jobs


def validation_languages(cfg: XltConfig) -> List[str]:
    """The evaluated languages that have a validation split (the task's `validated`)."""
    have = cfg.task.validated
    return [lang for lang in eval_languages(cfg) if have is None or lang in have]


def selection_languages(cfg: XltConfig) -> List[str]:
    """The languages whose mean validation accuracy ranks evaluation rounds ([]: no ranking)."""
    langs = eval_languages(cfg)
    return {"dev": dev_languages(cfg), "en_dev": [cfg.data.train_language],
            "target_dev": [lang for lang in langs if lang != cfg.data.train_language]}.get(cfg.train.select, [])


def selection(cfg: XltConfig) -> str:
    """What selects a job's tested weights, and why: logged with its run."""
    if cfg.train.select != "dev":
        return f"train.select={cfg.train.select}"
    return f"{'+'.join(dev_languages(cfg))} validation {metric_of(cfg.task)} ({protocol_of(cfg).SELECTION})"


def splits_read(cfg: XltConfig) -> List[Tuple[str, str]]:
    """(language, split) of everything a job reads: its training parts, then each evaluated
    language's validation and test."""
    reads = [(part.lang, part.split) for part in train_parts(cfg)]
    evaluated = [(lang, "validation") for lang in validation_languages(cfg)] + \
        [(lang, "test") for lang in eval_languages(cfg)]
    return list(dict.fromkeys(reads + evaluated))


def local_files(cfg: XltConfig) -> List[Path]:
    """The local files (JSONL, CoNLL-U) a job with local data reads."""
    return [local_file(cfg, split, lang) for lang, split in splits_read(cfg)]


def check(cfg: XltConfig) -> XltConfig:
    """What a job's protocol needs of its config and its local files; raises ConfigError."""
    if protocol_of(cfg).NEEDS_TARGET and not targets(cfg):
        raise ConfigError("languages.eval", f"protocol {cfg.protocol.name} needs a target language, but "
                                            f"languages.eval lists only {cfg.data.train_language}; add one, e.g. "
                                            f"languages.eval=[{cfg.data.train_language},de]")
    _check_selection(cfg)
    _check_files(cfg)
    return cfg


def _check_selection(cfg: XltConfig) -> None:
    evaluated, scored = eval_languages(cfg), selection_languages(cfg)
    if cfg.train.select in ("dev", "en_dev", "target_dev") and not scored:
        raise ConfigError("train.select", f"{cfg.train.select} needs a target language in languages.eval; "
                                          "add one or use train.select=dev")
    missing = [lang for lang in scored if lang not in evaluated]
    if missing:
        other = "last" if cfg.train.select == "dev" else "dev"
        fix = f"add it or use train.select={other}"
        lacks = f"languages.eval lacks {', '.join(missing)}; {fix}"
        if not set(missing) - set(cfg.languages.eval):
            lacks = f"the protocol evaluates {', '.join(evaluated)} only; use train.select={other}"
        raise ConfigError("train.select", f"{cfg.train.select} selects on {'+'.join(scored)} validation accuracy "
                                          f"(protocol {cfg.protocol.name}), but {lacks}")
    unvalidated = [lang for lang in scored if lang not in validation_languages(cfg)]
    if unvalidated:
        have = ", ".join(cfg.task.validated or [])
        raise ConfigError("train.select", f"{cfg.train.select} selects on {'+'.join(scored)} validation, but "
                                          f"task={cfg.task.name} has validation rows in {have} only; "
                                          "use train.select=en_dev or last")


def _check_files(cfg: XltConfig) -> None:
    if cfg.data.source not in ("jsonl", "sample"):
        return
    data_dir = data_dir_of(cfg)
    if not data_dir.is_dir():
        kind = "CoNLL-U" if cfg.data.source == "conllu" else "JSONL"
        raise ConfigError("data.dir", f"{kind} directory {str(data_dir)!r} does not exist")
    missing = [path.name for path in local_files(cfg) if not path.is_file()]
    if missing and cfg.data.source == "sample":
        raise ConfigError("data", f"protocol {cfg.protocol.name} reads {', '.join(missing)}, which the bundled sample "
                                  "lacks (it has English training rows only); use data=jsonl data.dir=DIR, "
                                  "data=xnli (the hub) or data.hub_id=DIR (a copy of the dataset repo)")
    if missing:
        raise ConfigError("data.dir", f"{str(data_dir)!r} lacks {', '.join(missing)} (protocol {cfg.protocol.name}); "
                                      f"files are named {{split}}.{{lang}}.{LOCAL_SUFFIX[cfg.data.source]}")


def validate_job(cfg: DictConfig | XltConfig) -> XltConfig:
    """The whole check of a job: its config (xlt.config.validate), then what its protocol needs."""
    return check(validate(cfg))
