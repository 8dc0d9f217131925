"""Validation of a composed job config: what types cannot express (ranges, language codes,
paths, modules), one check per concern, each raising `ConfigError` naming the field and the fix."""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from pathlib import Path
from typing import List, Optional

from omegaconf import DictConfig, OmegaConf

from xlt.config import plugins
from xlt.config.files import DIR_SOURCES
from xlt.config.schema import MIN_BEAT_S, TrainingDefaults, XltConfig
from xlt.core.errors import ConfigError

MODEL_SOURCES = ("hub", "local", "tiny")
DATA_SOURCES = ("hub", "jsonl", "conllu", "sample")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
POOLINGS = ("auto", "cls", "mean")
SELECTIONS = ("dev", "en_dev", "last", "target_dev", "average_last")
SAVES = ("none", "selected")
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")
DECODERS = ("ForCausalLM", "LMHeadModel")  # architectures that generate left to right
MAX_SEED = 2**32 - 1  # numpy's and Trainer's seeds


def validate(cfg: DictConfig | XltConfig) -> XltConfig:
    """Check a composed job config; return it as a typed `XltConfig`.

    Raises `ConfigError` naming the field and the fix on the first problem.
    """
    composed = isinstance(cfg, DictConfig)
    if composed:
        cfg = _typed(cfg)
    for group in (*plugins.GROUPS, "task"):  # each plugin's node as its module's Options (a task's: its kind's)
        setattr(cfg, group, plugins.typed_options(group, getattr(cfg, group)))
    _fill_training_defaults(cfg)
    positive("train.budget", cfg.train.budget)
    if composed:  # once, as the job's config is made (a validated config is checked again as it is)
        cfg.train.epochs = cfg.train.epochs * cfg.train.budget
    for check in (_check_model, _check_task, _check_languages, _check_data, _check_train, _check_selection,
                  _check_outputs):
        check(cfg)
    for group in plugins.GROUPS:
        plugins.run_check(group, cfg)
    return cfg


def _fill_training_defaults(cfg: XltConfig) -> None:
    """Each `train` field left unset takes the technique's own value (technique.train)."""
    own = cfg.technique.train
    for f in dataclasses.fields(TrainingDefaults):
        if getattr(cfg.train, f.name) is None:
            setattr(cfg.train, f.name, getattr(own, f.name))


def _typed(cfg: DictConfig) -> XltConfig:
    job = _job_part(cfg)
    unknown = _unknown_key(job, [])
    if unknown:
        raise ConfigError(unknown, f"is not a field of xlt's config{suggest(unknown)} "
                                   "(python run.py --cfg job lists them)")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(XltConfig), job))


