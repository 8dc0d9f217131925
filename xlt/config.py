"""Typed config schema for an xlt job, and its validation.

The dataclasses are registered in Hydra's ConfigStore as `xlt_schema`, which
`conf/config.yaml` lists first in its defaults, so Hydra type-checks every
override on composition. `validate` then checks what types cannot express
(ranges, language codes, paths) and returns the typed object the job uses.
Nothing here imports torch or transformers: validation must stay instant.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from omegaconf import MISSING, DictConfig, OmegaConf

from xlt.errors import ConfigError

XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)
MODEL_SOURCES = ("hub", "local", "tiny")
TECHNIQUES = ("fine_tune", "feature_extraction")
DATA_SOURCES = ("hub", "jsonl", "sample")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
POOLINGS = ("auto", "cls", "mean")
SELECTIONS = ("en_dev", "last", "target_dev")
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")
SAMPLE_DIR = Path(__file__).parent / "sample"


@dataclass
class TinyShape:
    """Shape of the randomly initialised BERT used for offline smoke runs."""
    vocab_size: int = 2000
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 128


@dataclass
class ModelConfig:
    name: str = MISSING  # short label used in run names and params, e.g. mbert
    source: str = "hub"  # hub | local | tiny
    path: Optional[str] = None  # hub id or local directory (unused for tiny)
    # Hub branch, tag or commit; resolved to a commit once per sweep, which every job loads.
    revision: str = "main"
    tiny: Optional[TinyShape] = None
    # What the classification head reads: `cls`, the first token's state (the heads'
    # own choice), `mean`, the masked mean of the last layer (for models trained with
    # mean pooling, e.g. multilingual-e5), or `auto`: the checkpoint's sentence-transformers
    # pooling config where it has one, else `cls` (xlt/pooling.py).
    pooling: str = "auto"


@dataclass
class TechniqueConfig:
    name: str = MISSING  # fine_tune | feature_extraction
    # feature_extraction: run the frozen encoder once and train the head on cached
    # features; false runs the encoder at every step (the slow path, for comparison).
    cache_features: bool = True


@dataclass
class LanguagesConfig:
    name: str = MISSING
    eval: List[str] = MISSING


@dataclass
class DataConfig:
    name: str = MISSING
    source: str = "hub"  # hub | jsonl | sample
    hub_id: str = "facebook/xnli"  # or a local copy of the hub repo (its directory)
    revision: str = "main"  # hub branch, tag or commit, resolved once per sweep like model.revision
    dir: Optional[str] = None  # jsonl: holds {split}.{lang}.jsonl
    train_language: str = "en"
    max_eval_samples: Optional[int] = None  # per language, validation split
    max_test_samples: Optional[int] = None  # per language, test split


@dataclass
class TrainConfig:
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    epochs: float = 3.0
    max_train_samples: Optional[int] = None
    max_length: int = 128
    eval_steps: int = 500
    logging_steps: int = 50
    weight_decay: float = 0.0
    warmup: float = 0.0  # fraction of the training steps
    seed: int = 42
    precision: str = "auto"  # auto = bf16 on GPUs that support it, else fp32
    # Which weights are tested at the end (xlt/selection.py): the evaluation round with the
    # best English validation accuracy (`en_dev`, the zero-shot protocol), the last one
    # (`last`), or the best mean target-language one (`target_dev`, an oracle).
    select: str = "en_dev"
    dropout: Optional[float] = None  # the classification head's dropout; None: the checkpoint's


@dataclass
class AimConfig:
    sync: bool = True  # after a sweep (or a single run), sync the MLflow store into `repo`
    repo: Optional[str] = None  # None: <output_dir>/aim
    callback: bool = False  # also log through Aim's own Trainer callback, into <output_dir>/aim_callback


@dataclass
class TrackingConfig:
    uri: Optional[str] = None  # None: sqlite database under output_dir
    experiment: str = "xlt"
    tags: Dict[str, str] = field(default_factory=dict)  # extra MLflow tags for every run
    aim: AimConfig = field(default_factory=AimConfig)


@dataclass
class SweepConfig:
    # Rerunning a sweep skips each job whose run already FINISHED with the same config.
    skip_finished: bool = True


@dataclass
class XltConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    technique: TechniqueConfig = field(default_factory=TechniqueConfig)
    languages: LanguagesConfig = field(default_factory=LanguagesConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    output_dir: str = "logs"

    @property
    def tracking_uri(self) -> str:
        if self.tracking.uri:
            return self.tracking.uri
        return "sqlite:///" + str(Path(self.output_dir).resolve() / "mlflow.db")

    @property
    def cache_dir(self) -> Path:
        return Path(self.output_dir).resolve() / "cache"

    @property
    def aim_repo(self) -> Path:
        return Path(self.tracking.aim.repo or Path(self.output_dir) / "aim").resolve()

    @property
    def aim_callback_repo(self) -> Path:
        return Path(self.output_dir).resolve() / "aim_callback"


# Fields that change where or how a job is recorded, not what it computes.
_NOT_HASHED = ("tracking", "sweep", "output_dir")


def config_hash(cfg: XltConfig) -> str:
    """A short hash of what a validated job computes: same hash, same results (same code)."""
    import dataclasses
    import hashlib
    import json

    job = dataclasses.asdict(cfg)
    for key in _NOT_HASHED:
        job.pop(key)
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="xlt_schema", node=XltConfig)
    from xlt.launcher import LauncherConf
    from xlt.sweeper import SweeperConf

    ConfigStore.instance().store(group="hydra/launcher", name="xlt", node=LauncherConf, provider="xlt")
    ConfigStore.instance().store(group="hydra/sweeper", name="xlt", node=SweeperConf, provider="xlt")
    from xlt.search import OptunaSweeperConf

    ConfigStore.instance().store(group="hydra/sweeper", name="xlt_optuna", node=OptunaSweeperConf, provider="xlt")
    # conf/hydra/launcher/ray_local.yaml: a GPU per job where this machine has any, as xlt's launcher gives.
    OmegaConf.register_new_resolver("xlt_gpus_per_job", _gpus_per_job, replace=True)


def _gpus_per_job() -> int:
    from xlt.launcher import visible_gpus

    return 1 if visible_gpus() else 0


def _one_of(field_name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(field_name, f"unknown value {value!r}; allowed: {', '.join(allowed)}")


def _positive(field_name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(field_name, f"must be a positive number, got {value}")


def _schema_of(annotation) -> Optional[type]:
    """The dataclass a field holds (unwrapping Optional), or None for a plain or dict field."""
    for t in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(t):
            return t
    return None


def _fields_at(path: List[str]) -> List[str]:
    """Field names of the config node at `path` (e.g. ['train']), [] if it is not a schema node."""
    schema: Optional[type] = XltConfig
    for key in path:
        schema = _schema_of(typing.get_type_hints(schema).get(key)) if schema else None
    return list(typing.get_type_hints(schema)) if schema else []


def suggest(full_key: str) -> str:
    """'; did you mean train.learning_rate?' for a mistyped key such as train.lr, else ''."""
    *parent, key = full_key.split(".")
    fields = _fields_at(parent)
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    # Abbreviations difflib misses: lr -> learning_rate, bs -> batch_size.
    close = close or [f for f in fields if "_" in f and "".join(w[0] for w in f.split("_")) == key]
    return f"; did you mean {'.'.join([*parent, close[0]])}?" if close else ""


def _unknown_key(node: DictConfig, path: List[str]) -> Optional[str]:
    """The first key under `node` that the schema lacks (`+train.lr=...` adds one silently)."""
    fields = _fields_at(path)
    for key in node.keys():
        full = [*path, str(key)]
        if str(key) not in fields:
            return ".".join(full)
        child = node[key]
        if isinstance(child, DictConfig) and _fields_at(full):
            found = _unknown_key(child, full)
            if found:
                return found
    return None


def validate(cfg: DictConfig | XltConfig) -> XltConfig:
    """Check a composed job config; return it as a typed `XltConfig`.

    Raises `ConfigError` naming the field and the fix on the first problem.
    """
    if isinstance(cfg, DictConfig):
        job = _job_part(cfg)
        unknown = _unknown_key(job, [])
        if unknown:
            raise ConfigError(unknown, f"is not a field of xlt's config{suggest(unknown)} "
                                       "(python run.py --cfg job lists them)")
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(XltConfig), job))
    m, d, t = cfg.model, cfg.data, cfg.train

    _one_of("model.source", m.source, MODEL_SOURCES)
    if m.source == "tiny":
        if m.tiny is None:
            raise ConfigError("model.tiny", "model.source=tiny needs a shape; use model=tiny")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"):
            _positive(f"model.tiny.{name}", getattr(m.tiny, name))
        if m.tiny.hidden_size % m.tiny.num_heads:
            raise ConfigError("model.tiny.hidden_size", "must be divisible by model.tiny.num_heads")
    elif not m.path:
        raise ConfigError("model.path", "is empty; give a hub id or a local directory")
    if m.source == "local":
        path = Path(m.path).expanduser()
        if m.name == "local":  # the preset's placeholder: runs are named after the checkpoint
            m.name = path.resolve().name
        if not path.is_dir():
            raise ConfigError("model.path", f"local model directory {str(path)!r} does not exist")
        if not (path / "config.json").is_file():
            raise ConfigError("model.path", f"{str(path)!r} has no config.json; save a Hugging Face checkpoint there")

    for name, revision in (("model.revision", m.revision), ("data.revision", d.revision)):
        if not str(revision).strip():
            raise ConfigError(name, "is empty; give a branch, tag or commit of the hub repo (default: main)")
    _one_of("model.pooling", m.pooling, POOLINGS)
    _one_of("technique.name", cfg.technique.name, TECHNIQUES)

    if not cfg.languages.eval:
        raise ConfigError("languages.eval", "is empty; list XNLI codes, e.g. languages.eval=[en,de]")
    for lang in cfg.languages.eval:
        _one_of("languages.eval", lang, XNLI_LANGUAGES)
    if len(set(cfg.languages.eval)) != len(cfg.languages.eval):
        raise ConfigError("languages.eval", f"lists a language twice: {cfg.languages.eval}")

    _one_of("data.source", d.source, DATA_SOURCES)
    _one_of("data.train_language", d.train_language, XNLI_LANGUAGES)
    _positive("data.max_eval_samples", d.max_eval_samples, allow_none=True)
    _positive("data.max_test_samples", d.max_test_samples, allow_none=True)
    if d.source in ("jsonl", "sample"):
        data_dir = data_dir_of(cfg)
        if not data_dir.is_dir():
            raise ConfigError("data.dir", f"JSONL directory {str(data_dir)!r} does not exist")
        missing = [path.name for path in jsonl_files(cfg) if not path.is_file()]
        if missing:
            raise ConfigError("data.dir", f"{str(data_dir)!r} lacks {', '.join(missing)}; "
                                          "files are named {split}.{lang}.jsonl")

    for name in ("batch_size", "eval_batch_size", "learning_rate", "epochs", "max_length",
                 "eval_steps", "logging_steps"):
        _positive(f"train.{name}", getattr(t, name))
    _positive("train.max_train_samples", t.max_train_samples, allow_none=True)
    if t.max_length > 512:
        raise ConfigError("train.max_length", f"{t.max_length} exceeds 512, the encoders' position limit")
    if t.weight_decay < 0:
        raise ConfigError("train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    if not 0 <= t.warmup < 1:
        raise ConfigError("train.warmup", f"is a fraction of the training steps in [0, 1), got {t.warmup}")
    _one_of("train.precision", t.precision, PRECISIONS)
    _one_of("train.select", t.select, SELECTIONS)
    if t.select == "en_dev" and d.train_language not in cfg.languages.eval:
        raise ConfigError("train.select", f"en_dev selects on {d.train_language} validation accuracy, "
                                          f"but languages.eval lacks {d.train_language}; add it or use "
                                          "train.select=last")
    if t.select == "target_dev" and not set(cfg.languages.eval) - {d.train_language}:
        raise ConfigError("train.select", "target_dev needs a target language in languages.eval; "
                                          "add one or use train.select=en_dev")
    if t.dropout is not None and not 0 <= t.dropout < 1:
        raise ConfigError("train.dropout", f"is a probability in [0, 1), got {t.dropout}; "
                                           "null keeps the checkpoint's")

    output = Path(cfg.output_dir).expanduser()
    if output.exists() and not output.is_dir():
        raise ConfigError("output_dir", f"{str(output)!r} is a file; give a directory (created if missing)")
    if cfg.tracking.uri:
        _check_tracking_uri(cfg.tracking.uri)
    if not cfg.tracking.experiment:
        raise ConfigError("tracking.experiment", "is empty; name the MLflow experiment")
    if cfg.tracking.aim.sync and cfg.aim_repo.exists() and not cfg.aim_repo.is_dir():
        raise ConfigError("tracking.aim.repo", f"{str(cfg.aim_repo)!r} is a file; give a directory "
                                               "or tracking.aim.sync=false")
    return cfg


def _check_tracking_uri(uri: str) -> None:
    """A URI MLflow can open (not whether a server answers: xlt/tracking_server.py asks that)."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+")[0]  # postgresql+psycopg2://
    if not scheme:
        raise ConfigError("tracking.uri", f"{uri!r} has no scheme; write sqlite:///{uri.rstrip('/')}/mlflow.db, "
                                          f"file://{Path(uri).expanduser().resolve()} or http://HOST:PORT")
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError("tracking.uri", f"unknown scheme {parsed.scheme!r} in {uri!r}; "
                                          f"MLflow opens {', '.join(TRACKING_SCHEMES)}")
    if scheme in ("http", "https") and not parsed.hostname:
        raise ConfigError("tracking.uri", f"{uri!r} names no host; write {scheme}://HOST:PORT")


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


def _job_part(cfg: DictConfig) -> DictConfig:
    """The job's own fields, without Hydra's `hydra` node if it is present."""
    keys = [k for k in cfg.keys() if k != "hydra"]
    return OmegaConf.masked_copy(cfg, keys)

