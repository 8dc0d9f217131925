"""A job's splits: read (hub files pinned by xlt.data.hub, local JSONL or the bundled sample), select, tokenize, cache.

Tokenized splits are cached on disk under `<output_dir>/cache/tokenized/`, keyed by
the data source, the rows taken (a subset) and the tokenizer, so every job of a sweep that uses
the same tokenizer reuses them, and a rerun tokenizes nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import datasets
import pyarrow as pa

from xlt.config.files import SAMPLE_DIR, local_file, task_preset
from xlt.config.schema import TaskConfig, XltConfig
from xlt.core.errors import ConfigError, first_line
from xlt.data.cache import disk_cached
from xlt.data.hub import Pin, dataset_paths, dataset_pin, hub_part, hub_reads, hub_rows
from xlt.data.jsonl import columns, count_rows, read_jsonl, read_local
from xlt.protocols import Part, eval_languages, train_parts, validation_languages
from xlt.tasks import task_kind

CACHE_FORMAT = 4  # bump when the encoding below changes


@dataclass
class EncodedData:
    train: datasets.Dataset  # the protocol's training parts, one after the other (columns `lang`, `row`)
    validation: Dict[str, datasets.Dataset]  # language -> split, sorted by length
    test: Dict[str, datasets.Dataset]


def _load_raw(cfg: XltConfig, pin: Optional[Pin], split: str, lang: str) -> datasets.Dataset:
    if pin is None:
        return datasets.Dataset.from_dict(read_local(local_file(cfg, split, lang), cfg.task))
    import pyarrow.parquet as pq

    # Only this split's files: `load_dataset(repo, lang)` would fetch and prepare every split of
    # the language, the 392,702-row translated train split of each target language included.
    prefix, span = hub_rows(cfg.task, lang, split)
    names = list(dict.fromkeys(columns(cfg.task) + (["id"] if prefix else [])))
    try:
        paths = dataset_paths(pin, *hub_part(cfg.task, lang, split))
        table = pa.concat_tables([pq.read_table(path, columns=names) for path in paths])
    except ConfigError:
        raise
    except Exception as e:  # offline, gated, removed, corrupt...: the cause, in one line
        raise ConfigError("data.hub_id", f"cannot read {split} of {lang!r} from {pin.repo_id}@{pin.commit[:12]}: "
                                         f"{type(e).__name__}: {first_line(e)}") from e
    return _rows_of(datasets.Dataset(table), prefix, span)


def _rows_of(ds: datasets.Dataset, prefix: str, span: str) -> datasets.Dataset:
    """A hub part's rows of one (language, split): those whose id starts with `prefix`, then the
    `span` (datasets' slice syntax, `[-10%:]`) of them, in file order."""
    if prefix:
        ds = ds.filter(lambda ids: [i.startswith(prefix) for i in ids], input_columns="id", batched=True)
    if span:
        (part,) = datasets.ReadInstruction.from_spec(f"rows{span}").to_absolute({"rows": len(ds)})
        ds = ds.select(range(part.from_, part.to))
    return ds


def _subset(cfg: XltConfig, split: str) -> dict:
    """How many rows of an evaluated split a job uses, per language (file order)."""
    d = cfg.data
    n = d.max_eval_samples if split == "validation" else d.max_test_samples
    return {"n": d.max_samples if n is None else n}


def _part_subset(part: Part) -> dict:
    """A training part's rows: a random subset drawn with its seed."""
    return {"n": part.rows, "seed": part.seed, **({"exact": part.exact} if part.exact else {})}


def _enough(field: Optional[str], n: Optional[int], have: int, where: str) -> None:
    """A part asking for exactly `n` rows (few-shot's K) from a split that has fewer: one line."""
    if field and n is not None and n > have:
        raise ConfigError(field, f"asks for {n} rows of {where}, which has {have}; use {field}={have} or fewer")


def _take(ds: datasets.Dataset, subset: dict, where: str) -> datasets.Dataset:
    n = subset["n"]
    _enough(subset.get("exact"), n, len(ds), where)
    if n is None or n >= len(ds):
        return ds
    if "seed" in subset:
        ds = ds.shuffle(seed=subset["seed"])
    # Validation and test keep file order: row i is the same pair in every language.
    return ds.select(range(n))


def _source_id(cfg: XltConfig, pin: Optional[Pin], split: str, lang: str) -> str:
    if pin is not None:  # the commit: a rerun after the repo changed reads the new rows
        rows = hub_rows(cfg.task, lang, split)
        part = pin.files['/'.join(hub_part(cfg.task, lang, split))]
        return f"hub:{pin.repo_id}@{pin.commit}:{part}" + (f":{rows}" if any(rows) else "")
    path = local_file(cfg, split, lang).resolve()
    stat = path.stat()
    return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"


def tokenizer_fingerprint(tokenizer) -> str:
    """Identity of what a tokenizer produces (not its call-time truncation/padding state)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None), state.pop("padding", None)
    else:
        state = tokenizer.get_vocab()
    text = json.dumps(state, sort_keys=True)
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{text}".encode()).hexdigest()


def _tokenize(ds: datasets.Dataset, tokenizer, task: TaskConfig, max_length: int) -> datasets.Dataset:
    """Rows as model inputs, as the task's kind encodes them (a long sentence may become pieces)."""
    kind = task_kind(task)

    def encode(batch):
        return kind.encode(batch, tokenizer, task, max_length)

    return ds.map(encode, batched=True, batch_size=1000, remove_columns=ds.column_names, desc="tokenizing")


def encoded_split(cfg: XltConfig, pin: Optional[Pin], tokenizer, tok_id: str, split: str, lang: str,
                  subset: Optional[dict] = None) -> datasets.Dataset:
    """One tokenized split (`subset`: its rows, by default the evaluated ones), from the shared
    cache when any job already made it. Column `row`: each row's line in its file, by which
    predictions pair across runs and a training row is traced to its source."""
    subset = subset or _subset(cfg, split)
    key = hashlib.sha256(json.dumps({
        "format": CACHE_FORMAT, "source": _source_id(cfg, pin, split, lang), "selection": subset,
        "tokenizer": tok_id, "max_length": cfg.train.max_length,
        "kind": [cfg.task.kind, cfg.task.module, cfg.task.label_field],
    }, sort_keys=True).encode()).hexdigest()[:24]

    def make() -> datasets.Dataset:
        raw = _load_raw(cfg, pin, split, lang)
        raw = raw.add_column("row", list(range(len(raw)))).add_column("lang", [lang] * len(raw))
        raw = _take(raw, subset, f"the {lang} {split} split")
        ds = _tokenize(raw, tokenizer, cfg.task, cfg.train.max_length)
        # Length-sorted evaluation batches carry almost no padding.
        return ds if split == "train" else ds.sort("length").flatten_indices()

    return disk_cached(cfg.cache_dir / "tokenized" / f"{split}.{lang}.{key}", make)


def data_pin(cfg: XltConfig) -> Optional[Pin]:
    """The pinned hub dataset a job reads (None for local JSONL and the sample)."""
    return dataset_pin(cfg.data, cfg.task.hub_files, hub_reads(cfg)) if cfg.data.source == "hub" else None


def load_encoded(cfg: XltConfig, tokenizer, pin: Optional[Pin] = None) -> EncodedData:
    """Every split of a job as its protocol reads them, tokenized; `pin`: the job's `data_pin` if
    it has it already."""
    pin = pin or data_pin(cfg)
    tok_id = tokenizer_fingerprint(tokenizer)

    def encoded(split: str, lang: str, subset: Optional[dict] = None) -> datasets.Dataset:
        return encoded_split(cfg, pin, tokenizer, tok_id, split, lang, subset)

    def part(p: Part) -> datasets.Dataset:
        ds = encoded(p.split, p.lang, _part_subset(p))
        # A kind may keep each row's language (question answering's scoring reads it).
        return ds if "lang" in ds.column_names else ds.add_column("lang", [p.lang] * len(ds))

    parts = [part(p) for p in train_parts(cfg)]
    langs = eval_languages(cfg)
    return EncodedData(
        train=parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts),
        validation={lang: encoded("validation", lang) for lang in validation_languages(cfg)},
        test={lang: encoded("test", lang) for lang in langs},
    )