def _one_of(field_name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(field_name, f"unknown value {value!r}; allowed: {', '.join(allowed)}")


def positive(field_name: str, value, allow_none: bool = False) -> None:
    """A ConfigError naming the field unless `value` is a positive finite number (plugins' checks too)."""
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:  # nan compares false with everything
        raise ConfigError(field_name, f"must be a positive number, got {value}")


MAX_NAME = 100  # model.name labels directories and runs: far below a file name's 255 bytes


def _check_model(cfg: XltConfig) -> None:
    m = cfg.model
    _one_of("model.source", m.source, MODEL_SOURCES)
    if len(m.name.encode()) > MAX_NAME or "/" in m.name:
        raise ConfigError("model.name", f"is a label for run names and job directories: at most {MAX_NAME} bytes "
                                        f"and no '/' (got {len(m.name.encode())} bytes); give a short one")
    if m.source == "tiny":
        if m.tiny is None:
            raise ConfigError("model.tiny", "model.source=tiny needs a shape; use model=tiny")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"):
            positive(f"model.tiny.{name}", getattr(m.tiny, name))
        if m.tiny.hidden_size % m.tiny.num_heads:
            raise ConfigError("model.tiny.hidden_size", "must be divisible by model.tiny.num_heads")
    elif not m.path:
        raise ConfigError("model.path", "is empty; give a hub id or a local directory")
    if m.source == "local":
        _check_local_model(cfg)
    for name, revision in (("model.revision", m.revision), ("data.revision", cfg.data.revision)):
        if not str(revision).strip():
            raise ConfigError(name, "is empty; give a branch, tag or commit of the hub repo (default: main)")
    _one_of("model.pooling", m.pooling, POOLINGS)


def _check_local_model(cfg: XltConfig) -> None:
    path = Path(cfg.model.path).expanduser()
    if cfg.model.name == "local":  # the preset's placeholder: runs are named after the checkpoint
        cfg.model.name = path.resolve().name
    if path.is_file():
        raise ConfigError("model.path", f"{str(path)!r} is a file; give the checkpoint's directory (the one holding "
                                        "config.json)")
    if not path.is_dir():
        raise ConfigError("model.path", f"local model directory {str(path)!r} does not exist")
    if not (path / "config.json").is_file():
        raise ConfigError("model.path", f"{str(path)!r} has no config.json; save a Hugging Face checkpoint there")
    config = read_json("model.path", path / "config.json")
    if config.get("is_decoder") or any(a.endswith(DECODERS) for a in config.get("architectures") or []):
        raise ConfigError("model.path", f"{str(path)!r} is a decoder ({', '.join(config.get('architectures') or [])}); "
                                        "xlt trains encoders: give a BERT-, XLM-R- or DistilBERT-like checkpoint")
    limit = position_limit(config)
    if limit and cfg.train.max_length > limit:
        raise ConfigError("train.max_length", f"{cfg.train.max_length} exceeds {limit}, the positions "
                                              f"{path.name} has; use train.max_length={limit} or less")


def read_json(field_name: str, path: Path) -> dict:
    """A JSON file of a checkpoint; a ConfigError naming the file, line and column where it is broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(field_name, f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                      "save the checkpoint again (save_pretrained)") from None
    except UnicodeDecodeError:
        raise ConfigError(field_name, f"{path} is not UTF-8 text; save the checkpoint again "
                                      "(save_pretrained)") from None


def position_limit(config: dict) -> Optional[int]:
    """The longest input a checkpoint's position embeddings take (RoBERTa-like models reserve two)."""
    positions = config.get("max_position_embeddings")
    if not positions:
        return None
    return positions - 2 if config.get("model_type") in ("roberta", "xlm-roberta", "camembert") else positions


def _check_task(cfg: XltConfig) -> None:
    """The task's kind exists, its metric is one the kind logs, the protocol is one its data
    supports, and the kind's own `check(task)` where it has one."""
    task = cfg.task
    kind = plugins.load("task", task)
    if task.metric is not None:
        _one_of("task.metric", task.metric, kind.METRICS)
    if task.protocols is not None and cfg.protocol.name not in task.protocols:
        raise ConfigError("protocol", f"task={task.name} supports protocol={' or '.join(task.protocols)} only (its "
                                      f"data has no {cfg.protocol.name} rows); choose one of those")
    check = getattr(kind, "check", None)
    if check is not None:
        check(cfg)


def _check_languages(cfg: XltConfig) -> None:
    langs, task = cfg.languages.eval, cfg.task
    if not langs:
        raise ConfigError("languages.eval", f"is empty; list {task.name} codes, e.g. languages.eval=[en,de]")
    for lang in langs:
        _one_of("languages.eval", lang, task.languages)
    if len(set(langs)) != len(langs):
        raise ConfigError("languages.eval", f"lists a language twice: {langs}")
    _one_of("data.train_language", cfg.data.train_language, task.languages)


def _check_data(cfg: XltConfig) -> None:
    """Its fields; the files it reads are the protocol's to check (xlt.protocols.check)."""
    d = cfg.data
    _one_of("data.source", d.source, DATA_SOURCES)
    if d.dir and d.source not in DIR_SOURCES:
        raise ConfigError("data.dir", f"is read only with data=jsonl (this job reads data={d.name}, "
                                      f"source {d.source}); add data=jsonl, or leave data.dir out")
    if d.source == "hub" and not d.hub_id:
        raise ConfigError("data", f"task={cfg.task.name} names no hub repo it can be read from per language; use "
                                  f"data=jsonl data.dir=DIR, or data.hub_id=REPO")
    positive("data.max_samples", d.max_samples, allow_none=True)
    positive("data.max_eval_samples", d.max_eval_samples, allow_none=True)
    positive("data.max_test_samples", d.max_test_samples, allow_none=True)


def _check_train(cfg: XltConfig) -> None:
    t = cfg.train
    for name in ("batch_size", "eval_batch_size", "learning_rate", "epochs", "max_length"):
        positive(f"train.{name}", getattr(t, name))
    for name in ("max_train_samples", "eval_steps", "logging_steps"):
        positive(f"train.{name}", getattr(t, name), allow_none=True)
    if t.max_length > 512:
        raise ConfigError("train.max_length", f"{t.max_length} exceeds 512, the encoders' position limit")
    if not 0 <= t.seed <= MAX_SEED:
        raise ConfigError("train.seed", f"is a whole number in [0, {MAX_SEED}], got {t.seed}")
    if t.weight_decay < 0:
        raise ConfigError("train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    if not 0 <= t.warmup < 1:
        raise ConfigError("train.warmup", f"is a fraction of the training steps in [0, 1), got {t.warmup}")
    _one_of("train.precision", t.precision, PRECISIONS)
    _one_of("train.save", t.save, SAVES)
    if t.dropout is not None and not 0 <= t.dropout < 1:
        raise ConfigError("train.dropout", f"is a probability in [0, 1), got {t.dropout}; "
                                           "null keeps the checkpoint's")


def _check_selection(cfg: XltConfig) -> None:
    """Its values; the languages it selects on are the protocol's to check (xlt.protocols.check)."""
    _one_of("train.select", cfg.train.select, SELECTIONS)
    positive("train.average_last", cfg.train.average_last)


def _check_outputs(cfg: XltConfig) -> None:
    output = Path(cfg.output_dir).expanduser()
    if output.exists() and not output.is_dir():
        raise ConfigError("output_dir", f"{str(output)!r} is a file; give a directory (created if missing)")
    check_writable("output_dir", output)
    if cfg.tracking.uri:
        _check_tracking_uri(cfg.tracking.uri)
    if not cfg.tracking.experiment:
        raise ConfigError("tracking.experiment", "is empty; name the MLflow experiment")
    positive("tracking.heartbeat_s", cfg.tracking.heartbeat_s)
    if cfg.tracking.heartbeat_s < MIN_BEAT_S:
        raise ConfigError("tracking.heartbeat_s", f"{cfg.tracking.heartbeat_s:g} s is below {MIN_BEAT_S:g} s: a store "
                                                  "does not keep beats that fast, and a live run would look dead; use "
                                                  f"{MIN_BEAT_S:g} or more (default 10)")
    if cfg.tracking.aim.sync and cfg.aim_repo.exists() and not cfg.aim_repo.is_dir():
        raise ConfigError("tracking.aim.repo", f"{str(cfg.aim_repo)!r} is a file; give a directory "
                                               "or tracking.aim.sync=false")


def check_writable(field_name: str, path: Path) -> None:
    """The directory `path` is, or would be made in, can be written: by trying (permission bits say
    nothing for root, nor for read-only mounts); nothing is left."""
    import tempfile

    directory = next(p for p in [path, *path.absolute().parents] if p.exists())
    try:
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as e:
        raise ConfigError(field_name, f"{str(directory)!r} is not writable ({e.strerror}); "
                                      "give a directory you can write") from None


def _check_tracking_uri(uri: str) -> None:
    """A URI MLflow can open (not whether a server answers: xlt.tracking.server asks that)."""
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


# -- unknown keys, with a suggestion ------------------------------------------------------

def _schema_of(annotation) -> Optional[type]:
    """The dataclass a field holds (unwrapping Optional), or None for a plain or dict field."""
    for t in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(t):
            return t
    return None


def _fields_at(path: List[str], root: type = XltConfig) -> List[str]:
    """Field names of the config node at `path` (e.g. ['train']), [] if it is not a schema node."""
    schema: Optional[type] = root
    for key in path:
        schema = _schema_of(typing.get_type_hints(schema).get(key)) if schema else None
    return list(typing.get_type_hints(schema)) if schema else []


def suggest(full_key: str, root: type = XltConfig, root_key: str = "") -> str:
    """'; did you mean train.learning_rate?' for a mistyped key such as train.lr, else ''.

    `root`: the schema at `root_key` (e.g. a launcher's config at `hydra.launcher`)."""
    *parent, key = full_key[len(root_key):].lstrip(".").split(".")
    fields = [f for f in _fields_at(parent, root) if not f.startswith("_")]  # not Hydra's _target_
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    # Abbreviations difflib misses: lr -> learning_rate, bs -> batch_size.
    close = close or [f for f in fields if "_" in f and "".join(w[0] for w in f.split("_")) == key]
    return f"; did you mean {'.'.join(filter(None, [root_key, *parent, close[0]]))}?" if close else ""


def _node_fields(node: DictConfig, path: List[str]) -> List[str]:
    """The fields of a node: its own dataclass's where composing typed it (a task by its kind's
    Options), else the schema's at `path`."""
    own = OmegaConf.get_type(node)
    return list(typing.get_type_hints(own)) if dataclasses.is_dataclass(own) else _fields_at(path)


def _unknown_key(node: DictConfig, path: List[str]) -> Optional[str]:
    """The first key under `node` that the schema lacks (`+train.lr=...` adds one silently)."""
    fields = _node_fields(node, path)
    for key in node.keys():
        full = [*path, str(key)]
        if str(key) not in fields:
            return ".".join(full)
        child = node[key]
        if isinstance(child, DictConfig) and _node_fields(child, full):
            found = _unknown_key(child, full)
            if found:
                return found
    return None


def _job_part(cfg: DictConfig) -> DictConfig:
    """The job's own fields, without Hydra's `hydra` node if it is present."""
    keys = [k for k in cfg.keys() if k != "hydra"]
    return OmegaConf.masked_copy(cfg, keys)
