"""Where things are on disk: xlt's config tree, the bundled sample, the files a job reads."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from omegaconf import OmegaConf

from xlt.config.schema import TaskConfig, XltConfig
from xlt.core.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"  # real XNLI rows, CC BY-NC 4.0


def task_preset(name: str) -> TaskConfig:
    """A task as conf/task/NAME.yaml defines it (for code and tests that compose no config)."""
    node = OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml"))
    return OmegaConf.to_object(node)


def splits_read(cfg: XltConfig) -> List[Tuple[str, str]]:
    """(language, split) of everything a job reads: English train, then each language's validation and test."""
    return [(cfg.data.train_language, "train")] + [(lang, split) for split in ("validation", "test")
                                                   for lang in cfg.languages.eval]


def jsonl_files(cfg: XltConfig) -> List[Path]:
    """The JSONL files a job with local data reads."""
    return [data_dir_of(cfg) / f"{split}.{lang}.jsonl" for lang, split in splits_read(cfg)]


def data_dir_of(cfg: XltConfig) -> Path:
    if cfg.data.source == "sample":
        return SAMPLE_DIR
    if not cfg.data.dir:
        raise ConfigError("data.dir", "is empty; use data=jsonl data.dir=DIR with {split}.{lang}.jsonl files")
    return Path(cfg.data.dir).expanduser()
