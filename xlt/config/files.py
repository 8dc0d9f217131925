"""Where things are on disk: xlt's config tree, the bundled sample, a job's local data directory."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from xlt.config.schema import TaskConfig, XltConfig
from xlt.core.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"  # real XNLI rows, CC BY-NC 4.0


def task_preset(name: str) -> TaskConfig:
    """A task as conf/task/NAME.yaml defines it (for code and tests that compose no config)."""
    from xlt.config import plugins

    own = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    own.pop("defaults", None)  # its kind's options and its languages group: not the task's own fields
    return plugins.typed_options("task", OmegaConf.merge({"kind": TaskConfig.kind, "module": None}, own))


def data_dir_of(cfg: XltConfig) -> Path:
    if cfg.data.source == "sample":
        return SAMPLE_DIR
    if not cfg.data.dir:
        raise ConfigError("data.dir", "is empty; use data=jsonl data.dir=DIR with {split}.{lang}.jsonl files")
    return Path(cfg.data.dir).expanduser()


LOCAL_SUFFIX = {"jsonl": "jsonl", "sample": "jsonl", "conllu": "conllu"}  # data.source -> its files' suffix
DIR_SOURCES = ("jsonl", "conllu")  # the data sources that read data.dir


def local_file(cfg: XltConfig, split: str, lang: str) -> Path:
    """A local split's file: DIR/{split}.{lang}.jsonl (or .conllu for data=conllu)."""
    return data_dir_of(cfg) / f"{split}.{lang}.{LOCAL_SUFFIX[cfg.data.source]}"