def split_rows(cfg: XltConfig, pin: Optional[Pin], lang: str, split: str) -> Optional[int]:
    """Rows in a (language, split) where that is cheap to know (local files), else None."""
    if pin is None:
        return count_rows(local_file(cfg, split, lang))
    if not Path(pin.repo_id).is_dir() or any(hub_rows(cfg.task, lang, split)):
        return None  # on the hub, or a part of a file: the job finds out, after its download
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(path).num_rows for path in dataset_paths(pin, *hub_part(cfg.task, lang, split)))


def _check_columns(cfg: XltConfig, pin: Pin) -> None:
    """A local copy of a dataset repo holds the task's columns (task=pawsx on XNLI's files, say)."""
    import pyarrow.parquet as pq

    for config, split in hub_reads(cfg):
        for path in dataset_paths(pin, config, split):
            names = pq.read_schema(path).names
            if any(c not in names for c in columns(cfg.task)):
                raise ConfigError("data.hub_id", f"{path} has the columns {', '.join(names)}; task={cfg.task.name} "
                                                 f"reads {', '.join(columns(cfg.task))}: another task's data?")


def check_local_data(cfg: XltConfig) -> None:
    """What a job's local files must hold, known before any job: a local repo copy's columns, and
    the K rows per target language few-shot asks for."""
    pin = data_pin(cfg)
    if pin is not None and Path(pin.repo_id).is_dir():
        _check_columns(cfg, pin)
    for part in train_parts(cfg):
        if part.exact:
            have = split_rows(cfg, pin, part.lang, part.split)
            _enough(part.exact, part.rows, part.rows if have is None else have, f"the {part.lang} {part.split} split")


def sample_texts() -> List[str]:
    """Every text of the bundled XNLI sample (the tiny tokenizer's corpus)."""
    xnli, texts = task_preset("xnli"), []
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        rows = read_jsonl(path, xnli)
        texts += [text for name in xnli.text_fields for text in rows[name]]
    return texts
